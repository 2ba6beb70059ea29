"""No secret of an ``--image-url`` (user:password, ``?token=``, ``X-Amz-Signature``, ``sig=``)
reaches any output of ``pineinstall install`` or ``live-install``: logs, the ``--dry-run`` plan,
``--json`` lines, error messages, retry lines; against a working and a failing server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .image_helpers import ImageServer, compress, make_pine_image, sha256_file, tools_missing
from .test_install_image import NEEDED, config, write_cfg
from .test_live_install import Live, blank_file
from .test_live_install import config as live_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or bool(tools_missing(*NEEDED)), reason=f"needs root and {', '.join(NEEDED)}"
    ),
]

SECRETS = ("pineuser", "Pa55w0rdXYZ", "T0KENabc", "AMZSIGdef", "SIGghi")
QUERY = "?token=T0KENabc&X-Amz-Signature=AMZSIGdef&X-Amz-Credential=AKIA%2Fx&sig=SIGghi"


def secret_url(port: int, name: str) -> str:
    return f"http://pineuser:Pa55w0rdXYZ@127.0.0.1:{port}/{name}{QUERY}"


def assert_no_secret(*outputs: str) -> None:
    text = "\n".join(outputs)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{leaked} in the output:\n{text}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ImageServer, Path]]:
    d = tmp_path_factory.mktemp("secret-served")
    xz = compress(make_pine_image(d / "pine.raw"), "xz")
    with ImageServer(d) as server:
        yield server, xz


def install(*argv: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pineinstall.cli", "install", *map(os.fspath, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_dry_run_plan_and_json(served: tuple[ImageServer, Path], tmp_path: Path) -> None:
    server, xz = served
    url = secret_url(server.port, xz.name)
    cfg = write_cfg(tmp_path, config())
    for extra in ((), ("--json",)):
        proc = install(tmp_path / "disk.img", cfg, "--image-url", url, "--image-sha256", sha256_file(xz),
                       "--size", "96M", "--dry-run", *extra)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"http://127.0.0.1:{server.port}/{xz.name}" in proc.stdout + proc.stderr
        assert_no_secret(proc.stdout, proc.stderr)
    assert not (tmp_path / "disk.img").exists()


def test_install_with_a_retry_json(served: tuple[ImageServer, Path], tmp_path: Path) -> None:
    server, xz = served
    server.faults.cuts = [xz.stat().st_size // 2]
    try:
        proc = install(tmp_path / "disk.img", write_cfg(tmp_path, config()), "--image-url",
                       secret_url(server.port, xz.name), "--image-sha256", sha256_file(xz), "--size", "96M",
                       "--json")  # fmt: skip
    finally:
        server.faults.cuts = []
    assert proc.returncode == 0, proc.stderr
    assert "retrying (1/5) in 0.2 s: connection dropped mid-body" in proc.stderr
    for line in proc.stdout.splitlines():
        json.loads(line)
    assert_no_secret(proc.stdout, proc.stderr)


@pytest.mark.parametrize("fault", ["503", "404", "corrupt", "trickle", "refused"])
def test_failures(fault: str, served: tuple[ImageServer, Path], tmp_path: Path) -> None:
    server, xz = served
    port, extra = server.port, ["--fetch-retries", "1"]
    f = server.faults
    if fault == "503":
        f.status = 503
    elif fault == "404":
        f.status = 404
    elif fault == "corrupt":
        f.corrupt_at = xz.stat().st_size // 3
    elif fault == "trickle":
        f.chunk, f.delay = 1024, 0.1  # 10 KiB/s: far longer than 2 s for the image
        extra = ["--fetch-timeout", "2"]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        extra = ["--fetch-retries", "10"]
    try:
        proc = install(tmp_path / "disk.img", write_cfg(tmp_path, config()), "--image-url",
                       secret_url(port, xz.name), "--image-sha256", sha256_file(xz), "--size", "96M",
                       "--json", *extra)  # fmt: skip
    finally:
        f.status, f.corrupt_at, f.chunk, f.delay = None, None, 65536, 0.0
    assert proc.returncode == 1, proc.stderr
    assert_no_secret(proc.stdout, proc.stderr)
    assert not (tmp_path / "disk.img").exists(), proc.stderr  # checked before anything was written
    expected = {
        "503": "HTTP 503",
        "404": "HTTP 404",
        "corrupt": "sha256 mismatch",
        "trickle": "--fetch-timeout",
        "refused": "connection refused",
    }[fault]
    assert expected in proc.stderr, proc.stderr
    if fault == "refused":
        assert proc.stderr.count("retrying (") == 2, proc.stderr  # 3 attempts, not 11


def test_live_install(served: tuple[ImageServer, Path], tmp_path: Path) -> None:
    server, xz = served
    live = Live(tmp_path)
    disk = blank_file(tmp_path / "disk.img")
    live.embed(live_config(), str(disk))
    live.kargs(f"pine.inst.image={secret_url(server.port, xz.name)}", "pine.inst.yes",
               f"pine.inst.image_sha256={sha256_file(xz)}")  # fmt: skip
    proc = live.run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert_no_secret(proc.stdout, proc.stderr)
    server.faults.status = 503
    try:
        proc = live.run()
    finally:
        server.faults.status = None
    assert proc.returncode == 1, proc.stderr
    assert "HTTP 503" in proc.stderr, proc.stderr
    assert_no_secret(proc.stdout, proc.stderr)
