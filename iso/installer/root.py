"""The installer's live root: Debian bookworm minbase + python3, the disk tools, live-boot, the pinned
kernel with a pruned module tree and a live-boot initramfs, cached as a zstd tarball.

The cached tarball never contains pineinstall (its key does not track the package's source): each ISO
build unpacks it, adds the current checkout's wheel and squashes it (see build.py).

Cache: ``~/.cache/pineinstall-tests/installer/root-<key>/`` (``PINE_VM_CACHE`` moves the parent), key =
hash of the suite, the kernel pin, the package list, this file and the files under ``live/``; built under
a flock in ``<name>.tmp-PID`` and renamed into place, as iso/images does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from iso.images.build import (
    DPKG_EXCLUDES,
    SUITE,
    _clean_stale,
    _kernel_package,
    cache_dir,
    file_lock,
    kernel_abi,
    run,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIVE = HERE / "live"

# What the live installer runs: systemd + udev (by-id links, pyudev), live-boot, pineinstall's Python
# dependencies from Debian, every tool pineinstall's block/, image/ and boot/ modules start, networking
# (networkd + resolved: DHCP on every wired interface; the install service waits for an address only
# when there is an interface, so wait-online is not enabled), and the tools a user fetches a config with.
PACKAGES = (
    "usr-is-merged",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "kmod",
    "initramfs-tools",
    "live-boot",
    "live-boot-initramfs-tools",
    "busybox",
    "python3",
    "python3-yaml",
    "python3-requests",
    "python3-jsonschema",
    "python3-pyudev",
    "python3-passlib",
    "python3-zstandard",
    "python3-tqdm",
    "util-linux",
    "fdisk",
    "gdisk",
    "e2fsprogs",
    "xfsprogs",
    "btrfs-progs",
    "dosfstools",
    "mtools",
    "mdadm",
    "cryptsetup-bin",
    "squashfs-tools",
    "xz-utils",
    "zstd",
    "gpg",
    "gpgv",
    "grub-pc-bin",
    "grub-efi-amd64-bin",
    "iproute2",
    "curl",
    "openssh-client",
    "ca-certificates",
    "less",
    "procps",
)

# Kernel modules kept (paths under lib/modules/K/kernel/); everything else is deleted: storage, file
# systems, md/dm, wired network, USB storage and keyboards, virtio, fw_cfg. Not kept: GPU, sound, media,
# wireless, bluetooth, infiniband, staging, sensors (about two thirds of the tree).
KEEP_MODULE_DIRS = (
    "fs",
    "lib",
    "crypto",
    "block",
    "arch/x86/crypto",
    "net/core",
    "net/packet",
    "net/unix",
    "net/ipv4",
    "net/ipv6",
    "net/802",
    "net/llc",
    "net/8021q",
    "drivers/block",
    "drivers/virtio",
    "drivers/md",
    "drivers/ata",
    "drivers/nvme",
    "drivers/scsi",
    "drivers/cdrom",
    "drivers/message/fusion",
    "drivers/mmc",
    "drivers/usb/storage",
    "drivers/usb/host",
    "drivers/usb/core",
    "drivers/usb/common",
    "drivers/hid",
    "drivers/input/keyboard",
    "drivers/input/serio",
    "drivers/net/ethernet",
    "drivers/net/phy",
    "drivers/net/mdio",
    "drivers/net/pcs",
    "drivers/net/usb",
    "drivers/net/hyperv",
    "drivers/net/virtio_net.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/mii.ko",
    "drivers/net/mdio.ko",
    "drivers/net/xen-netfront.ko",
    "drivers/net/vmxnet3",
    "drivers/hv",
    "drivers/xen",
    "drivers/char/virtio_console.ko",
    "drivers/firmware/qemu_fw_cfg.ko",
    "drivers/nvdimm",
    "drivers/dax",
    "drivers/pci/controller",
    "drivers/ptp",
    "drivers/pps",
    "drivers/dca",
)

# Units a live installer has no use for, and mdadm-shutdown, which stalls power-off by 90 s.
MASKED_UNITS = (
    "systemd-firstboot.service",
    "getty-static.service",
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "mdadm-shutdown.service",
    "mdmonitor.service",
    "mdcheck_start.timer",
    "mdcheck_continue.timer",
    "mdmonitor-oneshot.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "fstrim.timer",
)
ENABLED_UNITS = (
    "systemd-networkd.service",
    "systemd-resolved.service",
    "pine-live-install.service",
)


@dataclass(frozen=True)
class LiveRoot:
    """The cached root: ``tarball`` (read-only), and its manifest (kernel version, packages, sizes)."""

    directory: Path
    tarball: Path
    manifest: dict


def log(msg: str) -> None:
    print(f"[installer] {msg}", file=sys.stderr, flush=True)


def installer_cache() -> Path:
    path = cache_dir().parent / "installer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _live_files() -> list[Path]:
    return sorted(p for p in LIVE.rglob("*") if p.is_file())


def root_key() -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"suite": SUITE, "kernel": kernel_abi(), "packages": PACKAGES}).encode())
    for path in [Path(__file__).resolve(), *_live_files()]:
        h.update(str(path.relative_to(HERE)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _prune_modules(modules: Path) -> None:
    keep = [modules / "kernel" / k for k in KEEP_MODULE_DIRS]
    for ko in list((modules / "kernel").rglob("*.ko*")):
        if not any(ko == k or k in ko.parents for k in keep):
            ko.unlink()
    for d in sorted((modules / "kernel").rglob("*"), reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _chroot(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return run(["chroot", root, *argv], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def customize(root: Path) -> None:
    """mmdebstrap's customize hook (run as root on the host, the chroot's /proc, /sys, /dev mounted):
    the kernel, the live files, the initramfs, services, then cleaning."""
    tmp = root.parent / f"pine-kernel-{os.getpid()}"
    tmp.mkdir()
    try:
        kpkg, _ = _kernel_package()
        log(f"apt-get download {kpkg}")
        run(["apt-get", "download", kpkg], cwd=tmp)
        (deb,) = tmp.glob(f"{kpkg}_*.deb")
        run(["dpkg-deb", "-x", deb, tmp / "k"])
        (modules,) = (tmp / "k" / "lib" / "modules").iterdir()
        version = modules.name
        _prune_modules(modules)
        dest = root / "usr" / "lib" / "modules" / version
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(modules), dest)
        for name in (f"vmlinuz-{version}", f"config-{version}", f"System.map-{version}"):
            shutil.copy(tmp / "k" / "boot" / name, root / "boot" / name)
    finally:
        shutil.rmtree(tmp)

    log("live files, services")
    # The live tree (units, network, issue/motd, initramfs settings): root-owned, 0644 / 0755 dirs.
    for src in _live_files():
        rel = src.relative_to(LIVE / "rootfs")
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
    _chroot(root, "depmod", version)
    _chroot(root, "systemctl", "enable", *ENABLED_UNITS)
    _chroot(root, "systemctl", "mask", *MASKED_UNITS)
    # resolved's stub: DNS from DHCP for curl and pineinstall's downloads.
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    # A live installer's root logs in without a password (autologin on tty1/ttyS0, the rescue entry).
    _chroot(root, "passwd", "-d", "root")
    (root / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tpine-installer\n")
    (root / "etc" / "fstab").write_text("# the live system's mounts are made by live-boot\n")
    # An empty machine-id: every boot of the medium gets its own (systemd writes it to the overlay).
    (root / "etc" / "machine-id").write_text("")
    (root / "var" / "lib" / "dbus").mkdir(parents=True, exist_ok=True)

    log(f"update-initramfs -c -k {version}")
    _chroot(root, "update-initramfs", "-c", "-k", version)

    packages = _chroot(root, "dpkg-query", "-W", "-f", "${Package}=${Version}\\n").stdout.split()
    info = {"kernel_package": kpkg, "kernel_version": version, "packages": packages}
    (root / "etc" / "pine-live-root.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(root / "var" / "cache" / "apt", ignore_errors=True)
    (root / "var" / "cache" / "apt").mkdir()
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)
    for log_file in (root / "var" / "log").rglob("*"):
        if log_file.is_file():
            log_file.write_bytes(b"")


def _build(tmp: Path) -> dict:
    started = time.monotonic()
    python = sys.executable
    hook = f'env PYTHONPATH={REPO} {python} -m iso.installer.root customize "$1"'
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(PACKAGES)]
    argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
    argv += ["--dpkgopt=path-exclude=/usr/share/doc-base/*", "--dpkgopt=path-exclude=/usr/share/lintian/*"]
    argv += [f"--customize-hook={hook}"]
    out = tmp / "root.tar.zst"
    log(f"mmdebstrap --variant=minbase {SUITE} (+{len(PACKAGES)} packages, kernel, initramfs)")
    run([*argv, SUITE, out])
    # The hook's manifest, read back from the tarball.
    text = run(["tar", "-I", "zstd", "-xOf", out, "./etc/pine-live-root.json"]).stdout
    info = json.loads(text)
    info["file"] = out.name
    info["tarball_bytes"] = out.stat().st_size
    info["build_seconds"] = round(time.monotonic() - started, 1)
    info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return info


def ensure_root() -> LiveRoot:
    """The cached live root for the current inputs, built first if needed (needs root, ~2-4 min)."""
    cache = installer_cache()
    name = f"root-{root_key()}"
    final = cache / name
    if not (final / "manifest.json").exists():
        with file_lock(cache / f"{name}.lock"):
            if not (final / "manifest.json").exists():
                if os.geteuid() != 0:
                    raise RuntimeError("building the installer's root needs root (mmdebstrap --mode=root)")
                _clean_stale(cache)
                tmp = cache / f"{name}.tmp-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                try:
                    manifest = _build(tmp)
                    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
                    os.rename(tmp, final)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                log(f"built {final} in {manifest['build_seconds']} s")
    manifest = json.loads((final / "manifest.json").read_text())
    return LiveRoot(final, final / manifest["file"], manifest)


if __name__ == "__main__":
    # python -m iso.installer.root customize ROOT (mmdebstrap's hook) | build
    if len(sys.argv) == 3 and sys.argv[1] == "customize":
        customize(Path(sys.argv[2]))
    elif len(sys.argv) == 2 and sys.argv[1] == "build":
        print(ensure_root().tarball)
    else:
        sys.exit("usage: python -m iso.installer.root customize ROOT | build")
