"""Data URLs as Butane makes them: the shortest of percent-encoding, base64 and gzip+base64.

Butane gzips with Go's compress/gzip at BestCompression and keeps gzip+base64 when it is shorter
than the shorter plain encoding by more than the 4 characters of "gzip" (base64 wins over
percent-encoding only when strictly shorter). The gzip bytes are Go 1.27's, which the Butane
release is built with (``goflate``, pure Python), for contents of up to ``EXACT_MAX`` bytes, within
a budget of ``EXACT_BUDGET`` bytes per translation: the output is then Butane's byte for byte. Past those, zlib/ISA-L (fast, other bytes)
decide and encode: the same meaning, and the same choice unless the two encodings are within a
few per cent of each other. zlib runs first anyway: where its gzip loses by more than ``_slack``
Go's cannot win (see ``_slack``), so incompressible contents never pay for the slow exact encoder.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

# RFC 2396 unreserved characters: what Butane's data URL escaping leaves alone.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")
_PCT = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]

# Go's compress/gzip header at BestCompression: no name, mtime 0, XFL 2, OS 255 (unknown).
# (Kept whatever our level: the header is not what decoders look at.)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


_UNRESERVED_BYTES = bytes(sorted(_UNRESERVED))


def percent_escape(data: bytes) -> str:
    reserved = data.translate(None, _UNRESERVED_BYTES)
    kinds = set(reserved)
    if len(kinds) > 8 or len(data) < 256:
        return "".join(map(_PCT.__getitem__, data))
    # Text with few kinds of reserved bytes (often just line breaks): one C-speed replace per
    # kind instead of a lookup per byte. "%" first, so that no escape is escaped again.
    for b in sorted(kinds, key=lambda b: b != 0x25):
        data = data.replace(bytes((b,)), _PCT[b].encode())
    return data.decode("ascii")


def percent_length(data: bytes) -> int:
    """Length of ``percent_escape(data)`` without building it (C speed)."""
    return len(data) + 2 * len(data.translate(None, _UNRESERVED_BYTES))


_b64: Any = None


def b64(data: bytes) -> str:
    """Standard base64 with padding. For large data PyPI ``pybase64`` (SIMD) when installed: ~3x
    binascii's speed and no bytes-to-str copy; small data keeps the start-up free of its import."""
    global _b64
    if len(data) >= 65536:
        if _b64 is None:
            try:
                from pybase64 import b64encode_as_string

                _b64 = b64encode_as_string
            except ImportError:  # pragma: no cover - a declared dependency; correct, only slower
                _b64 = False
        if _b64:
            return _b64(data)
    import binascii

    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _gzip(comp: Any, data: bytes) -> bytes:
    import zlib

    # Go's compressor ends with an empty stored block after the data blocks; a sync flush before
    # finishing gives a stream of about the same length, so both choose the same encoding.
    body = comp.compress(data) + comp.flush(zlib.Z_SYNC_FLUSH) + comp.flush(zlib.Z_FINISH)
    crc = zlib.crc32(data) & 0xFFFFFFFF
    return _GZIP_HEADER + body + crc.to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")


# Butane compresses with Go's gzip at BestCompression; our bytes differ from Go's whatever the
# level, so the level is chosen by cost. Measured on bench/transpile's 2,000 files and on the
# Butane corpus: zlib level 6 gives the same gzip-or-not decisions as level 9 and output 0.05%
# larger, for half the CPU (a quarter on repetitive text, where level 9 crawls at ~3 MB/s).
# From FAST_GZIP_MIN on, ISA-L (PyPI ``isal``) at its level 2 is ~5x faster again; its output is
# about equal on text that barely compresses and up to ~1/3 larger on repetitive text.
GZIP_LEVEL = 6
FAST_GZIP_MIN = 16384
# Contents from this size on are encoded in parallel before the walk (smaller ones: the hand-off
# would cost about what encoding them does), and gzipped before their other encodings are measured.
PREFETCH_MIN = 4096
_isal: Any = None
# Contents up to this size get Go's gzip bytes (~0.1-0.5 MB/s here: up to ~0.5 s for the largest) ...
EXACT_MAX = 65536
# ... until one translation has put this many bytes through it: 8x the most a real-world config
# of the corpus needs (8.3 KB); a bulk config (bench/transpile) pays at most ~0.2-0.3 s CPU for it.
# Charged in document order, so the output does not depend on thread timing.
EXACT_BUDGET = 65536


class ExactBudget:
    """What is left of one translation's ``EXACT_BUDGET``."""

    def __init__(self, total: int = EXACT_BUDGET) -> None:
        self.left = total

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True


def _slack(best_len: int) -> int:
    """How much longer zlib/ISA-L's gzip URL may be than the best plain one while Go's could
    still be shorter than it: 1/8 + 64 characters. (Go 1.27's level 9 against zlib's level 6 on
    3,000 seeded inputs of up to 64 KiB: shorter by at most a few per cent, or some 10-40 bytes on
    small inputs; no input where the pre-check would have skipped a winning Go gzip.)"""
    return best_len // 8 + 64


def gzip_zlib(data: bytes) -> bytes:
    import zlib

    return _gzip(zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15), data)


def gzip_fast(data: bytes) -> bytes:
    """gzip of large contents: ISA-L level 2 (zlib when ``isal`` is not installed)."""
    global _isal
    if _isal is None:
        try:
            from isal import isal_zlib

            _isal = isal_zlib
        except ImportError:  # pragma: no cover - a declared dependency; correct, only slower
            _isal = False
    if not _isal:
        return gzip_zlib(data)
    # One call, no sync flush (~15% faster): at these sizes the few bytes of Go's stream ending
    # cannot sway the decision. ISA-L's CRC is ~3x zlib's.
    body = _isal.compress(data, 2, -15)
    crc = _isal.crc32(data) & 0xFFFFFFFF
    return _GZIP_HEADER + body + crc.to_bytes(4, "little") + (len(data) & 0xFFFFFFFF).to_bytes(4, "little")


def gzip_any(data: bytes) -> bytes:
    return gzip_fast(data) if len(data) >= FAST_GZIP_MIN else gzip_zlib(data)


def make_data_url(
    data: bytes,
    compression: str | None = None,
    allow_gzip: bool = True,
    exact: ExactBudget | bool = True,
) -> tuple[str, str | None]:
    """Butane's choice of encoding: the shortest of percent-encoding, base64 and gzip+base64.

    Returns (url, compression): compression is "" or "gzip" when we chose it, None when the user
    declared a compression (the data is already compressed; it is only encoded). ``exact``: Go's
    gzip bytes (up to ``EXACT_MAX``), charged to a budget, always (True) or never (False).
    """
    return _make(data, compression, allow_gzip, exact)[0]


def _go_gzip_wanted(data: bytes, gz_b64_len: int, best_len: int) -> bool:
    """Whether Go's gzip could be the answer where zlib/ISA-L's base64 is ``gz_b64_len`` long."""
    return len(data) <= EXACT_MAX and gz_b64_len + len(";base64,gzip") < best_len + _slack(best_len)


def _make(
    data: bytes, compression: str | None, allow_gzip: bool, exact: ExactBudget | bool
) -> tuple[tuple[str, str | None], bool]:
    """``make_data_url`` and whether Go's gzip was wanted but not made (``exact`` False or spent)."""
    user_compressed = bool(compression)
    can_gzip = not user_compressed and allow_gzip
    b64_len = 8 + (len(data) + 2) // 3 * 4
    gz = None
    missed = False
    if can_gzip and len(data) > EXACT_MAX and len(data) >= PREFETCH_MIN:
        # Large contents: gzip first. When its URL is shorter than any plain one can be
        # (percent-encoding is at least as long as the data), that settles it.
        gz = b64(gzip_any(data))
        if len(gz) + len(";base64,gzip") < min(1 + len(data), b64_len):
            return ("data:;base64," + gz, "gzip"), missed
    # Lengths first (cheap), the chosen encoding's text last: building the percent-encoded
    # text is the slow part.
    best = "pct"
    best_len = 1 + percent_length(data)
    if b64_len < best_len:
        best, best_len = "b64", b64_len
    out_comp: str | None = None if user_compressed else ""
    # gzip+base64 is at least 8 + 28 characters: not worth trying below that.
    if can_gzip and best_len > 40:
        if gz is None:
            gz = b64(gzip_any(data))
        if _go_gzip_wanted(data, len(gz), best_len):
            if exact is True or (exact is not False and exact.take(len(data))):
                from .goflate import gzip as go_gzip

                gz = b64(go_gzip(data))
            else:
                missed = True
        if len(gz) + len(";base64,gzip") < best_len:
            return ("data:;base64," + gz, "gzip"), missed
    if best == "b64":
        return ("data:;base64," + b64(data), out_comp), missed
    return ("data:," + percent_escape(data), out_comp), missed


def data_urls_many(texts: list[str], exact: ExactBudget | bool = True) -> list[tuple[str, str | None]]:
    """``make_data_url`` of several texts (UTF-8, no declared compression) on all CPUs.

    zlib/ISA-L run in parallel; the texts that want Go's gzip bytes (pure Python: threads would
    not help) get them afterwards, in the order of ``texts``, charged to ``exact``.
    """

    def one(text: str) -> tuple[tuple[str, str | None], bool]:
        return _make(text.encode("utf-8", "surrogateescape"), None, True, False)

    made = _many(texts, one)
    return [
        make_data_url(t.encode("utf-8", "surrogateescape"), exact=exact) if missed else url
        for t, (url, missed) in zip(texts, made, strict=True)
    ]


def _many(texts: list[str], one: Any) -> list[Any]:
    """``one`` of every text, on all CPUs.

    One share of about equal size per CPU: zlib and ISA-L release the GIL while they compress,
    so the shares run in parallel; one task per share, because a hand-off per text costs more
    than a small one takes. Each text's bytes are made and dropped inside its task, so that at
    no time all of them (and their gzip) are held at once: fresh memory is slow to touch here.
    """

    workers = min(len(texts), os.cpu_count() or 1)
    if workers < 2:
        return [one(t) for t in texts]
    shares: list[list[int]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for i in sorted(range(len(texts)), key=lambda i: -len(texts[i])):
        j = loads.index(min(loads))
        shares[j].append(i)
        loads[j] += len(texts[i])
    out: list[Any] = [None] * len(texts)

    def work(share: list[int]) -> None:
        for i in share:
            out[i] = one(texts[i])

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers - 1) as pool:
        futures = [pool.submit(work, share) for share in shares[1:]]
        work(shares[0])  # this thread takes a share too
        for f in futures:
            f.result()
    return out
