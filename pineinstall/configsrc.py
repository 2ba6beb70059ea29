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

from pineinstall.errors import PineError
from pineinstall.stages import Log

TRANSPILER = "pine-transpile"


class ConfigError(PineError):
    """CONFIG cannot be read, transpiled or used; the message says where."""


def is_json(data: bytes) -> bool:
    """An Ignition config is a JSON object; anything else is taken for YAML."""
    return data.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{")


def transpiler() -> str | None:
    beside = Path(sys.executable).parent / TRANSPILER
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(TRANSPILER)


def transpile(data: bytes, what: str, path: str | None = None) -> bytes:
    """YAML -> Ignition JSON. A file is passed by name (errors then name it) with its directory as
    ``--files-dir`` (``local:`` references are the config author's own files); stdin is piped."""
    from pineinstall.run import CommandError, run

    exe = transpiler()
    if exe is None:
        raise ConfigError(f"{what} is YAML and {TRANSPILER} is not installed")
    try:
        if path is not None:
            full = os.path.abspath(path)
            proc = run([exe, "--files-dir", os.path.dirname(full), full])
        else:
            proc = run([exe], input=data)
    except CommandError as exc:
        detail = exc.stderr.strip() or str(exc)
        raise ConfigError(f"{what}: transpiling failed:\n{detail}") from exc
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.strip():
            print(f"WARNING  {what}: {line}", file=sys.stderr)
    return proc.stdout


def read(source: str, stdin: Any = None) -> tuple[bytes, bool]:
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
    return transpile(data, what, None if source == "-" else source), True


def load(source: str, log: Log, stdin: Any = None) -> tuple[bytes, Any]:
    """(the Ignition JSON, the checked, rendered, typed config)."""
    from pineinstall.engine import LoadError
    from pineinstall.engine import load as load_config

    data, transpiled = read(source, stdin)
    if transpiled:
        log.info(f"{source}: YAML transpiled with {TRANSPILER}")
    try:
        return data, load_config(data, log)
    except LoadError as exc:
        raise ConfigError(str(exc)) from exc
