"""QEMU's firmware configuration device: ``-fw_cfg name=opt/com.coreos/config,file=CONFIG``.

Linux shows fw_cfg entries under ``/sys/firmware/qemu_fw_cfg/by_name/NAME/raw`` once the
``qemu_fw_cfg`` module is loaded (it is a module in most distribution kernels, and nothing loads it
by itself: no udev rule matches the device), so it is loaded when the directory is missing. The
``raw`` file's size is not trustworthy (sysfs reports 4096 or 0 whatever the entry holds): it is
read until end of file.
"""

from __future__ import annotations

import os

from pineinstall.providers import ProviderError

SYSFS = "/sys/firmware/qemu_fw_cfg"
NAME = "opt/com.coreos/config"  # the name Ignition reads, so the same qemu command line works
MODULE = "qemu_fw_cfg"
CHUNK = 1 << 16


def load_module() -> bool:
    """``modprobe qemu_fw_cfg``; False when it failed (no such module, not a QEMU machine)."""
    from pineinstall.run import CommandError, run

    try:
        run(["modprobe", MODULE])
    except CommandError:
        return False
    return True


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


def fetch(sysfs: str = SYSFS, name: str = NAME, *, modprobe: bool | None = None) -> tuple[str, bytes] | None:
    """(where, config bytes) when QEMU passed the entry; None otherwise. ``modprobe`` (default: only
    for the real sysfs path) loads the module when the directory is missing."""
    if modprobe is None:
        modprobe = sysfs == SYSFS
    if not os.path.isdir(sysfs) and modprobe:
        load_module()
    if not os.path.isdir(sysfs):
        return None
    path = entry_path(sysfs, name)
    try:
        return f"fw_cfg {name}", read_raw(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProviderError(f"cannot read fw_cfg entry {name} ({path}): {exc.strerror or exc}") from exc
