"""butane_like.base.goflate against Go's own gzip at Butane's level (BestCompression).

Go is not needed here: ``goflate/go_gzip9_sha256.json`` holds the sha256 of what Go 1.27's
``compress/gzip`` (the Go the Butane v0.29.0 release is built with) wrote for 300 seeded inputs of
``goflate/inputs.py`` (random and low-entropy bytes, text, configs, repeats, zeros, mixes; 0 to
40 KB), recorded by a small Go program outside the repository. Campaigns of 2,000 more inputs up to
64 KiB agreed byte for byte before recording.
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
        if hashlib.sha256(goflate.gzip(x)).hexdigest() != want
    ]
    assert not differ, f"seed {rec['seed']}: inputs (index, size) gzipped unlike Go: {differ[:10]}"


@pytest.mark.parametrize(
    "data", [b"", b"a", b"hello hello hello hello\n", bytes(65536), bytes(range(256)) * 256]
)
def test_stream_frame(data: bytes) -> None:
    """Go's gzip frame: no name, no time, XFL 2 (best compression), OS 255; an empty fixed-Huffman
    final block (3 + 7 bits); CRC-32 and size; and it decodes to the input."""
    out = goflate.gzip(data)
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    assert out[-8:] == zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")
    assert gzip.decompress(out) == data
    if not data:
        assert out[10:-8] == b"\x03\x00"


def test_more_than_64_kib_is_refused() -> None:
    # Go writes larger inputs in several steps (tables reused across blocks): not emulated, and
    # dataurl never asks (EXACT_MAX).
    with pytest.raises(ValueError, match="64 KiB"):
        goflate.gzip(bytes(65537))
