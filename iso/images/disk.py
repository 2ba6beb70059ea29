"""The bootable disks: GPT (BIOS boot, ESP, ext4 root) with GRUB for BIOS and UEFI, plain or OSTree.

Layout (partition names as on Pine/FCOS): 1 ``BIOS-BOOT`` 1 MiB (ef02), 2 ``EFI-SYSTEM`` vfat (ef00),
3 ``root`` ext4 labelled ``root``. GRUB's config is ``/boot/grub/grub.cfg`` on the root filesystem for
both firmwares: BIOS through core.img in the BIOS boot partition (grub-install onto a loop device),
UEFI through ``EFI/BOOT/BOOTX64.EFI`` (grub-mkimage with every module built in and an early config that
finds the root by UUID), written into the ESP with mtools since this host cannot mount vfat.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from .build import ESP_MIB, HOSTNAME, OS_NAME, OSTREE_REF, log, run

GRUB_BIOS_MODULES = "part_gpt ext2 biosdisk"
GRUB_EFI_MODULES = (
    "part_gpt part_msdos ext2 fat normal linux boot configfile search search_fs_uuid search_fs_file "
    "search_label serial terminal echo test gzio loadenv cat ls efi_gop efi_uga all_video sleep reboot "
    "halt minicmd"
)
DEFAULT_KARGS = "rw console=tty0 console=ttyS0,115200n8"
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}

CONSOLE_BLOCK = """# CONSOLE-SETTINGS-START
serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1
terminal_input serial console
terminal_output serial console
# CONSOLE-SETTINGS-END"""


def _size_mib(root: Path) -> int:
    used = int(run(["du", "-sb", "--apparent-size", root]).stdout.split()[0])
    want = used * 5 // 4 // 2**20 + 256 + ESP_MIB + 2
    return max(1024, -(-want // 64) * 64)


def _partition(img: Path, size_mib: int) -> None:
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


def _partx(dev: str) -> None:
    """Partition nodes for dev: a reused loop device may still have stale ones (then -a fails)."""
    if os.path.exists(f"{dev}p1"):
        run(["partx", "-u", dev])
    else:
        run(["partx", "-a", dev])
    if not os.path.exists(f"{dev}p3"):
        raise RuntimeError(f"image build: no partition nodes for {dev} after partx")


@contextmanager
def loop_device(img: Path):
    """img on a loop device with partition nodes (the host kernel parses no tables: partx does)."""
    dev = run(["losetup", "--find", "--show", img]).stdout.strip()
    try:
        _partx(dev)
        yield dev
    finally:
        subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextmanager
def mounted(dev: str, where: Path):
    where.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "ext4", dev, where])
    try:
        yield where
    finally:
        subprocess.run(["sync", "-f", str(where)], capture_output=True)
        run(["umount", where])


def _esp(part: str, efi_binary: Path) -> None:
    run(["mkfs.vfat", "-n", "EFI-SYSTEM", part])
    run(["mmd", "-i", part, "::/EFI", "::/EFI/BOOT"], env=MTOOLS_ENV)
    run(["mcopy", "-i", part, efi_binary, "::/EFI/BOOT/BOOTX64.EFI"], env=MTOOLS_ENV)


def _grub(dev: str, mnt: Path, root_uuid: str, tmp: Path) -> Path:
    """GRUB for BIOS into dev (config under mnt/boot/grub) and the UEFI binary (returned)."""
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


def grub_cfg(kernel_version: str, root_uuid: str) -> str:
    return f"""# grub.cfg of a Pine test image (written by iso/images; there is no grub-mkconfig here)
set timeout=1
set default=0
insmod part_gpt
insmod ext2
{CONSOLE_BLOCK}
search --no-floppy --fs-uuid --set=root {root_uuid}
menuentry 'Pine test image ({kernel_version})' --id pine {{
	linux /boot/vmlinuz-{kernel_version} root=UUID={root_uuid} {DEFAULT_KARGS}
	initrd /boot/initrd.img-{kernel_version}
}}
"""


def build_raw(root: Path, img: Path, kernel_version: str, root_uuid: str) -> dict:
    """A raw disk whose root filesystem is root (a plain Debian tree with its kernel under /boot)."""
    (root / "etc" / "fstab").write_text(f"UUID={root_uuid} / ext4 defaults 0 0\n")
    grub_dir = root / "boot" / "grub"
    grub_dir.mkdir(parents=True, exist_ok=True)
    (grub_dir / "grub.cfg").write_text(grub_cfg(kernel_version, root_uuid))
    size = _size_mib(root)
    log(f"raw disk: {size} MiB, mkfs.ext4 -d")
    _partition(img, size)
    with loop_device(img) as dev:
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", root_uuid, "-d", root, f"{dev}p3"])
        with mounted(f"{dev}p3", img.parent / "mnt") as mnt:
            log("grub-install (BIOS), grub-mkimage (UEFI)")
            efi = _grub(dev, mnt, root_uuid, img.parent)
        _esp(f"{dev}p2", efi)
    return {"size_mib": size, "root_uuid": root_uuid, "layout": "BIOS-BOOT,EFI-SYSTEM,root"}


def _ostree_tree(root: Path, kernel_version: str) -> None:
    """Turn a Debian root into OSTree's commit layout (in place)."""
    moddir = root / "usr" / "lib" / "modules" / kernel_version
    shutil.move(root / "boot" / f"vmlinuz-{kernel_version}", moddir / "vmlinuz")
    shutil.move(root / "boot" / f"initrd.img-{kernel_version}", moddir / "initramfs.img")
    for leftover in (root / "boot").iterdir():
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (root / "etc" / "fstab").write_text("# OSTree: / and /var are set up by the initramfs\n")
    shutil.move(root / "etc", root / "usr" / "etc")
    for d in ("dev", "var", "home", "root"):
        shutil.rmtree(root / d)
    (root / "dev").mkdir()
    (root / "var").mkdir()
    (root / "sysroot").mkdir()
    (root / "home").symlink_to("var/home")
    (root / "root").symlink_to("var/roothome")
    (root / "ostree").symlink_to("sysroot/ostree")
    (root / "usr" / "lib" / "tmpfiles.d" / "pine-ostree.conf").write_text(
        "# /var starts empty in an OSTree deployment\nd /var/home 0755 - - -\nd /var/roothome 0700 - - -\n"
        "d /var/lib 0755 - - -\nd /var/log 0755 - - -\nd /var/tmp 1777 - - -\nd /var/cache 0755 - - -\n"
    )


def build_ostree(root: Path, tmp: Path, img: Path, kernel_version: str, root_uuid: str) -> dict:
    """A disk whose root filesystem is an OSTree sysroot with one deployment of root."""
    from pineinstall.boot import bls

    _ostree_tree(root, kernel_version)
    size = _size_mib(root)
    log(f"ostree disk: {size} MiB")
    _partition(img, size)
    with loop_device(img) as dev:
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", root_uuid, f"{dev}p3"])
        with mounted(f"{dev}p3", tmp / "mnt") as mnt:
            repo = mnt / "ostree" / "repo"
            run(["ostree", "admin", "init-fs", mnt])
            run(["ostree", "admin", "os-init", f"--sysroot={mnt}", OS_NAME])
            run(["ostree", f"--repo={repo}", "config", "set", "sysroot.bootloader", "none"])
            log("ostree commit")
            commit = run(
                [
                    "ostree", f"--repo={repo}", "commit", f"--branch={OSTREE_REF}", f"--tree=dir={root}",
                    "--subject=Pine test image", "--no-xattrs",
                ]
            ).stdout.strip()  # fmt: skip
            log("ostree admin deploy")
            # --karg-append: --karg replaces an argument with the same key (console=tty0 by console=ttyS0)
            kargs = [f"--karg-append={a}" for a in [f"root=UUID={root_uuid}", *DEFAULT_KARGS.split()]]
            run(["ostree", "admin", "deploy", f"--sysroot={mnt}", f"--os={OS_NAME}", *kargs, OSTREE_REF])
            cfg = mnt / "boot" / "grub" / "grub.cfg"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(CONSOLE_BLOCK + "\n")  # the block write_grub_cfg keeps
            bls.write_grub_cfg(mnt, cfg)
            efi = _grub(dev, mnt, root_uuid, tmp)
            entries = sorted(p.name for p in (mnt / "boot" / "loader" / "entries").glob("*.conf"))
            deploy = [
                p.name for p in (mnt / "ostree" / "deploy" / OS_NAME / "deploy").iterdir() if p.is_dir()
            ]
        _esp(f"{dev}p2", efi)
    return {
        "size_mib": size,
        "root_uuid": root_uuid,
        "layout": "BIOS-BOOT,EFI-SYSTEM,root(ostree sysroot)",
        "ostree_os": OS_NAME,
        "ostree_ref": OSTREE_REF,
        "ostree_commit": commit,
        "bls_entries": entries,
        "deployments": deploy,
        "hostname": HOSTNAME,
    }
