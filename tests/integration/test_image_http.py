"""The image layer over HTTP from a real server on 127.0.0.1: downloads cut at random points resume
and yield identical bytes, a byte corrupted on the wire is caught (before writing when the image can
be staged, else after, with the table wiped), signatures next to the image, kill -9 mid-write."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pineinstall.image import (
    HttpSource,
    Signature,
    SigStatus,
    SourceError,
    VerificationError,
    write_image,
)

from .image_helpers import (
    ImageServer,
    MiB,
    compress,
    loop_device,
    make_image,
    partition_table,
    same_prefix,
    sh,
    sha256_file,
)

NEEDED = ("sgdisk", "mkfs.ext4", "xz", "zstd", "gpg", "losetup", "blkid", "cmp")
pytestmark = pytest.mark.needs(*NEEDED)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("site")
    raw = make_image(d / "disk.raw", data_bytes=6 * MiB, seed=7)
    compress(raw, "xz")
    compress(raw, "zstd")
    home = d / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": os.fspath(home)}
    sh(
        "gpg",
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Signer <s@example.test>",
        "ed25519",
        "sign",
        "never",
        env=env,
    )
    sh("gpg", "--batch", "--export", "-o", d / "keyring.gpg", env=env)
    sh("gpg", "--batch", "--detach-sign", "-o", d / "disk.raw.zst.sig", d / "disk.raw.zst", env=env)
    return d


@pytest.fixture
def server(site: Path) -> Iterator[ImageServer]:
    with ImageServer(site) as srv:
        yield srv


def resumed(srv: ImageServer) -> list[str]:
    return [r for r in srv.faults.requests if r and r != "bytes=0-511" and not r.startswith("bytes=0-")]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", ["disk.raw", "disk.raw.xz"])
def test_cut_download_resumes_identical(
    site: Path, server: ImageServer, tmp_path: Path, name: str, seed: int
) -> None:
    size = (site / name).stat().st_size
    rng = random.Random(seed)
    server.faults.cuts = sorted(rng.sample(range(1, size), 4))
    dest = tmp_path / "o.img"
    result = write_image(server.url(name), os.fspath(dest), insecure=True)
    assert server.faults.cuts == []  # every cut happened
    assert len(resumed(server)) >= 4
    assert all("-" in r for r in resumed(server))
    assert result.source_bytes == size
    assert subprocess.run(["cmp", site / "disk.raw", dest]).returncode == 0


def test_cut_download_staged_then_verified(site: Path, server: ImageServer, tmp_path: Path) -> None:
    name = "disk.raw.xz"
    size = (site / name).stat().st_size
    server.faults.cuts = sorted(random.Random(9).sample(range(1, size), 3))
    dest = tmp_path / "o.img"
    result = write_image(
        server.url(name), os.fspath(dest), sha256=sha256_file(site / name), tmpdir=os.fspath(tmp_path)
    )
    assert result.verified_before_write and result.sha256_checked
    assert server.faults.cuts == []
    assert subprocess.run(["cmp", site / "disk.raw", dest]).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["o.img"]  # the staged copy is gone


def test_server_ignoring_ranges_restarts_and_skips(site: Path, server: ImageServer, tmp_path: Path) -> None:
    name = "disk.raw.xz"
    size = (site / name).stat().st_size
    server.faults.ranges = False
    server.faults.cuts = [size // 3, 2 * size // 3]
    dest = tmp_path / "o.img"
    write_image(server.url(name), os.fspath(dest), insecure=True, verify_first="never")
    assert subprocess.run(["cmp", site / "disk.raw", dest]).returncode == 0


def test_wire_corruption_caught_before_writing_when_staged(
    site: Path, server: ImageServer, tmp_path: Path
) -> None:
    name = "disk.raw"
    server.faults.corrupt_at = 5 * MiB + 123
    with loop_device(tmp_path / "d", 96, fill=b"keep") as dev:
        before = sha256_file(dev)
        with pytest.raises(VerificationError, match="sha256 mismatch"):
            write_image(server.url(name), dev, sha256=sha256_file(site / name), tmpdir=os.fspath(tmp_path))
        assert sha256_file(dev) == before


def test_wire_corruption_streamed_wipes_table(site: Path, server: ImageServer, tmp_path: Path) -> None:
    """No room to stage (a 1 MiB tmpfs): verified while writing, the table wiped on the mismatch."""
    name = "disk.raw"
    small = tmp_path / "small"
    small.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small)
    try:
        with loop_device(tmp_path / "d", 96) as dev:
            write_image(os.fspath(site / "disk.raw"), dev)
            assert partition_table(dev) == "gpt"
            # Clean download first: it streams (no room), verifies, and lands.
            r = write_image(server.url(name), dev, sha256=sha256_file(site / name), tmpdir=os.fspath(small))
            assert not r.verified_before_write and r.sha256_checked
            assert same_prefix(site / "disk.raw", dev)
            server.faults.corrupt_at = 3 * MiB + 7
            with pytest.raises(VerificationError, match="sha256 mismatch"):
                write_image(server.url(name), dev, sha256=sha256_file(site / name), tmpdir=os.fspath(small))
            assert partition_table(dev) is None
    finally:
        sh("umount", small)


def test_not_found_refused_in_preflight(server: ImageServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="404"):
        write_image(server.url("nope.raw.xz"), os.fspath(tmp_path / "o.img"), insecure=True)
    assert not (tmp_path / "o.img").exists()


def test_server_errors_retried_then_given_up(server: ImageServer, tmp_path: Path) -> None:
    server.faults.status = 503
    src = HttpSource(server.url("disk.raw.xz"), retries=2)
    with pytest.raises(SourceError, match="503"):
        write_image(src, os.fspath(tmp_path / "o.img"), insecure=True)
    assert len(server.faults.requests) == 3


def test_remote_image_needs_verification_or_insecure(server: ImageServer, tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="--insecure"):
        write_image(server.url("disk.raw.xz"), os.fspath(tmp_path / "o.img"))
    assert server.faults.requests == []  # refused before anything was fetched


def test_signature_found_next_to_the_image(site: Path, server: ImageServer, tmp_path: Path) -> None:
    kr = Signature(os.fspath(site / "keyring.gpg"))
    result = write_image(
        server.url("disk.raw.zst"), os.fspath(tmp_path / "o.img"), signature=kr, tmpdir=os.fspath(tmp_path)
    )
    assert result.signature is SigStatus.GOOD
    # No disk.raw.xz.sig on the server: missing, refused unless insecure.
    with pytest.raises(VerificationError, match="no GPG signature"):
        write_image(server.url("disk.raw.xz"), os.fspath(tmp_path / "p.img"), signature=kr)
    assert not (tmp_path / "p.img").exists()
    result = write_image(
        server.url("disk.raw.xz"), os.fspath(tmp_path / "p.img"), signature=kr, insecure=True
    )
    assert result.signature is SigStatus.MISSING


def test_kill_9_mid_write_then_rerun(site: Path, server: ImageServer, tmp_path: Path) -> None:
    raw = site / "disk.raw"
    server.faults.delay = 0.01  # ~6 MB/s: the write takes ~10 s
    with loop_device(tmp_path / "d", 96) as dev:
        write_image(os.fspath(raw), dev)  # an old install with a valid table
        argv = [sys.executable, "-m", "pineinstall.image", server.url("disk.raw"), dev,
                "--insecure", "--progress", "json"]  # fmt: skip
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        written = 0
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "progress":
                written = event["bytes"]
                if written >= 8 * MiB:
                    break
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL and written >= 8 * MiB
        # Killed mid-write: the old table was wiped when writing began; the new one never written.
        assert partition_table(dev) is None
        server.faults.delay = 0
        rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        done = json.loads(rerun.stdout.splitlines()[-1])
        assert done["event"] == "done" and done["image_size"] == raw.stat().st_size
        assert same_prefix(raw, dev)
        assert partition_table(dev) == "gpt"


def test_dry_run_fetches_only_the_probes(site: Path, server: ImageServer, tmp_path: Path) -> None:
    from pineinstall.image import preflight

    dest = tmp_path / "o.img"
    plan = preflight(server.url("disk.raw.xz"), os.fspath(dest), sha256="0" * 64, dry_run=True)
    assert plan.image_size == (site / "disk.raw").stat().st_size  # from the xz index, by Range
    assert not dest.exists()
    assert all(r is not None and not r.endswith("-") for r in server.faults.requests)  # no full GET
