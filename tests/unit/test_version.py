"""One version string, from the package metadata, for ``pineinstall`` and ``pine-transpile``; both run
as ``python -m``; the version is read lazily, so ``validate`` and ``pine-transpile`` start-up stay lean."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

# These tests start real processes: they run both commands as a user would.
pytestmark = pytest.mark.real_processes

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
VERSION = version("pineinstall")


def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], input=stdin, capture_output=True, text=True, env=ENV, timeout=60
    )


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_pineinstall_version(flag):
    p = run("-m", "pineinstall", flag)
    assert (p.returncode, p.stdout, p.stderr) == (0, f"pineinstall {VERSION}\n", "")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_pine_transpile_version_is_the_same(flag):
    p = run("-m", "butane_like", flag)
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == f"pine-transpile {VERSION} (Butane 0.29.0 compatible)\n"


def test_version_matches_pyproject():
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert declared == VERSION


def test_python_m_runs_both_commands():
    p = run("-m", "pineinstall", "validate", "-", stdin='{"ignition": {"version": "3.4.0"}}')
    assert (p.returncode, p.stdout) == (0, "")
    p = run("-m", "butane_like", stdin="variant: fcos\nversion: 1.5.0\n")
    assert (p.returncode, p.stdout) == (0, '{"ignition":{"version":"3.4.0"}}\n')
    help_text = run("-m", "butane_like", "--help").stdout
    assert help_text.startswith("Usage: pine-transpile [options]")
    assert "passwd" in run("-m", "pineinstall", "--help").stdout


PROBE = """
import sys

{call}
heavy = sorted(m for m in ("importlib.metadata", "passlib", "argparse", "ctypes") if m in sys.modules)
print(",".join(heavy))
"""


def test_validate_imports_no_metadata_passlib_or_argparse(tmp_path):
    config = tmp_path / "c.ign"
    config.write_text(
        '{"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "u", "passwordHash": "x"}]}}'
    )
    call = f"from pineinstall.cli import main; main(['validate', {str(config)!r}])"
    p = run("-c", PROBE.format(call=call))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == ""


def test_pine_transpile_imports_no_metadata_or_passlib(tmp_path):
    bu = tmp_path / "c.bu"
    bu.write_text("variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: u\n      password_hash: x\n")
    call = f"from butane_like.cli import main; main([{str(bu)!r}])"
    p = run("-c", PROBE.format(call=call))
    assert p.returncode == 0, p.stderr
    assert "importlib.metadata" not in p.stdout.splitlines()[-1]
    assert "passlib" not in p.stdout.splitlines()[-1]
