"""Format sniffing and decompressed sizes, on streams made by Python's own compressors."""

from __future__ import annotations

import gzip
import io
import lzma
import struct

import pytest

from pineinstall.image import formats
from pineinstall.image.errors import FormatError
from pineinstall.image.formats import Format

PAYLOAD = b"".join(i.to_bytes(4, "little") for i in range(50_000)) + bytes(300_000)


def reader(data: bytes):
    return lambda off, n: data[off : off + n]


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (lzma.compress(b"x"), Format.XZ),
        (gzip.compress(b"x"), Format.GZIP),
        (b"\x28\xb5\x2f\xfd\x20\x01\x09\x00\x00x", Format.ZSTD),
        (b"QFI\xfb\x00\x00\x00\x03" + bytes(24), Format.QCOW2),
        (bytes(512), Format.RAW),
        (b"\xeb\x63\x90" + bytes(509), Format.RAW),  # an MBR boot sector is raw
    ],
)
def test_sniff(head: bytes, fmt: Format) -> None:
    assert formats.sniff(head) is fmt


@pytest.mark.parametrize(
    ("head", "name"), [(b"BZh91AY&SY", "bzip2"), (b"KDMV\x01\x00", "VMDK"), (b"\x04\x22\x4d\x18", "lz4")]
)
def test_sniff_refuses_known_unsupported(head: bytes, name: str) -> None:
    with pytest.raises(FormatError, match=name):
        formats.sniff(head)


@pytest.mark.parametrize("preset", [0, 6])
def test_xz_size_single_stream(preset: int) -> None:
    data = lzma.compress(PAYLOAD, preset=preset)
    assert formats.xz_size(reader(data), len(data)) == len(PAYLOAD)


def test_xz_size_multi_stream_with_padding() -> None:
    a, b = lzma.compress(PAYLOAD), lzma.compress(PAYLOAD[:12345])
    data = a + bytes(8) + b + bytes(4)
    assert formats.xz_size(reader(data), len(data)) == len(PAYLOAD) + 12345


def test_xz_size_large_and_empty() -> None:
    # Multi-block streams (xz -T, --block-size) are covered by the integration tests.
    big = bytes(5 << 20)
    data = lzma.compress(big)
    assert formats.xz_size(reader(data), len(data)) == len(big)
    empty = lzma.compress(b"")
    assert formats.xz_size(reader(empty), len(empty)) == 0


def test_xz_size_truncated() -> None:
    data = lzma.compress(PAYLOAD)[:-7]
    with pytest.raises(FormatError):
        formats.xz_size(reader(data), len(data))


def test_gzip_lower_bound() -> None:
    data = gzip.compress(PAYLOAD)
    assert formats.gzip_size_lower_bound(reader(data), len(data)) == len(PAYLOAD)


def test_zstd_size_known_and_unknown() -> None:
    zstandard = pytest.importorskip("zstandard")
    framed = zstandard.ZstdCompressor().compress(PAYLOAD)
    assert formats.zstd_size(framed[:18]) == len(PAYLOAD)
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as w:  # streamed: no size in header
        w.write(PAYLOAD)
    assert formats.zstd_size(out.getvalue()[:18]) is None


def test_qcow2_size() -> None:
    head = b"QFI\xfb" + struct.pack(">I", 3) + bytes(16) + struct.pack(">Q", 10 << 30) + bytes(72)
    assert formats.qcow2_size(head) == 10 << 30


@pytest.mark.parametrize("fmt", [Format.XZ, Format.GZIP, Format.ZSTD])
def test_open_stream_bounded_reads(fmt: Format) -> None:
    if fmt is Format.ZSTD:
        zstandard = pytest.importorskip("zstandard")
        data = zstandard.ZstdCompressor().compress(PAYLOAD) * 2  # two frames
    elif fmt is Format.XZ:
        data = lzma.compress(PAYLOAD) * 2  # two streams
    else:
        data = gzip.compress(PAYLOAD) * 2  # two members
    stream = formats.open_stream(fmt, io.BytesIO(data))
    out = bytearray()
    while chunk := stream.read(65536):
        assert len(chunk) <= 65536
        out += chunk
    assert bytes(out) == PAYLOAD * 2


@pytest.mark.parametrize("fmt", [Format.XZ, Format.GZIP])
def test_corrupt_stream_raises_a_corrupt_error(fmt: Format) -> None:
    data = bytearray(lzma.compress(PAYLOAD) if fmt is Format.XZ else gzip.compress(PAYLOAD))
    data[len(data) // 2] ^= 0x40
    stream = formats.open_stream(fmt, io.BytesIO(bytes(data)))
    with pytest.raises(formats.corrupt_errors()):
        while stream.read(1 << 20):
            pass


@pytest.mark.parametrize("fmt", [Format.XZ, Format.GZIP])
def test_truncated_and_trailing_garbage(fmt: Format) -> None:
    data = lzma.compress(PAYLOAD) if fmt is Format.XZ else gzip.compress(PAYLOAD)

    def read_all(blob: bytes) -> bytes:
        stream = formats.open_stream(fmt, io.BytesIO(blob))
        out = bytearray()
        buf = bytearray(100_000)
        while n := stream.readinto(buf):
            out += buf[:n]
        return bytes(out)

    assert read_all(data + bytes(64)) == PAYLOAD  # zero padding after the last stream is fine
    with pytest.raises(formats.corrupt_errors()):
        read_all(data[:-20])
    with pytest.raises(formats.corrupt_errors()):
        read_all(data + b"garbage!")
