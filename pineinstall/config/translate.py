"""Up-translation of a checked config to the newest spec (3.6.0).

Every 3.x release only added fields, so the JSON shape of an older config is already a valid 3.6.0
shape; what changes is meaning. Before 3.6.0 the setuid, setgid and sticky bits of a mode were not
applied, so they are masked off here (the rules warn about them).
"""

from __future__ import annotations

from .versions import NEWEST

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~5 ms of start-up; annotations stay strings here
    from typing import Any

SPECIAL_BITS = 0o7000


def upgrade(config: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """``config`` (as declared, version ``version``) in the 3.6.0 shape. Modifies it in place."""
    ignition = config.get("ignition")
    if isinstance(ignition, dict):
        ignition["version"] = NEWEST
    if version < (3, 6):
        storage = config.get("storage") or {}
        for kind in ("files", "directories"):
            for node in storage.get(kind) or ():
                mode = node.get("mode")
                if mode is not None:
                    node["mode"] = mode & ~SPECIAL_BITS
    return config
