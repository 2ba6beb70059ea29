"""The integration tier: real loop devices and real tools, as root.

By directory, for every test here (files do not repeat it):

- the ``integration`` marker is added (``-m "not integration"`` leaves the tier out);
- without root or without loop devices the test is skipped, the reason naming what is missing;
- ``@pytest.mark.needs("sgdisk", "mkfs.ext4", ...)`` (or ``pytestmark = pytest.mark.needs(...)``)
  skips it when one of those tools (a name on PATH or an absolute path) is not installed, the reason
  naming the missing ones.

Tests of the VM tier that live here (marked ``vm``: ``test_disks_vm.py``) are left as they are.

SIGINT is given back its default action when this session started with it ignored (a background
job of a shell without job control, as scripts/test runs this tier): the programs the tests start
inherit the disposition, and an ignored SIGINT would make the tests that interrupt them wrong.

Shared fixtures: ``sh`` (run a command, fail on a non-zero exit, return its stdout), ``loops``
(scratch loop devices, detached at the end with whatever was mounted or swapped on them),
``mount`` (mount a device, unmounted at the end) and ``gpg_key`` (two signing keys, one trusted).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .image_helpers import mounted, tools_missing
from .image_helpers import sh as run_tool

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # exec gives the children SIG_DFL
from .test_disks_support import Loops
from .test_disks_support import sh as run_checked

HERE = Path(__file__).resolve().parent


@functools.cache
def tier_missing() -> str | None:
    """Why this machine cannot run the integration tier, or None when it can."""
    if os.geteuid() != 0:
        return "integration tests need root (loop devices, mount, chown)"
    if not os.path.exists("/dev/loop-control") or shutil.which("losetup") is None:
        return "integration tests need loop devices (/dev/loop-control and losetup)"
    return None


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marker added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.resolve().parents or item.get_closest_marker("vm"):
            continue
        item.add_marker(pytest.mark.integration)
        why = tier_missing()
        if why:
            item.add_marker(pytest.mark.skip(reason=why))
            continue
        missing = [
            tool for mark in item.iter_markers("needs") for tool in mark.args if not shutil.which(tool)
        ]
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)} (not installed)"))


@pytest.fixture
def sh() -> Callable[..., str]:
    """``sh("sgdisk", "-p", dev)``: stdout as text; a non-zero exit fails with its stderr.
    ``check=False`` returns whatever came out; ``input=`` bytes go to stdin."""
    return run_checked


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[Loops]:
    """``loops.make(size_mib)`` -> (device, backing file); all detached at the end."""
    made = Loops(tmp_path)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def mount() -> Iterator[Callable[..., Path]]:
    """``mount(dev, where, *options)`` -> where; unmounted at the end, last mounted first."""
    with contextlib.ExitStack() as stack:

        def mount_one(dev: str, where: Path, *options: str) -> Path:
            return stack.enter_context(mounted(dev, where, *options))

        yield mount_one


@pytest.fixture(scope="session")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A GnuPG home with keys for signer@ and other@example.test, and a keyring trusting signer@ only:
    ``{"home": ..., "keyring": ...}``."""
    if tools_missing("gpg"):
        pytest.skip("gpg is not installed")
    d = tmp_path_factory.mktemp("gpg")
    home = d / "home"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": os.fspath(home)}
    for name in ("Signer <signer@example.test>", "Other <other@example.test>"):
        run_tool("gpg", "--batch", "--passphrase", "", "--quick-gen-key", name, "ed25519", "sign", "never", env=env)
    run_tool("gpg", "--batch", "--export", "-o", d / "trusted.gpg", "signer@example.test", env=env)
    return {"home": home, "keyring": d / "trusted.gpg"}
