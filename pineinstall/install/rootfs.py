"""Rootfs mode: DEST is partitioned and formatted here, a root filesystem (tarball or squashfs) is
unpacked onto it, and GRUB is installed for BIOS and UEFI (removable path ``EFI/BOOT/BOOTX64.EFI``).

Pine's default layout (GPT): 1 ``BIOS-BOOT`` 1 MiB (ef02), 2 ``EFI-SYSTEM`` vfat, 3 ``swap`` (unless
``--swap-size 0``), then ``root`` ext4 filling the disk. ``/etc/fstab`` names every filesystem by UUID.

The ESP is written with mtools (``mmd``/``mcopy -i PARTITION``) rather than mounted: it works the same
on an installer ISO and on hosts without vfat, and GRUB's UEFI binary is built with ``grub-mkimage``
(every module it needs built in, an early config that finds the root by UUID) because
``grub-install --target=x86_64-efi`` wants a mounted ESP and EFI variables.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pineinstall.block import blkid
from pineinstall.run import run
from pineinstall.stages import Log, StageError

MIB = 1 << 20
BIOS_MIB = 1
ESP_MIB = 127
FIRST_MIB = 1  # partitions start at 1 MiB
OVERHEAD_MIB = FIRST_MIB + BIOS_MIB + ESP_MIB + 2  # + the backup GPT, rounded up
MIN_ROOT_MIB = 64
DEFAULT_KARGS = ("rw",)
DEFAULT_CONSOLES = ("tty0", "ttyS0,115200n8")
GRUB_BIOS_MODULES = "part_gpt ext2 biosdisk"
GRUB_EFI_MODULES = (
    "part_gpt part_msdos ext2 fat normal linux boot configfile search search_fs_uuid search_fs_file "
    "search_label serial terminal echo test gzio loadenv cat ls efi_gop efi_uga all_video sleep reboot "
    "halt minicmd"
)
GRUB_I386_DIR = Path("/usr/lib/grub/i386-pc")
GRUB_EFI_DIR = Path("/usr/lib/grub/x86_64-efi")

MAGIC = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"hsqs", "squashfs"),
)
TAR_FILTERS = {"zstd": ["-I", "zstd -d"], "xz": ["-J"], "gzip": ["-z"], "bzip2": ["-j"], "tar": []}


@dataclass(frozen=True)
class Part:
    number: int
    name: str
    type_code: str
    mib: int  # 0: the rest of the disk
    fstype: str | None


@dataclass
class Layout:
    parts: list[Part]

    def by_name(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    @property
    def root(self) -> Part:
        found = self.by_name("root")
        assert found is not None
        return found

    def fixed_mib(self) -> int:
        return FIRST_MIB + sum(p.mib for p in self.parts) + 2


def default_layout(swap_bytes: int) -> Layout:
    parts = [Part(1, "BIOS-BOOT", "ef02", BIOS_MIB, None), Part(2, "EFI-SYSTEM", "ef00", ESP_MIB, "vfat")]
    if swap_bytes > 0:
        parts.append(Part(3, "swap", "8200", max(1, -(-swap_bytes // MIB)), "swap"))
    parts.append(Part(len(parts) + 1, "root", "8300", 0, "ext4"))
    return Layout(parts)


def sniff(path: str) -> str:
    """``tar`` (plain), a compressed tar (``zstd``, ``xz``, ``gzip``, ``bzip2``) or ``squashfs``."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise StageError(f"--rootfs {path}: {exc.strerror}") from exc
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    raise StageError(
        f"--rootfs {path}: neither a tarball (plain, zstd, xz, gzip, bzip2) nor a squashfs image"
    )


def tools(kind: str) -> list[str]:
    need = ["sgdisk", "sfdisk", "partx", "blkid", "mkfs.ext4", "mkfs.vfat", "mkswap", "mount", "umount"]
    need += ["grub-install", "grub-mkimage", "mmd", "mcopy"]
    if kind == "squashfs":
        need += ["cp"] if shutil.which("unsquashfs") is None else ["unsquashfs"]
    else:
        need += ["tar"] + (["zstd"] if kind == "zstd" else ["xz"] if kind == "xz" else [])
    return need


def preflight(path: str, kind: str, capacity: int | None, layout: Layout | None) -> int:
    """Bytes DEST needs at least (the layout plus the compressed root: a lower bound); refuses less.
    Also refuses when GRUB's platform files are missing."""
    size = os.path.getsize(path)
    need = ((layout.fixed_mib() if layout else 0) + MIN_ROOT_MIB) * MIB + size
    if capacity is not None and capacity < need:
        raise StageError(
            f"DEST is too small: the layout and the root filesystem need at least {need} bytes, it holds {capacity}"
        )
    for d in (GRUB_I386_DIR, GRUB_EFI_DIR):
        if not d.is_dir():
            raise StageError(f"{d} is missing (Debian: grub-pc-bin, grub-efi-amd64-bin)")
    return need


def partition(dev: str, layout: Layout, log: Log) -> None:
    """The layout's GPT on ``dev``: the scratch table's loop device (:mod:`.tables`), not DEST. It
    is all zeros (no ``--zap-all``: each sgdisk write sleeps a second for the kernel)."""
    argv = ["sgdisk"]
    for p in layout.parts:
        start = f"{FIRST_MIB}M" if p.number == 1 else "0"
        size = f"+{p.mib}M" if p.mib else "0"
        argv += [
            "-n",
            f"{p.number}:{start}:{size}",
            "-t",
            f"{p.number}:{p.type_code}",
            "-c",
            f"{p.number}:{p.name}",
        ]
    with log.op(f"partitioning ({', '.join(p.name for p in layout.parts)}) in the held table {dev}"):
        run([*argv, dev])


def make_filesystems(node_of: Callable[[int], str], layout: Layout, log: Log) -> dict[str, str]:
    """mkfs on every partition with a filesystem (``node_of(number)``: its device); name -> UUID."""
    uuids = {}
    for p in layout.parts:
        if p.fstype is None:
            continue
        n = node_of(p.number)
        if p.fstype == "ext4":
            argv = ["mkfs.ext4", "-q", "-F", "-L", p.name, n]
        elif p.fstype == "vfat":
            argv = ["mkfs.vfat", "-F", "32", "-n", "EFI-SYSTEM", n]
        elif p.fstype == "swap":
            argv = ["mkswap", "-f", "-L", p.name, n]
        else:
            continue
        with log.op(f"making {p.fstype} on {n} ({p.name})"):
            run(argv)
        uuids[p.name] = blkid.probe(n).get("UUID") or ""
    return uuids


def unpack(path: str, kind: str, mnt: str, log: Log, workdir: str | None = None) -> None:
    """The root filesystem unpacked into ``mnt``. A squashfs without ``unsquashfs`` is mounted in
    ``workdir`` (the run directory: a killed run's mount is released by the next run)."""
    with log.op(f"unpacking {path} ({kind})"):
        if kind != "squashfs":
            run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xp", *TAR_FILTERS[kind],
                 "-f", path, "-C", mnt])  # fmt: skip
        elif shutil.which("unsquashfs"):
            run(["unsquashfs", "-f", "-n", "-d", mnt, path])
        else:
            src = tempfile.mkdtemp(prefix="pineinstall-squashfs-", dir=workdir)
            try:
                run(["mount", "-t", "squashfs", "-o", "loop,ro", path, src])
                try:
                    run(["cp", "-a", f"{src}/.", mnt])
                finally:
                    run(["umount", src])
            finally:
                os.rmdir(src)


def write_fstab(mnt: str, layout: Layout, uuids: dict[str, str], log: Log) -> None:
    lines = ["# written by pineinstall (rootfs mode): filesystems by UUID"]
    lines.append(f"UUID={uuids['root']}\t/\text4\tdefaults\t0 1")
    if "EFI-SYSTEM" in uuids:
        (Path(mnt) / "boot" / "efi").mkdir(parents=True, exist_ok=True)
        lines.append(f"UUID={uuids['EFI-SYSTEM']}\t/boot/efi\tvfat\tumask=0077,nofail\t0 2")
    if "swap" in uuids:
        lines.append(f"UUID={uuids['swap']}\tnone\tswap\tsw,nofail\t0 0")
    fstab = Path(mnt) / "etc" / "fstab"
    fstab.parent.mkdir(parents=True, exist_ok=True)
    with log.op("writing /etc/fstab"):
        fstab.write_text("\n".join(lines) + "\n")


def _version_key(name: str) -> list[tuple[int, int | str]]:
    """Natural order: 6.1.0-10 after 6.1.0-9."""
    import re

    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t]


def find_kernel(mnt: str) -> tuple[str, str | None]:
    """(kernel, initramfs) as paths inside the root, e.g. ``/boot/vmlinuz-6.1.0-50-amd64``."""
    boot = Path(mnt) / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"), key=lambda p: _version_key(p.name))
    if not kernels:
        raise StageError("the root filesystem has no /boot/vmlinuz-*: nothing to boot")
    kernel = kernels[-1]
    version = kernel.name.removeprefix("vmlinuz-")
    for name in (f"initrd.img-{version}", f"initramfs-{version}.img", f"initramfs-{version}"):
        if (boot / name).is_file():
            return f"/boot/{kernel.name}", f"/boot/{name}"
    return f"/boot/{kernel.name}", None


def grub_cfg(root_uuid: str, kernel: str, initrd: str | None, consoles: tuple[str, ...]) -> str:
    from pineinstall.boot.grub import MenuEntry, render_config

    args = " ".join([f"root=UUID={root_uuid}", *DEFAULT_KARGS, *(f"console={c}" for c in consoles)])
    entry = MenuEntry("Pine", kernel, args, initrd=initrd, id="pine")
    return render_config(
        [entry],
        consoles,
        header="written by pineinstall (rootfs mode)",
        root_uuid=root_uuid,
        modules=("part_gpt", "ext2"),
    )


BIOS_BOOT_GUID = "21686148-6449-6E6F-744E-656564454649"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


def install_grub(
    dev: str, mnt: str, layout: Layout, uuids: dict[str, str], esp_node: str | None,
    consoles: tuple[str, ...], log: Log,
) -> None:  # fmt: skip
    """GRUB for Pine's default layout: BIOS boot code on ``dev`` (the held table), UEFI on the ESP."""
    install_grub_on(
        dev, mnt, uuids["root"], bios=layout.by_name("BIOS-BOOT") is not None,
        esp_node=esp_node, consoles=consoles, log=log,
    )  # fmt: skip


def install_grub_on(
    dev: str,
    mnt: str,
    root_uuid: str,
    *,
    bios: bool,
    esp_node: str | None,
    consoles: tuple[str, ...],
    log: Log,
) -> None:
    """grub.cfg under the root's /boot/grub; GRUB for BIOS (needs a BIOS boot partition on a GPT
    disk) and for UEFI at the removable path of the ESP."""
    kernel, initrd = find_kernel(mnt)
    grub_dir = Path(mnt) / "boot" / "grub"
    grub_dir.mkdir(parents=True, exist_ok=True)
    (grub_dir / "grub.cfg").write_text(grub_cfg(root_uuid, kernel, initrd, consoles or DEFAULT_CONSOLES))
    if bios:
        with log.op(f"installing GRUB for BIOS on {dev}"):
            run(["grub-install", "--target=i386-pc", f"--boot-directory={mnt}/boot",
                 f"--modules={GRUB_BIOS_MODULES}", "--no-floppy", dev])  # fmt: skip
    else:
        log.warning(f"{dev}: no BIOS boot partition: GRUB for BIOS not installed")
    if esp_node is None:
        log.warning(f"{dev}: no EFI system partition: GRUB for UEFI not installed")
        return
    with log.op("installing GRUB for UEFI at EFI/BOOT/BOOTX64.EFI"):
        shutil.copytree(GRUB_EFI_DIR, grub_dir / "x86_64-efi", dirs_exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="pineinstall-efi-") as tmp:
            early = Path(tmp) / "early.cfg"
            early.write_text(
                f"search --no-floppy --fs-uuid --set=root {root_uuid}\nset prefix=($root)/boot/grub\n"
            )
            efi = Path(tmp) / "BOOTX64.EFI"
            run(["grub-mkimage", "-O", "x86_64-efi", "-o", str(efi), "-p", "/boot/grub", "-c", str(early),
                 *GRUB_EFI_MODULES.split()])  # fmt: skip
            env = {"MTOOLS_SKIP_CHECK": "1"}
            run(["mmd", "-D", "s", "-i", esp_node, "::/EFI", "::/EFI/BOOT"], env=env, check=False)
            run(["mcopy", "-o", "-i", esp_node, str(efi), "::/EFI/BOOT/BOOTX64.EFI"], env=env)


# --- a layout from the config's storage (DEST named in storage.disks) --------------------------------


def config_root(storage_plan: Any) -> Any:
    """The filesystem the config mounts at /; StageError when there is none or /boot is separate."""
    roots = [f for f in storage_plan.filesystems if f.path and f.path.rstrip("/") == ""]
    if not roots:
        raise StageError("the config lays out DEST (storage.disks) but mounts no filesystem at /")
    if roots[0].format not in ("ext4", "xfs", "btrfs"):
        raise StageError(f"the root filesystem must be ext4, xfs or btrfs, not {roots[0].format}")
    if any(f.path and f.path.rstrip("/") == "/boot" for f in storage_plan.filesystems):
        raise StageError("a separate /boot filesystem is not supported in rootfs mode")
    return roots[0]


def esp_and_bios(
    storage_plan: Any, dest_node: str, node_of: Callable[[int], str] | None = None
) -> tuple[int | None, str | None]:
    """(the number of DEST's BIOS boot partition, the node of its EFI system partition formatted
    vfat). ``node_of(number)``: a partition's node as the plan's filesystems name it (default: the
    kernel's node)."""
    from pineinstall.install.dest import node

    bios, esp = None, None
    vfat = {f.node for f in storage_plan.filesystems if f.format == "vfat"}
    for d in storage_plan.disks:
        if d.path != dest_node:
            continue
        for row in d.after:
            guid = row.type_guid.upper()
            at = node_of(row.number) if node_of is not None else node(d.path, row.number)
            if guid == BIOS_BOOT_GUID:
                bios = row.number
            elif guid == ESP_GUID and at in vfat:
                esp = at
    return bios, esp


def fstab_from_plan(mnt: str, storage_plan: Any, log: Log) -> None:
    """/etc/fstab for the config's filesystems (those with a path, and swap), by UUID."""
    lines = ["# written by pineinstall (rootfs mode, the config's layout): filesystems by UUID"]
    for f in sorted(storage_plan.filesystems, key=lambda f: (f.path or "~").count("/")):
        if f.format is None or f.format == "none":
            continue
        uuid = blkid.probe(f.node).get("UUID") or ""
        if f.format == "swap":
            lines.append(f"UUID={uuid}\tnone\tswap\tsw,nofail\t0 0")
        elif f.path:
            options = ",".join(f.mount_options) or "defaults"
            passno = 1 if f.path.rstrip("/") == "" else 2
            lines.append(f"UUID={uuid}\t{f.path}\t{f.format}\t{options}\t0 {passno}")
    fstab = Path(mnt) / "etc" / "fstab"
    fstab.parent.mkdir(parents=True, exist_ok=True)
    with log.op("writing /etc/fstab"):
        fstab.write_text("\n".join(lines) + "\n")
