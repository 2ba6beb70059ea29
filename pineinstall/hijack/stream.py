"""The framed stream that carries the provisioned disk to the host (docs/hijack.md, "The stream").

Only data travels: for each data run a header line ``D OFFSET LENGTH CLEN`` and CLEN bytes, one gzip
member of the run; for each hole ``Z OFFSET LENGTH`` and no payload (the host writes zeros from its
/dev/zero: a filesystem made on the file may count on its holes reading as zero); last ``E SHA256``,
the whole disk's sha256, which the host compares with the one it was given. Frames run in disk order
from 1 MiB to the end, then the first MiB as the last D frame (the host keeps it in RAM and writes it
only after everything else succeeded, so a broken stream leaves no partition table).

Runs are widened to whole MiB (the bytes added are zeros and cost nothing compressed) so the host
writes with 1 MiB O_DIRECT blocks, and a data run is cut into frames of at most ``FRAME_MAX`` so the
controller holds one compressed frame in memory at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from pineinstall.hijack.provision import ProvisionError, extents

MiB = 1 << 20
HEAD = MiB
FRAME_MAX = 16 * MiB
LEVEL = 1  # bench/hijack-stream, 1 GiB Pine disk: 2.6 % more bytes than level 6, a third of its time


@dataclass(frozen=True)
class Run:
    offset: int
    length: int
    data: bool


def runs(path: str, size: int) -> list[Run]:
    """The disk from HEAD to size as data and zero runs on whole MiB (the last may end at size)."""
    data: list[list[int]] = []
    for offset, length, is_data in extents(path):
        if not is_data:
            continue
        start = max(HEAD, offset // MiB * MiB)
        end = min(size, -(-(offset + length) // MiB) * MiB)
        if start >= end:
            continue
        if data and start <= data[-1][1]:
            data[-1][1] = max(data[-1][1], end)
        else:
            data.append([start, end])
    out: list[Run] = []
    pos = HEAD
    for start, end in data:
        if start > pos:
            out.append(Run(pos, start - pos, False))
        for piece in range(start, end, FRAME_MAX):
            out.append(Run(piece, min(FRAME_MAX, end - piece), True))
        pos = end
    if pos < size:
        out.append(Run(pos, size - pos, False))
    return out


def _member(fh: BinaryIO, offset: int, length: int) -> bytes:
    """One gzip member of the file's bytes [offset, offset + length) (holes read as zeros)."""
    fh.seek(offset)
    z = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    parts = []
    left = length
    while left > 0:
        chunk = fh.read(min(MiB, left))
        if not chunk:
            raise ProvisionError(f"the provisioned disk ended before byte {offset + length}")
        left -= len(chunk)
        parts.append(z.compress(chunk))
    parts.append(z.flush())
    return b"".join(parts)


def frames(path: str, size: int, sha256: str) -> Iterator[bytes]:
    """The stream of the provisioned disk at path (size bytes), frame by frame."""
    if size < HEAD:
        raise ProvisionError(f"the disk is {size} bytes, less than the first MiB held back")
    with open(path, "rb") as fh:
        for run in runs(path, size):
            if run.data:
                member = _member(fh, run.offset, run.length)
                yield f"D {run.offset} {run.length} {len(member)}\n".encode() + member
            else:
                yield f"Z {run.offset} {run.length}\n".encode()
        member = _member(fh, 0, HEAD)
        yield f"D 0 {HEAD} {len(member)}\n".encode() + member
    yield f"E {sha256}\n".encode()
