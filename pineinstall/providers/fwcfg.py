"""QEMU's firmware configuration device: ``-fw_cfg name=opt/com.coreos/config,file=CONFIG``.

Linux shows fw_cfg entries under ``/sys/firmware/qemu_fw_cfg/by_name/NAME/raw`` once the
``qemu_fw_cfg`` module is loaded (it is a module in most distribution kernels, and nothing loads it
by itself: no udev rule matches the device), so it is loaded when the directory is missing. The
``raw`` file's size is not trustworthy (sysfs reports 4096 or 0 whatever the entry holds): it is
read until end of file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from pineinstall.providers import ProviderError

SYSFS = "/sys/firmware/qemu_fw_cfg"
NAME = "opt/com.coreos/config"  # the name Ignition reads, so the same qemu command line works
MODULE = "qemu_fw_cfg"
CHUNK = 1 << 16


def load_module() -> str:
    """``modprobe qemu_fw_cfg``: "" when it loaded, else why not (no such module, no modprobe)."""
    from pineinstall.run import CommandError, run

    try:
        run(["modprobe", MODULE])
    except CommandError as exc:
        return str(exc)
    return ""


def read_raw(path: str) -> bytes:
    """All of a sysfs file whose reported size may be wrong."""
    chunks = []
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def entry_path(sysfs: str = SYSFS, name: str = NAME) -> str:
    return os.path.join(sysfs, "by_name", *name.split("/"), "raw")


def fetch(
    sysfs: str = SYSFS,
    name: str = NAME,
    *,
    modprobe: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[str, bytes] | None:
    """(where, config bytes) when QEMU passed the entry; None otherwise, and ``log`` says why.
    ``modprobe`` (default: only for the real sysfs path) loads the module when the directory is
    missing."""
    if modprobe is None:
        modprobe = sysfs == SYSFS
    failed = ""
    if not os.path.isdir(sysfs) and modprobe:
        failed = load_module()
    if not os.path.isdir(sysfs):
        if log:
            log(f"fw_cfg: no {sysfs}" + (f" ({failed})" if failed else " (not a QEMU machine)"))
        return None
    path = entry_path(sysfs, name)
    try:
        return f"fw_cfg {name}", read_raw(path)
    except FileNotFoundError:
        if log:
            log(f"fw_cfg: no entry {name}")
        return None
    except OSError as exc:
        raise ProviderError(f"cannot read fw_cfg entry {name} ({path}): {exc.strerror or exc}") from exc
