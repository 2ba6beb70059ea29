"""``pineinstall install --image-url``: a download cut at random points resumes (Range), a corrupt
download is refused before writing, a missing hash is refused unless --insecure; and the confirmation
prompt on a real terminal (a pty)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from .image_helpers import ImageServer, compress, installed_root, make_pine_image, sha256_file
from .test_install_image import NEEDED, assert_provisioned, config, run, write_cfg

pytestmark = pytest.mark.needs(*NEEDED)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("served")
    raw = make_pine_image(d / "pine.raw")
    with open(raw, "r+b") as f:  # some incompressible data: the download is worth cutting
        f.seek(30 * 1024 * 1024)
        f.write(random.Random(7).randbytes(4 * 1024 * 1024))
    xz = compress(raw, "xz")
    with ImageServer(d) as server:
        yield server, xz


def test_download_cut_at_random_points_resumes(served, tmp_path: Path) -> None:
    server, xz = served
    size = xz.stat().st_size
    # PINE_TEST_SEED replays a failure (every message below names the seed).
    seed = int(os.environ.get("PINE_TEST_SEED") or int.from_bytes(os.urandom(4), "little"))
    cuts = sorted(random.Random(seed).sample(range(1, size), 3))
    why = f"seed {seed} (PINE_TEST_SEED), cuts at {cuts} of {size} bytes"
    server.faults.requests.clear()
    server.faults.cuts = list(cuts)
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-url", server.url(xz.name),
                     "--image-sha256", sha256_file(xz), "--size", "96M", "--fetch-retries", "5")  # fmt: skip
    server.faults.cuts = []
    assert rc == 0, f"{why}: {err}"
    assert any(r and r.startswith("bytes=") for r in server.faults.requests), f"{why}: {server.faults.requests}"
    try:
        with installed_root(disk, tmp_path) as root:
            assert_provisioned(root)
    except Exception as exc:
        raise AssertionError(f"{why}: the installed disk: {exc}") from exc


def test_corrupt_download_refused_before_writing(served, tmp_path: Path) -> None:
    server, xz = served
    server.faults.corrupt_at = xz.stat().st_size // 2
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"keep me" * 1000)
    before = sha256_file(disk)
    try:
        rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-url", server.url(xz.name),
                         "--image-sha256", sha256_file(xz), "--yes")  # fmt: skip
    finally:
        server.faults.corrupt_at = None
    assert rc == 1
    assert "sha256 mismatch" in err and "untouched" in err
    assert sha256_file(disk) == before


def test_unverified_download_needs_insecure(served, tmp_path: Path) -> None:
    server, xz = served
    disk = tmp_path / "disk.img"
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-url", server.url(xz.name), "--size", "96M")
    assert rc == 1 and "untouched" in err
    assert not disk.exists()
    rc, _, err = run(disk, write_cfg(tmp_path, config()), "--image-url", server.url(xz.name), "--size", "96M",
                     "--insecure")  # fmt: skip
    assert rc == 0, err


@pytest.mark.parametrize(("answer", "rc"), [("n", 1), ("y", 0)])
def test_confirmation_on_a_terminal(answer: str, rc: int, served, tmp_path: Path) -> None:
    _server, xz = served
    disk = tmp_path / "disk.img"
    disk.write_bytes(os.urandom(1 << 20))
    before = sha256_file(disk)
    master, slave = os.openpty()
    exe = Path(sys.executable).parent / "pineinstall"
    proc = subprocess.Popen(
        [exe, "install", disk, write_cfg(tmp_path, config()), "--image-file", xz, "--size", "96M"],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    os.close(slave)
    os.write(master, (answer + "\n").encode())
    _out, err = proc.communicate(timeout=300)
    os.close(master)
    assert proc.returncode == rc, err
    assert "will be overwritten. Continue? [y/N]" in err
    if rc:
        assert sha256_file(disk) == before
    else:
        with installed_root(disk, tmp_path) as root:
            assert_provisioned(root)
