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

Speed: the destination is written with ``O_DIRECT`` from page-aligned buffers (no page cache, no
copy; buffered where the file system refuses it) by a few threads, so that several writes are in
flight while the caller reads or decompresses the next chunk.
Durability costs three flushes: after the wipe at :meth:`begin` (the old tables must be gone before
any of the body lands), at :meth:`finish_body` (the body before its first MiB) and at :meth:`commit`.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import heapq
import mmap
import os
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pineinstall.block.ioctl import BLKGETSIZE64, BLKSSZGET, BLKZEROOUT
from pineinstall.image.errors import DestinationError

BLOCK = 4096
CHUNK = 4 << 20  # the unit the image is read and classified in
HOLD = 1 << 20  # the image's first MiB: written last
THREADS = 4  # writes in flight at once
BUFFERS = THREADS + 2  # chunk buffers the reader cycles through (peak RSS: BUFFERS * CHUNK of them)
BOUNCE = 1 << 20  # per thread, for direct writes of memory that is not page-aligned
ZERO_MAP = 1 << 20
WIPE = 1 << 20  # zeroed at both ends of the destination when writing begins and after a failure
ZERO_BLOCK = bytes(BLOCK)
ZERO_CHUNK = bytes(CHUNK)

Buffer = bytearray | mmap.mmap

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

_libc = None


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    global _libc
    if _libc is None:
        import ctypes  # only where holes are punched: start-up cost otherwise

        # The interpreter's own symbols include libc's (find_library would start a process).
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, mode, offset, length) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class _Pool:
    """Runs the destination's I/O in a few threads, so that reading and decompressing the next chunk
    overlaps writing, and so that several writes are in flight at once: one synchronous 4 MiB write
    at a time leaves a device (or a loop device's backing file) idle between writes, and was ~1.5x
    slower than four in flight here. pwrite, ioctl and fallocate release the GIL.

    The operations submitted between two :meth:`drain` calls touch disjoint ranges, so they may run
    in any order; :meth:`drain` is the barrier (everything submitted is done). :meth:`after` runs a
    callback once everything submitted before it is done (to recycle a buffer). After an error the
    remaining operations are skipped, callbacks still run, and the error is raised to the producer
    at its next :meth:`submit` or :meth:`drain`."""

    def __init__(self, threads: int, depth: int) -> None:
        self.cv = threading.Condition()
        self.jobs: collections.deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self.depth = depth
        self.issued = 0  # tickets handed out
        self.finished = 0  # every ticket below this one is done
        self.done: set[int] = set()  # tickets done out of order, at or above ``finished``
        self.callbacks: list[tuple[int, int, Callable[..., Any], tuple[Any, ...]]] = []  # heap
        self.seq = 0  # orders callbacks registered at the same ticket
        self.error: BaseException | None = None
        self.stopping = False
        self.threads = [
            threading.Thread(target=self._loop, name=f"image-writer-{i}", daemon=True) for i in range(threads)
        ]
        for t in self.threads:
            t.start()

    def _loop(self) -> None:
        while True:
            with self.cv:
                while not self.jobs and not self.stopping:
                    self.cv.wait()
                if not self.jobs:
                    return
                ticket, fn, args = self.jobs.popleft()
                skip = self.error is not None
                self.cv.notify_all()  # room in the queue
            if not skip:
                try:
                    fn(*args)
                except BaseException as exc:
                    with self.cv:
                        if self.error is None:
                            self.error = exc
            ready = []
            with self.cv:
                self.done.add(ticket)
                while self.finished in self.done:
                    self.done.remove(self.finished)
                    self.finished += 1
                while self.callbacks and self.callbacks[0][0] <= self.finished:
                    ready.append(heapq.heappop(self.callbacks))
                self.cv.notify_all()
            for _, _, cb, cb_args in ready:
                cb(*cb_args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self.cv:
            while len(self.jobs) >= self.depth and self.error is None:
                self.cv.wait()
            if self.error is not None:
                raise self.error
            self.jobs.append((self.issued, fn, args))
            self.issued += 1
            self.cv.notify()

    def after(self, fn: Callable[..., Any], *args: Any) -> None:
        with self.cv:
            if self.finished < self.issued:
                self.seq += 1
                heapq.heappush(self.callbacks, (self.issued, self.seq, fn, args))
                return
        fn(*args)

    def drain(self, *, check: bool = True) -> None:
        with self.cv:
            while self.finished < self.issued:
                self.cv.wait()
            if check and self.error is not None:
                raise self.error

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        for t in self.threads:
            t.join()


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
        grows_to = None if size is None else max(size, st.st_size)
        return DestInfo(path, False, True, grows_to, st.st_size, 512)
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
        self.pool: _Pool | None = None
        self.direct = False
        self.lock = threading.Lock()
        self.local = threading.local()  # per thread: its bounce buffer
        self.bounces: list[mmap.mmap] = []
        self.zero_map: mmap.mmap | None = None

    # -- opening --

    def open(self) -> None:
        self.pool = _Pool(THREADS, 2 * THREADS)
        if self.info.is_block:
            self.fd = _open_block(self.path)
            cap = _ioctl_int(self.fd, BLKGETSIZE64, "Q")
            if cap != self.info.capacity:
                raise DestinationError(f"{self.path}: size changed since preflight")
            self._set_direct()
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
        self._set_direct()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        for buf in self.bounces:
            buf.close()
        self.bounces.clear()
        if self.zero_map is not None:
            self.zero_map.close()
            self.zero_map = None
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
        zeroes = memoryview(self._zeroes())
        while start < end:
            k = min(len(zeroes), end - start)
            self._pwrite(zeroes[:k], start)
            start += k

    def _zeroes(self) -> mmap.mmap:
        """1 MiB of zeroes, page-aligned (O_DIRECT takes it as is) and shared by the threads: only
        ever read, so its pages stay the kernel's zero page."""
        with self.lock:
            if self.zero_map is None:
                self.zero_map = mmap.mmap(-1, ZERO_MAP)
            return self.zero_map

    def _bounce(self) -> mmap.mmap:
        """This thread's aligned buffer, for direct writes of memory that is not an mmap."""
        buf: mmap.mmap | None = getattr(self.local, "bounce", None)
        if buf is None:
            buf = self.local.bounce = mmap.mmap(-1, BOUNCE)
            with self.lock:
                self.bounces.append(buf)
        return buf

    def _set_direct(self) -> None:
        """O_DIRECT: the page cache of a disk being overwritten is useless, and buffered writes plus
        one big fsync were ~2-4x slower than direct ones on loop devices here, ~1.3x for an image
        file. Set with F_SETFL (a second O_EXCL open of the same device would be refused). A file
        system that refuses it (ramfs, some FUSE ones) is written through the page cache."""
        try:
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            return  # refused when set: buffered
        self.direct = True

    def _pwrite(self, view: memoryview, offset: int) -> None:
        if self.direct:
            sector = self.info.sector_size
            if offset % sector == 0 and len(view) % sector == 0:
                try:
                    self._pwrite_direct(view, offset)
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._end_direct()  # refused when written
            else:
                # Only the image's end can be cut mid-sector (the image is split at 4 KiB blocks), and
                # after it only the held first MiB is written: buffered from here on.
                self._end_direct()
        self._pwrite_buffered(view, offset)

    def _end_direct(self) -> None:
        """Buffered writes from now on. Only ever switched off, by any thread: a write already under
        way finishes as it began, and either way is right (the final fsync covers the page cache)."""
        with self.lock:
            if self.direct:
                self.direct = False
                fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)

    def _pwrite_direct(self, view: memoryview, offset: int) -> None:
        if not isinstance(view.obj, mmap.mmap):
            self._pwrite_bounced(view, offset)
            return
        # Slices of an mmap at block offsets are page-aligned: no copy.
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

    def _pwrite_bounced(self, view: memoryview, offset: int) -> None:
        bounce = memoryview(self._bounce())
        while view:
            k = min(len(view), len(bounce))
            bounce[:k] = view[:k]
            done = 0
            while done < k:
                done += os.pwrite(self.fd, bounce[done:k], offset + done)
            view = view[k:]
            offset += k
        bounce.release()

    def _pwrite_buffered(self, view: memoryview, offset: int) -> None:
        while view:
            n = os.pwrite(self.fd, view, offset)
            view = view[n:]
            offset += n

    def _flush_zero(self) -> None:
        if self.pending_zero is not None:
            a, b = self.pending_zero
            self.pending_zero = None
            self._submit(self._zero_range, a, b)

    def _zero(self, start: int, end: int) -> None:
        self.zeroed += end - start
        if self.pending_zero is not None and self.pending_zero[1] == start:
            self.pending_zero = (self.pending_zero[0], end)
        else:
            self._flush_zero()
            self.pending_zero = (start, end)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.pool is None:
            fn(*args)
        else:
            self.pool.submit(fn, *args)

    def _drain(self, check: bool = True) -> None:
        if self.pool is not None:
            self.pool.drain(check=check)

    def release(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` once every write queued so far is done (to recycle a buffer)."""
        if self.pool is None:
            fn(*args)
        else:
            self.pool.after(fn, *args)

    def _data(self, view: memoryview, offset: int) -> None:
        self._flush_zero()
        self._submit(self._pwrite, view, offset)
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
        self._drain()
        self._wipe_ends()
        os.fsync(self.fd)

    def _wipe_ends(self) -> None:
        size = self.size_now()
        self._zero_range(0, min(WIPE, size))
        if size > WIPE:
            self._zero_range(max(size - WIPE, WIPE), size)

    def feed(self, buf: Buffer, length: int, offset: int) -> None:
        """Image bytes ``buf[:length]`` at image ``offset`` (a multiple of 4 KiB). The writes are
        queued: ``buf`` must stay unchanged until a :meth:`release` queued after this call runs.
        ``buf`` is a bytearray or, better, an ``mmap`` (page-aligned: written without a copy)."""
        end = offset + length
        self._check_room(end)
        view = memoryview(buf)
        pos = 0
        if offset < HOLD:
            take = min(length, HOLD - offset)
            self.held[offset:] = view[:take]
            pos = take
        self._classify(buf, view, pos, length, offset)
        self.end = end

    def _classify(self, buf: Buffer, view: memoryview, pos: int, length: int, offset: int) -> None:
        """Split ``buf[pos:length]`` into data runs (written) and zero-block runs (zeroed/holes)."""
        # The first byte of every block, sliced in C: a block whose first byte is not zero is data,
        # so Python only looks at the few blocks that may be all zero.
        firsts = buf[pos:length:BLOCK]
        if firsts.count(0) == len(firsts) and buf[pos:length] == ZERO_CHUNK[: length - pos]:
            self._zero(offset + pos, offset + length)
            return
        cur = pos  # start of the data not emitted yet
        zs = ze = -1  # the zero run being extended
        k = firsts.find(0)
        while k != -1:
            i = pos + k * BLOCK
            j = min(i + BLOCK, length)
            if buf[i:j] == ZERO_BLOCK[: j - i]:
                if i == ze:
                    ze = j
                else:
                    if zs >= 0:
                        self._emit(view, cur, zs, ze, offset)
                        cur = ze
                    zs, ze = i, j
            k = firsts.find(0, k + 1)
        if zs >= 0:
            self._emit(view, cur, zs, ze, offset)
            cur = ze
        if cur < length:
            self._data(view[cur:length], offset + cur)

    def _emit(self, view: memoryview, data_start: int, zs: int, ze: int, offset: int) -> None:
        """Data ``[data_start, zs)`` then zeroes ``[zs, ze)`` (buffer positions)."""
        if data_start < zs:
            self._data(view[data_start:zs], offset + data_start)
        self._zero(offset + zs, offset + ze)

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
        self._drain()
        if not self.info.is_block and os.fstat(self.fd).st_size < self.end:
            os.ftruncate(self.fd, self.end)
        os.fsync(self.fd)

    def commit(self) -> None:
        """Write the held first MiB (after verification succeeded) and sync."""
        n = len(self.held)
        if n:
            head = mmap.mmap(-1, max(n, BLOCK))  # aligned, for O_DIRECT
            head[:n] = self.held
            self._classify(head, memoryview(head)[:n], 0, n, 0)
            self._flush_zero()
        self._drain()
        os.fsync(self.fd)

    def wipe(self) -> None:
        """After a failure: no partition table at either end, nor where the image's backup GPT went."""
        self.pending_zero = None
        self._drain(check=False)
        self._wipe_ends()
        if self.end > WIPE:
            self._zero_range(max(self.end - WIPE, WIPE), self.end)
        os.fsync(self.fd)
