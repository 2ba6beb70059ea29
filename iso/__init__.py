"""Image building for Pine's tests and demos (see iso/images)."""
