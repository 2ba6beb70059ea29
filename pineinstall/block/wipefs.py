"""wipefs: erase signatures (filesystem, RAID, LUKS, partition table)."""

from __future__ import annotations

WIPEFS = "wipefs"

FLAGS = {"all": "-a", "no_act": "--no-act", "json": "--json", "force": "--force"}


def wipe_all_argv(device: str, *, force: bool = False) -> list[str]:
    args = [WIPEFS, FLAGS["all"]]
    if force:
        args.append(FLAGS["force"])
    return [*args, device]


def list_argv(device: str) -> list[str]:
    return [WIPEFS, FLAGS["no_act"], FLAGS["json"], device]
