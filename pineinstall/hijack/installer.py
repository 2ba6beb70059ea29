"""The one-shot installer of ``--takeover boot-once``, built here on the controller: the provisioned
disk's own kernel, and an initramfs holding the RAM payload's mini-root (busybox, Dropbear, the run's
key, ``stage2.sh``; :func:`pineinstall.hijack.payload.entries`) with the kernel's modules for disks
and NICs, the carried network, a host key made here (so the installer's key is pinned before it
exists) and :data:`pineinstall.hijack.bootonce.INIT`.

The kernel and its modules are read from the provisioned disk (an OSTree deployment's
``usr/lib/modules/VERSION``, or a plain root's), through read-only loop mounts, as
:func:`pineinstall.hijack.provision.own_dropbear` reads Dropbear. The module list is data
(:data:`MODULES`): a name the kernel lacks is taken as built in or not needed.
"""

from __future__ import annotations

import glob
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pineinstall.errors import PineError
from pineinstall.hijack import bootonce, payload

# Disk and NIC drivers of common VPS hypervisors (KVM virtio, Xen, Hyper-V, VMware, emulated e1000 and
# AHCI, NVMe), and af_packet for udhcpc. With their dependencies, dependencies first.
MODULES = (
    "virtio_pci", "virtio_blk", "virtio_scsi", "virtio_net", "sd_mod", "ahci", "nvme", "xen_blkfront",
    "xen_netfront", "hv_storvsc", "hv_netvsc", "vmw_pvscsi", "vmxnet3", "e1000", "e1000e", "af_packet",
    "ipv6",
)  # fmt: skip
KERNEL_GLOBS = ("ostree/deploy/*/deploy/*/usr/lib/modules/*/vmlinuz", "usr/lib/modules/*/vmlinuz",
                "lib/modules/*/vmlinuz")  # fmt: skip


class InstallerError(PineError):
    """The installer cannot be built from the provisioned disk; the host was not touched."""


@dataclass(frozen=True)
class Installer:
    kernel: str  # path of the kernel (a copy in the run directory)
    initramfs: str  # path of the gzip'ed cpio
    host_key_pub: str  # "ssh-ed25519 AAAA..." of the installer's Dropbear, pinned by the controller
    modules: tuple[str, ...]  # file names in load order
    version: str


def module_order(modules_dep: str, names: tuple[str, ...]) -> list[str]:
    """Paths (as modules.dep names them) of names and their dependencies, dependencies first; names
    the file lacks are skipped (built into the kernel, or another kernel's)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        target, sep, rest = line.partition(":")
        if not sep:
            continue
        deps[target] = rest.split()
        by_name[os.path.basename(target).split(".ko")[0].replace("-", "_")] = target
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps.get(path, [])):  # modules.dep lists the deepest dependency last
            visit(dep)
        order.append(path)

    for name in names:
        if name.replace("-", "_") in by_name:
            visit(by_name[name.replace("-", "_")])
    return order


def plain_module(path: str) -> bytes:
    """A module file's bytes uncompressed (busybox insmod reads plain .ko files)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True).stdout
    return data


class Cpio:
    """A newc archive (the initramfs format): every entry root's, mtime 0."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def add(self, name: str, mode: int, data: bytes = b"") -> None:
        raw = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        head = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf.write(head + raw + b"\0" * (-(len(head) + len(raw)) % 4))
        self.buf.write(data + b"\0" * (-len(data) % 4))
        self.ino += 1

    def finish(self) -> bytes:
        self.ino = 0
        self.add("TRAILER!!!", 0)
        return self.buf.getvalue()


def find_kernel(root: str) -> str | None:
    """The module directory (holding vmlinuz, and modules.dep unless every driver is built in) of a
    mounted root, or None."""
    for pattern in KERNEL_GLOBS:
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            return os.path.dirname(path)
    return None


def _copy_kernel(disk: str, run_dir: str) -> tuple[str, str, list[tuple[str, bytes]]]:
    """(kernel copy, version, [(module file name, plain bytes)]) from the first partition that has one."""
    from pineinstall.hijack.provision import on_partitions

    def copy(mnt: str) -> tuple[str, str, list[tuple[str, bytes]]] | None:
        moddir = find_kernel(mnt)
        if moddir is None:
            return None
        kernel = os.path.join(run_dir, "installer-vmlinuz")
        shutil.copyfile(os.path.join(moddir, "vmlinuz"), kernel)
        dep = os.path.join(moddir, "modules.dep")
        order = module_order(Path(dep).read_text() if os.path.exists(dep) else "", MODULES)
        mods = []
        for rel in order:
            name = os.path.basename(rel)
            for ext in (".gz", ".xz", ".zst"):
                name = name.removesuffix(ext)
            mods.append((name, plain_module(os.path.join(moddir, rel))))
        return kernel, os.path.basename(moddir), mods

    found = on_partitions(disk, run_dir, copy)
    if found is None:
        raise InstallerError(f"no kernel (usr/lib/modules/VERSION/vmlinuz) on any partition of {disk}")
    return found


def host_key(dropbear: str, run_dir: str) -> tuple[bytes, str]:
    """A Dropbear ed25519 host key made here (the static dropbearmulti runs on the controller too):
    the key file's bytes and its public line."""
    from pineinstall.run import CommandError, run

    path = os.path.join(run_dir, "installer_host_key")
    try:
        run([dropbear, "dropbearkey", "-t", "ed25519", "-f", path])
        out = run([dropbear, "dropbearkey", "-y", "-f", path]).stdout.decode()
    except (CommandError, OSError) as exc:
        raise InstallerError(f"{dropbear}: cannot make the installer's host key: {exc}") from exc
    pub = next((ln.strip() for ln in out.splitlines() if ln.startswith("ssh-")), None)
    if pub is None:
        raise InstallerError(f"{dropbear} dropbearkey -y printed no public key")
    with open(path, "rb") as fh:
        return fh.read(), " ".join(pub.split()[:2])


def build(disk: str, run_dir: str, run_key_pub: str, own_dropbear: str | None, net: str, port: int,
          watchdog: int = bootonce.WATCHDOG) -> Installer:  # fmt: skip
    """The installer for the provisioned disk (kernel and modules from it), into run_dir."""
    kernel, version, mods = _copy_kernel(disk, run_dir)
    dropbear = payload.ram_dropbear(own_dropbear)
    key, key_pub = host_key(dropbear, run_dir)
    cpio = Cpio()
    names = set()
    for e in payload.entries(run_key_pub, dropbear):
        names.add(e.name)
        if e.link is not None:
            cpio.add(e.name, stat.S_IFLNK | 0o777, e.link.encode())
        elif e.data is None:
            cpio.add(e.name, stat.S_IFDIR | e.mode)
        else:
            cpio.add(e.name, stat.S_IFREG | e.mode, e.data)
    for d in ("run", "lib", "lib/modules", "etc/pine-hijack"):
        if d not in names:
            cpio.add(d, stat.S_IFDIR | 0o755)
    for name, data in mods:
        cpio.add(f"lib/modules/{name}", stat.S_IFREG | 0o644, data)
    cpio.add("modules.list", stat.S_IFREG | 0o644, "".join(f"{n}\n" for n, _ in mods).encode())
    cpio.add("etc/dropbear/host_key", stat.S_IFREG | 0o600, key)
    cpio.add("etc/pine-hijack/conf", stat.S_IFREG | 0o644, bootonce.init_conf(port, watchdog).encode())
    cpio.add("etc/pine-hijack/net", stat.S_IFREG | 0o644, net.encode())
    cpio.add("etc/pine-hijack/udhcpc.script", stat.S_IFREG | 0o755, bootonce.UDHCPC_SCRIPT.encode())
    cpio.add("init", stat.S_IFREG | 0o755, bootonce.INIT.encode())
    initramfs = os.path.join(run_dir, "installer-initramfs")
    Path(initramfs).write_bytes(gzip.compress(cpio.finish(), compresslevel=9, mtime=0))
    return Installer(kernel, initramfs, key_pub, tuple(n for n, _ in mods), version)
