"""The guest image: a Debian kernel, a busybox initramfs and an ext4 root disk, cached by their inputs.

Built from Debian's packages only (mmdebstrap minbase + a pinned linux-image .deb), without loop mounts
(`mkfs.ext4 -d`). The result lives in `~/.cache/pineinstall-tests/guest-<key>/`, where key hashes the
package list, the kernel pin and the source of this module, of stage 1 and of the image library it is
built with (``iso.lib``: mmdebstrap, the pinned kernel, the initramfs writer, ``cached_build``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from iso.lib import cache, debian, initramfs
from iso.lib.cache import file_lock
from iso.lib.debian import SUITE, kernel_abi, log
from iso.lib.disk import ext4_image

HERE = Path(__file__).resolve().parent
LIB = HERE.parents[2] / "iso" / "lib"

# Modules stage 1 needs to find the root disk and the per-run 9p share; the Debian root's own kmod
# loads everything else after switch_root. crc32c_generic is a soft dependency of ext4 that
# modules.dep does not list, so it is named explicitly and loaded first.
STAGE1_MODULES = ("crc32c_generic", "virtio_pci", "virtio_blk", "ext4", "9pnet_virtio", "9p")

PACKAGES = (
    *debian.python_packages(),  # pineinstall's dependencies (pyproject.toml)
    "mdadm",
    "cryptsetup",
    "dosfstools",
    "mtools",
    "gdisk",
    "fdisk",
    "parted",
    "e2fsprogs",
    "xfsprogs",
    "btrfs-progs",
    "squashfs-tools",
    "util-linux",
    "udev",
    "kmod",
    "iproute2",
    "busybox-static",
    "zstd",
    "xz-utils",
    "ca-certificates",
    # For later tiers (bootloaders, OSTree, images): cheaper to carry now than to rebuild every cache.
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "grub2-common",
    "efibootmgr",
    "extlinux",
    "syslinux-common",
    "ostree",
    "gpg",
    "rsync",
    "curl",
    "xorriso",
)

# Kernel module trees nobody boots in a test guest; dropping them halves the root disk.
PRUNE_MODULE_DIRS = (
    "sound",
    "drivers/gpu",
    "drivers/media",
    "drivers/net/wireless",
    "drivers/net/ethernet",
    "drivers/infiniband",
    "drivers/staging",
    "drivers/usb",
    "drivers/bluetooth",
    "drivers/iio",
    "drivers/isdn",
    "drivers/hid",
    "drivers/input",
    "drivers/mmc",
    "drivers/mtd",
    "drivers/video",
    "drivers/hwmon",
    "drivers/platform",
    "drivers/scsi/qla2xxx",
    "drivers/scsi/lpfc",
    "drivers/scsi/mpt3sas",
    "drivers/scsi/megaraid",
    "drivers/scsi/be2iscsi",
    "drivers/scsi/bfa",
    "net/wireless",
    "net/mac80211",
    "net/bluetooth",
)


@dataclass(frozen=True)
class GuestImage:
    """Paths of a built guest image (all read-only: QEMU opens the root with snapshot=on)."""

    directory: Path
    kernel: Path
    initrd: Path
    rootfs: Path
    kernel_version: str
    manifest: dict


def cache_dir() -> Path:
    """`~/.cache/pineinstall-tests`, or PINE_VM_CACHE when set."""
    return cache.cache_root()


def image_key() -> str:
    """Hash of everything that goes into the image; any change gives a new cache directory."""
    h = hashlib.sha256()
    h.update(json.dumps({"suite": SUITE, "kernel": kernel_abi(), "packages": PACKAGES}).encode())
    for path in (
        HERE / "image.py",
        HERE / "stage1_init.sh",
        *(LIB / f for f in ("debian.py", "initramfs.py", "disk.py")),
    ):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _prune_old(parent: Path, keep: Path) -> None:
    """Drop images of other keys (older builder versions): each is ~0.5 GB. Taken under the guest lock,
    so no guest is running from the one being removed."""
    with file_lock(parent / "qemu.lock"):
        for old in parent.glob("guest-*"):
            if old.is_dir() and old != keep and ".tmp-" not in old.name:
                shutil.rmtree(old, ignore_errors=True)
                (parent / f"{old.name}.lock").unlink(missing_ok=True)


def _build(tmp: Path) -> dict:
    root = tmp / "root"
    debian.mmdebstrap(PACKAGES, root)
    kernel = debian.install_kernel(root, drop=PRUNE_MODULE_DIRS)
    version = kernel["kernel_version"]
    debian.vmlinux(root / "boot" / f"vmlinuz-{version}", tmp / "vmlinux")
    shutil.rmtree(root / "boot")
    (root / "boot").mkdir()

    # Mount points of the harness; the rest of the guest's setup is per run (stage2_boot.sh).
    for d in ("mnt/pinerun", "mnt/share", "repo"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hostname").write_text("pine-guest\n")
    (root / "etc" / "fstab").write_text("# the VM test harness mounts everything itself\n")
    debian.drop_apt_state(root)

    log("writing the initramfs")
    init = (HERE / "stage1_init.sh").read_text()
    mods = initramfs.build(root, version, init, tmp / "initrd.img", STAGE1_MODULES)
    log("mkfs.ext4 -d (root disk)")
    ext4_image(root, tmp / "root.img", "pine-guest-root")  # 512 MiB spare for tests that write
    packages = debian.installed_packages(root)
    shutil.rmtree(root)
    return {"suite": SUITE, **kernel, "initramfs_modules": mods, "packages": packages}


def _load(directory: Path) -> GuestImage:
    manifest = json.loads((directory / "manifest.json").read_text())
    return GuestImage(
        directory=directory,
        kernel=directory / "vmlinux",
        initrd=directory / "initrd.img",
        rootfs=directory / "root.img",
        kernel_version=manifest["kernel_version"],
        manifest=manifest,
    )


def ensure_guest_image() -> GuestImage:
    """The cached guest image for the current inputs, building it first if needed (a few minutes)."""
    final = cache_dir() / f"guest-{image_key()}"
    fresh = not (final / "manifest.json").exists()
    cache.cached_build(final, _build, keep=("vmlinux", "initrd.img", "root.img"))
    if fresh:
        _prune_old(cache_dir(), final)
    return _load(final)


if __name__ == "__main__":
    img = ensure_guest_image()
    print(img.directory)
