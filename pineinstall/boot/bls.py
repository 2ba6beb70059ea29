"""Boot Loader Specification entries (``boot/loader/entries/*.conf``), as OSTree writes them.

Kernel arguments live in the ``options`` line of the newest entry (the highest ``version``: OSTree
numbers the default deployment highest); only that entry is edited, as Ignition edits the booted
deployment. GRUB builds without BLS support (Debian's 2.06) boot from a ``grub.cfg`` written from the
entries: ``render_grub_cfg`` writes one (marked ``MARK``), and a marked ``grub.cfg`` is rewritten after
every edit; any other ``grub.cfg`` only gets its console block replaced.

Small machines (BIOS): GRUB 2.06 keeps every 32 KiB block it reads in a disk cache on its heap,
allocated from the top of RAM. A relocatable kernel is placed at 16 MiB and reserves its
``init_size`` (38 MiB for Alpine's linux-virt), and the initramfs must go above that; at 64 MiB of
RAM the space left there (~10 MiB) is where the cache of the kernel just read (12.6 MiB) sits, and
the relocator that places the initramfs does not drop the cache (only a failing ``grub_malloc``
does): "out of memory". GRUB drops the whole cache when a disk is opened more than 2 s after the
last one was closed, so the entries written here pause 3 s between ``linux`` and ``initrd`` on BIOS
(``GRUB_CACHE_PAUSE``): the cost of a 64 MiB machine booting, on every BIOS boot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import grub, kargs
from .base import BootError, Bootloader, Change, write_atomic
from .kargs import Edit

MARK = "# pine-bls-grub: written from boot/loader/entries; rewritten by pineinstall after edits"
# Between linux and initrd on BIOS: GRUB drops its disk cache (the kernel's blocks, on the heap where
# the initramfs must go) when a disk is opened > 2 s after the last close (see the module's doc).
GRUB_CACHE_PAUSE = 'if [ "$grub_platform" = pc ]; then sleep 3; fi'

ENTRY_DIRS = ("boot/loader/entries", "loader/entries")


@dataclass
class Entry:
    path: Path
    lines: list[str]

    def get(self, key: str) -> str | None:
        for line in self.lines:
            k, _, v = line.strip().partition(" ")
            if k == key:
                return v.strip()
        return None

    def set(self, key: str, value: str) -> None:
        for i, line in enumerate(self.lines):
            if line.strip().partition(" ")[0] == key:
                self.lines[i] = f"{key} {value}"
                return
        at = len(self.lines)
        while at and not self.lines[at - 1].strip():
            at -= 1
        self.lines.insert(at, f"{key} {value}")

    @property
    def sort_key(self) -> tuple[int, str]:
        version = self.get("version") or ""
        return (int(version) if version.isdigit() else -1, self.path.name)

    @classmethod
    def read(cls, path: Path) -> Entry:
        try:
            return cls(path, path.read_text().split("\n"))
        except UnicodeDecodeError as e:
            raise BootError(f"{path}: not UTF-8 text ({e})") from None

    def text(self) -> str:
        return "\n".join(self.lines)


def entries_dir(root: Path) -> Path | None:
    for rel in ENTRY_DIRS:
        d = root / rel
        if d.is_dir() and any(d.glob("*.conf")):
            return d
    return None


def read_entries(directory: Path) -> list[Entry]:
    """The entries, newest (default) first."""
    return sorted((Entry.read(p) for p in directory.glob("*.conf")), key=lambda e: e.sort_key, reverse=True)


def _boot_prefix(boot_root: Path, entry: Entry) -> str:
    """'/boot' when the entries' paths are relative to a /boot directory of this filesystem."""
    linux = (entry.get("linux") or "").lstrip("/")
    if linux and (boot_root / "boot" / linux).exists():
        return "/boot"
    return ""


def render_grub_cfg(fs_root: Path, console: list[str] | None = None, timeout: int = 1) -> str:
    """A grub.cfg booting the entries under fs_root (newest first, the default).

    console: the lines of the console block to keep (with its markers); default: none.
    """
    directory = entries_dir(fs_root)
    if directory is None:
        raise BootError(f"{fs_root}: no BLS entries under {' or '.join(ENTRY_DIRS)}")
    out = [
        MARK,
        f"set timeout={timeout}",
        "set default=0",
        "insmod part_gpt",
        "insmod ext2",
        "insmod sleep",
        *(console or []),
    ]
    for entry in read_entries(directory):
        linux = entry.get("linux")
        if not linux:
            raise BootError(f"{entry.path}: no linux line")
        prefix = _boot_prefix(fs_root, entry)
        title = (entry.get("title") or entry.path.stem).replace("'", "")
        out.append(f"menuentry '{title}' {{")
        out.append(f"\tsearch --no-floppy --file --set=root {prefix}{linux}")
        out.append(f"\tlinux {prefix}{linux} {entry.get('options') or ''}".rstrip())
        initrd = entry.get("initrd")
        if initrd:
            out.append(f"\t{GRUB_CACHE_PAUSE}")
            out.append(f"\tinitrd {prefix}{initrd}")
        out.append("}")
    return "\n".join(out) + "\n"


def _console_lines(lines: list[str]) -> list[str]:
    stripped = [ln.strip() for ln in lines]
    if grub.CONSOLE_START in stripped and grub.CONSOLE_END in stripped:
        return lines[stripped.index(grub.CONSOLE_START) : stripped.index(grub.CONSOLE_END) + 1]
    return []


def write_grub_cfg(fs_root: Path, path: Path, consoles: tuple[kargs.Console, ...] | None = None) -> None:
    """(Re)write path from the entries; keep its console block unless consoles are given."""
    if consoles:
        block = grub.console_block(consoles)
    else:
        try:
            block = _console_lines(path.read_text().split("\n"))
        except FileNotFoundError:
            block = []
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, render_grub_cfg(fs_root, block))


class Bls(Bootloader):
    name = "bls"

    def newest(self) -> Entry:
        entries = read_entries(self.config)
        if not entries:
            raise BootError(f"{self.config}: no *.conf entries")
        return entries[0]

    def kargs(self) -> list[str]:
        entry = self.newest()
        try:
            return kargs.split(entry.get("options") or "")
        except kargs.KargsError as e:
            raise BootError(f"{entry.path}: options: {e}") from None

    def apply(self, edit: Edit) -> Change:
        entry = self.newest()
        before = self.kargs()
        after = edit.apply(before)
        written: list[Path] = []
        if after != before:
            entry.set("options", kargs.join(after))
            write_atomic(entry.path, entry.text())
            written.append(entry.path)
        # entries are under root/boot/loader (a root with /boot) or root/loader (a boot partition)
        fs_root = self.root
        cfg = grub.find_config(fs_root)
        if cfg is not None:
            text = cfg.read_text()
            if text.startswith(MARK):
                write_grub_cfg(fs_root, cfg, edit.consoles or None)
            elif edit.consoles:
                write_atomic(cfg, "\n".join(grub.replace_console(text.split("\n"), edit.consoles)))
            if cfg.read_text() != text:
                written.append(cfg)
        return Change(self.name, before, after, written)


def detect(root: Path) -> Bls | None:
    directory = entries_dir(root)
    return Bls(root, directory) if directory else None
