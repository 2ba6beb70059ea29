"""Image downloads that end, against a misbehaving server on 127.0.0.1: drops anywhere (the probe,
the xz index and gzip trailer Range reads, the body), 5xx answers, corrupt bytes, a stall, a
trickle against ``--fetch-timeout``, a refused connection (few attempts, one short line each).

Random cut points come from a seed printed in every assertion message (``PINE_TEST_SEED`` replays)."""

from __future__ import annotations

import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pineinstall.image import HttpSource, SourceError, VerificationError, write_image

from .image_helpers import ImageServer, compress, sha256_file, tools_missing

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(tools_missing("xz", "gzip")), reason="needs xz, gzip"),
]

MiB = 1 << 20


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("faults")
    raw = d / "disk.raw"
    with open(raw, "wb") as f:  # 8 MiB: 2 MiB incompressible (worth cutting), the rest sparse zeroes
        f.truncate(8 * MiB)
        f.seek(3 * MiB)
        f.write(random.Random(1).randbytes(2 * MiB))
    compress(raw, "xz")
    compress(raw, "gzip")
    return d


@pytest.fixture
def server(site: Path) -> Iterator[ImageServer]:
    with ImageServer(site) as srv:
        yield srv


def seed_of() -> int:
    return int(os.environ.get("PINE_TEST_SEED") or int.from_bytes(os.urandom(4), "little"))


def source(srv: ImageServer, name: str, lines: list[str], **kw: object) -> HttpSource:
    return HttpSource(srv.url(name) + "?token=T0KEN", log=lines.append, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["disk.raw.xz", "disk.raw.gz"])
def test_drops_anywhere_resume(site: Path, server: ImageServer, tmp_path: Path, name: str) -> None:
    size = (site / name).stat().st_size
    seed = seed_of()
    # One cut in the probe, one in the last 4 KiB (xz index, gzip trailer: Range reads), two at random.
    cuts = sorted({100, size - 2, *random.Random(seed).sample(range(1, size), 2)})
    why = f"seed {seed} (PINE_TEST_SEED), cuts at {cuts} of {size} bytes"
    server.faults.cuts = list(cuts)
    lines: list[str] = []
    out = tmp_path / "o.img"
    result = write_image(source(server, name, lines), os.fspath(out), sha256=sha256_file(site / name))
    assert server.faults.cuts == [], why
    assert result.image_size == 8 * MiB, why
    assert sha256_file(out) == sha256_file(site / "disk.raw"), why
    assert lines and all("retrying (" in line and "T0KEN" not in line for line in lines), f"{why}: {lines}"


def test_503s_then_served(site: Path, server: ImageServer, tmp_path: Path) -> None:
    server.faults.statuses = [503, 503]
    lines: list[str] = []
    write_image(source(server, "disk.raw.xz", lines), os.fspath(tmp_path / "o.img"), insecure=True)
    assert [line.split(": ", 1)[1] for line in lines] == [
        "retrying (1/5) in 0.2 s: HTTP 503",
        "retrying (2/5) in 0.4 s: HTTP 503",
    ]
    assert lines[0].startswith(f"http://127.0.0.1:{server.port}/disk.raw.xz: ")


def test_corrupt_bytes_refused_nothing_written(site: Path, server: ImageServer, tmp_path: Path) -> None:
    server.faults.corrupt_at = 4 * MiB // 3
    out = tmp_path / "o.img"
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        write_image(
            source(server, "disk.raw.xz", []), os.fspath(out), sha256=sha256_file(site / "disk.raw.xz")
        )
    assert not out.exists()


def test_stall_detected_and_resumed(site: Path, server: ImageServer, tmp_path: Path) -> None:
    server.faults.stall_at, server.faults.stall = 1 * MiB, 4.0
    lines: list[str] = []
    src = source(server, "disk.raw.xz", lines, stall_timeout=1.0)
    out = tmp_path / "o.img"
    write_image(src, os.fspath(out), sha256=sha256_file(site / "disk.raw.xz"))
    assert sha256_file(out) == sha256_file(site / "disk.raw")
    assert any("stalled" in line for line in lines), lines
    assert any(r and r.startswith("bytes=") and r.endswith("-") for r in server.faults.requests), (
        server.faults.requests
    )


def test_trickle_hits_the_fetch_timeout(site: Path, server: ImageServer, tmp_path: Path) -> None:
    server.faults.chunk, server.faults.delay = 4096, 0.05  # ~80 KiB/s: the 2 MiB image takes ~25 s
    out = tmp_path / "o.img"
    t0 = time.monotonic()
    with pytest.raises(SourceError, match=r"--fetch-timeout") as info:
        write_image(
            source(server, "disk.raw.xz", [], total_timeout=2.0), os.fspath(out),
            sha256=sha256_file(site / "disk.raw.xz"),
        )  # fmt: skip
    assert time.monotonic() - t0 < 10, info.value
    assert "T0KEN" not in str(info.value)
    assert not out.exists()


def test_trickle_streamed_hits_the_fetch_timeout_and_wipes(
    site: Path, server: ImageServer, tmp_path: Path
) -> None:
    """No sha256 to verify first: the image is streamed while written; the deadline wipes it."""
    server.faults.chunk, server.faults.delay = 16384, 0.02
    out = tmp_path / "o.img"
    with pytest.raises(SourceError, match=r"--fetch-timeout"):
        write_image(source(server, "disk.raw", [], total_timeout=2.0), os.fspath(out), insecure=True)
    assert not out.exists()  # an image file this run created is removed


def test_connection_refused_fails_after_few_attempts(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines: list[str] = []
    src = HttpSource(f"http://u:pa55word@127.0.0.1:{port}/x.raw?sig=S1G", retries=10, log=lines.append)
    with pytest.raises(SourceError, match="connection refused") as info:
        write_image(src, os.fspath(tmp_path / "o.img"), insecure=True)
    assert len(lines) == 2, lines  # 3 attempts, not 11
    assert lines[0].endswith("retrying (1/2) in 0.2 s: connection refused"), lines
    text = str(info.value) + "".join(lines)
    assert "pa55word" not in text and "S1G" not in text, text
    assert not (tmp_path / "o.img").exists()


def test_config_resource_refused_fails_fast() -> None:
    """The config's resources (and live-install's config URL) share the policy: 3 attempts, not 12."""
    from pineinstall.resources import Fetcher, ResourceError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lines: list[str] = []
    with pytest.raises(ResourceError, match="after 3 attempts"):
        Fetcher(log=lines.append).fetch(f"http://127.0.0.1:{port}/node.ign?token=T0KEN")
    assert lines == [
        f"GET http://127.0.0.1:{port}/node.ign: retrying (1/2) in 0.2 s: connection refused",
        f"GET http://127.0.0.1:{port}/node.ign: retrying (2/2) in 0.4 s: connection refused",
    ]
