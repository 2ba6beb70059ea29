"""The installer's live root: Debian bookworm minbase + python3, the disk tools, live-boot, the pinned
kernel with a pruned module tree and a live-boot initramfs, cached as a zstd tarball.

The cached tarball never contains pineinstall (its key does not track the package's source): each ISO
build unpacks it, adds the current checkout's wheel and squashes it (see build.py).

Cache: ``~/.cache/pineinstall-tests/installer/root-<key>/`` (``PINE_VM_CACHE`` moves the parent), key =
hash of the suite, the kernel pin, the package list, this file, ``iso/lib/debian.py`` and the files under
``live/``; built by ``iso.lib.cache.cached_build``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from iso.lib import cache, debian
from iso.lib.debian import SUITE, kernel_abi, run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LIVE = HERE / "live"

# What the live installer runs: systemd + udev (by-id links, pyudev), live-boot, pineinstall's Python
# dependencies from Debian (pyproject.toml's, mapped by iso.lib.debian), every tool pineinstall's block/, image/ and boot/ modules start, networking
# (networkd + resolved: DHCP on every wired interface; the install service waits for an address only
# when there is an interface, so wait-online is not enabled), and the tools a user fetches a config with.
PACKAGES = (
    *debian.python_packages(),
    "usr-is-merged",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "kmod",
    "initramfs-tools",
    "live-boot",
    "live-boot-initramfs-tools",
    "busybox",
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
    return cache.cache_dir("installer")


def _live_files() -> list[Path]:
    return sorted(p for p in LIVE.rglob("*") if p.is_file())


def root_key() -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"suite": SUITE, "kernel": kernel_abi(), "packages": PACKAGES}).encode())
    for path in [Path(__file__).resolve(), REPO / "iso" / "lib" / "debian.py", *_live_files()]:
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _chroot(root: Path, *argv: str) -> subprocess.CompletedProcess:
    return run(["chroot", root, *argv], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def customize(root: Path) -> None:
    """mmdebstrap's customize hook (run as root on the host, the chroot's /proc, /sys, /dev mounted):
    the kernel, the live files, the initramfs, services, then cleaning."""
    kernel = debian.install_kernel(
        root, keep=KEEP_MODULE_DIRS, boot_files=("vmlinuz", "config", "System.map")
    )
    version = kernel["kernel_version"]

    log("live files, services")
    # The live tree (units, network, issue/motd, initramfs settings): root-owned, 0644 / 0755 dirs.
    for src in _live_files():
        rel = src.relative_to(LIVE / "rootfs")
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
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

    info = {**kernel, "packages": debian.installed_packages(root)}
    (root / "etc" / "pine-live-root.json").write_text(json.dumps(info, indent=1) + "\n")
    debian.drop_apt_state(root)
    for log_file in (root / "var" / "log").rglob("*"):
        if log_file.is_file():
            log_file.write_bytes(b"")


def _build(tmp: Path) -> dict:
    hook = f'env PYTHONPATH={REPO} {sys.executable} -m iso.installer.root customize "$1"'
    out = tmp / "root.tar.zst"
    extra = ["--dpkgopt=path-exclude=/usr/share/doc-base/*", "--dpkgopt=path-exclude=/usr/share/lintian/*"]
    debian.mmdebstrap(PACKAGES, out, *extra, f"--customize-hook={hook}")
    # The hook's manifest, read back from the tarball.
    info = json.loads(run(["tar", "-I", "zstd", "-xOf", out, "./etc/pine-live-root.json"]).stdout)
    info["file"] = out.name
    info["tarball_bytes"] = out.stat().st_size
    return info


def ensure_root() -> LiveRoot:
    """The cached live root for the current inputs, built first if needed (needs root, ~2-4 min)."""
    final = installer_cache() / f"root-{root_key()}"
    manifest = cache.cached_build(final, _build)
    return LiveRoot(final, final / manifest["file"], manifest)


if __name__ == "__main__":
    # python -m iso.installer.root customize ROOT (mmdebstrap's hook) | build
    if len(sys.argv) == 3 and sys.argv[1] == "customize":
        customize(Path(sys.argv[2]))
    elif len(sys.argv) == 2 and sys.argv[1] == "build":
        print(ensure_root().tarball)
    else:
        sys.exit("usage: python -m iso.installer.root customize ROOT | build")
