"""mdadm: creating software RAID arrays."""

from __future__ import annotations

from ..config.fields import RAID_LEVELS

MDADM = "mdadm"

# Config level spelling -> mdadm --level value (the spellings Ignition and mdadm accept).
LEVELS = RAID_LEVELS

# Fewest active members each level can be created with (mdadm refuses fewer without --force, and
# some of these would be degraded from the start).
MIN_ACTIVE = {"linear": 1, "raid0": 1, "raid1": 1, "raid4": 2, "raid5": 2, "raid6": 4, "raid10": 2}


def device_path(name: str) -> str:
    return name if name.startswith("/dev/") else f"/dev/md/{name}"


def create_argv(
    name: str, level: str, devices: list[str], *, spares: int = 0, options: tuple[str, ...] = ()
) -> list[str]:
    """``mdadm --create`` as Ignition runs it: forced, started, homehost "any"."""
    mdlevel = LEVELS[str(level)]
    args = [
        MDADM,
        "--create",
        device_path(name),
        "--force",
        "--run",
        "--homehost",
        "any",
        "--level",
        mdlevel,
        "--raid-devices",
        str(len(devices) - spares),
    ]
    if spares > 0:
        args += ["--spare-devices", str(spares)]
    return [*args, *options, *devices]
