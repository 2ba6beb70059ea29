"""The Ignition config spec versions this build understands."""

from __future__ import annotations

from .fields import NEWEST_MINOR

# Declared version string -> (major, minor). The stable releases, then the experimental spec as
# Ignition v2.26 has it: 3.7.0-experimental has exactly the fields and rules of 3.6.0.
SUPPORTED: dict[str, tuple[int, int]] = {f"3.{minor}.0": (3, minor) for minor in range(NEWEST_MINOR + 1)}
EXPERIMENTAL = f"3.{NEWEST_MINOR + 1}.0-experimental"
SUPPORTED[EXPERIMENTAL] = (3, NEWEST_MINOR + 1)
NEWEST = f"3.{NEWEST_MINOR}.0"


def describe_supported() -> str:
    return ", ".join(SUPPORTED)
