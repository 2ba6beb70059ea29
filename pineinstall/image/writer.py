"""The write path: exclusive target, sparse output, the first MiB written last.

:class:`Destination` is a block device or a regular file. A block device is opened with ``O_EXCL``
(the kernel refuses while it or a partition is mounted, used as swap, held by md/dm/LUKS, or opened
exclusively by another writer). A regular file is created when missing, locked with ``flock``, and
grown (never shrunk) sparse to its final size.

:class:`SparseWriter` takes the image in order. Runs of zero blocks (4 KiB) are not written: in a
file they become holes (``fallocate(PUNCH_HOLE)``, so a rerun over an old file is exact too), on a
device they are zeroed by offload (``BLKZEROOUT``: the kernel unmaps or uses WRITE ZEROES where the
device can, writes zeroes otherwise), so the destination reads exactly like the image. The image's
first MiB (MBR, primary GPT, boot code) is held in memory and written by :meth:`commit` only after
the caller verified the whole stream; before anything else, :meth:`begin` zeroes the destination's
first MiB and last MiB (old primary and backup partition tables), so that a write cut short —
even by ``kill -9`` or a power loss — leaves a disk without a partition table, never a half-written
one that boots. :meth:`wipe` does the same after a failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import stat
import struct
from dataclasses import dataclass

from pineinstall.block.ioctl import BLKGETSIZE64, BLKSSZGET, BLKZEROOUT
from pineinstall.image.errors import DestinationError

BLOCK = 4096
CHUNK = 4 << 20  # the unit the image is read and classified in
HOLD = 1 << 20  # the image's first MiB: written last
WIPE = 1 << 20  # zeroed at both ends of the destination when writing begins and after a failure
ZERO_BLOCK = bytes(BLOCK)
ZERO_CHUNK = bytes(CHUNK)

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

_libc = None


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@dataclass(frozen=True, slots=True)
class DestInfo:
    """What preflight learned about the destination without changing it."""

    path: str
    is_block: bool
    exists: bool
    capacity: int | None  # bytes it can take; None: a file that grows to the image
    current_size: int
    sector_size: int


def inspect(path: str, *, size: int | None = None) -> DestInfo:
    """Check the destination without modifying it (an exclusive open is tried and closed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise DestinationError(f"{path}: directory {parent} does not exist") from None
        if not os.access(parent, os.W_OK):
            raise DestinationError(f"{path}: cannot create a file in {parent}") from None
        return DestInfo(path, False, False, size, 0, 512)
    if stat.S_ISBLK(st.st_mode):
        if size is not None:
            raise DestinationError(f"{path}: a size is for image files; a block device has its own")
        fd = _open_block(path)
        try:
            cap = _ioctl_int(fd, BLKGETSIZE64, "Q")
            sector = _ioctl_int(fd, BLKSSZGET, "i")
        finally:
            os.close(fd)
        return DestInfo(path, True, True, cap, cap, sector)
    if stat.S_ISREG(st.st_mode):
        if not os.access(path, os.W_OK):
            raise DestinationError(f"{path}: not writable")
        cap = None if size is None else max(size, st.st_size)
        return DestInfo(path, False, True, cap, st.st_size, 512)
    raise DestinationError(f"{path}: neither a block device nor a regular file")


def _ioctl_int(fd: int, request: int, fmt: str) -> int:
    return struct.unpack(fmt, fcntl.ioctl(fd, request, bytes(struct.calcsize(fmt))))[0]


def _open_block(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_EXCL | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise DestinationError(
                f"{path}: busy (mounted, swap, held by md/dm/LUKS, or opened exclusively by another program)"
            ) from exc
        raise DestinationError(f"{path}: {exc.strerror}") from exc


class SparseWriter:
    """Writes an image in order into an open destination; see the module docstring."""

    def __init__(self, info: DestInfo, *, image_size: int | None) -> None:
        self.info = info
        self.path = info.path
        self.image_size = image_size
        self.fd = -1
        self.created = False
        self.capacity = info.capacity
        self.held = bytearray()
        self.end = 0  # image bytes taken so far
        self.written = 0  # data bytes written
        self.zeroed = 0  # bytes made holes / zeroed by offload
        self.pending_zero: tuple[int, int] | None = None  # coalesced (start, end)
        self.punch_ok = True
        self.zeroout_ok = True
        self.began = False

    # -- opening --

    def open(self) -> None:
        if self.info.is_block:
            self.fd = _open_block(self.path)
            cap = _ioctl_int(self.fd, BLKGETSIZE64, "Q")
            if cap != self.info.capacity:
                raise DestinationError(f"{self.path}: size changed since preflight")
            return
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            self.fd = os.open(self.path, flags | (0 if self.info.exists else os.O_EXCL), 0o644)
        except OSError as exc:
            raise DestinationError(f"{self.path}: {exc.strerror}") from exc
        self.created = not self.info.exists
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = -1
            raise DestinationError(f"{self.path}: being written by another program") from exc
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            raise DestinationError(f"{self.path}: no longer a regular file")
        # Final size known: set it now (sparse), so a later failure cannot be "disk full".
        target = max(self.capacity or 0, self.image_size or 0)
        if target > st.st_size:
            os.ftruncate(self.fd, target)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def size_now(self) -> int:
        if self.info.is_block:
            return self.info.capacity or 0
        return os.fstat(self.fd).st_size

    # -- low level --

    def _zero_range(self, start: int, end: int) -> None:
        """Make [start, end) read as zeroes without writing data where the target allows."""
        if end <= start:
            return
        if not self.info.is_block:
            size = os.fstat(self.fd).st_size
            if start >= size:
                return  # beyond EOF: reads as zeroes once the file is extended
            end = min(end, size)
            if self.punch_ok:
                try:
                    _fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, end - start)
                    return
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                        raise
                    self.punch_ok = False
            self._write_zeroes(start, end)
            return
        sector = self.info.sector_size
        a = -(-start // sector) * sector
        b = end // sector * sector
        if self.zeroout_ok and b > a:
            try:
                fcntl.ioctl(self.fd, BLKZEROOUT, struct.pack("QQ", a, b - a))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL):
                    raise
                self.zeroout_ok = False
            else:
                self._write_zeroes(start, a)
                self._write_zeroes(b, end)
                return
        self._write_zeroes(start, end)

    def _write_zeroes(self, start: int, end: int) -> None:
        chunk = bytes(min(end - start, 1 << 20))
        while start < end:
            n = os.pwrite(self.fd, memoryview(chunk)[: min(len(chunk), end - start)], start)
            start += n

    def _pwrite(self, view: memoryview, offset: int) -> None:
        while view:
            n = os.pwrite(self.fd, view, offset)
            view = view[n:]
            offset += n

    def _flush_zero(self) -> None:
        if self.pending_zero is not None:
            a, b = self.pending_zero
            self.pending_zero = None
            self._zero_range(a, b)

    def _zero(self, start: int, end: int) -> None:
        self.zeroed += end - start
        if self.pending_zero is not None and self.pending_zero[1] == start:
            self.pending_zero = (self.pending_zero[0], end)
        else:
            self._flush_zero()
            self.pending_zero = (start, end)

    def _data(self, view: memoryview, offset: int) -> None:
        self._flush_zero()
        self._pwrite(view, offset)
        self.written += len(view)

    def _check_room(self, end: int) -> None:
        if self.capacity is not None and end > self.capacity:
            raise DestinationError(
                f"{self.path}: the image is larger than the destination ({self.capacity} bytes)"
            )

    # -- the protocol --

    def begin(self) -> None:
        """Wipe the old partition tables at both ends: from here on the destination is changed."""
        self.began = True
        self._wipe_ends()
        os.fsync(self.fd)

    def _wipe_ends(self) -> None:
        size = self.size_now()
        self._zero_range(0, min(WIPE, size))
        if size > WIPE:
            self._zero_range(max(size - WIPE, WIPE), size)

    def feed(self, buf: bytearray, length: int, offset: int) -> None:
        """Image bytes ``buf[:length]`` at image ``offset`` (a multiple of 4 KiB)."""
        end = offset + length
        self._check_room(end)
        view = memoryview(buf)
        pos = 0
        if offset < HOLD:
            take = min(length, HOLD - offset)
            self.held[offset:] = view[:take]
            pos = take
        # Fast path: a whole chunk of zeroes.
        if pos == 0 and length == len(ZERO_CHUNK) == len(buf) and buf == ZERO_CHUNK:
            self._zero(offset, end)
            self.end = end
            return
        self._classify(buf, view, pos, length, offset)
        self.end = end

    def _classify(self, buf: bytearray, view: memoryview, pos: int, length: int, offset: int) -> None:
        run_start = pos
        run_zero: bool | None = None
        i = pos
        while i < length:
            j = min(i + BLOCK, length)
            # Most data blocks have a non-zero first or last byte: no copy needed to decide.
            zero = not buf[i] and not buf[j - 1] and buf[i:j] == ZERO_BLOCK[: j - i]
            if zero != run_zero:
                if run_zero is not None:
                    self._emit(view, run_start, i, offset, run_zero)
                run_start, run_zero = i, zero
            i = j
        if run_zero is not None:
            self._emit(view, run_start, length, offset, run_zero)

    def _emit(self, view: memoryview, a: int, b: int, offset: int, zero: bool) -> None:
        if zero:
            self._zero(offset + a, offset + b)
        else:
            self._data(view[a:b], offset + a)

    def skip_zero(self, offset: int, length: int) -> None:
        """A run known to be zero (a hole of a sparse source)."""
        end = offset + length
        self._check_room(end)
        if offset < HOLD:
            take = min(length, HOLD - offset)
            self.held[offset : offset + take] = bytes(take)
            offset += take
        if end > offset:
            self._zero(offset, end)
        self.end = end

    def finish_body(self) -> None:
        """Everything but the held head is on the destination (durably)."""
        self._flush_zero()
        if not self.info.is_block and os.fstat(self.fd).st_size < self.end:
            os.ftruncate(self.fd, self.end)
        os.fsync(self.fd)

    def commit(self) -> None:
        """Write the held first MiB (after verification succeeded) and sync."""
        head = self.held
        n = len(head)
        if n:
            self._classify(head, memoryview(head), 0, n, 0)
            self._flush_zero()
        os.fsync(self.fd)

    def wipe(self) -> None:
        """After a failure: no partition table at either end, nor where the image's backup GPT went."""
        self.pending_zero = None
        self._wipe_ends()
        if self.end > WIPE:
            self._zero_range(max(self.end - WIPE, WIPE), self.end)
        os.fsync(self.fd)
