"""Butane-compatible YAML to Ignition JSON translation (variants fcos, flatcar, pine)."""
