"""The VM test tier: QEMU (TCG) guests built from Debian's packages.

    from harness import DiskSpec, run_in_guest, boot_disk

    r = run_in_guest("mdadm --create ...", disks=[DiskSpec("a", "256M")], timeout=120)
    r.rc, r.output, r.serial_log

See qemu.run_in_guest and qemu.boot_disk for the arguments, image.py for the cached guest image.
"""

from .image import GuestImage, cache_dir, ensure_guest_image
from .qemu import (
    BootResult,
    DiskSpec,
    GuestError,
    GuestResult,
    GuestTimeout,
    boot_disk,
    qemu_binary,
    run_in_guest,
)

__all__ = [
    "BootResult",
    "DiskSpec",
    "GuestError",
    "GuestImage",
    "GuestResult",
    "GuestTimeout",
    "boot_disk",
    "cache_dir",
    "ensure_guest_image",
    "qemu_binary",
    "run_in_guest",
]
