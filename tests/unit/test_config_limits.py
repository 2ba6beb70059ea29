"""Bad input in the checking path: an integer beyond Python's int-digit limit is an error with its
place (validate, apply, install), not a traceback; an enormous key is shortened in messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pineinstall.config import check
from pineinstall.config.jsonpos import locate

HUGE = "7" * 5000  # beyond sys.get_int_max_str_digits() (4300)


def test_huge_integer_is_an_error_with_its_place() -> None:
    text = (
        '{"ignition": {"version": "3.4.0"},\n "storage": {"files": [{"path": "/a", "mode": ' + HUGE + "}]}}"
    )
    checked = check(text)
    assert not checked.ok
    [entry] = checked.report.entries
    assert entry.path == ("storage", "files", 0, "mode")
    assert (entry.line, entry.col) == (2, text.splitlines()[1].index("7") + 1)
    assert "5000 digits" in entry.message and len(str(entry)) < 200


def test_huge_integer_in_an_unknown_key_first() -> None:
    text = '{"x": [1, {"y": -' + HUGE + '}], "ignition": {"version": "3.4.0"}}'
    [entry] = check(text).report.entries
    assert entry.path == ("x", 1, "y") and (entry.line, entry.col) == (1, 17)


def test_positions_skip_huge_integers() -> None:
    text = f'{{"a": {HUGE}, "b": [{HUGE}, 2]}}'
    assert locate(text, ("b", 1)) == (1, text.index(", 2]") + 3)


def test_enormous_key_is_shortened() -> None:
    key = "k" * (5 << 20)
    text = json.dumps({"ignition": {"version": "3.4.0"}, key: 1})
    report = check(text).report
    assert not report.has_errors
    out = str(report)
    assert len(out) < 500, out[:500]
    assert f"({len(key)} characters)" in out and "line 1 col 36" in out


@pytest.mark.real_processes
@pytest.mark.parametrize("command", ["validate", "apply", "install"])
def test_cli_reports_the_place_not_a_traceback(command: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.ign"
    cfg.write_text(
        '{"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "/a", "mode": ' + HUGE + "}]}}"
    )
    argv = {
        "validate": [str(cfg)],
        "apply": ["--root", str(tmp_path / "root"), str(cfg)],
        "install": [
            str(tmp_path / "disk.img"),
            str(cfg),
            "--image-file",
            str(cfg),
            "--size",
            "8M",
            "--dry-run",
        ],
    }[command]
    proc = subprocess.run(
        [sys.executable, "-m", "pineinstall.cli", command, *argv], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout + proc.stderr
    assert "$.storage.files.0.mode, line 1 col 81: integer 7777" in out, out
    assert len(out) < 3000


def test_many_findings_are_located_in_one_pass() -> None:
    """Each finding used to rescan the text from its start: 2,000 took over a minute."""
    n = 20_000
    text = json.dumps(
        {
            "ignition": {"version": "3.4.0"},
            "storage": {"files": [{"path": f"/f{i}", "mdoe": 1} for i in range(n)]},
        }
    )
    report = check(text).report
    assert len(report) == n
    last = report.entries[-1]
    assert last.path == ("storage", "files", n - 1, "mdoe")
    assert last.col == text.rindex('"mdoe"') + 1


# The same bad input in a Butane-like YAML config (pine-transpile's check; validate runs it).
YAML_HEAD = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n"


@pytest.mark.real_processes
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # yaml.v3 names the line of a value it cannot decode, its text cut to 7 bytes
        ("      mode: " + HUGE + "\n", "line 6: cannot unmarshal !!float `7777777...` into int"),
        # a plain key of 50 MiB: libyaml stops at it (keys are at most 1024 characters there);
        # the hint shows the window around the place, not the 50 MiB line
        ("      " + "k" * (50 << 20) + ": 1\n", "the problem is at line 6, column 52428807:"),
        # an explicit key has no such limit: the unused key is shortened, at the key's place
        (
            "      ? " + "k" * (1 << 20) + "\n      : 1\n",
            "warning at $.storage.files.0." + "k" * 64 + "…(1048576 characters), line 6 col 9: "
            "unused key " + "k" * 64 + "…(1048576 characters)",
        ),
    ],
    ids=["integer", "plain-key", "explicit-key"],
)
def test_yaml_bad_input_has_its_place_and_short_messages(body: str, expected: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.bu"
    cfg.write_text(YAML_HEAD + body)
    proc = subprocess.run(
        [sys.executable, "-m", "pineinstall.cli", "validate", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[:3000]
    assert expected in out, out[:3000]
    assert len(out) < 1000, out[:3000]


def test_yaml_snippet_of_a_long_line_is_a_window_at_the_caret() -> None:
    from butane_like.yamlload import SNIPPET_WIDTH, snippet

    line = "a" * 1000 + "X" + "b" * 1000
    shown, caret = snippet(("x: 1\n" + line + "\n").encode(), 2, 1001)
    assert len(shown) < SNIPPET_WIDTH + 20 and shown.startswith("   2 | …") and shown.endswith("…")
    # the caret sits under the X
    assert shown[caret.index("^")] == "X"
