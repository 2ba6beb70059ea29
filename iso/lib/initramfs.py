"""Busybox initramfs images: a static busybox, kernel modules in load order, an /init script, written
as a gzip'd newc cpio by hand (no cpio tool), so it is reproducible: every entry root's, mtime 0.
"""

from __future__ import annotations

import gzip
import io
import stat
from pathlib import Path


def module_paths(modroot: Path, names: tuple[str, ...], *, required: bool = True) -> list[str]:
    """Paths (relative to modroot) of names and their dependencies, dependencies first.

    A name without a .ko is an error when required, else taken as built into the kernel."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modroot / "modules.dep").read_text().splitlines():
        target, _, rest = line.partition(":")
        deps[target] = rest.split()
        by_name[Path(target).name.split(".ko")[0].replace("-", "_")] = target
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in reversed(deps[path]):  # modules.dep lists the deepest dependency last
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif required:
            raise FileNotFoundError(f"kernel module {name} not found in {modroot}/modules.dep")
    return order


# The initramfs tree (the /init scripts mkdir what else they need).
DIRECTORIES = ("bin", "dev", "proc", "sys", "run", "sysroot", "newroot", "lib", "lib/modules")


class Cpio:
    """A newc archive in memory: directories, files and symlinks, all owned by root, mtime 0."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        namebytes = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(namebytes), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf.write(header + namebytes + b"\0" * (-(len(header) + len(namebytes)) % 4))
        self.buf.write(data + b"\0" * (-len(data) % 4))
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


def build(
    root: Path,
    kernel_version: str,
    init_script: str,
    out: Path,
    modules: tuple[str, ...],
    *,
    required: bool = True,
    directories: tuple[str, ...] = DIRECTORIES,
) -> list[str]:
    """Write the initramfs for root (a tree with busybox-static and depmod'ed modules) to out:
    /bin/busybox, the modules (and their dependencies) flat in /lib/modules, their load order in
    /modules.list, and /init. Returns the module file names in load order."""
    modroot = root / "usr" / "lib" / "modules" / kernel_version
    if not modroot.is_dir():
        modroot = root / "lib" / "modules" / kernel_version
    mods = module_paths(modroot, modules, required=required)
    cpio = Cpio()
    for d in directories:
        cpio.directory(d)
    cpio.file("bin/busybox", (root / "bin" / "busybox").read_bytes(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    names = []
    for rel in mods:
        name = Path(rel).name
        cpio.file(f"lib/modules/{name}", (modroot / rel).read_bytes())
        names.append(name)
    cpio.file("modules.list", "".join(f"{n}\n" for n in names).encode())  # empty: nothing to load
    cpio.file("init", init_script.encode(), 0o755)
    out.write_bytes(gzip.compress(cpio.finish(), compresslevel=6, mtime=0))
    return names
