"""The guest image: a Debian kernel, a busybox initramfs and an ext4 root disk, cached by their inputs.

Built from Debian's packages only (mmdebstrap minbase + a pinned linux-image .deb), without loop mounts
(`mkfs.ext4 -d`). The result lives in `~/.cache/pineinstall-tests/guest-<key>/`, where key hashes the
package list, the kernel pin and the source of this module and of stage 1; a rerun finds it in
milliseconds. Builds take a per-key lock and happen in a temporary directory renamed into place.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import initramfs

HERE = Path(__file__).resolve().parent

SUITE = "bookworm"
# One kernel ABI, present in bookworm (point release) and bookworm-security when pinned. Debian drops
# old ABIs at point releases: then the newest available 6.1 ABI is used and the fact is recorded in the
# manifest (override with PINE_VM_KERNEL=6.1.0-NN).
KERNEL_ABI = "6.1.0-50"

PACKAGES = (
    "python3",
    "python3-yaml",
    "python3-requests",
    "python3-jsonschema",
    "python3-pyudev",
    "python3-passlib",
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
    "kernel/sound",
    "kernel/drivers/gpu",
    "kernel/drivers/media",
    "kernel/drivers/net/wireless",
    "kernel/drivers/net/ethernet",
    "kernel/drivers/infiniband",
    "kernel/drivers/staging",
    "kernel/drivers/usb",
    "kernel/drivers/bluetooth",
    "kernel/drivers/iio",
    "kernel/drivers/isdn",
    "kernel/drivers/hid",
    "kernel/drivers/input",
    "kernel/drivers/mmc",
    "kernel/drivers/mtd",
    "kernel/drivers/video",
    "kernel/drivers/hwmon",
    "kernel/drivers/platform",
    "kernel/drivers/scsi/qla2xxx",
    "kernel/drivers/scsi/lpfc",
    "kernel/drivers/scsi/mpt3sas",
    "kernel/drivers/scsi/megaraid",
    "kernel/drivers/scsi/be2iscsi",
    "kernel/drivers/scsi/bfa",
    "kernel/net/wireless",
    "kernel/net/mac80211",
    "kernel/net/bluetooth",
)

DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
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
    env = os.environ.get("PINE_VM_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "pineinstall-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def kernel_abi() -> str:
    return os.environ.get("PINE_VM_KERNEL", KERNEL_ABI)


def image_key() -> str:
    """Hash of everything that goes into the image; any change gives a new cache directory."""
    h = hashlib.sha256()
    h.update(json.dumps({"suite": SUITE, "kernel": kernel_abi(), "packages": PACKAGES}).encode())
    for name in ("image.py", "initramfs.py", "stage1_init.sh"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def file_lock(path: Path):
    """An exclusive flock held for the block (released by the kernel if the process dies)."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log(msg: str) -> None:
    print(f"[vm-image] {msg}", file=sys.stderr, flush=True)


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(
            f"guest image build: {' '.join(argv)} failed (rc {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _resolve_kernel_package() -> tuple[str, str]:
    """(package name, note): the pinned ABI when apt knows it, else the newest 6.1 ABI."""
    wanted = f"linux-image-{kernel_abi()}-amd64"
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions", wanted], capture_output=True, text=True)
    if shown.returncode == 0 and shown.stdout.strip():
        return wanted, "pinned"
    names = _run(["apt-cache", "pkgnames", "linux-image-6.1.0-"]).stdout.split()
    abis = sorted(
        (int(m.group(1)), n) for n in names if (m := re.fullmatch(r"linux-image-6\.1\.0-(\d+)-amd64", n))
    )
    if not abis:
        raise RuntimeError(f"{wanted} is not known to apt (run apt-get update?) and no other 6.1 kernel is")
    chosen = abis[-1][1]
    _log(f"warning: {wanted} is not available; using {chosen} (set PINE_VM_KERNEL to pin another)")
    return chosen, f"fallback from {wanted}"


def _write_kernel(bzimage: Path, out: Path) -> None:
    """Unpack the ELF vmlinux from Debian's xz bzImage: QEMU boots it directly (PVH entry point),
    which skips the ~7 s the guest spends decompressing xz under TCG."""
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start >= 0:
        elf = lzma.LZMADecompressor().decompress(data[start:])
        if elf[:4] == b"\x7fELF":
            out.write_bytes(elf)
            return
    _log("warning: no xz payload in the kernel image; booting the bzImage as it is")
    shutil.copy(bzimage, out)


def _clean_stale(cache: Path) -> None:
    """Remove half-built directories of builders that died (their pid no longer exists)."""
    for tmp in cache.glob("guest-*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _prune_old(cache: Path, keep: Path) -> None:
    """Drop images of other keys (older builder versions): each is ~0.5 GB. Taken under the guest lock,
    so no guest is running from the one being removed."""
    with file_lock(cache / "qemu.lock"):
        for old in cache.glob("guest-*"):
            if old.is_dir() and old != keep and ".tmp-" not in old.name:
                shutil.rmtree(old, ignore_errors=True)
                (cache / f"{old.name}.lock").unlink(missing_ok=True)


def _build(tmp: Path, key: str) -> dict:
    started = time.monotonic()
    root = tmp / "root"
    kpkg, knote = _resolve_kernel_package()
    _log(f"downloading {kpkg}")
    _run(["apt-get", "download", kpkg], cwd=tmp)
    (deb,) = tmp.glob(f"{kpkg}_*.deb")

    _log(f"mmdebstrap --variant=minbase {SUITE} (about 90 s)")
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
    _run([*argv, SUITE, str(root)])

    _log("unpacking the kernel")
    _run(["dpkg-deb", "-x", str(deb), str(tmp / "kernel")])
    (modules,) = (tmp / "kernel" / "lib" / "modules").iterdir()
    version = modules.name
    for rel in PRUNE_MODULE_DIRS:
        shutil.rmtree(modules / rel, ignore_errors=True)
    dest = root / "lib" / "modules" / version
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(modules), dest)
    _write_kernel(tmp / "kernel" / "boot" / f"vmlinuz-{version}", tmp / "vmlinux")
    shutil.rmtree(tmp / "kernel")
    deb.unlink()
    # The .deb ships no modules.dep; the root's own depmod writes it (no host kmod needed).
    _run(["chroot", str(root), "depmod", version])

    # Mount points of the harness; the rest of the guest's setup is per run (stage2_boot.sh).
    for d in ("mnt/pinerun", "mnt/share", "repo"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hostname").write_text("pine-guest\n")
    (root / "etc" / "fstab").write_text("# the VM test harness mounts everything itself\n")
    shutil.rmtree(root / "var" / "cache" / "apt", ignore_errors=True)
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)

    _log("writing the initramfs")
    mods = initramfs.build(root, version, (HERE / "stage1_init.sh").read_text(), tmp / "initrd.img")

    _log("mkfs.ext4 -d (root disk)")
    used = int(_run(["du", "-sb", str(root)]).stdout.split()[0])
    size_mib = used * 13 // 10 // 2**20 + 512  # room for tests that write into the root
    img = tmp / "root.img"
    with open(img, "wb") as fh:
        fh.truncate(size_mib * 2**20)
    _run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-L",
            "pine-guest-root",
            "-E",
            "lazy_itable_init=1",
            "-d",
            str(root),
            str(img),
        ]
    )
    pkg_versions = _run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}=${Version}\\n"]
    ).stdout.split()
    shutil.rmtree(root)
    return {
        "key": key,
        "suite": SUITE,
        "kernel_package": kpkg,
        "kernel_note": knote,
        "kernel_version": version,
        "initramfs_modules": mods,
        "packages": pkg_versions,
        "build_seconds": round(time.monotonic() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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
    cache = cache_dir()
    key = image_key()
    final = cache / f"guest-{key}"
    if (final / "manifest.json").exists():
        return _load(final)
    with file_lock(cache / f"guest-{key}.lock"):
        if (final / "manifest.json").exists():  # another worker built it while we waited
            return _load(final)
        if os.geteuid() != 0:
            raise RuntimeError("building the guest image needs root (mmdebstrap --mode=root, chroot)")
        _clean_stale(cache)
        tmp = cache / f"guest-{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            manifest = _build(tmp, key)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _log(f"built {final} in {manifest['build_seconds']} s")
        _prune_old(cache, final)
    return _load(final)


if __name__ == "__main__":
    img = ensure_guest_image()
    print(img.directory)
