"""The VM test tier: QEMU (TCG) guests built from Debian's packages.

    from harness import DiskSpec, run_in_guest, boot_disk

    r = run_in_guest("mdadm --create ...", disks=[DiskSpec("a", "256M")], timeout=120)
    r.rc, r.output, r.serial_log

See qemu.run_in_guest and qemu.boot_disk for the arguments, image.py for the cached guest image.
"""

import sys
from pathlib import Path

# The guest image is built with the repository's image library (iso.lib), which is not installed.
_REPO = str(Path(__file__).resolve().parents[3])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from .image import GuestImage, cache_dir, ensure_guest_image  # noqa: E402
from .qemu import (  # noqa: E402
    BootResult,
    DiskSpec,
    GuestError,
    GuestResult,
    GuestTimeout,
    RunningGuest,
    boot_disk,
    qemu_binary,
    run_command_line,
    run_in_guest,
    running_command_line,
    running_disk,
)
from .ssh import free_port, keypair, ssh, wait_for_ssh  # noqa: E402

__all__ = [
    "BootResult",
    "DiskSpec",
    "GuestError",
    "GuestImage",
    "GuestResult",
    "GuestTimeout",
    "RunningGuest",
    "boot_disk",
    "cache_dir",
    "ensure_guest_image",
    "free_port",
    "keypair",
    "qemu_binary",
    "run_command_line",
    "run_in_guest",
    "running_command_line",
    "running_disk",
    "ssh",
    "wait_for_ssh",
]
