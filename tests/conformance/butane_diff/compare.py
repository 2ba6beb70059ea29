"""One rule for "the same answer" of two Butane runs: (rc, stdout, stderr) of the reference and ours.

Same exit code; the same Ignition config once data URLs are decoded and gunzipped (the encoding
of contents is the translator's free choice where sizes tie); the same error and warning lines
(``--raw-errors``: one per finding, with JSON path, line and column), in any order: the order of
findings within one check stage still differs in places (Go's walk order); ``order_differs``
tells those apart for the campaign's report.
"""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse


def _decoded(value):
    if isinstance(value, dict):
        out = {k: _decoded(v) for k, v in value.items()}
        src = out.get("source")
        if isinstance(src, str) and src.startswith("data:"):
            meta, _, payload = src[5:].partition(",")
            raw = (
                base64.b64decode(payload)
                if meta.endswith(";base64")
                else urllib.parse.unquote_to_bytes(payload)
            )
            if out.get("compression") == "gzip":
                raw = gzip.decompress(raw)
                out["compression"] = ""
            out["source"] = raw.decode("utf-8", "replace")
        return out
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


# Findings of ours that Butane does not make, on purpose (issue #16: a plain-text password hash).
OURS_ONLY = ("passwordHash is not a crypt(3) hash",)


def _findings(stderr: str) -> list[str]:
    return [
        line.strip()
        for line in stderr.splitlines()
        if line.startswith(("error", "warning", "Error")) and not any(x in line for x in OURS_ONLY)
    ]


def same_answer(ref: tuple[int, str, str], got: tuple[int, str, str]) -> str:
    """Empty when the answers agree, else what differs."""
    problems = []
    if ref[0] != got[0]:
        problems.append(f"rc {ref[0]} != {got[0]}")
    try:
        same_out = _decoded(json.loads(ref[1] or "null")) == _decoded(json.loads(got[1] or "null"))
    except ValueError:
        same_out = ref[1] == got[1]
    if not same_out:
        problems.append("output differs")
    if sorted(_findings(ref[2])) != sorted(_findings(got[2])):
        problems.append(f"findings differ: ref {_findings(ref[2])} ours {_findings(got[2])}")
    return "; ".join(problems)


def order_differs(ref: tuple[int, str, str], got: tuple[int, str, str]) -> bool:
    return _findings(ref[2]) != _findings(got[2])
