"""JSON Schemas shipped with the package (Ignition spec versions and Butane-like variants)."""
