"""The config embedded in the installer ISO: a fixed-size area the ISO carries as ``pine/embed.bin``.

The ISO builder writes :func:`blank_area` into that file (mode 0400 root:root); ``pineinstall iso
embed`` later overwrites the area's bytes inside the ISO image in place, without rebuilding the ISO,
and the live system reads it back from the mounted medium (:func:`read_embedded`).

Layout of the area (``AREA_SIZE`` bytes, little-endian integers)::

    0   16  magic
    16   1  format version (1 or 2)
    17   1  state: 0 empty, 1 holds a config
    18   1  after a successful install: 0 nothing, 1 reboot, 2 poweroff
    19   1  reserved (0)
    20   4  length of the config in bytes
    24   2  length of the target device path in bytes (UTF-8)
    26   2  length of the image source (URL or path, UTF-8) in bytes
    28   2  version 2: length of the image's SHA-256 in bytes (0 or 32); version 1: reserved (0)
    30   2  reserved (0)
    32  32  SHA-256 of the payload
    64   -  payload: the device path, the image source, (version 2) the image's SHA-256 as 32 raw
            bytes, the config; zeros up to AREA_SIZE

Version 2 only adds the image's SHA-256. An area without one is written as version 1, so that the
live system of an older ISO still reads it; both versions are read.

The area is a file, so it starts on a 2048-byte ISO sector and the magic opens that sector. The
magic holds a NUL and other control bytes that valid JSON text never contains, so a config stored
in an area cannot carry a second copy of the magic.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import NamedTuple

ISO_PATH = "pine/embed.bin"
AREA_SIZE = 1 << 20
VERSION = 2  # the newest format version this module reads and writes
VERSIONS = (1, 2)

# Assembled at import time so that neither this source nor its bytecode holds the magic as one
# literal: a copy of pineinstall stored uncompressed on a medium then cannot pass for an area.
MAGIC = bytes.fromhex("89") + b"pine-embed".upper() + b"\r\n\x1a\n\x00"
assert len(MAGIC) == 16

_HEADER = struct.Struct("<16sBBBBIHHH2s32s")
HEADER_SIZE = 64
assert _HEADER.size == HEADER_SIZE

MAX_PAYLOAD = AREA_SIZE - HEADER_SIZE
MAX_TEXT = 4096  # a device path or an image URL: long, never this long

STATE_EMPTY = 0
STATE_CONFIG = 1
AFTER = {None: 0, "reboot": 1, "poweroff": 2}
AFTER_NAME = {v: k for k, v in AFTER.items()}


class EmbedError(ValueError):
    """An area that cannot be written or read (too large, corrupt, unknown version)."""


class Embedded(NamedTuple):
    config: bytes
    dest: str | None
    after: str | None  # "reboot", "poweroff" or None
    image: str | None = None  # the Pine image to install: an http(s) URL or a path
    image_sha256: str | None = None  # its sha256 as stored (lowercase hex)


class Header(NamedTuple):
    """The decoded header (for ``pineinstall iso show --header``)."""

    version: int
    state: int
    after: str | None
    config_length: int
    dest_length: int
    image_length: int
    image_sha256_length: int
    sha256: str
    checksum_ok: bool


def _header(
    state: int, after: str | None, config: bytes, dest: bytes, image: bytes, image_sha256: bytes = b""
) -> bytes:
    digest = hashlib.sha256(dest + image + image_sha256 + config).digest()
    version = 2 if image_sha256 else 1
    return _HEADER.pack(
        MAGIC, version, state, AFTER[after], 0, len(config), len(dest), len(image), len(image_sha256),
        bytes(2), digest,
    )


def blank_area() -> bytes:
    """The area of a fresh ISO: magic, a version-1 header saying "empty", zeros."""
    return _header(STATE_EMPTY, None, b"", b"", b"").ljust(AREA_SIZE, b"\0")


def parse_sha256(value: str) -> bytes:
    """The 32 bytes of a sha256 given as 64 hex digits (``sha256-`` prefix allowed, as
    ``pineinstall install --image-sha256`` takes it); EmbedError otherwise."""
    text = value.strip().lower().removeprefix("sha256-")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise EmbedError(f"the image sha256 must be 64 hex digits, not {value!r}")
    return bytes.fromhex(text)


def _text(value: str | None, what: str) -> bytes:
    if value is None:
        return b""
    if not value or not value.isprintable() or value != value.strip():
        raise EmbedError(f"invalid {what} {value!r}")
    raw = value.encode("utf-8")
    if len(raw) > MAX_TEXT:
        raise EmbedError(f"the {what} is longer than {MAX_TEXT} bytes")
    return raw


def encode(
    config: bytes,
    dest: str | None = None,
    after: str | None = None,
    image: str | None = None,
    image_sha256: str | None = None,
) -> bytes:
    """The whole area holding ``config`` (and the target device, what to do after, the image and
    its sha256). Version 1 unless there is an image sha256."""
    if not config:
        raise EmbedError("the config is empty")
    if after not in AFTER:
        raise EmbedError(f"after must be 'reboot', 'poweroff' or None, not {after!r}")
    if MAGIC in config:
        raise EmbedError("the config contains the area's magic bytes (it is not JSON text)")
    raw_dest = _text(dest, "target device")
    raw_image = _text(image, "image source")
    if image_sha256 is not None and image is None:
        raise EmbedError("an image sha256 without an image")
    raw_sha = parse_sha256(image_sha256) if image_sha256 is not None else b""
    size = len(raw_dest) + len(raw_image) + len(raw_sha) + len(config)
    if size > MAX_PAYLOAD:
        raise EmbedError(
            f"the config does not fit: {len(config)} bytes (+{size - len(config)} for the device and "
            f"image), the area holds {MAX_PAYLOAD} bytes"
        )
    header = _header(STATE_CONFIG, after, config, raw_dest, raw_image, raw_sha)
    return (header + raw_dest + raw_image + raw_sha + config).ljust(AREA_SIZE, b"\0")


def is_area(data: bytes) -> bool:
    """``data`` starts with the magic (the first bytes of an area of any version)."""
    return data[: len(MAGIC)] == MAGIC


def header(area: bytes) -> Header:
    """The header of an area, checksum included; EmbedError when it is not a version 1 or 2 area."""
    if len(area) < HEADER_SIZE or not is_area(area):
        raise EmbedError("not an embed area (no magic)")
    _magic, version, state, after, _res, clen, dlen, ilen, slen, _res2, digest = _HEADER.unpack_from(area)
    if version not in VERSIONS:
        raise EmbedError(
            f"embed area of format version {version}; this pineinstall reads versions "
            f"{', '.join(map(str, VERSIONS))} (embed with the pineinstall of the same release)"
        )
    if version == 1:
        slen = 0  # reserved in version 1
    if slen not in (0, 32):
        raise EmbedError(f"embed area with an image sha256 of {slen} bytes (not 32)")
    if state not in (STATE_EMPTY, STATE_CONFIG):
        raise EmbedError(f"embed area in an unknown state {state}")
    if after not in AFTER_NAME:
        raise EmbedError(f"embed area with an unknown action after install ({after})")
    end = HEADER_SIZE + dlen + ilen + slen + clen
    if end > len(area) or end > AREA_SIZE:
        raise EmbedError(
            f"embed area header gives {dlen}+{ilen}+{slen}+{clen} payload bytes, more than the area holds"
        )
    ok = hashlib.sha256(area[HEADER_SIZE:end]).digest() == digest
    return Header(version, state, AFTER_NAME[after], clen, dlen, ilen, slen, digest.hex(), ok)


def decode(area: bytes) -> Embedded | None:
    """The embedded config, or None when the area is empty; EmbedError when it is damaged."""
    h = header(area)
    if not h.checksum_ok:
        raise EmbedError("embed area checksum mismatch: the area is damaged or was partly written")
    if h.state == STATE_EMPTY:
        return None
    pos = HEADER_SIZE
    raw_dest = area[pos : pos + h.dest_length]
    pos += h.dest_length
    raw_image = area[pos : pos + h.image_length]
    pos += h.image_length
    raw_sha = area[pos : pos + h.image_sha256_length]
    pos += h.image_sha256_length
    config = area[pos : pos + h.config_length]
    try:
        dest = raw_dest.decode("utf-8") if raw_dest else None
        image = raw_image.decode("utf-8") if raw_image else None
    except UnicodeDecodeError as exc:
        raise EmbedError("embed area: the target device or image source is not UTF-8") from exc
    return Embedded(config, dest, h.after, image, raw_sha.hex() if raw_sha else None)


def read_embedded(medium: str = "/run/live/medium") -> Embedded | None:
    """The provider: the config embedded in the ISO the live system booted from.

    None when the medium has no area (not booted from a Pine ISO) or the area is empty; EmbedError
    when it cannot be read (the file is readable by root only) or is damaged."""
    path = os.path.join(medium, ISO_PATH)
    try:
        with open(path, "rb") as f:
            area = f.read(AREA_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise EmbedError(f"cannot read {path}: {exc.strerror}") from exc
    if len(area) != AREA_SIZE:
        raise EmbedError(f"{path} is not {AREA_SIZE} bytes long")
    try:
        return decode(area)
    except EmbedError as exc:
        raise EmbedError(f"{path}: {exc}") from exc
