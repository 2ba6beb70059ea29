"""wipefs: erase signatures (filesystem, RAID, LUKS, partition table)."""

from __future__ import annotations

WIPEFS = "wipefs"

FLAGS = {"all": "-a", "force": "--force"}


def wipe_all_argv(device: str, *, force: bool = False) -> list[str]:
    args = [WIPEFS, FLAGS["all"]]
    if force:
        args.append(FLAGS["force"])
    return [*args, device]
