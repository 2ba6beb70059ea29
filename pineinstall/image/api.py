"""preflight() and write_image(): the image layer's entry points (see the package docstring)."""

from __future__ import annotations

import errno
import io
import mmap
import os
import queue
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pineinstall import staging
from pineinstall.image import formats, qcow2, writer
from pineinstall.image.errors import DestinationError, FormatError, ImageError, SourceError, VerificationError
from pineinstall.image.formats import Format
from pineinstall.image.progress import Progress, sized
from pineinstall.image.source import FileSource, HttpSource, ImageSource, open_source
from pineinstall.image.verify import Outcome, Signature, SigStatus, Verifier, check_policy
from pineinstall.staging import Staged

STAGING_MARGIN = 64 << 20  # free space left in the temporary directory after staging an image


@dataclass(frozen=True, slots=True)
class WriteResult:
    dest: str
    format: Format
    image_size: int  # bytes of the image as written (decompressed)
    source_bytes: int  # bytes of the image as stored (what sha256/signature cover)
    written: int  # data bytes written
    zeroed: int  # bytes left as holes / zeroed by offload
    sha256: str  # of the stored image
    sha256_checked: bool
    signature: SigStatus
    verified_before_write: bool
    seconds: float
    head: bytes | None = None  # the image's first MiB, not written (``execute(hold_head=True)``)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if isinstance(v, Format | SigStatus) else v)
            for k, v in _asdict(self).items()
            if k != "head"
        }


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


@dataclass(slots=True)
class WritePlan:
    """What preflight decided; :func:`execute` carries it out. Call :meth:`cleanup` if not executed."""

    source: ImageSource
    data: ImageSource  # what is streamed: the source itself or a verified staged copy
    fmt: Format
    image_size: int | None  # exact decompressed size, when known
    min_size: int  # a lower bound (equal to image_size when that is known)
    dest: writer.DestInfo
    sha256: str | None
    signature: Signature | None
    insecure: bool
    require: bool
    verified_before_write: bool = False
    raw_path: str | None = None  # a local raw file to copy extent by extent (holes skipped)
    outcome: Outcome | None = None  # of the pass before writing, when there was one
    staged: list[Staged] = field(default_factory=list)  # temporary files (pineinstall.staging)

    def cleanup(self) -> None:
        for item in self.staged:
            item.remove()
        self.staged.clear()

    @property
    def has_checks(self) -> bool:
        """A sha256 or a signature to check the image with."""
        sig = self.signature
        return bool(self.sha256) or (sig is not None and (sig.path is not None or sig.data is not None))

    def verifier(self) -> Verifier:
        """A fresh verifier of the image by this plan's checks."""
        return Verifier(
            str(self.source), sha256=self.sha256, signature=self.signature, insecure=self.insecure,
            require=self.require,
        )  # fmt: skip

    def describe(self) -> str:
        size = (
            sized(self.image_size) if self.image_size is not None else f"at least {sized(self.min_size)}"
        )
        cap = "grows to fit" if self.dest.capacity is None else sized(self.dest.capacity)
        if not self.has_checks:
            how = "nothing to verify it with"
        elif self.verified_before_write:
            how = "verified before writing"
        else:
            how = "verified while writing"
        return f"{self.source} ({self.fmt}, {size}) -> {self.dest.path} ({cap}); {how}"


# --- preflight --------------------------------------------------------------------------------------


def _sizes(src: ImageSource, fmt: Format) -> tuple[int | None, int]:
    """(exact decompressed size or None, lower bound)."""
    total = src.size
    ranged = total is not None and (not isinstance(src, HttpSource) or src.accepts_ranges)
    if fmt is Format.RAW:
        return total, total or 0
    if fmt is Format.QCOW2:
        n = formats.qcow2_size(src.head)
        return n, n
    if fmt is Format.ZSTD:
        exact = formats.zstd_size(src.head)
        return exact, exact or 0
    if not ranged:
        return None, 0
    if fmt is Format.XZ:
        n = formats.xz_size(src.read_range, total)  # type: ignore[arg-type]
        return n, n
    if fmt is Format.GZIP:
        return None, formats.gzip_size_lower_bound(src.read_range, total)  # type: ignore[arg-type]
    return None, 0


def _disk_of(devnum: int) -> str | None:
    """The whole disk (sysfs name) holding block device ``devnum``, or None when not a block device."""
    base = f"/sys/dev/block/{os.major(devnum)}:{os.minor(devnum)}"
    if not os.path.exists(base):
        return None
    real = os.path.realpath(base)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    return os.path.basename(real)


def _staging_dir(tmpdir: str | None, need: int, dest: writer.DestInfo) -> str | None:
    """A temporary directory with room for ``need`` bytes, not on the destination disk."""
    path = tmpdir or tempfile.gettempdir()
    try:
        vfs = os.statvfs(path)
    except OSError:
        return None
    if vfs.f_bavail * vfs.f_frsize < need + STAGING_MARGIN:
        return None
    if dest.is_block:
        target = _disk_of(os.stat(dest.path).st_rdev)
        if target is not None and _disk_of(os.stat(path).st_dev) == target:
            return None
    return path


def _fetch_signature(src: ImageSource, sig: Signature) -> Signature:
    """Resolve a signature given as a URL, or looked for next to an http image (``URL.sig``)."""
    url = sig.path if sig.path and sig.path.lower().startswith(("http://", "https://")) else None
    if url is None and sig.path is None and sig.data is None and isinstance(src, HttpSource):
        url = _next_to(src.url, ".sig")
        optional = True
    else:
        optional = False
    if url is None:
        return sig
    fetcher = (
        HttpSource(url, retries=src.retries, total_timeout=src.total_timeout, log=src.log)
        if isinstance(src, HttpSource)
        else HttpSource(url, retries=3)
    )

    def attempt() -> bytes:
        with fetcher.request() as resp:
            return bytes(resp.content)

    try:
        data = fetcher.retrying("fetching the signature", attempt)
    except SourceError as exc:
        if optional and ("HTTP 404" in str(exc) or "HTTP 410" in str(exc)):
            return Signature(sig.keyring)  # missing
        raise
    if len(data) > 1 << 20:
        raise VerificationError(f"{fetcher.name}: too large for a detached signature")
    return Signature(sig.keyring, data=data)


def _next_to(url: str, suffix: str) -> str:
    """``url`` with ``suffix`` added to its path (a query, e.g. a signed URL's, stays last)."""
    base, sep, query = url.partition("?")
    return base + suffix + sep + query


class _Tap(io.RawIOBase):
    """Passes the stored bytes through the verifier and counts them."""

    def __init__(self, raw: BinaryIO, verifier: Verifier | None) -> None:
        self.raw = raw
        self.verifier = verifier
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # Straight from the source: RawIOBase.read would allocate and copy once more.
        data = self.raw.read(size)
        if data and self.verifier is not None:
            self.verifier.update(data)
        self.count += len(data or b"")
        return data

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        if n and self.verifier is not None:
            self.verifier.update(memoryview(b)[:n])
        if n:
            self.count += n
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


def _verify_pass(plan: WritePlan, src: ImageSource, progress: Progress, copy_to: BinaryIO | None) -> Outcome:
    """Read the whole stored image once (copying it to ``copy_to``) and verify it."""
    verifier = plan.verifier()
    progress.phase("downloading and verifying" if copy_to else "verifying", src.size)
    buf = bytearray(writer.CHUNK)
    try:
        with src.open() as stream:
            done = 0
            while n := stream.readinto(buf):  # type: ignore[attr-defined]
                view = memoryview(buf)[:n]
                verifier.update(view)
                if copy_to is not None:
                    copy_to.write(view)
                done += n
                progress.update(done, done)
    except BaseException:
        verifier.abort()
        raise
    return verifier.finish()


def preflight(
    source: str | ImageSource,
    dest: str,
    *,
    sha256: str | None = None,
    signature: Signature | None = None,
    insecure: bool = False,
    require_verification: bool | None = None,
    size: int | None = None,
    verify_first: str = "auto",
    tmpdir: str | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> WritePlan:
    """Check everything that can be checked without touching ``dest``; see the package docstring.

    ``dry_run``: only the cheap checks (reachability, format, sizes, policy, destination), no
    download, verification pass or qcow2 conversion; the plan must not be executed."""
    progress = progress or Progress()
    src = open_source(source) if isinstance(source, str) else source
    require = src.is_remote if require_verification is None else require_verification
    if verify_first not in ("auto", "always", "never"):
        raise ValueError(f"verify_first must be auto, always or never, not {verify_first!r}")
    if signature is not None:
        signature = _fetch_signature(src, signature)
    check_policy(str(src), sha256=sha256, signature=signature, insecure=insecure, require=require)
    src.probe()
    if not src.head:
        raise FormatError(f"{src}: the image is empty")
    fmt = formats.sniff(src.head)
    image_size, min_size = _sizes(src, fmt)
    info = writer.inspect(dest, size=size)
    if src.local_path and info.exists and os.path.samefile(src.local_path, dest):
        raise DestinationError(f"{dest}: is the image itself")
    _check_fits(info, min_size, image_size)
    plan = WritePlan(src, src, fmt, image_size, min_size, info, sha256, signature, insecure, require)
    if dry_run:
        return plan
    try:
        _stage(plan, verify_first, tmpdir, progress)
    except BaseException:
        plan.cleanup()
        raise
    return plan


def _check_fits(info: writer.DestInfo, min_size: int, exact: int | None) -> None:
    if info.capacity is not None and min_size > info.capacity:
        what = "is" if exact is not None else "is at least"
        raise DestinationError(
            f"{info.path}: too small: the image {what} {min_size} bytes, the destination holds {info.capacity}"
        )


def _stage(plan: WritePlan, verify_first: str, tmpdir: str | None, progress: Progress) -> None:
    src = plan.source
    wants = plan.has_checks and verify_first != "never"
    needs_local = plan.fmt is Format.QCOW2
    if needs_local and not qcow2.available():
        raise FormatError(
            f"{src}: qcow2 images need qemu-img (Debian package qemu-utils), which is not installed"
        )
    if src.local_path is not None:
        # qcow2 is verified before qemu-img reads it, whatever verify_first says.
        if wants or (needs_local and plan.has_checks):
            plan.outcome = _verify_pass(plan, src, progress, None)
            plan.verified_before_write = True
    elif wants or needs_local:
        stage_dir = _staging_dir(tmpdir, src.size, plan.dest) if src.size is not None else None
        if stage_dir is None:
            if needs_local:
                raise SourceError(
                    f"{src}: a qcow2 image must be downloaded first and there is no room for it"
                )
            if verify_first == "always":
                raise VerificationError(
                    f"{src}: cannot verify before writing: no temporary space for {src.size or 'an unknown number of'} bytes"
                )
            progress.message(f"{src}: no room to download it first: verifying while writing")
        else:
            fd, item = staging.new_file(stage_dir, "image")
            plan.staged.append(item)
            path = item.path
            with os.fdopen(fd, "wb") as out:
                plan.outcome = _verify_pass(plan, src, progress, out)
            staged = FileSource(path)
            staged.probe()
            if staged.size != src.size:
                raise SourceError(f"{src}: downloaded {staged.size} bytes, the server announced {src.size}")
            plan.data = staged
            plan.verified_before_write = True
            plan.image_size, plan.min_size = _sizes(staged, plan.fmt)
            _check_fits(plan.dest, plan.min_size, plan.image_size)
    if plan.fmt is Format.QCOW2:
        assert plan.data.local_path is not None
        progress.phase("converting qcow2 with qemu-img")
        raw = qcow2.to_raw(plan.data.local_path, tmpdir)
        plan.staged.append(raw)
        plan.raw_path = raw.path
    elif plan.fmt is Format.RAW and plan.data.local_path is not None:
        plan.raw_path = plan.data.local_path


# --- execution --------------------------------------------------------------------------------------


def _fill(stream: Any, buf: writer.Buffer) -> int:
    """Read until ``buf`` is full or the stream ends (streams return short reads)."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _extents(fd: int, size: int) -> Any:
    """(offset, length, is_data) over a file, holes found with SEEK_DATA/SEEK_HOLE, 4 KiB aligned.
    Where SEEK_DATA is not supported (a block device as the source: EINVAL) everything is data."""
    off = 0
    blk = writer.BLOCK
    while off < size:
        try:
            data = os.lseek(fd, off, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.EINVAL and off == 0:
                yield 0, size, True
                return
            if exc.errno != errno.ENXIO:
                raise
            data = size
        data = max(off, data // blk * blk)
        if data > off:
            yield off, data - off, False
        if data >= size:
            return
        hole = min(size, -(-os.lseek(fd, data, os.SEEK_HOLE) // blk) * blk)
        yield data, hole - data, True
        off = hole


class _Buffers:
    """The chunk buffers passed between the reader (this thread) and the writer's threads: one per
    write in flight and two for the reader to fill meanwhile."""

    def __init__(self, count: int = writer.BUFFERS) -> None:
        # mmap: page-aligned memory, which O_DIRECT writes take without a copy.
        self.free: queue.Queue[mmap.mmap] = queue.Queue()
        for _ in range(count):
            self.free.put(mmap.mmap(-1, writer.CHUNK))

    def get(self) -> mmap.mmap:
        return self.free.get()

    def done(self, w: writer.SparseWriter, buf: mmap.mmap) -> None:
        w.release(self.free.put, buf)


def _copy_extents(
    plan: WritePlan, w: writer.SparseWriter, verifier: Verifier | None, progress: Progress
) -> int:
    """A local raw file: only its data extents are read. Returns the image size."""
    assert plan.raw_path is not None
    bufs = _Buffers()
    fd = os.open(plan.raw_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)  # st_size is 0 for a block device
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        for start, length, is_data in _extents(fd, size):
            if not is_data:
                w.skip_zero(start, length)
                if verifier is not None:
                    left = length
                    while left:
                        k = min(left, writer.CHUNK)
                        verifier.update(memoryview(writer.ZERO_CHUNK)[:k])
                        left -= k
                progress.update(start + length, start + length)
                continue
            off = start
            while off < start + length:
                k = min(writer.CHUNK, start + length - off)
                buf = bufs.get()
                n = os.preadv(fd, [memoryview(buf)[:k]], off)
                if n != k:
                    raise SourceError(f"{plan.raw_path}: short read at byte {off + n} (file changed?)")
                if verifier is not None:
                    verifier.update(memoryview(buf)[:k])
                w.feed(buf, k, off)
                bufs.done(w, buf)
                off += k
                progress.update(off, off)
        return size
    finally:
        os.close(fd)


def _copy_stream(
    plan: WritePlan, w: writer.SparseWriter, verifier: Verifier | None, progress: Progress
) -> tuple[int, int]:
    bufs = _Buffers()
    tap = _Tap(plan.data.open(), verifier)
    stream = formats.open_stream(plan.fmt, tap)  # type: ignore[arg-type]
    off = 0
    try:
        while True:
            buf = bufs.get()
            n = _fill(stream, buf)
            if not n:
                break
            w.feed(buf, n, off)
            bufs.done(w, buf)
            off += n
            progress.update(off, tap.count)
            if n < len(buf):
                break
        # Trailing garbage after the compressed stream would be silently ignored by some readers.
        if plan.fmt is Format.ZSTD and tap.read(1):
            raise FormatError(f"{plan.source}: data after the end of the compressed stream")
    except formats.corrupt_errors() as exc:
        raise FormatError(f"{plan.source}: corrupt {plan.fmt} stream: {exc}") from exc
    finally:
        stream.close()
        tap.close()
    return off, tap.count


def execute(
    plan: WritePlan,
    *,
    preserve_on_error: bool = False,
    progress: Progress | None = None,
    hold_head: bool = False,
) -> WriteResult:
    """Write the image as planned. On any failure after writing began the partition tables are wiped
    (unless ``preserve_on_error``) and the error is raised. ``hold_head``: the image's first MiB
    (boot code, partition table) is not written but returned in the result, for the caller to write
    once it has finished with DEST (the installer provisions first: docs/safety.md)."""
    progress = progress or Progress()
    t0 = time.monotonic()
    w = writer.SparseWriter(plan.dest, image_size=plan.image_size)
    # Verified once: before writing (the staged copy is private to us; a qcow2 file is verified before
    # qemu-img reads it) or else while writing. Hashing is slow on small machines: never twice.
    verifier = None
    if plan.has_checks and not plan.verified_before_write:
        verifier = plan.verifier()
    try:
        w.open()
        w.begin()
        progress.phase(f"writing {plan.dest.path}", plan.image_size)
        if plan.raw_path is not None:
            image_size = _copy_extents(plan, w, verifier, progress)
            source_bytes = plan.data.size or image_size
        else:
            image_size, source_bytes = _copy_stream(plan, w, verifier, progress)
        if plan.image_size is not None and image_size != plan.image_size:
            raise FormatError(
                f"{plan.source}: {image_size} bytes decompressed, the container said {plan.image_size}"
            )
        w.finish_body()
        outcome = verifier.finish() if verifier is not None else None
        verifier = None
        if not hold_head:
            w.commit()
    except BaseException as exc:
        if verifier is not None:
            verifier.abort()
        if w.began and not preserve_on_error:
            try:
                w.wipe()
                if w.created:  # an image file this run created: nothing of value in it
                    os.unlink(plan.dest.path)
                    progress.message(f"{plan.dest.path}: removed after the failure")
                else:
                    progress.message(f"{plan.dest.path}: partition tables wiped after the failure")
            except OSError as wipe_exc:
                progress.message(f"{plan.dest.path}: could not wipe the partition tables: {wipe_exc}")
        if isinstance(exc, OSError) and not isinstance(exc, ImageError):
            raise DestinationError(f"{plan.dest.path}: {exc.strerror or exc}") from exc
        raise
    finally:
        w.close()
        plan.cleanup()
    if outcome is None:  # verified in preflight, or nothing to verify with
        outcome = plan.outcome or Outcome("", False, SigStatus.MISSING)
    result = WriteResult(
        dest=plan.dest.path,
        format=plan.fmt,
        image_size=image_size,
        source_bytes=source_bytes,
        written=w.written,
        zeroed=w.zeroed,
        sha256=outcome.sha256,
        sha256_checked=outcome.sha256_checked,
        signature=outcome.signature,
        verified_before_write=plan.verified_before_write,
        seconds=round(time.monotonic() - t0, 3),
        head=bytes(w.held) if hold_head else None,
    )
    progress.done(**result.to_dict())
    return result


def write_image(
    source: str | ImageSource,
    dest: str,
    *,
    preserve_on_error: bool = False,
    progress: Progress | None = None,
    **checks: Any,
) -> WriteResult:
    """:func:`preflight` then :func:`execute`; ``checks`` are preflight's keywords (sha256, signature,
    insecure, require_verification, size, verify_first, tmpdir)."""
    progress = progress or Progress()
    src = open_source(source) if isinstance(source, str) else source
    progress.start(None, f"image {src}")
    plan = preflight(src, dest, progress=progress, **checks)
    progress.message(plan.describe())
    return execute(plan, preserve_on_error=preserve_on_error, progress=progress)


__all__ = ["WritePlan", "WriteResult", "execute", "preflight", "write_image"]
