"""Unit tests start no real process, unless a test says it does.

One autouse guard, ``no_real_processes``, refuses every process a unit test starts: through
``pineinstall.run``, ``subprocess``, ``os.system`` or a fork/spawn. It fails the test with
``pytest.fail`` (a ``BaseException``), so code under test that catches ``Exception`` cannot swallow
the refusal. The guard sits under everything that starts processes, so it also catches modules that
imported ``run`` by name (``from pineinstall.run import run``).

A test that fakes a tool replaces ``pineinstall.run.run`` (or a module's own ``run``) with a
recorder as before; the guard only sees what would reach a real process.

A test that means to start real processes (the CLI in a subprocess, a reference tool such as
``grub-editenv`` or ``ignition-validate``, a wheel build, ``pineinstall.run`` itself) carries the
marker ``real_processes``: ``@pytest.mark.real_processes`` on the test, or
``pytestmark = pytest.mark.real_processes`` for a file whose tests all do. The marker is the one place
that says so; there are no per-file guards.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest


def _refuser(what: str) -> Callable[..., None]:
    def refuse(*args: object, **kwargs: object) -> None:
        shown = args[1] if what == "subprocess.Popen" and len(args) > 1 else args
        pytest.fail(
            f"a unit test started a real process ({what}: {shown!r}); fake the tool, or mark the test"
            " @pytest.mark.real_processes if it means to run it",
            pytrace=True,
        )

    return refuse


@pytest.fixture(autouse=True)
def no_real_processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("real_processes"):
        return
    # Popen.__init__ covers subprocess.run/check_output, os.popen, asyncio and pineinstall.run,
    # whatever name the caller imported.
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuser("subprocess.Popen"))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
        monkeypatch.setattr(os, name, _refuser(f"os.{name}"))
