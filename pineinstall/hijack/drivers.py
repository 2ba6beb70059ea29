"""The host's disk and NIC drivers against the drivers Pine's kernel has.

Pine boots its own kernel (iso/lib/kernel.py): a disk or a NIC the host's kernel drives with a driver
Pine's kernel lacks (NVMe, Xen blkfront, Hyper-V storvsc, vmxnet3, ena...) leaves a written Pine that
finds no root or no network. The probe (``probe.SCRIPT``, "drivers") prints, per block device and per
NIC, the drivers of its sysfs device and of its parents up to the bus adapter: ``[bus, driver,
module]``. The image says what its kernel has: ``modules.builtin`` (and ``modules.dep`` for a kernel
with loadable modules) under ``/usr/lib/modules/RELEASE`` in the provisioned disk's deployment.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

# Where a Pine root keeps its kernel's module lists: in each OSTree deployment, or in a plain root.
MODULES_GLOBS = ("ostree/deploy/*/deploy/*/usr/lib/modules/*", "usr/lib/modules/*", "lib/modules/*")
# Drivers whose sysfs name is not their module's name, for a host whose kernel has them built in
# without a /sys/module entry (a loaded module always shows its name: driver/module).
DRIVER_MODULES = {"sd": "sd_mod", "sr": "sr_mod", "vbd": "xen_blkfront", "vif": "xen_netfront"}
# The directories of modules.builtin worth naming in a refusal, per kind of device.
SHOWN = {
    "disk": ("/drivers/block/", "/drivers/scsi/", "/drivers/ata/", "/drivers/nvme/"),
    "NIC": ("/drivers/net/",),
}


@dataclass(frozen=True)
class Driver:
    """One driver bound to the device or to one of its parents (sysfs ``driver`` and ``driver/module``)."""

    bus: str  # the device's subsystem: "virtio", "pci", "scsi", "xen", "vmbus"...
    name: str  # the driver's name in sysfs: "virtio_blk", "virtio-pci", "sd", "vbd"...
    module: str  # its module's name, "" when the host's kernel has it built in without one

    @property
    def wanted(self) -> str:
        """The module name Pine's kernel must have, spelt as modprobe compares them (- is _)."""
        return norm(self.module or DRIVER_MODULES.get(self.name, self.name))

    def __str__(self) -> str:
        shown = (
            self.name
            if not self.module or norm(self.module) == norm(self.name)
            else f"{self.name} ({self.module})"
        )
        return f"{shown} on {self.bus}" if self.bus else shown


@dataclass(frozen=True)
class KernelDrivers:
    """The drivers of the image's kernel: module name -> its path in modules.builtin or modules.dep."""

    release: str
    modules: dict[str, str]

    def shown(self, kind: str) -> list[str]:
        return sorted(n for n, p in self.modules.items() if any(d in f"/{p}" for d in SHOWN[kind]))


def norm(name: str) -> str:
    return name.replace("-", "_")


def module_name(path: str) -> str:
    """kernel/drivers/block/xen-blkfront.ko(.xz) -> xen_blkfront."""
    base = path.rsplit("/", 1)[-1]
    return norm(base.split(".ko", 1)[0])


def chains(doc: dict[str, Any], kind: str) -> dict[str, tuple[Driver, ...]]:
    """The probe's "drivers" part of kind "block" or "net": device name -> its drivers, nearest first.
    A device with no sysfs device (loop, md, a bridge) is absent; one whose device has no driver
    anywhere up to the root maps to ()."""
    out = {}
    for name, found in ((doc.get("drivers") or {}).get(kind) or {}).items():
        out[name] = tuple(
            Driver(str(e[0] or ""), str(e[1] or ""), str(e[2] or ""))
            for e in found or []
            if isinstance(e, list) and len(e) == 3 and e[1]
        )
    return out


def read_lists(directory: str) -> dict[str, str]:
    """modules.builtin and modules.dep of one /usr/lib/modules/RELEASE: module name -> path."""
    out = {}
    for name in ("modules.builtin", "modules.dep"):
        try:
            with open(os.path.join(directory, name)) as fh:
                for line in fh:
                    path = line.split(":", 1)[0].strip()  # modules.dep: "path: its dependencies"
                    if path:
                        out[module_name(path)] = path
        except FileNotFoundError:
            continue
    return out


def image_drivers(root: str) -> KernelDrivers | None:
    """The kernel's drivers in a mounted Pine root (a sysroot or a plain root); None when it carries no
    modules.builtin (an image built otherwise: nothing to compare with). Several deployments or kernels:
    only the drivers all of them have (whichever boots must find the disk)."""
    found = []
    for pattern in MODULES_GLOBS:
        for directory in sorted(glob.glob(os.path.join(root, pattern))):
            if os.path.isfile(os.path.join(directory, "modules.builtin")):
                found.append((os.path.basename(directory), read_lists(directory)))
    if not found:
        return None
    common = set(found[0][1]).intersection(*(set(m) for _, m in found[1:]))
    return KernelDrivers(", ".join(sorted({r for r, _ in found})), {n: found[0][1][n] for n in common})


def missing(drivers: tuple[Driver, ...], have: KernelDrivers) -> list[Driver]:
    return [d for d in drivers if d.wanted not in have.modules]


def describe(drivers: tuple[Driver, ...] | None) -> str:
    """For the plan: "virtio_blk on virtio, virtio-pci (virtio_pci) on pci"."""
    if drivers is None:
        return "no sysfs device"
    return ", ".join(map(str, drivers)) or "none found"
