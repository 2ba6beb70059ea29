"""butane_like.base.goflate against Go's own gzip at Butane's level (BestCompression).

Go is not needed here: ``goflate/go_gzip9_sha256.json`` holds the sha256 of what Go 1.19's
``compress/gzip`` wrote for 300 seeded inputs of ``goflate/inputs.py`` (random and low-entropy
bytes, text, configs, repeats, zeros, mixes; 0 to 40 KB), recorded by a small Go program outside
the repository; Go 1.24 (the toolchain Butane v0.29.0 names) has the same compressor. Campaigns
of 3,000 more inputs (up to 200 KB, past Go's window slide) agreed byte for byte before recording.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import zlib
from pathlib import Path

import pytest

from butane_like.base import goflate

HERE = Path(__file__).resolve().parent / "goflate"
sys.path.insert(0, str(HERE))
from inputs import inputs  # noqa: E402

pytestmark = pytest.mark.conformance


def test_same_bytes_as_go() -> None:
    rec = json.loads((HERE / "go_gzip9_sha256.json").read_text())
    items = inputs(rec["seed"], rec["count"], rec["large"], rec["largest"])
    assert len(items) == len(rec["sha256"]) == 300
    differ = [
        (k, len(x))
        for k, (x, want) in enumerate(zip(items, rec["sha256"], strict=True))
        if hashlib.sha256(goflate.gzip(x, go124_end=True)).hexdigest() != want
    ]
    assert not differ, f"seed {rec['seed']}: inputs (index, size) gzipped unlike Go: {differ[:10]}"


@pytest.mark.parametrize(
    "data", [b"", b"a", b"hello hello hello hello\n", bytes(70000), bytes(range(256)) * 300]
)
def test_stream_ends_and_decodes(data: bytes) -> None:
    """Both stream ends decode; Go 1.26's (the Butane release's) is 3 or 4 bytes shorter."""
    new, old = goflate.gzip(data), goflate.gzip(data, go124_end=True)
    assert gzip.decompress(new) == gzip.decompress(old) == data
    assert new[:10] == old[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert new[-8:] == old[-8:] == zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")
    assert 3 <= len(old) - len(new) <= 4
    # the stored empty final block Go <= 1.24 ends with, and the fixed one that replaced it
    assert old[-13:-8].endswith(b"\x00\x00\xff\xff")
