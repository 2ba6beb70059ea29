"""The image's partition tables and boot code, held back until DEST is provisioned (docs/safety.md).

The image layer writes everything but the image's first MiB (protective MBR and boot code, primary
GPT). Until :meth:`HeldTables.commit`, DEST has no partition table and no boot code: it cannot
boot, whatever else was written. Meanwhile:

- the tables are edited in a sparse scratch file of DEST's size (the held first MiB at 0, the
  image's backup GPT where the image put it), attached to a loop device with DEST's sector size so
  that the usual tools (``sgdisk -e``, ``sfdisk -N``) grow it;
- the partitions are reached through loop devices at their offsets in DEST;
- rootfs mode starts from an empty scratch file (Pine's layout) or from DEST's own tables (the
  config's layout: its disks stage edits them there); the layout is made there, and GRUB's BIOS boot
  code goes there too (``grub-install`` on the scratch loop device); the BIOS boot partition it
  fills (outside the first MiB) is copied to DEST with :meth:`carry`;
- :meth:`commit` runs last, after everything was unmounted and DEST synced: the new first MiB, a
  sync, then the new backup GPT at DEST's end, a sync. In that order every state is wiped (no
  protective MBR, no primary GPT; a backup GPT alone is ignored by firmware and libblkid, but it
  is not written before the primary) or complete (provisioned; a primary GPT whose backup is
  missing still boots, and is repaired by any GPT tool).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct

from pineinstall.block import blkid, partx, sfdisk
from pineinstall.block.ioctl import BLKSSZGET
from pineinstall.install.dest import detach_loop
from pineinstall.run import run
from pineinstall.stages import StageError

HEAD = 1 << 20  # what the image layer holds back: the image's first MiB


def sector_size(path: str) -> int:
    if not stat.S_ISBLK(os.stat(path).st_mode):
        return 512  # a file is attached with the loop driver's default
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, BLKSSZGET, bytes(4)))[0])
    finally:
        os.close(fd)


def backup_gpt_bytes(sector: int) -> int:
    """What a backup GPT takes at a disk's end: 128 entries of 128 bytes, then its header sector."""
    return max(16384, sector) + sector


def head_of(path: str) -> bytes:
    """The first MiB of ``path`` as it is now (rootfs mode with the config's layout: the table its
    plan was computed from, held like an image's)."""
    return _pread(path, 0, HEAD)


def _pread(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def _write_synced(path: str, data: bytes, offset: int) -> None:
    """``data`` at ``offset`` of ``path``, then fsync (of everything written to it before, too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
        os.fsync(fd)
    finally:
        os.close(fd)


class HeldTables:
    """DEST's tables in a scratch file, its partitions through offset loop devices.

    Use as a context manager: every loop device it attached is detached on the way out."""

    def __init__(self, dest: str, head: bytes, image_size: int, workdir: str) -> None:
        self.dest = dest
        self.is_block = stat.S_ISBLK(os.stat(dest).st_mode)
        self.size = self._dest_size()
        self.sector = sector_size(dest)
        self.scratch = os.path.join(workdir, "tables.img")
        self.loops: list[str] = []
        self.parts: dict[int, str] = {}  # partition number -> its loop device over DEST
        self.dev = ""  # the loop device over the scratch file
        # The image's last MiB holds its backup GPT (the primary header points there).
        tail_at = max(HEAD, image_size - HEAD)
        with open(self.scratch, "wb") as f:
            f.truncate(self.size)
            f.write(head)
            if image_size > HEAD:
                f.seek(tail_at)
                f.write(_pread(dest, tail_at, image_size - tail_at))

    def _dest_size(self) -> int:
        fd = os.open(self.dest, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)

    def __enter__(self) -> HeldTables:
        self.dev = self._attach(["--sector-size", str(self.sector), self.scratch])
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach_all()

    def _attach(self, args: list[str]) -> str:
        dev = run(["losetup", "--find", "--show", *args]).stdout.decode().strip()
        self.loops.append(dev)
        return dev

    def detach(self, dev: str) -> None:
        detach_loop(dev)
        if dev in self.loops:
            self.loops.remove(dev)
        self.parts = {n: d for n, d in self.parts.items() if d != dev}

    def detach_all(self) -> None:
        for dev in reversed(list(self.loops)):
            self.detach(dev)
        with contextlib.suppress(OSError):
            os.unlink(self.scratch)

    def table(self) -> sfdisk.TableInfo:
        return sfdisk.dump(self.dev)

    def fstype(self, part: sfdisk.PartitionInfo) -> str:
        """The filesystem in partition ``part`` of DEST (read at its offset)."""
        sig = blkid.probe(self.dest, offset=part.start * self.sector, size=part.size * self.sector)
        return sig.type

    def _extent(self, number: int) -> tuple[int, int]:
        """(byte offset, byte size) of partition ``number`` in the scratch table."""
        part = self.table().get(number)
        if part is None:
            raise StageError(f"{self.dest}: no partition {number}")
        offset = part.start * self.sector
        if offset < HEAD:
            raise StageError(f"{self.dest}: partition {number} starts within the first MiB")
        return offset, part.size * self.sector

    def partition(self, number: int) -> str:
        """A loop device over partition ``number`` of DEST, at its offset (one per partition,
        detached on exit)."""
        if number not in self.parts:
            offset, size = self._extent(number)
            self.parts[number] = self._attach(["--offset", str(offset), "--sizelimit", str(size), self.dest])
        return self.parts[number]

    def carry(self, number: int) -> None:
        """Partition ``number`` as the scratch file holds it (written there through :attr:`dev`,
        e.g. GRUB's core image in the BIOS boot partition) copied to DEST. Not synced: the commit
        syncs everything before its first byte of table."""
        offset, size = self._extent(number)
        fd = os.open(self.dest, os.O_WRONLY | os.O_CLOEXEC)
        try:
            with open(self.scratch, "rb") as src:
                src.seek(offset)
                done = 0
                while done < size and (chunk := src.read(min(HEAD, size - done))):
                    os.pwrite(fd, chunk, offset + done)
                    done += len(chunk)
        finally:
            os.close(fd)

    def commit(self) -> None:
        """Make DEST bootable: the first MiB, then the new backup GPT at its end, each synced. Called
        when everything else is on DEST, unmounted and synced."""
        table = self.table()
        head = _pread(self.scratch, 0, HEAD)
        tail_at = self.size  # no GPT, or its backup still where the image put it (--no-grow): in the body
        if table.label == "gpt" and table.last_lba and self.size - (table.last_lba + 1) * self.sector <= HEAD:
            tail_at = (table.last_lba + 1) * self.sector
        tail = _pread(self.scratch, tail_at, self.size - tail_at)
        self.detach_all()  # unmounted and detached: the loop devices' writes are in DEST's page cache
        _write_synced(self.dest, b"", 0)  # nothing written: an fsync, before its first byte of table
        _write_synced(self.dest, head, 0)
        if tail:
            _write_synced(self.dest, tail, tail_at)
        if self.is_block:
            with contextlib.suppress(Exception):
                partx.sync(self.dest)
