"""How the writer does its I/O, on real file systems and loop devices: O_DIRECT where the kernel
takes it and buffered where it refuses it (ramfs, a write the device rejects), an image whose end
falls inside a sector, several writes in flight, and the peak RSS the issue bounds (64 MiB)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pineinstall.image import api, writer

from .image_helpers import MiB, sh

NEEDED = ("losetup", "xz", "/usr/bin/time")
pytestmark = pytest.mark.needs(*NEEDED)
OLD = b"\xa5old"  # what the destination held before


def old_at(offset: int, n: int) -> bytes:
    """What the destination held at ``offset`` (OLD repeated from its start)."""
    k = offset % len(OLD)
    return (OLD * (n // len(OLD) + 2))[k : k + n]


def pattern(n: int, seed: int = 1) -> bytes:
    return hashlib.shake_256(bytes([seed])).digest(n)


def image_bytes(size: int) -> bytes:
    """Data, a 2 MiB zero run, data: the writer writes the data and zeroes the run without data."""
    head = pattern(3 * MiB + 4096)
    tail = size - len(head) - 2 * MiB
    assert tail > 0
    return head + bytes(2 * MiB) + pattern(tail, 2)


@contextlib.contextmanager
def loop(backing: Path, size_mib: int, *, sector: int = 512, dio: bool = False) -> Iterator[str]:
    """A loop device over a file filled with OLD (so that anything not written reads as OLD)."""
    block = (OLD * (MiB // len(OLD) + 1))[:MiB]
    with open(backing, "wb") as f:
        for _ in range(size_mib):
            f.write(block)
    argv = ["losetup", "-f", "--show", f"--sector-size={sector}", f"--direct-io={'on' if dio else 'off'}"]
    dev = sh(*argv, backing).stdout.decode().strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextlib.contextmanager
def ramfs() -> Iterator[Path]:
    """A ramfs mount: a file system that refuses O_DIRECT (tmpfs takes it since Linux 6.6)."""
    mnt = Path(tempfile.mkdtemp(prefix="pine-ramfs-"))
    sh("mount", "-t", "ramfs", "ramfs", mnt)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], capture_output=True)
        mnt.rmdir()


def write_with(info: writer.DestInfo, img: bytes) -> writer.SparseWriter:
    """The writer's protocol over ``img`` in mmap chunks, as the image layer drives it."""
    w = writer.SparseWriter(info, image_size=len(img))
    w.open()
    try:
        opened_direct = w.direct
        w.begin()
        bufs = api._Buffers()
        for off in range(0, len(img), writer.CHUNK):
            piece = img[off : off + writer.CHUNK]
            buf = bufs.get()
            buf[: len(piece)] = piece
            w.feed(buf, len(piece), off)
            bufs.done(w, buf)
        w.finish_body()
        w.commit()
    finally:
        w.close()
    w.opened_direct = opened_direct  # type: ignore[attr-defined]
    return w


def read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


# --- O_DIRECT taken, and refused -----------------------------------------------------------------------


def test_image_file_written_direct(tmp_path: Path) -> None:
    img = image_bytes(9 * MiB)
    dest = tmp_path / "out.img"
    w = write_with(writer.inspect(os.fspath(dest)), img)
    assert w.opened_direct  # this file system takes O_DIRECT
    assert dest.read_bytes() == img
    assert dest.stat().st_blocks * 512 <= len(img) - 2 * MiB  # the zero run is a hole


def test_file_system_refusing_o_direct_written_buffered(tmp_path: Path) -> None:
    img = image_bytes(9 * MiB + 100)
    with ramfs() as mnt:
        probe = mnt / "probe"
        with pytest.raises(OSError) as exc:
            os.close(os.open(probe, os.O_RDWR | os.O_CREAT | os.O_DIRECT))
        assert exc.value.errno == 22  # the premise: ramfs refuses O_DIRECT
        dest = mnt / "out.img"
        result = api.write_image(_save(tmp_path, img), os.fspath(dest))
        assert dest.read_bytes() == img
        assert result.written + result.zeroed == len(img)
        w = write_with(writer.inspect(os.fspath(mnt / "again.img")), img)
        assert not w.opened_direct
        assert (mnt / "again.img").read_bytes() == img


def test_write_the_device_refuses_redone_buffered(tmp_path: Path) -> None:
    """A direct write the kernel rejects (EINVAL) is written again through the page cache, and every
    write after it too. Provoked for real: the writer is told 512-byte sectors on a device with 4096,
    so a write of a 512-multiple that is not a 4096-multiple goes out direct and is refused."""
    img = image_bytes(9 * MiB + 512)
    with loop(tmp_path / "backing", 16, sector=4096, dio=True) as dev:
        info = writer.inspect(dev)
        assert info.sector_size == 4096
        w = write_with(dataclasses.replace(info, sector_size=512), img)
        assert w.opened_direct and not w.direct  # switched off by the refusal
        assert read(dev, 0, len(img)) == img
        assert read(dev, len(img), 4096) == old_at(len(img), 4096)


# --- an image whose end falls inside a sector --------------------------------------------------------


@pytest.mark.parametrize("sector", [512, 4096])
def test_image_end_inside_a_sector_on_a_device(tmp_path: Path, sector: int) -> None:
    """The bytes of the last sector after the image's end keep what the device held."""
    img = image_bytes(9 * MiB + 1000)
    with loop(tmp_path / "backing", 16, sector=sector, dio=True) as dev:
        w = write_with(writer.inspect(dev), img)
        assert w.opened_direct
        assert read(dev, 0, len(img)) == img
        assert read(dev, len(img), 3 * MiB) == old_at(len(img), 3 * MiB)
        # The old backup-GPT area at the device's end was wiped when writing began.
        assert read(dev, 15 * MiB, MiB) == bytes(MiB)


def test_image_end_inside_a_zero_run_on_a_device(tmp_path: Path) -> None:
    """An image ending in zeroes mid-sector: the zero run's unaligned end is written, not skipped."""
    img = pattern(5 * MiB) + bytes(MiB + 300)
    with loop(tmp_path / "backing", 16, dio=True) as dev:
        write_with(writer.inspect(dev), img)
        assert read(dev, 0, len(img)) == img
        assert read(dev, len(img), 212) == old_at(len(img), 212)


def test_small_image_file_unaligned_size(tmp_path: Path) -> None:
    """Smaller than the held first MiB and not a multiple of a sector: all of it written at commit."""
    img = pattern(300_001)
    dest = tmp_path / "small.img"
    write_with(writer.inspect(os.fspath(dest)), img)
    assert dest.read_bytes() == img


# --- the whole path, in a process of its own ------------------------------------------------------------


def _save(tmp_path: Path, img: bytes, name: str = "image.raw") -> str:
    path = tmp_path / name
    path.write_bytes(img)
    return os.fspath(path)


@pytest.mark.parametrize("dio", [True, False], ids=["loop-direct-io", "loop-buffered"])
def test_command_writes_exact_image_to_loop_device(tmp_path: Path, dio: bool) -> None:
    img = image_bytes(40 * MiB)
    src = _save(tmp_path, img)
    with loop(tmp_path / "backing", 48, dio=dio) as dev:
        proc = subprocess.run(
            [sys.executable, "-m", "pineinstall.image", src, dev, "--progress", "none"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert read(dev, 0, len(img)) == img


@pytest.mark.parametrize("fmt", ["raw", "xz"])
def test_peak_rss_bounded(tmp_path: Path, fmt: str) -> None:
    """Issue 6: peak RSS <= 64 MiB whatever the image size (here 128 MiB without zero blocks, so that
    every buffer and every write in flight is in use; for xz, compressed as the bench does, -3)."""
    src = tmp_path / "big.raw"
    words = b" ".join(b"usr-share-doc-%x" % (i * 7919) for i in range(80_000))[:MiB]
    with open(src, "wb") as f:
        for i in range(128):
            # Incompressible for raw; mostly text for xz (compressing random data would take minutes).
            f.write(pattern(MiB, i) if fmt == "raw" or i % 16 == 0 else words)
    if fmt == "xz":
        sh("xz", "-T2", "-3", src)
        src = src.with_name("big.raw.xz")
    with loop(tmp_path / "backing", 132, dio=True) as dev:
        rss = tmp_path / "rss"
        proc = subprocess.run(
            ["/usr/bin/time", "-o", rss, "-f", "%M", sys.executable, "-m", "pineinstall.image", src, dev]
            + ["--progress", "none"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        peak_mib = int(rss.read_text().split()[-1]) / 1024
        assert peak_mib <= 64, peak_mib


def test_image_read_from_a_block_device(tmp_path: Path) -> None:
    """--image-file /dev/loopN: the size comes from the device (its st_size is 0) and, SEEK_DATA being
    unsupported there, every byte is copied."""
    img = image_bytes(8 * MiB)
    src_file = tmp_path / "src.img"
    src_file.write_bytes(img)
    dev = sh("losetup", "-f", "--show", "--read-only", src_file).stdout.decode().strip()
    try:
        out = tmp_path / "out.img"
        result = api.write_image(dev, str(out), insecure=True)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
    assert out.read_bytes()[: len(img)] == img
    assert result.image_size == len(img)
