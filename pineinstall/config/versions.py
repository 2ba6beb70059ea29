"""The Ignition config spec versions this build understands."""

from __future__ import annotations

from .fields import NEWEST_MINOR

# Declared version string -> (major, minor). Only stable releases: an "-experimental" spec is a
# moving target and Ignition itself drops it once the release is cut.
SUPPORTED: dict[str, tuple[int, int]] = {f"3.{minor}.0": (3, minor) for minor in range(NEWEST_MINOR + 1)}
NEWEST = f"3.{NEWEST_MINOR}.0"


def describe_supported() -> str:
    return ", ".join(SUPPORTED)
