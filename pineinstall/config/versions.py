"""The Ignition config spec versions this build understands."""

from __future__ import annotations

# Declared version string -> (major, minor). Only stable releases: an "-experimental" spec is a
# moving target and Ignition itself drops it once the release is cut.
SUPPORTED: dict[str, tuple[int, int]] = {f"3.{minor}.0": (3, minor) for minor in range(7)}
NEWEST = "3.6.0"


def describe_supported() -> str:
    return ", ".join(SUPPORTED)
