"""DEST: a block device or a disk-image file. Checks that touch nothing, loop devices and partitions,
the wipe of its tables."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass

from pineinstall.block import busy, discover, partx, sysfs
from pineinstall.errors import PineError
from pineinstall.run import CommandError, run

SECTOR = 512
GPT_SECTORS = 34  # protective MBR + header + 32 sectors of entries


class DestRefusedError(PineError):
    """DEST cannot be used; nothing was changed."""


@dataclass(frozen=True)
class Dest:
    path: str
    is_block: bool
    exists: bool
    size: int | None  # bytes now (a block device's capacity; a file's length); None: not there yet

    @property
    def kind(self) -> str:
        return "block device" if self.is_block else "disk-image file"


def inspect(path: str) -> Dest:
    """What DEST is; refuses the running system's disk and busy devices (mounted, swap, held)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Dest(path, False, False, None)
    except OSError as exc:
        raise DestRefusedError(f"{path}: {exc.strerror}") from exc
    if stat.S_ISREG(st.st_mode):
        _refuse_mounted_file(path)
        return Dest(path, False, True, st.st_size)
    if not stat.S_ISBLK(st.st_mode):
        raise DestRefusedError(f"{path}: neither a block device nor a regular file")
    name = sysfs.name_of(path)
    if name is not None and sysfs.is_partition(name):
        raise DestRefusedError(f"{path} is a partition; give the whole disk")
    root = busy.running_root_device()
    if root is not None:
        disk = discover.whole_disk(root) or root
        if os.path.realpath(disk) == os.path.realpath(path) or os.path.realpath(root) == os.path.realpath(
            path
        ):
            raise DestRefusedError(f"{path} holds the running system's root filesystem ({root})")
    why = busy.reasons(path)
    if why:
        raise DestRefusedError(f"{path} is in use: {'; '.join(why)}")
    from pineinstall.block import ioctl

    return Dest(path, True, True, ioctl.size_bytes(path))


def _refuse_mounted_file(path: str) -> None:
    """A disk-image file attached to a loop device whose partitions are in use is refused too."""
    real = os.path.realpath(path)
    for name in sysfs.all_names():
        if not name.startswith("loop"):
            continue
        backing = sysfs.attribute(name, "loop/backing_file")
        if backing and os.path.realpath(backing.removesuffix(" (deleted)")) == real:
            why = busy.reasons(f"/dev/{name}")
            if why:
                raise DestRefusedError(
                    f"{path} is attached to /dev/{name}, which is in use: {'; '.join(why)}"
                )


def detach_loop(dev: str) -> None:
    """Detach a loop device, its partitions first: partitions added with ``partx`` outlive a plain
    detach and would reappear on the next user of the device."""
    with contextlib.suppress(CommandError, OSError):
        for p in sysfs.partitions(os.path.basename(dev)):
            run(["partx", "-d", "--nr", str(p.number), dev], check=False)
    run(["losetup", "-d", dev], check=False)


def sync_partitions(dev: str) -> None:
    """Make the kernel's partitions of dev match its table (``partx``; hosts without table parsing too)."""
    partx.sync(dev)


def node(dev: str, number: int) -> str:
    return sysfs.partition_node(dev, number)


def wipe_tables(path: str, length: int = GPT_SECTORS * SECTOR, tail: int | None = None) -> None:
    """Zero the MBR/primary GPT and the backup GPT (``length`` bytes at the start, ``tail`` bytes
    at the end: ``length`` unless given), synced, so a half-installed disk cannot boot."""
    flags = os.O_WRONLY | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        zeros = bytes(length)
        os.pwrite(fd, zeros, 0)
        tail = length if tail is None else tail
        if size > len(zeros):
            os.pwrite(fd, bytes(min(tail, size - len(zeros))), max(size - tail, len(zeros)))
        os.fsync(fd)
    finally:
        os.close(fd)
    if stat.S_ISBLK(os.stat(path).st_mode):
        with contextlib.suppress(CommandError, FileNotFoundError):
            partx.sync(path)
