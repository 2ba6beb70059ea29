"""The embed area of the installer ISO (``pineinstall.providers.embedded``) and the sector scan that
guards ``pineinstall iso`` against a second copy of the magic."""

from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pineinstall import isocmd
from pineinstall.providers import embedded
from pineinstall.providers.embedded import (
    AREA_SIZE,
    HEADER_SIZE,
    ISO_PATH,
    MAGIC,
    Embedded,
    EmbedError,
    blank_area,
    decode,
    encode,
    read_embedded,
)

CONFIG = b'{"ignition":{"version":"3.4.0"}}'


def test_contract_constants() -> None:
    # The ISO builder relies on these exact values.
    assert ISO_PATH == "pine/embed.bin"
    assert AREA_SIZE == 1048576
    assert len(MAGIC) == 16


def test_blank_area_layout() -> None:
    area = blank_area()
    assert len(area) == AREA_SIZE
    assert area[:16] == MAGIC
    assert area[16] == 1  # version
    assert area[17] == 0  # state: empty
    assert area[32:64] == hashlib.sha256(b"").digest()
    assert area[HEADER_SIZE:] == bytes(AREA_SIZE - HEADER_SIZE)
    assert decode(area) is None


def old_v1_area(config: bytes, dest: bytes, after: int, image: bytes) -> bytes:
    """An area as the version-1 code wrote it (its layout, packed here independently)."""
    head = struct.pack(
        "<16sBBBBIHH4s32s", MAGIC, 1, 1, after, 0, len(config), len(dest), len(image), bytes(4),
        hashlib.sha256(dest + image + config).digest(),
    )
    return (head + dest + image + config).ljust(AREA_SIZE, b"\0")


def test_version_1_areas_still_read() -> None:
    old = old_v1_area(CONFIG, b"/dev/vda", 2, b"https://example.com/pine.raw.xz")
    assert decode(old) == Embedded(CONFIG, "/dev/vda", "poweroff", "https://example.com/pine.raw.xz", None)
    # Without an image sha256 the area is still written as version 1, byte for byte: an older
    # ISO's live system reads it.
    assert encode(CONFIG, "/dev/vda", "poweroff", "https://example.com/pine.raw.xz") == old


def test_version_2_carries_the_image_sha256() -> None:
    digest = hashlib.sha256(b"image").hexdigest()
    area = encode(CONFIG, "/dev/vda", None, "https://example.com/pine.raw.xz", "sha256-" + digest.upper())
    assert area[16] == 2 and struct.unpack_from("<H", area, 28)[0] == 32
    assert decode(area) == Embedded(CONFIG, "/dev/vda", None, "https://example.com/pine.raw.xz", digest)
    h = embedded.header(area)
    assert (h.version, h.image_sha256_length, h.checksum_ok) == (2, 32, True)
    with pytest.raises(EmbedError, match="64 hex digits"):
        encode(CONFIG, None, None, "x.raw", "abc")
    with pytest.raises(EmbedError, match="without an image"):
        encode(CONFIG, None, None, None, digest)
    bad = bytearray(area)
    bad[28] = 31
    with pytest.raises(EmbedError, match="31 bytes"):
        decode(bytes(bad))


def test_magic_is_not_json_text() -> None:
    # A config (JSON text) can never hold a copy of the magic: it has raw control bytes.
    assert b"\x00" in MAGIC and b"\x1a" in MAGIC
    assert MAGIC.startswith(b"\x89PINE-EMBED")


def test_magic_not_stored_as_one_literal_in_source_or_bytecode() -> None:
    src = Path(embedded.__file__).read_bytes()
    assert MAGIC not in src
    code = compile(src, embedded.__file__, "exec")
    import marshal

    assert MAGIC not in marshal.dumps(code)


def test_round_trip_with_dest_and_after() -> None:
    area = encode(CONFIG, "/dev/disk/by-id/virtio-root", "poweroff")
    assert len(area) == AREA_SIZE
    assert area[17] == 1 and area[18] == 2
    assert struct.unpack_from("<I", area, 20)[0] == len(CONFIG)
    assert decode(area) == Embedded(CONFIG, "/dev/disk/by-id/virtio-root", "poweroff")


def test_round_trip_with_image() -> None:
    area = encode(CONFIG, "/dev/vda", None, "http://10.0.2.2:8000/pine.raw.zst")
    assert struct.unpack_from("<HH", area, 24) == (8, 33)
    assert area[HEADER_SIZE : HEADER_SIZE + 41] == b"/dev/vdahttp://10.0.2.2:8000/pine.raw.zst"
    assert area[32:64] == hashlib.sha256(area[HEADER_SIZE : HEADER_SIZE + 41] + CONFIG).digest()
    assert decode(area) == Embedded(CONFIG, "/dev/vda", None, "http://10.0.2.2:8000/pine.raw.zst")
    assert decode(encode(CONFIG, image="images/pine.raw")) == Embedded(CONFIG, None, None, "images/pine.raw")
    with pytest.raises(EmbedError, match="invalid image source"):
        encode(CONFIG, image="http://x/a b\n")


def test_round_trip_config_only() -> None:
    assert decode(encode(CONFIG, None, None)) == Embedded(CONFIG, None, None)
    assert decode(encode(CONFIG, None, "reboot")) == Embedded(CONFIG, None, "reboot")


@settings(max_examples=60, deadline=None)
@given(
    config=st.binary(min_size=1, max_size=4000).filter(lambda b: MAGIC not in b),
    dest=st.none() | st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.:", min_size=1, max_size=80),
    after=st.sampled_from([None, "reboot", "poweroff"]),
    image=st.none() | st.text(min_size=1, max_size=200).filter(lambda t: t.isprintable() and t == t.strip()),
)
def test_round_trip_property(config: bytes, dest: str | None, after: str | None, image: str | None) -> None:
    if dest is not None and dest != dest.strip():
        return
    assert decode(encode(config, dest, after, image)) == Embedded(config, dest, after, image)


def test_largest_config_fits_one_more_byte_does_not() -> None:
    room = AREA_SIZE - HEADER_SIZE - len(b"/dev/vda")
    big = b"{" + b" " * (room - 2) + b"}"
    assert decode(encode(big, "/dev/vda", None)).config == big  # type: ignore[union-attr]
    with pytest.raises(EmbedError, match="does not fit"):
        encode(big + b" ", "/dev/vda", None)


@pytest.mark.parametrize(
    ("config", "dest", "after", "message"),
    [
        (b"", None, None, "empty"),
        (b"{" + MAGIC + b"}", None, None, "magic"),
        (CONFIG, "", None, "invalid target"),
        (CONFIG, " /dev/vda", None, "invalid target"),
        (CONFIG, "/dev/v\nda", None, "invalid target"),
        (CONFIG, None, "halt", "after must be"),
    ],
)
def test_encode_refuses(config: bytes, dest: str | None, after: str | None, message: str) -> None:
    with pytest.raises(EmbedError, match=message):
        encode(config, dest, after)


def test_decode_detects_a_changed_payload_byte() -> None:
    area = bytearray(encode(CONFIG, "/dev/vda", None))
    area[HEADER_SIZE + 10] ^= 0x01
    with pytest.raises(EmbedError, match="checksum"):
        decode(bytes(area))


def test_decode_detects_a_changed_length() -> None:
    area = bytearray(encode(CONFIG, "/dev/vda", None))
    struct.pack_into("<I", area, 20, len(CONFIG) - 1)
    with pytest.raises(EmbedError, match="checksum"):
        decode(bytes(area))


def test_decode_refuses_unknown_version_state_and_lengths() -> None:
    base = encode(CONFIG, None, None)
    v3 = bytearray(base)
    v3[16] = 3  # versions 1 and 2 are read
    with pytest.raises(EmbedError, match="version 3"):
        decode(bytes(v3))
    state = bytearray(base)
    state[17] = 7
    with pytest.raises(EmbedError, match="unknown state"):
        decode(bytes(state))
    huge = bytearray(base)
    struct.pack_into("<I", huge, 20, AREA_SIZE)
    with pytest.raises(EmbedError, match="more than the area holds"):
        decode(bytes(huge))
    with pytest.raises(EmbedError, match="no magic"):
        decode(b"\0" * AREA_SIZE)


def _medium(tmp_path: Path, content: bytes) -> Path:
    (tmp_path / "pine").mkdir(exist_ok=True)
    (tmp_path / "pine" / "embed.bin").write_bytes(content)
    return tmp_path


def test_read_embedded_from_a_medium(tmp_path: Path) -> None:
    assert read_embedded(str(tmp_path)) is None  # no area: not a Pine medium
    _medium(tmp_path, blank_area())
    assert read_embedded(str(tmp_path)) is None
    _medium(tmp_path, encode(CONFIG, "/dev/sda", "reboot"))
    assert read_embedded(str(tmp_path)) == Embedded(CONFIG, "/dev/sda", "reboot")


def test_read_embedded_refuses_damaged_or_wrong_size(tmp_path: Path) -> None:
    _medium(tmp_path, blank_area()[:-1])
    with pytest.raises(EmbedError, match="not 1048576 bytes"):
        read_embedded(str(tmp_path))
    _medium(tmp_path, blank_area() + b"\0")
    with pytest.raises(EmbedError, match="not 1048576 bytes"):
        read_embedded(str(tmp_path))
    damaged = bytearray(encode(CONFIG, None, None))
    damaged[HEADER_SIZE] ^= 0xFF
    _medium(tmp_path, bytes(damaged))
    with pytest.raises(EmbedError, match=r"embed\.bin: embed area checksum"):
        read_embedded(str(tmp_path))


def test_read_embedded_unreadable(tmp_path: Path) -> None:
    (tmp_path / "pine" / "embed.bin").mkdir(parents=True)  # a directory: read fails with EISDIR
    with pytest.raises(EmbedError, match="cannot read"):
        read_embedded(str(tmp_path))


# --- the sector scan of isocmd ----------------------------------------------------------------------


def test_scan_finds_only_sector_aligned_copies() -> None:
    size = isocmd.SCAN_BLOCK * 2 + 5 * 2048  # crosses two block boundaries, partial last block
    buf = bytearray(os.urandom(size))
    # Random data may start a sector with 0x89: clear every sector's first byte first.
    for off in range(0, size, 2048):
        buf[off] = 0
    aligned = [0, 2048 * 3, isocmd.SCAN_BLOCK - 2048, isocmd.SCAN_BLOCK, size - 2048]
    for off in aligned:
        buf[off : off + 16] = MAGIC
    buf[4096 + 7 : 4096 + 7 + 16] = MAGIC  # not at a sector start: ignored
    buf[isocmd.SCAN_BLOCK - 8 : isocmd.SCAN_BLOCK + 8] = MAGIC  # straddles a block: not aligned
    buf[isocmd.SCAN_BLOCK : isocmd.SCAN_BLOCK + 16] = MAGIC  # ... the aligned one there is still seen
    near = bytearray(MAGIC)
    near[15] ^= 1
    buf[2048 * 9 : 2048 * 9 + 16] = near  # first byte matches, the rest does not
    assert isocmd.scan(io.BytesIO(bytes(buf))) == sorted(aligned)


def test_scan_of_a_file_shorter_than_a_sector() -> None:
    assert isocmd.scan(io.BytesIO(MAGIC)) == [0]
    assert isocmd.scan(io.BytesIO(b"")) == []
