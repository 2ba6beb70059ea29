"""A tiny initramfs: busybox, a few kernel modules and /init, written as a newc cpio in Python.

Written by hand (instead of calling cpio) so the archive is byte-for-byte reproducible and needs no host
tool: every entry is owned by root with a fixed mtime.
"""

from __future__ import annotations

import gzip
import io
import stat
from pathlib import Path

# Modules stage 1 needs to find the root disk and the per-run 9p share; the Debian root's own kmod
# loads everything else after switch_root. crc32c_generic is a soft dependency of ext4 that
# modules.dep does not list, so it is named explicitly and loaded first.
STAGE1_MODULES = (
    "crc32c_generic",
    "virtio_pci",
    "virtio_blk",
    "ext4",
    "9pnet_virtio",
    "9p",
)


def module_paths(modroot: Path, names: tuple[str, ...]) -> list[str]:
    """Relative module paths (under modroot) for names and their dependencies, in load order."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modroot / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
        base = Path(target).name.split(".ko")[0]
        by_name[base.replace("-", "_")] = target
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        # modules.dep lists a module's dependencies deepest last; load those first.
        for dep in reversed(deps[path]):
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key not in by_name:
            raise FileNotFoundError(f"kernel module {name} not found in {modroot}/modules.dep")
        visit(by_name[key])
    return order


class _Cpio:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        namebytes = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(namebytes), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf.write(header + namebytes)
        self.buf.write(b"\0" * (-(len(header) + len(namebytes)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))
        self.ino += 1

    def directory(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self.ino = 0
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def build(root: Path, kernel_version: str, init_script: str, out: Path) -> list[str]:
    """Write a gzip'd initramfs for root (a Debian tree with busybox-static and depmod'ed modules).

    Returns the module load order written to /modules.list.
    """
    modroot = root / "lib" / "modules" / kernel_version
    mods = module_paths(modroot, STAGE1_MODULES)
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "newroot", "lib", "lib/modules"):
        cpio.directory(d)
    cpio.file("bin/busybox", (root / "bin" / "busybox").read_bytes(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    # Flat copies: stage 1 insmods them in the listed order, no modprobe needed.
    names = []
    for rel in mods:
        name = Path(rel).name
        cpio.file(f"lib/modules/{name}", (modroot / rel).read_bytes())
        names.append(name)
    cpio.file("modules.list", ("\n".join(names) + "\n").encode())
    cpio.file("init", init_script.encode(), 0o755)
    out.write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    return names
