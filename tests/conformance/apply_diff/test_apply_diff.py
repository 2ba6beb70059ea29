"""Replay of the recorded files-stage cases: the trees Ignition v2.26.0's files stage (built from its
sources, see apply_generate.py) left on apply_compare.py's seed root for seeded configs of spec 3.4.0-3.6.0 and
3.7.0-experimental, against ``pineinstall apply --root`` run in this process on a fresh seed root.

Each case under ``cases/`` holds the config, Ignition's verdict (``expected.rc``: 0 the files were
written, 1 it failed) and, when written, its tree (``expected.tree``, apply_compare.py's description). We
must give the same verdict and, when done, the same tree; enablement is compared as apply_compare.py says.
Owners by id and name need root (CI runs as root).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from apply_generate import VERSIONS, draw, ours  # noqa: E402

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(os.geteuid() != 0, reason="owners by id and name: chown needs root"),
]
CASES = sorted(p for p in (HERE / "cases").iterdir() if p.is_dir()) if (HERE / "cases").is_dir() else []


def test_cases_are_recorded_over_every_version() -> None:
    assert len(CASES) >= 300
    texts = [(c / "config.ign").read_text(encoding="utf-8") for c in CASES]
    for version in VERSIONS:
        assert sum(f'"version": "{version}"' in t for t in texts) >= 20, version
    done = [c for c in CASES if (c / "expected.rc").read_text().strip() == "0"]
    assert len(done) >= 100  # most cases must compare trees, not only verdicts


def test_the_generator_still_draws_the_recorded_configs() -> None:
    # a change to generate.py that moves the draws must record the cases again
    for case in CASES[:: max(1, len(CASES) // 25)]:
        assert draw(int(case.name)) == (case / "config.ign").read_text(encoding="utf-8"), case.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_tree_as_ignition_files_stage(case: Path) -> None:
    rc = int((case / "expected.rc").read_text())
    got_rc, got_tree, log = ours((case / "config.ign").read_text(encoding="utf-8"))
    assert (got_rc == 0) == (rc == 0), f"seed {case.name}: Ignition rc {rc}, ours {got_rc}: {log[-400:]}"
    if rc == 0:
        want = (case / "expected.tree").read_text(encoding="utf-8").splitlines()
        got = got_tree.splitlines()
        diff = [f"ign  {x}" for x in sorted(set(want) - set(got))] + [
            f"pine {x}" for x in sorted(set(got) - set(want))
        ]
        assert not diff, f"seed {case.name}:\n" + "\n".join(diff)
