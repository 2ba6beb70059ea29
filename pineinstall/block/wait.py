"""Waiting for device nodes to appear after partitioning, RAID or LUKS creation.

With udev, ``udevadm settle`` lets the links appear first; without it, the kernel's devtmpfs makes
the nodes itself and names are resolved through :mod:`.discover`; both end in the same polling.
"""

from __future__ import annotations

import time

from pineinstall.block import discover
from pineinstall.run import run


class DeviceTimeout(TimeoutError):
    pass


def settle(timeout: float = 30.0) -> None:
    if discover.udev_running():
        run(["udevadm", "settle", f"--timeout={int(timeout)}"], check=False)


def wait_for(path: str, timeout: float = 30.0) -> str:
    """Wait until ``path`` names a block device; return its kernel node."""
    settle(timeout)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        found = discover.resolve(path)
        if found and discover.is_block(found):
            return found
        if time.monotonic() >= deadline:
            raise DeviceTimeout(f"device {path} did not appear within {timeout:g} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
