"""Disk assembly: Pine's GPT layout on an image file, loop devices, ext4 from a tree, GRUB for BIOS
and UEFI, the ESP (written with mtools: this host cannot mount vfat).

Layout (partition names as on Pine/FCOS): 1 ``BIOS-BOOT`` 1 MiB (ef02), 2 ``EFI-SYSTEM`` vfat (ef00),
3 ``root``. GRUB's config is ``/boot/grub/grub.cfg`` on the root for both firmwares: BIOS through
core.img in the BIOS boot partition (grub-install onto the loop device), UEFI through
``EFI/BOOT/BOOTX64.EFI`` (grub-mkimage with every module built in and an early config that finds the
root by UUID).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .debian import log, run

ESP_MIB = 63
GRUB_BIOS_MODULES = "part_gpt ext2 biosdisk"
GRUB_EFI_MODULES = (
    "part_gpt part_msdos ext2 fat normal linux boot configfile search search_fs_uuid search_fs_file "
    "search_label serial terminal echo test gzio loadenv cat ls efi_gop efi_uga all_video sleep reboot "
    "halt minicmd"
)
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}


def tree_bytes(root: Path) -> int:
    return int(run(["du", "-sb", "--apparent-size", root]).stdout.split()[0])


def disk_size_mib(root: Path) -> int:
    """A GPT disk for root: its size + 25 % + 256 MiB free, at least 1 GiB, a multiple of 64 MiB."""
    want = tree_bytes(root) * 5 // 4 // 2**20 + 256 + ESP_MIB + 2
    return max(1024, -(-want // 64) * 64)


def partition(img: Path, size_mib: int) -> None:
    """A sparse img of size_mib with Pine's GPT layout (BIOS-BOOT, EFI-SYSTEM, root)."""
    with open(img, "wb") as fh:
        fh.truncate(size_mib * 2**20)
    run(
        [
            "sgdisk", "-Z",
            "-n", "1:2048:+1M", "-t", "1:ef02", "-c", "1:BIOS-BOOT",
            "-n", f"2:0:+{ESP_MIB}M", "-t", "2:ef00", "-c", "2:EFI-SYSTEM",
            "-n", "3:0:0", "-t", "3:8300", "-c", "3:root",
            img,
        ]
    )  # fmt: skip


def ext4_image(root: Path, img: Path, label: str, spare_mib: int = 512) -> int:
    """An ext4 filesystem image (no partition table) holding root, with spare_mib free; its MiB."""
    size_mib = tree_bytes(root) * 13 // 10 // 2**20 + spare_mib
    with open(img, "wb") as fh:
        fh.truncate(size_mib * 2**20)
    run(["mkfs.ext4", "-q", "-F", "-L", label, "-E", "lazy_itable_init=1", "-d", root, img])
    return size_mib


def _partx(dev: str) -> None:
    """Partition nodes for dev: a reused loop device may still have stale ones (then -a fails)."""
    if os.path.exists(f"{dev}p1"):
        run(["partx", "-u", dev])
    else:
        run(["partx", "-a", dev])
    if not os.path.exists(f"{dev}p3"):
        raise RuntimeError(f"image build: no partition nodes for {dev} after partx")


@contextmanager
def loop_device(img: Path) -> Iterator[str]:
    """img on a loop device with partition nodes (the host kernel parses no tables: partx does)."""
    dev = run(["losetup", "--find", "--show", img]).stdout.strip()
    try:
        _partx(dev)
        yield dev
    finally:
        subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextmanager
def mounted(dev: str, where: Path) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "ext4", dev, where])
    try:
        yield where
    finally:
        subprocess.run(["sync", "-f", str(where)], capture_output=True)
        run(["umount", where])


def write_esp(part: str, efi_binary: Path) -> None:
    """A vfat ESP on part with efi_binary as the removable-media path EFI/BOOT/BOOTX64.EFI."""
    run(["mkfs.vfat", "-n", "EFI-SYSTEM", part])
    run(["mmd", "-i", part, "::/EFI", "::/EFI/BOOT"], env=MTOOLS_ENV)
    run(["mcopy", "-i", part, efi_binary, "::/EFI/BOOT/BOOTX64.EFI"], env=MTOOLS_ENV)


def install_grub(dev: str, mnt: Path, root_uuid: str, tmp: Path) -> Path:
    """GRUB for BIOS into dev (config under mnt/boot/grub); returns the UEFI binary (for write_esp)."""
    log("grub-install (BIOS), grub-mkimage (UEFI)")
    run(
        [
            "grub-install", "--target=i386-pc", f"--boot-directory={mnt / 'boot'}",
            f"--modules={GRUB_BIOS_MODULES}", "--no-floppy", dev,
        ]
    )  # fmt: skip
    # Modules for insmod under UEFI too (the binary has all it needs built in).
    shutil.copytree("/usr/lib/grub/x86_64-efi", mnt / "boot" / "grub" / "x86_64-efi", dirs_exist_ok=True)
    early = tmp / "early.cfg"
    early.write_text(f"search --no-floppy --fs-uuid --set=root {root_uuid}\nset prefix=($root)/boot/grub\n")
    efi = tmp / "BOOTX64.EFI"
    run(
        [
            "grub-mkimage", "-O", "x86_64-efi", "-o", efi, "-p", "/boot/grub", "-c", early,
            *GRUB_EFI_MODULES.split(),
        ]
    )  # fmt: skip
    return efi


def copy_sparse(src: Path, out: Path) -> Path:
    """A writable copy of a cached file (sparse, reflinked where the filesystem can)."""
    run(["cp", "--sparse=always", "--reflink=auto", src, out])
    return out


def overlay(base: Path, out: Path, base_format: str = "raw") -> Path:
    """A qcow2 at out whose reads fall through to base (never written): a disk copy in milliseconds."""
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", base_format, "-b", base.resolve(), out])
    return out
