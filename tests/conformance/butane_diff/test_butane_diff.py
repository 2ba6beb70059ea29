"""Replay of the recorded differential cases: Butane's answers (built from its v0.29 sources, see
generate.py) for seeded inputs, against pine-transpile run in this process.

Each case under ``cases/`` holds the input, its arguments and the reference's rc, stdout and
stderr; it runs in a temporary directory with the generator's local files beside it. The rule of
"the same answer" is compare.py's; the seed names the case in every failure.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from butane_like.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from compare import same_answer  # noqa: E402
from generate import materialize  # noqa: E402

pytestmark = pytest.mark.conformance
CASES = sorted(p for p in (HERE / "cases").iterdir() if p.is_dir())

# Seeds that still disagree, by class (issue #15: open work). A seed that starts to agree fails
# its test, so this list stays true.
OPEN: dict[int | str, str] = {
    10326: "mount units generated beside units with drop-ins: Butane reports a drop-in's error at "
    "another unit's index and position (its translation set shifts); not emulated",
}


class _Stream(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def _ours(args: list[str], where: Path, monkeypatch) -> tuple[int, str, str]:
    out, err = _Stream(io.BytesIO(), encoding="utf-8"), _Stream(io.BytesIO(), encoding="utf-8")
    monkeypatch.chdir(where)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    try:
        rc = main(args)
    except SystemExit as e:
        rc = int(e.code or 0)
    out.flush()
    err.flush()
    monkeypatch.undo()
    text = (
        out.buffer.getvalue().decode("utf-8", "replace"),
        err.buffer.getvalue().decode("utf-8", "replace"),
    )
    return rc, text[0], text[1]


def test_cases_are_recorded() -> None:
    assert len(CASES) >= 650


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_answer_as_butane(case: Path, tmp_path, monkeypatch) -> None:
    materialize(tmp_path, (case / "input.bu").read_text())
    args = (case / "args").read_text().split()
    ref = (
        int((case / "expected.rc").read_text()),
        (case / "expected.ign").read_text(),
        (case / "expected.stderr").read_text(),
    )
    why = same_answer(ref, _ours(args, tmp_path, monkeypatch))
    seed = int(case.name) if case.name.isdigit() else case.name  # named: written by hand
    if seed in OPEN:
        assert why, f"seed {seed} agrees now: drop it from OPEN ({OPEN[seed]})"
    else:
        assert not why, f"seed {seed}: {why}"
