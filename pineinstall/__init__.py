"""Pine provisioning: Ignition-compatible config model, engine and installer."""
