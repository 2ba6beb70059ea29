"""The Butane corpus (Butane 0.29.0's real output), run through the corpus's own checker.

Two tests per case: the semantic run (``--semantic --stderr loose``: every case must pass) and
the byte-exact run (stdout and stderr byte for byte): every case, those tagged ``gzip`` too
(butane_like.base.goflate writes the gzip bytes of Go 1.27, which the Butane release is built with). The transpiler runs as ``python -m butane_like.cli`` from
this checkout, so a stale installed copy cannot mask a regression.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance

CORPUS = Path(__file__).parent / "butane"
REPO = Path(__file__).resolve().parents[2]
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and p.name[:3].isdigit())
CMD = f"{sys.executable} -m butane_like.cli"


def _gzip_cases() -> set[str]:
    tagged = set()
    for line in (CORPUS / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*(\d{3}-[^|\s]+)\s*\|[^|]*\|[^|]*\|([^|]*)\|", line)
        if m and "gzip" in m.group(2).split():
            tagged.add(m.group(1))
    return tagged


GZIP = _gzip_cases()
def _check(case: str, *flags: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    return subprocess.run(
        [sys.executable, str(CORPUS / "tools" / "check.py"), "--cmd", CMD, *flags, case],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_corpus_is_complete() -> None:
    assert len(CASES) == 74
    assert {
        "022-fcos14-gzip-inline-large",
        "027-fcos15-grub-users",
        "032-fcos15-gzip-local-large",
        "041-fcos16-ca-local-gzip-merge-inline",
    } == GZIP
    # The corpus relies on symlinks in trees; a copy that flattened them would test nothing.
    assert (CORPUS / "007-fcos11-tree-basic/files/opt-tools/bin/hc").is_symlink()


@pytest.mark.parametrize("case", CASES)
def test_semantic(case: str) -> None:
    p = _check(case, "--semantic", "--stderr", "loose")
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("case", CASES)
def test_byte_exact(case: str) -> None:
    p = _check(case)
    assert p.returncode == 0, p.stdout + p.stderr
