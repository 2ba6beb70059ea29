"""Image formats: sniffed from magic bytes, never from the file name.

``raw`` (anything without a known magic), ``xz``, ``gzip``, ``zstd`` are stream-decompressed with
bounded output per read (a megabyte of compressed zeroes can expand to gigabytes: every reader here
returns at most what was asked for). ``qcow2`` is not a stream format: :mod:`pineinstall.image.qcow2`
converts it with ``qemu-img`` first. Formats we recognise but do not take (bzip2, lz4, VMDK, VHDX)
are refused by name rather than written raw.

The decompressed size is read from the container where it is stored: the xz index (exact), the
zstd frame header (exact when the compressor knew it), the qcow2 header (exact), the gzip trailer
(the size modulo 2**32: a lower bound, exact below 4 GiB for a single member).
"""

from __future__ import annotations

import enum
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from pineinstall.image.errors import FormatError

SNIFF_BYTES = 512


class Format(enum.StrEnum):
    RAW = "raw"
    XZ = "xz"
    GZIP = "gzip"
    ZSTD = "zstd"
    QCOW2 = "qcow2"


_MAGICS: tuple[tuple[bytes, Format], ...] = (
    (b"\xfd7zXZ\x00", Format.XZ),
    (b"\x1f\x8b", Format.GZIP),
    (b"\x28\xb5\x2f\xfd", Format.ZSTD),
    (b"QFI\xfb", Format.QCOW2),
)
# Recognised so that they are refused by name instead of being written as raw bytes.
_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"BZh", "bzip2"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"KDMV", "VMDK"),
    (b"vhdxfile", "VHDX"),
    (b"PK\x03\x04", "zip"),
    (b"\x89PNG", "PNG"),
)


def sniff(head: bytes) -> Format:
    """The format of an image whose first bytes are ``head`` (at least 8 bytes when available)."""
    for magic, fmt in _MAGICS:
        if head.startswith(magic):
            return fmt
    for magic, name in _REFUSED:
        if head.startswith(magic):
            raise FormatError(f"{name} images are not supported (use raw, xz, gzip, zstd or qcow2)")
    return Format.RAW


# --- decompressed size ----------------------------------------------------------------------------

RangeReader = Callable[[int, int], bytes]
"""``read(offset, length) -> bytes`` over the compressed image (a file or an HTTP Range request)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """xz's multibyte integer: 7 bits a byte, little end first, at most 9 bytes."""
    value = 0
    for i in range(9):
        if pos >= len(buf):
            raise FormatError("xz index truncated")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos
    raise FormatError("xz index has an over-long integer")


@dataclass(frozen=True, slots=True)
class XzBlock:
    flags: bytes  # the stream flags (2 bytes) of the stream holding the block
    offset: int  # of the block header in the file
    unpadded: int  # header + compressed data + check, without the padding
    size: int  # uncompressed


def xz_blocks(read: RangeReader, total: int) -> list[XzBlock]:
    """The blocks of a (possibly multi-stream) .xz file of ``total`` bytes, from its indexes."""
    streams: list[list[XzBlock]] = []
    end = total
    while end > 0:
        # Stream padding (multiples of 4 zero bytes) may follow a stream.
        while end >= 4:
            tail = read(max(0, end - 4096), min(end, 4096))
            stripped = len(tail.rstrip(b"\0"))
            pad = (len(tail) - stripped) // 4 * 4
            end -= pad
            if pad < len(tail):
                break
        if end < 12:
            raise FormatError("xz stream footer not found (truncated image?)")
        footer = read(end - 12, 12)
        if footer[-2:] != b"YZ":
            raise FormatError("xz stream footer not found (truncated image?)")
        flags = footer[8:10]
        backward = (struct.unpack("<I", footer[4:8])[0] + 1) * 4
        index_start = end - 12 - backward
        if index_start < 12:
            raise FormatError("xz index size out of range")
        index = read(index_start, backward)
        if index[0] != 0:
            raise FormatError("xz index indicator missing")
        count, pos = _varint(index, 1)
        records = []
        for _ in range(count):
            unpadded, pos = _varint(index, pos)
            usize, pos = _varint(index, pos)
            records.append((unpadded, usize))
        blocks_len = sum((u + 3) // 4 * 4 for u, _ in records)
        # This stream: header (12), blocks, index, footer (12).
        start = index_start - blocks_len - 12
        if start < 0:
            raise FormatError("xz index does not match the file size")
        off = start + 12
        stream = []
        for unpadded, usize in records:
            stream.append(XzBlock(flags, off, unpadded, usize))
            off += (unpadded + 3) // 4 * 4
        streams.append(stream)
        end = start
    return [blk for stream in reversed(streams) for blk in stream]


def xz_size(read: RangeReader, total: int) -> int:
    """Uncompressed size of a .xz file, from its indexes (exact)."""
    return sum(b.size for b in xz_blocks(read, total))


def gzip_size_lower_bound(read: RangeReader, total: int) -> int:
    """ISIZE of the last gzip member: the size modulo 2**32, so a lower bound of the truth."""
    if total < 18:
        raise FormatError("gzip image truncated")
    return struct.unpack("<I", read(total - 4, 4))[0]


def zstd_size(head: bytes) -> int | None:
    """Content size of the first zstd frame, when the compressor wrote it (``zstd FILE`` does)."""
    import zstandard

    try:
        params = zstandard.get_frame_parameters(head)
    except zstandard.ZstdError as exc:
        raise FormatError(f"zstd frame header unreadable: {exc}") from exc
    if params.content_size in (0, zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        return None
    return params.content_size


def qcow2_size(head: bytes) -> int:
    if len(head) < 32:
        raise FormatError("qcow2 header truncated")
    return struct.unpack(">Q", head[24:32])[0]


# --- stream decompression -------------------------------------------------------------------------


class _Inflate(io.RawIOBase):
    """xz or gzip decoded straight into the caller's buffer: half the CPU of ``LZMAFile``/
    ``GzipFile`` here, and stricter: concatenated streams/members are read through, padding of zero
    bytes after the last one is accepted, anything else after it is an error (those classes ignore
    trailing garbage)."""

    def __init__(self, raw: BinaryIO, fmt: Format) -> None:
        import lzma
        import zlib

        self.raw = raw
        self.fmt = fmt
        if fmt is Format.XZ:
            self.make: Callable[[], Any] = lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)
        else:
            self.make = lambda: zlib.decompressobj(31)
        self.dec = self.make()
        self.pending = b""
        self.raw_eof = False
        self.finished = False

    def readable(self) -> bool:
        return True

    def _read_raw(self) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        if self.raw_eof:
            return b""
        # zlib hands back the unused input as a new bytes object on every call: small input
        # pieces keep that copy small when a little input expands to a lot (runs of zeroes).
        data = self.raw.read(INPUT_CHUNK if self.fmt is Format.XZ else ZLIB_INPUT_CHUNK)
        if not data:
            self.raw_eof = True
        return data

    def _next_member(self) -> bool:
        """After a stream/member ended: start the next one, or finish at the end of the input."""
        rest = self.dec.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._read_raw()
            if not rest:
                self.finished = True
                return False
        self.dec = self.make()
        self.pending = rest
        return True

    def _input(self) -> bytes:
        import lzma

        if isinstance(self.dec, lzma.LZMADecompressor):  # xz
            return self._read_raw() if self.dec.needs_input else b""
        tail = self.dec.unconsumed_tail
        return tail if tail else self._read_raw()

    def readinto(self, b: Any) -> int:
        want = len(b)
        while not self.finished:
            if self.dec.eof:
                if not self._next_member():
                    break
                continue
            data = self._input()
            # At most a MiB per call: a larger piece is a larger transient bytes object (RSS).
            out = self.dec.decompress(data, min(want, OUTPUT_PIECE))
            if out:
                n = len(out)
                b[:n] = out
                return n
            if not data and self.raw_eof and not self.dec.eof:
                raise EOFError(f"the {self.fmt} stream ends before its end marker (truncated image?)")
        return 0


INPUT_CHUNK = 1 << 20
OUTPUT_PIECE = 1 << 18  # below glibc's mmap threshold after warm-up: no page faults per call
ZLIB_INPUT_CHUNK = 1 << 16


def open_stream(fmt: Format, raw: BinaryIO) -> BinaryIO:
    """A reader of the decompressed bytes of ``raw``; ``readinto(b)`` fills at most ``len(b)`` bytes.

    Concatenated members/streams/frames are read through, as the command-line tools do.
    """
    if fmt is Format.RAW:
        return raw
    if fmt in (Format.XZ, Format.GZIP):
        return _Inflate(raw, fmt)  # type: ignore[return-value]
    if fmt is Format.ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(
            raw, read_size=INPUT_CHUNK, read_across_frames=True, closefd=False
        )
    raise FormatError(f"{fmt} images cannot be streamed; convert them first")


def corrupt_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "the compressed stream is corrupt" (mapped to FormatError)."""
    import gzip
    import lzma
    import zlib

    import zstandard

    return (lzma.LZMAError, zlib.error, gzip.BadGzipFile, EOFError, zstandard.ZstdError)
