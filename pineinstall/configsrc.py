"""Reading CONFIG for every front door (``apply``, ``install``): Ignition JSON, or Butane-like YAML
(variants ``pine``/``fcos``) transpiled first.

YAML goes through the ``pine-transpile`` console script, run as a process (``pineinstall.run``):
DESIGN.md fixes the import direction -- nothing in ``pineinstall`` imports ``butane_like`` -- so the
installer depends on the transpiler's command line (a stable, documented seam) rather than on its
Python internals. The script is looked for next to this interpreter first (a venv or a wheel install
puts both there), then on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from pineinstall.config import is_json
from pineinstall.errors import PineError
from pineinstall.stages import Log

TRANSPILER = "pine-transpile"
# Its error lines are shown to a person (with their hints), and pineinstall's own rules beyond
# Ignition's (account fields, unit file names) apply to every variant, as validate applies them.
HINTS = {"PINE_TRANSPILE_HINTS": "1", "PINE_TRANSPILE_SAFETY": "1"}


class ConfigError(PineError):
    """CONFIG cannot be read, transpiled or used; the message says where."""


def transpiler() -> list[str] | None:
    if getattr(sys, "frozen", False):
        return [sys.executable, TRANSPILER]
    beside = Path(sys.executable).parent / TRANSPILER
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(TRANSPILER)
    return [found] if found else None


def _transpiler_argv(what: str, path: str | None, files_dir: str | None) -> list[str]:
    """The transpiler's argv for a file (passed by name, so its errors name it) or stdin. ``local:``
    references are read from ``files_dir``, by default the config's own directory."""
    exe = transpiler()
    if exe is None:
        raise ConfigError(f"{what} is YAML and {TRANSPILER} is not installed")
    argv = list(exe)
    if files_dir is None and path is not None:
        files_dir = os.path.dirname(os.path.abspath(path))
    if files_dir is not None:
        argv += ["--files-dir", files_dir]
    if path is not None:
        argv.append(os.path.abspath(path))
    return argv


def transpile(data: bytes, what: str, path: str | None = None, files_dir: str | None = None) -> bytes:
    """YAML -> Ignition JSON; the transpiler's warnings are passed on to stderr."""
    from pineinstall.run import CommandError, run

    argv = _transpiler_argv(what, path, files_dir)
    try:
        proc = run(argv, input=None if path is not None else data, env=HINTS)
    except CommandError as exc:
        detail = exc.stderr.strip() or str(exc)
        raise ConfigError(f"{what}: transpiling failed:\n{detail}") from exc
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.strip():
            print(f"WARNING  {what}: {line}", file=sys.stderr)
    return proc.stdout


def check_yaml(data: bytes, source: str, files_dir: str | None = None) -> tuple[int, list[str], list[str]]:
    """``validate`` of a YAML config: the transpiler's own check, its findings placed at YAML lines
    (``--raw-errors``: ``error at $.path, line L col C: msg``). (exit code, report lines, other lines)."""
    from pineinstall.run import run

    what = "stdin" if source == "-" else source
    path = None if source == "-" else source
    argv = [*_transpiler_argv(what, path, files_dir), "--raw-errors", "--check"]
    proc = run(argv, input=None if path is not None else data, check=False, env=HINTS)
    report: list[str] = []
    other: list[str] = []
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        (report if line.startswith(("error at ", "warning at ")) else other).append(line)
    return proc.returncode, report, other


def read(source: str, stdin: Any = None, files_dir: str | None = None) -> tuple[bytes, bool]:
    """(Ignition JSON bytes, transpiled?) of CONFIG (a path or ``-``)."""
    what = "stdin" if source == "-" else source
    try:
        if source == "-":
            data = (stdin or sys.stdin.buffer).read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}") from exc
    if not data.strip():
        raise ConfigError(f"{what} is empty")
    if is_json(data):
        return data, False
    return transpile(data, what, None if source == "-" else source, files_dir), True


def load(source: str, log: Log, stdin: Any = None, files_dir: str | None = None) -> tuple[bytes, Any]:
    """(the Ignition JSON, the checked, rendered, typed config)."""
    from pineinstall.engine import LoadError
    from pineinstall.engine import load as load_config

    data, transpiled = read(source, stdin, files_dir)
    if transpiled:
        log.info(f"{source}: YAML transpiled with {TRANSPILER}")
    try:
        return data, load_config(data, log)
    except LoadError as exc:
        raise ConfigError(str(exc)) from exc
