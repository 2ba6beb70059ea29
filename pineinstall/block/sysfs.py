"""What the kernel knows about block devices, read from sysfs (no tools, no udev)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

SYS_BLOCK = Path("/sys/class/block")


@dataclass(frozen=True)
class KernelPartition:
    number: int
    name: str
    start: int  # in 512-byte units, as sysfs counts
    size: int  # in 512-byte units


def name_of(path: str) -> str | None:
    """Kernel name (``loop0p1``) of the block device node at ``path`` (symlinks followed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    link = Path(f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    try:
        return link.resolve().name
    except OSError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def is_partition(name: str) -> bool:
    return (SYS_BLOCK / name / "partition").exists()


def partition_number(name: str) -> int | None:
    value = _read(SYS_BLOCK / name / "partition")
    return int(value) if value else None


def parent_of(name: str) -> str | None:
    """Whole-disk name of partition ``name``; None for a whole disk."""
    if not is_partition(name):
        return None
    return (SYS_BLOCK / name).resolve().parent.name


def partitions(disk: str) -> list[KernelPartition]:
    """The partitions the kernel currently has for ``disk``, by number."""
    out = []
    base = SYS_BLOCK / disk
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    for entry in entries:
        number = _read(entry / "partition")
        if number is None:
            continue
        out.append(
            KernelPartition(
                number=int(number),
                name=entry.name,
                start=int(_read(entry / "start") or 0),
                size=int(_read(entry / "size") or 0),
            )
        )
    return sorted(out, key=lambda p: p.number)


def holders(name: str) -> list[str]:
    try:
        return sorted(p.name for p in (SYS_BLOCK / name / "holders").iterdir())
    except OSError:
        return []


def attribute(name: str, attr: str) -> str | None:
    return _read(SYS_BLOCK / name / attr)


def all_names() -> list[str]:
    try:
        return sorted(p.name for p in SYS_BLOCK.iterdir())
    except OSError:
        return []


def partition_node(disk_path: str, number: int) -> str:
    """Node path of partition ``number`` of ``disk_path``: ``/dev/sda1`` but ``/dev/loop0p1``.

    A link such as ``/dev/disk/by-id/virtio-x`` is followed first: its partitions are named after the
    kernel's node (``/dev/vda1``), not after the link (``virtio-x1`` does not exist)."""
    if os.path.islink(disk_path):
        disk_path = os.path.realpath(disk_path)
    sep = "p" if disk_path[-1:].isdigit() else ""
    return f"{disk_path}{sep}{number}"
