"""Fixtures of the VM tier. Every test under tests/vm/ is marked `vm`.

    def test_x(run_in_guest):
        r = run_in_guest("mdadm --version", timeout=120)

`run_in_guest` and `boot_disk` are the harness functions (see harness/qemu.py), available once QEMU is
installed and the guest image is built (cached under ~/.cache/pineinstall-tests/). Tests skip, with the
reason, only when qemu-system-x86_64 is missing; a failing image build is an error, not a skip.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

_HERE = Path(__file__).resolve().parent

# CI stops a run at 90 minutes and a run that overruns lands nothing. Collection (this import) happens
# when the session starts, so past this many minutes no further guest is started: the remaining VM
# tests are skipped, saying so, instead of the whole run being cut off. PINE_VM_BUDGET_MIN=0: no limit.
_SESSION_START = time.monotonic()
_BUDGET_MIN = float(os.environ.get("PINE_VM_BUDGET_MIN", "72"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.vm)


@pytest.fixture(autouse=True)
def _vm_time_budget() -> None:
    spent = (time.monotonic() - _SESSION_START) / 60
    if _BUDGET_MIN and spent > _BUDGET_MIN:
        pytest.skip(f"VM time budget spent: {spent:.0f} of {_BUDGET_MIN:.0f} min (PINE_VM_BUDGET_MIN)")


@pytest.fixture(scope="session")
def vm_image() -> harness.GuestImage:
    """The cached guest image (built on first use: a few minutes, as root)."""
    if harness.qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    return harness.ensure_guest_image()


@pytest.fixture
def run_in_guest(vm_image: harness.GuestImage):
    return harness.run_in_guest


@pytest.fixture
def boot_disk(vm_image: harness.GuestImage):
    return harness.boot_disk


@pytest.fixture(scope="session")
def built_iso():
    """The installer ISO and PXE files of this checkout: built once per session (cached by its inputs)."""
    from iso.installer.build import ensure_iso

    built = ensure_iso()
    m = built.manifest
    print(f"\nISO {m['iso_bytes'] / 2**20:.1f} MiB, squashfs {m['pxe']['rootfs.squashfs'] / 2**20:.1f} MiB, "
          f"initrd {m['pxe']['initrd.img'] / 2**20:.1f} MiB (built in {m['build_seconds']} s)")  # fmt: skip
    return built
