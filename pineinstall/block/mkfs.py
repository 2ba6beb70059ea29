"""mkfs: one table row per filesystem format (tool, force flag, how to pass the UUID and label).

The argv is built as Ignition builds it: the config's ``options`` first, then the force flag, the
UUID, the label, and the device last.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    tool: str
    force: tuple[str, ...]
    uuid: tuple[str, ...]  # "{}" is replaced by the canonical UUID
    label: tuple[str, ...]
    blkid_type: str  # what blkid reports as TYPE
    mountable: bool = True


FORMATS: dict[str, Format] = {
    "ext4": Format("mkfs.ext4", ("-F",), ("-U", "{}"), ("-L", "{}"), "ext4"),
    "btrfs": Format("mkfs.btrfs", ("--force",), ("-U", "{}"), ("-L", "{}"), "btrfs"),
    "xfs": Format("mkfs.xfs", ("-f",), ("-m", "uuid={}"), ("-L", "{}"), "xfs"),
    # mkfs.vfat has no force flag: it always overwrites.
    "vfat": Format("mkfs.vfat", (), ("-i", "{}"), ("-n", "{}"), "vfat"),
    "swap": Format("mkswap", ("-f",), ("-U", "{}"), ("-L", "{}"), "swap", mountable=False),
}


def canonical_uuid(fmt: str, uuid: str) -> str:
    """Lower case; a FAT volume ID loses its dash (blkid shows A1B2-C3D4, mkfs.vfat wants A1B2C3D4)."""
    uuid = uuid.lower()
    if fmt == "vfat" and len(uuid) >= 5 and uuid[4] == "-":
        uuid = uuid[:4] + uuid[5:]
    return uuid


def argv(
    fmt: str, device: str, *, label: str | None = None, uuid: str | None = None, options: tuple[str, ...] = ()
) -> list[str]:
    spec = FORMATS[fmt]
    args = [spec.tool, *options, *spec.force]
    if uuid is not None:
        args += [a.format(canonical_uuid(fmt, uuid)) for a in spec.uuid]
    if label is not None:
        args += [a.format(label) for a in spec.label]
    return [*args, device]
