"""The sparse writer on regular files: holes, the first MiB held until commit, wipes, extents."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pineinstall.image import api, writer
from pineinstall.image.errors import DestinationError
from pineinstall.image.verify import Signature, VerificationError, check_policy, parse_sha256

MiB = 1 << 20


def pattern(n: int, seed: int = 1) -> bytes:
    import hashlib

    return hashlib.shake_256(bytes([seed])).digest(n)


def feed_all(w: writer.SparseWriter, data: bytes) -> None:
    for off in range(0, len(data), writer.CHUNK):
        piece = data[off : off + writer.CHUNK]
        buf = bytearray(writer.CHUNK)  # the writer owns a buffer until its release runs
        buf[: len(piece)] = piece
        w.feed(buf, len(piece), off)


def fed(dest: Path, img: bytes) -> writer.SparseWriter:
    """A writer on dest, begun and fed the whole image (its body not finished yet)."""
    w = writer.SparseWriter(writer.inspect(os.fspath(dest)), image_size=len(img))
    w.open()
    w.begin()
    feed_all(w, img)
    return w


def write_all(dest: Path, img: bytes) -> writer.SparseWriter:
    """The image written to dest and committed, as a whole write does."""
    w = fed(dest, img)
    w.finish_body()
    w.commit()
    w.close()
    return w


def image_with_holes() -> bytes:
    # data | 3 MiB zero | data (unaligned tail)
    return pattern(2 * MiB + 4096) + bytes(3 * MiB) + pattern(MiB + 100, 2)


def test_file_written_sparse_and_exact(tmp_path: Path) -> None:
    img = image_with_holes()
    dest = tmp_path / "d.img"
    w = write_all(dest, img)
    assert dest.read_bytes() == img
    assert w.written + w.zeroed == len(img)
    assert w.zeroed >= 3 * MiB
    assert dest.stat().st_blocks * 512 < len(img) - 2 * MiB


def test_first_mib_only_after_commit(tmp_path: Path) -> None:
    img = pattern(3 * MiB)
    dest = tmp_path / "d.img"
    w = fed(dest, img)
    w.finish_body()
    on_disk = dest.read_bytes()
    assert on_disk[:MiB] == bytes(MiB)
    assert on_disk[MiB:] == img[MiB:]
    w.commit()
    w.close()
    assert dest.read_bytes() == img


def test_old_file_content_replaced_by_holes(tmp_path: Path) -> None:
    dest = tmp_path / "d.img"
    dest.write_bytes(b"\xff" * (8 * MiB))
    img = image_with_holes()
    write_all(dest, img)
    data = dest.read_bytes()
    assert data[: len(img)] == img
    assert len(data) == 8 * MiB  # never shrunk
    assert data[-MiB:] == bytes(MiB)  # the old end (a backup GPT's place) is wiped


def test_wipe_clears_both_ends_and_image_end(tmp_path: Path) -> None:
    dest = tmp_path / "d.img"
    dest.write_bytes(b"\xee" * (16 * MiB))
    img = pattern(6 * MiB)
    w = fed(dest, img)
    w.wipe()
    w.close()
    data = dest.read_bytes()
    assert data[:MiB] == bytes(MiB)
    assert data[-MiB:] == bytes(MiB)
    assert data[5 * MiB : 6 * MiB] == bytes(MiB)  # where the image's own backup GPT went
    assert data[MiB : 5 * MiB] == img[MiB : 5 * MiB]


def test_capacity_enforced(tmp_path: Path) -> None:
    dest = tmp_path / "d.img"
    w = writer.SparseWriter(writer.inspect(os.fspath(dest), size=4 * MiB), image_size=None)
    w.open()
    w.begin()
    with pytest.raises(DestinationError, match="larger than the destination"):
        feed_all(w, pattern(5 * MiB))
    w.close()


def test_inspect_refuses_a_directory_and_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(DestinationError):
        writer.inspect(os.fspath(tmp_path))
    with pytest.raises(DestinationError, match="does not exist"):
        writer.inspect(os.fspath(tmp_path / "no" / "d.img"))


def test_second_writer_locked_out(tmp_path: Path) -> None:
    dest = tmp_path / "d.img"
    dest.write_bytes(bytes(MiB))
    a = writer.SparseWriter(writer.inspect(os.fspath(dest)), image_size=MiB)
    a.open()
    try:
        b = writer.SparseWriter(writer.inspect(os.fspath(dest)), image_size=MiB)
        with pytest.raises(DestinationError, match="another program"):
            b.open()
    finally:
        a.close()


def test_extents_of_a_sparse_file(tmp_path: Path) -> None:
    f = tmp_path / "s.raw"
    with open(f, "wb") as out:
        out.truncate(10 * MiB)
        out.seek(2 * MiB)
        out.write(b"x" * 5000)
        out.seek(7 * MiB + 10)
        out.write(b"y")
    fd = os.open(f, os.O_RDONLY)
    try:
        ext = list(api._extents(fd, 10 * MiB))
    finally:
        os.close(fd)
    assert sum(n for _, n, _ in ext) == 10 * MiB
    assert all(off % 4096 == 0 for off, _, _ in ext)
    data = [(off, n) for off, n, d in ext if d]
    assert sum(n for _, n in data) < MiB  # only the written blocks are read
    covered = lambda x: any(o <= x < o + n for o, n in data)  # noqa: E731
    assert covered(2 * MiB) and covered(2 * MiB + 4999) and covered(7 * MiB + 10)


def test_parse_sha256() -> None:
    digest = "ab" * 32
    assert parse_sha256(digest) == bytes.fromhex(digest)
    assert parse_sha256("sha256-" + digest.upper()) == bytes.fromhex(digest)
    for bad in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(VerificationError):
            parse_sha256(bad)


def test_policy(tmp_path: Path) -> None:
    check_policy("x", sha256=None, signature=None, insecure=False, require=False)
    with pytest.raises(VerificationError, match="--insecure"):
        check_policy("x", sha256=None, signature=None, insecure=False, require=True)
    check_policy("x", sha256=None, signature=None, insecure=True, require=True)
    with pytest.raises(VerificationError, match="keyring"):
        check_policy(
            "x",
            sha256=None,
            signature=Signature(os.fspath(tmp_path / "none.gpg")),
            insecure=True,
            require=False,
        )


def test_failed_write_removes_a_file_it_created(tmp_path: Path) -> None:
    """A corrupt stream into a new image file: the file is gone; into an existing one: wiped."""
    import gzip

    img = pattern(3 * MiB)
    bad = bytearray(gzip.compress(img))
    bad[len(bad) // 2] ^= 0xFF
    src = tmp_path / "bad.gz"
    src.write_bytes(bad)
    from pineinstall.image import FormatError, write_image

    new = tmp_path / "new.img"
    with pytest.raises(FormatError):
        write_image(os.fspath(src), os.fspath(new))
    assert not new.exists()
    old = tmp_path / "old.img"
    old.write_bytes(b"\x33" * (4 * MiB))
    with pytest.raises(FormatError):
        write_image(os.fspath(src), os.fspath(old))
    assert old.read_bytes()[:MiB] == bytes(MiB)
