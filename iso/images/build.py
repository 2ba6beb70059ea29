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

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

SUITE = "bookworm"
# The same pin as tests/vm/harness/image.py; PINE_VM_KERNEL=6.1.0-NN overrides both. If the pinned ABI
# has left the archive, the newest 6.1 ABI is used (recorded in manifest.json).
KERNEL_ABI = "6.1.0-50"

# usr-is-merged: the merged /usr mmdebstrap makes, without usrmerge (and perl) to convert it
PACKAGES = ("systemd-sysv", "udev", "kmod", "busybox-static", "zstd", "usr-is-merged")
SSH_PACKAGES = ("openssh-server",)
KINDS = ("raw", "ostree", "rootfs")
OS_NAME = "pine"
OSTREE_REF = "pine/x86_64/test"
HOSTNAME = "pine"

DISK_MIB_MIN = 1024
ESP_MIB = 63

# Kernel module trees the image keeps (everything else is deleted): udev loading dozens of unneeded
# drivers (kvm, watchdogs, i2c, input, crypto accelerators) costs a minute of boot under TCG.
KEEP_MODULE_DIRS = (
    "kernel/fs",
    "kernel/lib",
    "kernel/crypto",
    "kernel/block",
    "kernel/net/9p",
    "kernel/net/core",
    "kernel/net/packet",
    "kernel/net/unix",
    "kernel/drivers/block",
    "kernel/drivers/virtio",
    "kernel/drivers/md",
    "kernel/drivers/ata",
    "kernel/drivers/nvme",
    "kernel/drivers/scsi/virtio_scsi.ko",
    "kernel/drivers/scsi/sd_mod.ko",
    "kernel/drivers/scsi/sr_mod.ko",
    "kernel/drivers/scsi/scsi_mod.ko",
    "kernel/drivers/scsi/scsi_common.ko",
    "kernel/drivers/cdrom",
    "kernel/drivers/net/virtio_net.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/net/core/failover.ko",
    "kernel/drivers/char/virtio_console.ko",
    "kernel/drivers/firmware/qemu_fw_cfg.ko",
)
# Units that only slow a test boot down (a oneshot waiting on logind, an e2scrub pass).
MASKED_UNITS = ("systemd-firstboot.service", "getty-static.service", "e2scrub_reap.service")

DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)


@dataclass(frozen=True)
class BuiltImage:
    """A cached image: ``path`` is disk.img or rootfs.tar.zst inside ``directory`` (read-only: copy it)."""

    kind: str
    directory: Path
    path: Path
    manifest: dict


def cache_dir() -> Path:
    env = os.environ.get("PINE_VM_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "pineinstall-tests"
    path = base / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def kernel_abi() -> str:
    return os.environ.get("PINE_VM_KERNEL", KERNEL_ABI)


def _sources(kind: str) -> list[Path]:
    """The files a kind is made from: the root tree's for rootfs, everything for the disks."""
    if kind == "rootfs":
        return [HERE / "build.py", HERE / "initramfs.py", *sorted((HERE / "guest").iterdir())]
    own = sorted(p for p in HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    # The disks' grub.cfg is rendered by the product's boot modules.
    boot = REPO / "pineinstall" / "boot"
    return [*own, *sorted(boot.glob("*.py"))]


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


@contextmanager
def file_lock(path: Path):
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(
            f"image build: {' '.join(map(str, argv))} failed (rc {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def _kernel_package() -> tuple[str, str]:
    """(package, note): the pinned ABI when apt knows it, else the newest 6.1 ABI."""
    wanted = f"linux-image-{kernel_abi()}-amd64"
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions", wanted], capture_output=True, text=True)
    if shown.returncode == 0 and shown.stdout.strip():
        return wanted, "pinned"
    names = run(["apt-cache", "pkgnames", "linux-image-6.1.0-"]).stdout.split()
    abis = sorted(
        (int(m.group(1)), n) for n in names if (m := re.fullmatch(r"linux-image-6\.1\.0-(\d+)-amd64", n))
    )
    if not abis:
        raise RuntimeError(f"{wanted} is not known to apt (run apt-get update?) and no other 6.1 kernel is")
    log(f"warning: {wanted} is not available; using {abis[-1][1]}")
    return abis[-1][1], f"fallback from {wanted}"


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


def _prune_modules(modules: Path) -> None:
    """Delete every module not under KEEP_MODULE_DIRS (modules.* index files stay)."""
    keep = [modules / k for k in KEEP_MODULE_DIRS]
    for ko in list((modules / "kernel").rglob("*.ko*")):
        if not any(ko == k or k in ko.parents for k in keep):
            ko.unlink()


def build_root(tmp: Path, ssh: bool) -> tuple[Path, dict]:
    """mmdebstrap + the pinned kernel + initramfs + the report unit, in tmp/root."""
    from . import initramfs

    root = tmp / "root"
    kpkg, knote = _kernel_package()
    log(f"apt-get download {kpkg}")
    run(["apt-get", "download", kpkg], cwd=tmp)
    (deb,) = tmp.glob(f"{kpkg}_*.deb")

    packages = PACKAGES + (SSH_PACKAGES if ssh else ())
    log(f"mmdebstrap --variant=minbase {SUITE} +{','.join(packages)}")
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(packages)]
    argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
    run([*argv, SUITE, root])

    log("unpacking the kernel")
    run(["dpkg-deb", "-x", deb, tmp / "kernel"])
    (modules,) = (tmp / "kernel" / "lib" / "modules").iterdir()
    version = modules.name
    _prune_modules(modules)
    dest = root / "usr" / "lib" / "modules" / version
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(modules), dest)
    boot = root / "boot"
    boot.mkdir(exist_ok=True)
    shutil.copy(tmp / "kernel" / "boot" / f"vmlinuz-{version}", boot / f"vmlinuz-{version}")
    shutil.copy(tmp / "kernel" / "boot" / f"config-{version}", boot / f"config-{version}")
    shutil.rmtree(tmp / "kernel")
    deb.unlink()
    run(["chroot", root, "depmod", version])  # the .deb ships no modules.dep

    mods = initramfs.build(
        root, version, (HERE / "guest" / "init.sh").read_text(), boot / f"initrd.img-{version}"
    )

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
    shutil.rmtree(root / "var" / "cache" / "apt", ignore_errors=True)
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True, exist_ok=True)

    pkg_versions = run(["chroot", root, "dpkg-query", "-W", "-f", "${Package}=${Version}\\n"]).stdout.split()
    return root, {
        "suite": SUITE,
        "kernel_package": kpkg,
        "kernel_note": knote,
        "kernel_version": version,
        "initramfs_modules": mods,
        "packages": pkg_versions,
        "ssh": ssh,
    }


def _tar(root: Path, out: Path) -> None:
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-I", "zstd -T0 -3", "-cf", out, "."])


def _untar(tarball: Path, root: Path) -> None:
    root.mkdir()
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-I", "zstd -T0", "-xf", tarball])


def _build(kind: str, tmp: Path, ssh: bool) -> dict:
    started = time.monotonic()
    if kind == "rootfs":
        root, info = build_root(tmp, ssh)
        log("tar | zstd")
        _tar(root, tmp / "rootfs.tar.zst")
        shutil.rmtree(root)
        info["file"] = "rootfs.tar.zst"
    else:
        from . import disk

        # The disks start from the cached rootfs tarball (built first if needed).
        base = ensure_image("rootfs", ssh=ssh)
        info = {
            k: v for k, v in base.manifest.items() if k not in ("file", "build_seconds", "built_at", "key")
        }
        root = tmp / "root"
        log(f"unpacking {base.path}")
        _untar(base.path, root)
        root_uuid = str(uuid.uuid4())
        if kind == "raw":
            info.update(disk.build_raw(root, tmp / "disk.img", info["kernel_version"], root_uuid))
        else:
            info.update(disk.build_ostree(root, tmp, tmp / "disk.img", info["kernel_version"], root_uuid))
        shutil.rmtree(root, ignore_errors=True)
        info["file"] = "disk.img"
    info["kind"] = kind
    info["build_seconds"] = round(time.monotonic() - started, 1)
    info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return info


def _clean_stale(cache: Path) -> None:
    for tmp in cache.glob("*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _load(kind: str, directory: Path) -> BuiltImage:
    manifest = json.loads((directory / "manifest.json").read_text())
    return BuiltImage(kind, directory, directory / manifest["file"], manifest)


def ensure_image(kind: str, *, ssh: bool = False) -> BuiltImage:
    """The cached image of kind for the current inputs, built first if needed (needs root)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    cache = cache_dir()
    key = image_key(kind, ssh)
    name = f"{kind}{'-ssh' if ssh else ''}-{key}"
    final = cache / name
    if (final / "manifest.json").exists():
        return _load(kind, final)
    with file_lock(cache / f"{name}.lock"):
        if (final / "manifest.json").exists():
            return _load(kind, final)
        if os.geteuid() != 0:
            raise RuntimeError("building a test image needs root (mmdebstrap --mode=root, loop devices)")
        _clean_stale(cache)
        tmp = cache / f"{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            manifest = _build(kind, tmp, ssh)
            manifest["key"] = key
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            for leftover in tmp.iterdir():
                if leftover.name not in ("manifest.json", manifest["file"]):
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"built {final} in {manifest['build_seconds']} s")
    return _load(kind, final)


def copy_out(image: BuiltImage, out: Path) -> Path:
    """Copy the cached file to out (sparse), so callers may write to their copy."""
    out = Path(out)
    if out.is_dir():
        out = out / image.path.name
    run(["cp", "--sparse=always", "--reflink=auto", image.path, out])
    return out
