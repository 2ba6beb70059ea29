"""The real-world corpora: other people's configs with the answers of Butane v0.29.0 and
ignition-validate v2.26.0, run in place by their own checkers.

``../shared/conformance/realworld`` (381 Butane configs) and ``realworld-ign`` (419 Ignition
configs) are not ours to copy: they are read where they lie (``PINE_CONFORMANCE_DIR`` names another
place), and the tests are skipped, saying so, on a machine without them. Every case must agree
(rc, semantic output, every error and warning line), except the ones listed in ``OPEN`` with the
reason; a case of ``OPEN`` that starts to agree fails the test too, so the list stays true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PINE_CONFORMANCE_DIR", REPO.parent / "shared" / "conformance"))
BUTANE = SHARED / "realworld"
IGNITION = SHARED / "realworld-ign"

# Cases that do not agree yet, and why (issue #15 item 3: the experimental specs).
OPEN_BUTANE: dict[str, str] = {}
OPEN_IGNITION: dict[str, str] = {}


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")


def _flattened_links(case: Path) -> list[tuple[Path, str]]:
    """Tree files that were symlinks when the reference ran: the expected output has a link there,
    and the corpus copy holds a regular file whose content is the link's target."""
    expected = case / "expected.ign"
    if not expected.exists() or not (case / "files").is_dir():
        return []
    try:
        links = (json.loads(expected.read_text() or "{}").get("storage") or {}).get("links") or []
    except ValueError:
        return []
    found = []
    for local in (case / "files").rglob("*"):
        if not local.is_file() or local.is_symlink() or local.stat().st_size > 4096:
            continue
        text = local.read_text(errors="replace")
        for link in links:
            target = link.get("target")
            if text == target and str(link.get("path", "")).endswith("/" + local.name):
                found.append((local.relative_to(case), target))
    return found


def _run_butane_checker(root: Path, cases: list[str]) -> dict[str, str]:
    """The corpus checker over ``cases`` under ``root``: the lines of the cases that fail."""
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "tools" / "check.py"),
            "--cmd",
            f"{sys.executable} -m butane_like.cli",
            "--semantic",
            "--stderr",
            "loose",
            *cases,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=1800,
    )
    lines = proc.stdout.splitlines()
    assert lines and lines[-1].endswith(f"/{len(cases)} cases passed"), (
        proc.stdout[-2000:] + proc.stderr[-2000:]
    )
    return {line.split()[1].rstrip(":"): line[:600] for line in lines if line.startswith("FAIL")}


@pytest.mark.skipif(not BUTANE.is_dir(), reason=f"the real-world Butane corpus is not at {BUTANE}")
def test_butane_realworld(tmp_path) -> None:
    cases = sorted(p.name for p in BUTANE.iterdir() if p.is_dir() and p.name[:3].isdigit())
    assert len(cases) == 381
    # A case whose symlinks the corpus copy flattened runs from a copy with them restored.
    restored = {c: links for c in cases if (links := _flattened_links(BUTANE / c))}
    failing = _run_butane_checker(BUTANE, [c for c in cases if c not in restored])
    if restored:
        shutil.copytree(BUTANE / "tools", tmp_path / "tools")
        for case, links in restored.items():
            shutil.copytree(BUTANE / case, tmp_path / case, symlinks=True)
            for rel, target in links:
                (tmp_path / case / rel).parent.chmod(0o755)
                (tmp_path / case / rel).unlink()
                (tmp_path / case / rel).symlink_to(target)
        failing.update(_run_butane_checker(tmp_path, sorted(restored)))
    unexpected = {c: why for c, why in failing.items() if c not in OPEN_BUTANE}
    fixed = sorted(set(OPEN_BUTANE) - set(failing))
    assert not unexpected and not fixed, f"disagree: {unexpected}; agree now (drop from OPEN): {fixed}"


def _auto_encoded(node: object) -> list[tuple[str, str]]:
    """The data URLs in an Ignition config whose encoding Butane chose, with their compression
    ("" or "gzip"; a gzip the user declared has no Go header or is not Butane's to choose)."""
    found = []
    if isinstance(node, list):
        for x in node:
            found += _auto_encoded(x)
    elif isinstance(node, dict):
        src, comp = node.get("source"), node.get("compression")
        if isinstance(src, str) and src.startswith("data:") and comp in ("", "gzip"):
            found.append((src, comp))
        for x in node.values():
            found += _auto_encoded(x)
    return found


@pytest.mark.skipif(not BUTANE.is_dir(), reason=f"the real-world Butane corpus is not at {BUTANE}")
def test_butane_realworld_data_urls() -> None:
    """Every data URL Butane encoded, re-encoded from its contents by our encoder: the same choice
    of percent-encoding, base64 or gzip+base64 and the same bytes (Go 1.27's gzip, which the Butane
    release is built with), everywhere. (The checker above compares decoded contents only.)"""
    import base64
    import gzip
    import urllib.parse

    from butane_like.base.dataurl import make_data_url
    from butane_like.base.goflate import GZIP_HEADER

    choice, differ, count = [], [], 0
    for expected in sorted(BUTANE.glob("*/expected*.ign")):
        text = expected.read_text()
        for url, comp in _auto_encoded(json.loads(text) if text.strip() else {}):
            meta, _, body = url[5:].partition(",")
            raw = base64.b64decode(body) if meta.endswith(";base64") else urllib.parse.unquote_to_bytes(body)
            if comp == "gzip":
                if raw[:10] != GZIP_HEADER:
                    continue  # compressed by the config's author
                raw = gzip.decompress(raw)
            count += 1
            ours = make_data_url(raw)
            if ours[1] != comp:
                choice.append((expected.parent.name, len(raw), comp, ours[1]))
            elif ours[0] != url:
                differ.append((expected.parent.name, len(raw), comp))
    assert count >= 245
    assert not choice, f"another encoding than Butane's (case, size, Butane, ours): {choice}"
    assert not differ, f"other bytes than Butane's (case, size, compression): {differ}"


@pytest.mark.skipif(not IGNITION.is_dir(), reason=f"the real-world Ignition corpus is not at {IGNITION}")
def test_ignition_realworld() -> None:
    ours = f"{sys.executable} -m pineinstall validate"
    proc = subprocess.run(
        [sys.executable, str(IGNITION / "tools" / "compare.py"), "--ours", ours],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=1800,
    )
    lines = proc.stdout.splitlines()
    assert lines and lines[-1].startswith("cases=419 "), proc.stdout[-2000:] + proc.stderr[-2000:]
    failing = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("DIFF")}
    unexpected = {c: why for c, why in failing.items() if c not in OPEN_IGNITION}
    fixed = sorted(set(OPEN_IGNITION) - set(failing))
    assert not unexpected and not fixed, f"disagree: {unexpected}; agree now (drop from OPEN): {fixed}"
