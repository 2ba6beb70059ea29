"""The one-shot installer's pieces that run here: the initramfs built from a disk file (its kernel and
modules read through loop mounts; the cpio listed by the real ``cpio``), the installer's host key made
by the real Dropbear, and the host's side (``bootonce.SETUP`` and ``CLEANUP``) run by the real ``sh``
and ``grub-editenv`` against a /boot of a private mount namespace.

The whole path runs against a real Debian guest in tests/vm/test_hijack_oneshot.py.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pineinstall.hijack import bootonce, installer
from pineinstall.hijack.oneshot import files_tar

from .test_hijack_payload import BUSYBOX, _disk_with_roots

REPO = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mount namespaces)")
VERSION = "6.18.0-test"
NET = "52:54:00:12:34:56 static 10.0.2.15/24 10.0.2.2 0 - - - 0\n"


def dropbear() -> str:
    sys.path.insert(0, str(REPO))
    from iso.lib.dropbear import dropbear_binary

    return str(dropbear_binary()[0])


def pine_root(tmp: Path) -> Path:
    """An OSTree deployment with a kernel and three gzip'ed modules (virtio_net needing two more)."""
    mods = tmp / "pine/ostree/deploy/pine/deploy/0123abcd.0/usr/lib/modules" / VERSION
    (mods / "kernel/net").mkdir(parents=True)
    (mods / "vmlinuz").write_bytes(b"MZ-kernel-" + os.urandom(4000))
    for name in ("failover", "net_failover", "virtio_net"):
        (mods / f"kernel/net/{name}.ko.gz").write_bytes(gzip.compress(f"\x7fELF {name}".encode()))
    (mods / "modules.dep").write_text(
        "kernel/net/virtio_net.ko.gz: kernel/net/net_failover.ko.gz kernel/net/failover.ko.gz\n"
        "kernel/net/net_failover.ko.gz: kernel/net/failover.ko.gz\nkernel/net/failover.ko.gz:\n"
    )
    return tmp / "pine"


@needs_root
@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static")
def test_installer_is_built_from_the_disks_kernel(tmp_path: Path) -> None:
    root = pine_root(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    disk = _disk_with_roots(tmp_path, [empty, root])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    built = installer.build(str(disk), str(run_dir), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx run", dropbear(),
                            NET, 2222)  # fmt: skip
    kernel = root / "ostree/deploy/pine/deploy/0123abcd.0/usr/lib/modules" / VERSION / "vmlinuz"
    assert Path(built.kernel).read_bytes() == kernel.read_bytes()
    assert built.version == VERSION
    assert built.modules == ("failover.ko", "net_failover.ko", "virtio_net.ko")  # dependencies first
    assert os.fspath(run_dir) not in Path("/proc/mounts").read_text()
    assert subprocess.run(["losetup", "-j", str(disk)], capture_output=True, text=True).stdout == ""

    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    cpio = gzip.decompress(Path(built.initramfs).read_bytes())
    listing = subprocess.run(["cpio", "-t"], input=cpio, capture_output=True, check=True).stdout.decode().split()
    for name in ("init", "bin/busybox", "bin/sh", "sbin/dropbear", "stage2.sh", "modules.list",
                 "lib/modules/virtio_net.ko", "etc/dropbear/host_key", "etc/pine-hijack/net",
                 "root/.ssh/authorized_keys"):  # fmt: skip
        assert name in listing, name
    subprocess.run(["cpio", "-id", "--quiet"], input=cpio, cwd=unpacked, check=True)
    assert (unpacked / "lib/modules/virtio_net.ko").read_bytes() == b"\x7fELF virtio_net"  # decompressed
    assert (unpacked / "modules.list").read_text() == "failover.ko\nnet_failover.ko\nvirtio_net.ko\n"
    assert (unpacked / "etc/pine-hijack/net").read_text() == NET
    assert "PORT=2222\n" in (unpacked / "etc/pine-hijack/conf").read_text()
    assert os.access(unpacked / "init", os.X_OK)
    # the pinned key is the key the installer's Dropbear will serve
    pub = subprocess.run([dropbear(), "dropbearkey", "-y", "-f", str(unpacked / "etc/dropbear/host_key")],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert built.host_key_pub in pub


@needs_root
@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static")
def test_a_kernel_with_its_drivers_built_in_needs_no_modules(tmp_path: Path) -> None:
    root = pine_root(tmp_path)
    moddir = root / "ostree/deploy/pine/deploy/0123abcd.0/usr/lib/modules" / VERSION
    shutil.rmtree(moddir / "kernel")
    (moddir / "modules.dep").unlink()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    built = installer.build(str(_disk_with_roots(tmp_path, [root])), str(run_dir), "ssh-ed25519 AAAA run",
                            dropbear(), NET, 22)  # fmt: skip
    assert built.modules == ()
    cpio = gzip.decompress(Path(built.initramfs).read_bytes())
    listing = subprocess.run(["cpio", "-t"], input=cpio, capture_output=True, check=True).stdout.decode().split()
    assert "modules.list" in listing and "init" in listing


def host_run(boot: Path, script: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """script as the host's sh runs it, with boot as /boot (a private mount namespace)."""
    wrapper = 'mount --bind "$1" /boot && exec sh -c "$2"'
    return subprocess.run(["unshare", "-m", "sh", "-c", wrapper, "sh", str(boot), script], input=stdin,
                          capture_output=True)  # fmt: skip


def grub_boot(tmp: Path, custom: str | None) -> Path:
    boot = tmp / "boot"
    (boot / "grub").mkdir(parents=True)
    subprocess.run(["grub-editenv", str(boot / "grub/grubenv"), "create"], check=True)
    subprocess.run(["grub-editenv", str(boot / "grub/grubenv"), "set", "saved_entry=0"], check=True)
    if custom is not None:
        (boot / "grub/custom.cfg").write_text(custom)
    return boot


def tree(boot: Path) -> dict[str, bytes]:
    return {str(p.relative_to(boot)): p.read_bytes() for p in sorted(boot.rglob("*")) if p.is_file()}


@needs_root
@pytest.mark.skipif(shutil.which("grub-editenv") is None, reason="needs grub-editenv (grub-common)")
@pytest.mark.parametrize("custom", [None, "menuentry 'mine' { true }"], ids=["no custom.cfg", "custom.cfg"])
def test_host_side_sets_the_one_shot_entry_and_cleanup_restores_all(tmp_path: Path, custom: str | None) -> None:
    boot = grub_boot(tmp_path, custom)
    before = tree(boot)
    kernel, initramfs = tmp_path / "k", tmp_path / "i"
    kernel.write_bytes(b"kernel")
    initramfs.write_bytes(b"initramfs")
    fs = bootonce.BootFs("/", "/dev/vda3", "ext4", "U-1", None)
    entry = bootonce.grub_entry(fs, "panic=10")
    done = host_run(boot, bootonce.SETUP, files_tar(str(kernel), str(initramfs), entry))
    assert done.returncode == 0 and b"PINE-READY" in done.stdout, done.stdout + done.stderr
    assert (boot / "pine-hijack/vmlinuz").read_bytes() == b"kernel"
    # the initramfs holds the installer's private host key: root's alone on the host
    assert (boot / "pine-hijack").stat().st_mode & 0o777 == 0o700
    assert (boot / "pine-hijack/initramfs").stat().st_mode & 0o777 == 0o600
    assert (boot / "grub/custom.cfg").read_text() == (custom or "") + entry
    env = subprocess.run(["grub-editenv", str(boot / "grub/grubenv"), "list"], capture_output=True, text=True)
    assert "next_entry=pine-hijack" in env.stdout.split() and "saved_entry=0" in env.stdout.split()

    if custom is None:  # GRUB spent the entry at boot: an empty next_entry is left (unset by the cleanup too)
        subprocess.run(["grub-editenv", str(boot / "grub/grubenv"), "set", "next_entry="], check=True)
    cleaned = host_run(boot, bootonce.CLEANUP)
    assert b"PINE-CLEANED" in cleaned.stdout, cleaned.stdout + cleaned.stderr
    after = tree(boot)
    env = subprocess.run(["grub-editenv", str(boot / "grub/grubenv"), "list"], capture_output=True, text=True)
    assert env.stdout.split() == ["saved_entry=0"]
    after.pop("grub/grubenv"), before.pop("grub/grubenv")  # rewritten by grub-editenv, same variables
    assert after == before


@needs_root
@pytest.mark.skipif(shutil.which("grub-editenv") is None, reason="needs grub-editenv (grub-common)")
def test_host_side_undoes_everything_when_the_files_arrive_corrupt(tmp_path: Path) -> None:
    boot = grub_boot(tmp_path, None)
    before = tree(boot)
    kernel = tmp_path / "k"
    kernel.write_bytes(b"kernel")
    tar = files_tar(str(kernel), str(kernel), "entry\n")
    bad = gzip.compress(gzip.decompress(tar).replace(b"kernel", b"kernes", 1))
    done = host_run(boot, bootonce.SETUP, bad)
    assert done.returncode == 3 and b"PINE-RESTORED" in done.stdout, done.stdout + done.stderr
    assert b"not what was sent" in done.stdout
    assert tree(boot) == before
