"""The test images' disks: a plain Debian root or an OSTree sysroot on Pine's GPT layout (see
``iso.lib.disk``), with GRUB for BIOS and UEFI and a grub.cfg written by ``pineinstall.boot.grub``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from iso.lib.debian import log, run
from iso.lib.disk import disk_size_mib, install_grub, loop_device, mounted, partition, write_esp

from .build import HOSTNAME, OS_NAME, OSTREE_REF

DEFAULT_KARGS = "rw console=tty0 console=ttyS0,115200n8"
GRUB_CONSOLES = ("ttyS0,115200n8", "tty0")  # GRUB's menu on the serial port and the screen


def console_block() -> str:
    from pineinstall.boot import grub, parse_console

    return "\n".join(grub.console_block(tuple(parse_console(c) for c in GRUB_CONSOLES)))


def grub_cfg(kernel_version: str, root_uuid: str) -> str:
    from pineinstall.boot.grub import MenuEntry, render_config

    entry = MenuEntry(
        f"Pine test image ({kernel_version})",
        f"/boot/vmlinuz-{kernel_version}",
        f"root=UUID={root_uuid} {DEFAULT_KARGS}",
        initrd=f"/boot/initrd.img-{kernel_version}",
        id="pine",
    )
    return render_config(
        [entry],
        GRUB_CONSOLES,
        header="grub.cfg of a Pine test image (written by iso/images; there is no grub-mkconfig here)",
        root_uuid=root_uuid,
        modules=("part_gpt", "ext2"),
    )


def build_raw(root: Path, img: Path, kernel_version: str, root_uuid: str) -> dict:
    """A raw disk whose root filesystem is root (a plain Debian tree with its kernel under /boot)."""
    (root / "etc" / "fstab").write_text(f"UUID={root_uuid} / ext4 defaults 0 0\n")
    grub_dir = root / "boot" / "grub"
    grub_dir.mkdir(parents=True, exist_ok=True)
    (grub_dir / "grub.cfg").write_text(grub_cfg(kernel_version, root_uuid))
    size = disk_size_mib(root)
    log(f"raw disk: {size} MiB, mkfs.ext4 -d")
    partition(img, size)
    with loop_device(img) as dev:
        run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", root_uuid, "-d", root, f"{dev}p3"])
        with mounted(f"{dev}p3", img.parent / "mnt") as mnt:
            efi = install_grub(dev, mnt, root_uuid, img.parent)
        write_esp(f"{dev}p2", efi)
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
    (root / "usr" / "lib" / "tmpfiles.d").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "lib" / "tmpfiles.d" / "pine-ostree.conf").write_text(
        "# /var starts empty in an OSTree deployment\nd /var/home 0755 - - -\nd /var/roothome 0700 - - -\n"
        "d /var/lib 0755 - - -\nd /var/log 0755 - - -\nd /var/tmp 1777 - - -\nd /var/cache 0755 - - -\n"
    )


def build_ostree(
    root: Path,
    tmp: Path,
    img: Path,
    kernel_version: str,
    root_uuid: str,
    *,
    ref: str = OSTREE_REF,
    subject: str = "Pine test image",
    var_seed: Path | None = None,
    size_mib: int | None = None,
) -> dict:
    """A disk whose root filesystem is an OSTree sysroot with one deployment of root (committed as
    ref). var_seed: a tree copied into the stateroot's /var (a root without systemd-tmpfiles to
    create it at boot); size_mib: the disk's size (default: from the tree's)."""
    from pineinstall.boot import bls

    _ostree_tree(root, kernel_version)
    size = size_mib or disk_size_mib(root)
    log(f"ostree disk: {size} MiB")
    partition(img, size)
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
                    "ostree", f"--repo={repo}", "commit", f"--branch={ref}", f"--tree=dir={root}",
                    f"--subject={subject}", "--no-xattrs",
                ]
            ).stdout.strip()  # fmt: skip
            log("ostree admin deploy")
            # --karg-append: --karg replaces an argument with the same key (console=tty0 by console=ttyS0)
            kargs = [f"--karg-append={a}" for a in [f"root=UUID={root_uuid}", *DEFAULT_KARGS.split()]]
            run(["ostree", "admin", "deploy", f"--sysroot={mnt}", f"--os={OS_NAME}", *kargs, ref])
            if var_seed is not None:
                run(["cp", "-a", f"{var_seed}/.", mnt / "ostree" / "deploy" / OS_NAME / "var"])
            cfg = mnt / "boot" / "grub" / "grub.cfg"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(console_block() + "\n")  # the block write_grub_cfg keeps
            bls.write_grub_cfg(mnt, cfg)
            efi = install_grub(dev, mnt, root_uuid, tmp)
            entries = sorted(p.name for p in (mnt / "boot" / "loader" / "entries").glob("*.conf"))
            deploy = [
                p.name for p in (mnt / "ostree" / "deploy" / OS_NAME / "deploy").iterdir() if p.is_dir()
            ]
        write_esp(f"{dev}p2", efi)
    return {
        "size_mib": size,
        "root_uuid": root_uuid,
        "layout": "BIOS-BOOT,EFI-SYSTEM,root(ostree sysroot)",
        "ostree_os": OS_NAME,
        "ostree_ref": ref,
        "ostree_commit": commit,
        "bls_entries": entries,
        "deployments": deploy,
        "hostname": HOSTNAME,
    }
