"""Build Pine-layout test images from Debian's packages, cached by their inputs.

Kinds (all from the same root filesystem):
- ``rootfs``: ``rootfs.tar.zst``, the root tree with its kernel and initramfs under ``/boot``;
- ``raw``: ``disk.img``, GPT (1 MiB BIOS boot, ESP, ext4 ``root``) with GRUB for BIOS and UEFI;
- ``ostree``: ``disk.img``, the same disk whose root is an OSTree sysroot with one deployment.

Debian is the package source this machine reaches (Alpine's apk repositories are not), so the userland
is Debian bookworm minbase with systemd; the kernel is one pinned ``linux-image-6.1.0-NN-amd64``. The
initramfs is busybox (``guest/init.sh``), which also does what ostree-prepare-root does for ``ostree=``.
On boot, ``pine-test-report.service`` prints one ``PINE-REPORT {json}`` line on the serial console
(see ``report.py``) and powers off when ``pine.test.poweroff`` is on the kernel command line.

Results live in ``~/.cache/pineinstall-tests/images/<kind>-<key>/`` (``PINE_VM_CACHE`` overrides the
parent), key = hash of the package list, the kernel pin and this package's source; builds take a flock
and happen in a temporary directory renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from iso.lib import cache, debian, initramfs
from iso.lib.debian import SUITE, kernel_abi, log, run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIB = REPO / "iso" / "lib"

# usr-is-merged: the merged /usr mmdebstrap makes, without usrmerge (and perl) to convert it
PACKAGES = ("systemd-sysv", "udev", "kmod", "busybox-static", "zstd", "usr-is-merged")
SSH_PACKAGES = ("openssh-server",)
KINDS = ("raw", "ostree", "rootfs")
OS_NAME = "pine"
OSTREE_REF = "pine/x86_64/test"
HOSTNAME = "pine"

# Kernel module trees the image keeps (everything else is deleted): udev loading dozens of unneeded
# drivers (kvm, watchdogs, i2c, input, crypto accelerators) costs a minute of boot under TCG.
KEEP_MODULE_DIRS = (
    "fs",
    "lib",
    "crypto",
    "block",
    "net/9p",
    "net/core",
    "net/packet",
    "net/unix",
    "drivers/block",
    "drivers/virtio",
    "drivers/md",
    "drivers/ata",
    "drivers/nvme",
    "drivers/scsi/virtio_scsi.ko",
    "drivers/scsi/sd_mod.ko",
    "drivers/scsi/sr_mod.ko",
    "drivers/scsi/scsi_mod.ko",
    "drivers/scsi/scsi_common.ko",
    "drivers/cdrom",
    "drivers/net/virtio_net.ko",
    "drivers/net/net_failover.ko",
    "net/core/failover.ko",
    "drivers/char/virtio_console.ko",
    "drivers/firmware/qemu_fw_cfg.ko",
)
# What /init needs to find and mount an ext4 root on virtio (q35 and pc) or AHCI/SCSI disks; the root's
# own kmod loads everything else. crc32c_generic is a soft dependency of ext4 missing from modules.dep.
INITRAMFS_MODULES = ("crc32c_generic", "virtio_pci", "virtio_blk", "virtio_scsi", "ahci", "sd_mod", "ext4")
# Units that only slow a test boot down (a oneshot waiting on logind, an e2scrub pass).
MASKED_UNITS = ("systemd-firstboot.service", "getty-static.service", "e2scrub_reap.service")


@dataclass(frozen=True)
class BuiltImage:
    """A cached image: ``path`` is disk.img or rootfs.tar.zst inside ``directory`` (read-only: copy it)."""

    kind: str
    directory: Path
    path: Path
    manifest: dict


def cache_dir() -> Path:
    return cache.cache_dir("images")


def _sources(kind: str) -> list[Path]:
    """The files a kind is made from: the root tree's for rootfs, everything for the disks."""
    lib = [LIB / "debian.py", LIB / "initramfs.py"]
    if kind == "rootfs":
        return [HERE / "build.py", *lib, *sorted((HERE / "guest").iterdir())]
    own = sorted(p for p in HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    # The disks' grub.cfg is rendered by the product's boot modules.
    boot = REPO / "pineinstall" / "boot"
    return [*own, *lib, LIB / "disk.py", *sorted(boot.glob("*.py"))]


def image_key(kind: str, ssh: bool = False) -> str:
    """Hash of everything that goes into an image; any change gives a new cache directory."""
    h = hashlib.sha256()
    packages = PACKAGES + (SSH_PACKAGES if ssh else ())
    h.update(
        json.dumps({"kind": kind, "suite": SUITE, "kernel": kernel_abi(), "packages": packages}).encode()
    )
    for path in _sources(kind):
        if path.exists():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    wants = root / "etc" / "systemd" / "system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if not link.is_symlink():
        link.symlink_to(f"/usr/lib/systemd/system/{unit}")


def _mask(root: Path, unit: str) -> None:
    link = root / "etc" / "systemd" / "system" / unit
    link.unlink(missing_ok=True)
    link.symlink_to("/dev/null")


def build_root(tmp: Path, ssh: bool) -> tuple[Path, dict]:
    """mmdebstrap + the pinned kernel + initramfs + the report unit, in tmp/root."""
    root = tmp / "root"
    packages = PACKAGES + (SSH_PACKAGES if ssh else ())
    debian.mmdebstrap(packages, root)
    kernel = debian.install_kernel(root, keep=KEEP_MODULE_DIRS)
    version = kernel["kernel_version"]
    boot = root / "boot"

    init = (HERE / "guest" / "init.sh").read_text()
    initrd = boot / f"initrd.img-{version}"
    mods = initramfs.build(root, version, init, initrd, INITRAMFS_MODULES, required=False)

    # The report service (in /usr, so it is part of an OSTree commit) and the base configuration.
    (root / "usr" / "libexec").mkdir(exist_ok=True)
    shutil.copy(HERE / "guest" / "pine-test-report", root / "usr" / "libexec" / "pine-test-report")
    os.chmod(root / "usr" / "libexec" / "pine-test-report", 0o755)
    shutil.copy(HERE / "guest" / "pine-test-report.service", root / "usr" / "lib" / "systemd" / "system")
    _enable(root, "pine-test-report.service")
    # (systemd-firstboot would wait on the console for answers nobody gives)
    for unit in MASKED_UNITS:
        _mask(root, unit)
    (root / "etc" / "hostname").write_text(HOSTNAME + "\n")
    (root / "etc" / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n")
    (root / "etc" / "fstab").write_text(
        "# / is mounted by the initramfs (root= on the kernel command line)\n"
    )
    run(["chroot", root, "passwd", "-l", "root"])
    debian.drop_apt_state(root)
    return root, {
        "suite": SUITE,
        **kernel,
        "initramfs_modules": mods,
        "packages": debian.installed_packages(root),
        "ssh": ssh,
    }


def _file(kind: str) -> str:
    return "rootfs.tar.zst" if kind == "rootfs" else "disk.img"


def _build(kind: str, tmp: Path, ssh: bool) -> dict:
    if kind == "rootfs":
        root, info = build_root(tmp, ssh)
        log("tar | zstd")
        debian.tar(root, tmp / _file(kind))
        shutil.rmtree(root)
    else:
        from . import disk

        # The disks start from the cached rootfs tarball (built first if needed).
        base = ensure_image("rootfs", ssh=ssh)
        info = {
            k: v for k, v in base.manifest.items() if k not in ("file", "build_seconds", "built_at", "key")
        }
        root = tmp / "root"
        log(f"unpacking {base.path}")
        debian.untar(base.path, root)
        root_uuid = str(uuid.uuid4())
        if kind == "raw":
            info.update(disk.build_raw(root, tmp / "disk.img", info["kernel_version"], root_uuid))
        else:
            info.update(disk.build_ostree(root, tmp, tmp / "disk.img", info["kernel_version"], root_uuid))
        shutil.rmtree(root, ignore_errors=True)
    info["file"] = _file(kind)
    info["kind"] = kind
    return info


def load(kind: str, directory: Path, manifest: dict) -> BuiltImage:
    return BuiltImage(kind, directory, directory / manifest["file"], manifest)


def ensure_image(kind: str, *, ssh: bool = False) -> BuiltImage:
    """The cached image of kind for the current inputs, built first if needed (needs root)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    final = cache_dir() / f"{kind}{'-ssh' if ssh else ''}-{image_key(kind, ssh)}"
    manifest = cache.cached_build(final, lambda tmp: _build(kind, tmp, ssh), keep=[_file(kind)])
    return load(kind, final, manifest)


def copy_out(image: BuiltImage, out: Path) -> Path:
    """Copy the cached file to out (sparse), so callers may write to their copy."""
    from iso.lib.disk import copy_sparse

    out = Path(out)
    if out.is_dir():
        out = out / image.path.name
    return copy_sparse(image.path, out)
