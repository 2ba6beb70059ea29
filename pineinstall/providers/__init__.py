"""Where a config comes from: each provider returns the config bytes (or None when it has none)."""
