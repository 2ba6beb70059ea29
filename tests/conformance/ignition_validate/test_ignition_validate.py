"""Differential test: ``pineinstall validate`` against the real ``ignition-validate``.

Every ``cases/NNN-name.ign`` is checked by both tools:

- specs 3.0.0-3.3.0 (what Debian's ignition-validate 2.14 knows): same verdict (exit code), same
  set of (kind, JSON path) for the entries the reference places on a path, same message texts and
  the same line and column, except for the deliberate differences listed below;
- specs 3.4.0-3.6.0, which the reference does not know: our verdict and entries are compared
  with the sidecar ``NNN-name.expect.json``, hand-written from the published spec and release
  notes (an entry without "message" has a text that could not be checked against a binary).

In every case each of OUR entries must carry a line and a column.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wording import as_newest

pytestmark = pytest.mark.conformance

CASES = Path(__file__).parent / "cases"
REFERENCE = shutil.which("ignition-validate")

# `error at $.a.0.b, line 1 col 2: msg`, `error at line 1 col 2: msg`, `warning at $.x: msg`
LINE = re.compile(r"^(error|warning)(?: at (\$[^,:]*)?(?:,? ?line (\d+) col (\d+))?)?: (.*)$")

# Entries about the reference's own bookkeeping, not about the config: ignition-validate warns
# that its position tree "does not match" wherever an object is `null`. Whether we mirror that
# quirk is the schema walk's business; these entries are left out of the comparison on both sides.
IGNORED_REFERENCE_MESSAGES = ("context tree does not match content tree",)

# Deliberate differences, by case name (the part after NNN-), each with its reason.
DELIBERATE = {
    "type-error-mode-string": (
        "the reference reports Go's decoder error without a JSON path; we name the field "
        "($.storage.files.0.mode) with a message of our own. Verdict must still agree."
    ),
    "type-error-float-mode": (
        "the reference reports Go's decoder error without a JSON path; we name the field."
    ),
    "unsupported-version": (
        "the reference prints 'couldn't parse config: unsupported config version' with no "
        "place; we point at $.ignition.version and list the versions we support (3.4.0-3.6.0 "
        "beyond the reference's 3.3.0)."
    ),
}


REPO = Path(__file__).resolve().parents[3]


def _ours_argv() -> list[str]:
    """``pineinstall validate`` of THIS checkout (the venv may hold an installed, older copy)."""
    return [sys.executable, "-m", "pineinstall.cli", "validate"]


def _run(argv: list[str]) -> tuple[int, list[tuple[str, str | None, str | None, str]]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
    entries = []
    for line in (proc.stdout + proc.stderr).splitlines():
        m = LINE.match(line)
        if m:
            kind, path, ln, col, msg = m.groups()
            entries.append((kind, path, f"{ln}:{col}" if ln else None, as_newest(msg)))
        elif line.strip():
            entries.append(("other", None, None, line))
    return proc.returncode, entries


_RUNS: dict[tuple[str, Path], tuple[int, list]] = {}


def _outputs(tool: str, case: Path) -> tuple[int, list]:
    """Both tools' outputs over the whole corpus, computed once, a few processes at a time."""
    if (tool, case) not in _RUNS:
        from concurrent.futures import ThreadPoolExecutor

        jobs = [("ours", p) for p in ALL]
        if REFERENCE:
            jobs += [("reference", p) for p in DIFFERENTIAL]
        argv = {"ours": _ours_argv(), "reference": [REFERENCE]}
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = pool.map(lambda job: _run([*argv[job[0]], str(job[1])]), jobs)
            _RUNS.update(zip(jobs, results, strict=True))
    return _RUNS[(tool, case)]


def _case_name(path: Path) -> str:
    return path.stem.split("-", 1)[1]


def _declared_minor(path: Path) -> int | None:
    m = re.search(rb'"version"\s*:\s*"3\.(\d+)\.0"', path.read_bytes())
    return int(m.group(1)) if m else None


ALL = sorted(CASES.glob("*.ign"))
DIFFERENTIAL = [p for p in ALL if not p.with_suffix(".expect.json").exists()]
SIDECAR = [p for p in ALL if p.with_suffix(".expect.json").exists()]


def _assert_positions(ours: list) -> None:
    for kind, _path, pos, msg in ours:
        assert kind in ("error", "warning"), f"unexpected output line: {msg!r}"
        assert pos is not None, f"our entry has no line/column: {kind}: {msg}"


def test_corpus_size() -> None:
    assert len(DIFFERENTIAL) >= 140
    assert len(SIDECAR) >= 20
    # every differential case declares a version the reference knows
    for path in DIFFERENTIAL:
        minor = _declared_minor(path)
        assert minor is None or minor <= 3 or minor > 6, path.name


@pytest.mark.skipif(REFERENCE is None, reason="ignition-validate is not installed")
@pytest.mark.parametrize("case", DIFFERENTIAL, ids=lambda p: p.stem)
def test_against_reference(case: Path) -> None:
    ref_rc, ref = _outputs("reference", case)
    our_rc, ours = _outputs("ours", case)
    _assert_positions(ours)
    assert (our_rc != 0) == (ref_rc != 0), f"verdict differs: reference {ref}, ours {ours}"
    if _case_name(case).startswith("valid-"):
        assert ref_rc == 0, f"a valid- case the reference rejects: {ref}"

    ref_placed = {(k, p, m) for k, p, _, m in ref if p and not m.startswith(IGNORED_REFERENCE_MESSAGES)}
    ours_placed = {(k, p, m) for k, p, _, m in ours if p and not m.startswith(IGNORED_REFERENCE_MESSAGES)}
    if _case_name(case) in DELIBERATE:
        # the reference gave no place; ours must, and every reference place must still be ours
        assert {x[:2] for x in ref_placed} <= {x[:2] for x in ours_placed}
        return
    assert {x[:2] for x in ours_placed} == {x[:2] for x in ref_placed}
    assert ours_placed == ref_placed
    # The same line and column wherever the reference gives both for a path.
    ref_positions = {
        (k, p): pos for k, p, pos, m in ref if p and pos and not m.startswith(IGNORED_REFERENCE_MESSAGES)
    }
    our_positions = {(k, p): pos for k, p, pos, _ in ours if p and pos}
    for key, pos in ref_positions.items():
        assert our_positions.get(key) == pos, f"{key}: reference at {pos}, ours at {our_positions.get(key)}"


@pytest.mark.parametrize("case", SIDECAR, ids=lambda p: p.stem)
def test_against_spec_expectations(case: Path) -> None:
    expect = json.loads(case.with_suffix(".expect.json").read_text())
    rc, ours = _outputs("ours", case)
    _assert_positions(ours)
    assert (rc == 0) == expect["valid"], ours
    assert {(k, p) for k, p, _, _ in ours} == {(e["kind"], e["path"]) for e in expect["entries"]}
    for e in expect["entries"]:
        if "message" in e:
            assert (e["kind"], e["path"], e["message"]) in {(k, p, m) for k, p, _, m in ours}
