"""extlinux/syslinux: kernel arguments on ``APPEND`` lines, the serial console as a ``SERIAL`` directive.

Every ``APPEND`` line is edited (each label boots the same system). With consoles, the global
``SERIAL port baud`` directive is set for the first serial console (syslinux has one serial port) or
removed when none is serial.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import kargs
from .base import BootError, Bootloader, Change, write_atomic
from .kargs import Edit

CONFIG_PATHS = (
    "boot/extlinux/extlinux.conf",
    "boot/syslinux/syslinux.cfg",
    "boot/syslinux/extlinux.conf",
    "extlinux/extlinux.conf",
    "syslinux/syslinux.cfg",
    "extlinux.conf",
)

_APPEND = re.compile(r"^(?P<lead>\s*)(?P<kw>append)(?P<sep>\s+|$)(?P<args>.*?)(?P<trail>\s*)$", re.IGNORECASE)
_SERIAL = re.compile(r"^\s*serial(\s|$)", re.IGNORECASE)
_LABEL = re.compile(r"^\s*label\s", re.IGNORECASE)


class Extlinux(Bootloader):
    name = "extlinux"

    def _lines(self) -> list[str]:
        try:
            return self.config.read_text().split("\n")
        except UnicodeDecodeError as e:
            raise BootError(f"{self.config}: not UTF-8 text ({e})") from None

    def _appends(self, lines: list[str]) -> list[tuple[int, re.Match[str]]]:
        found = [(i, m) for i, line in enumerate(lines) if (m := _APPEND.match(line))]
        if not found:
            raise BootError(f"{self.config}: no APPEND line (no kernel entry to edit)")
        return found

    def _split(self, text: str, line: int) -> list[str]:
        try:
            return kargs.split(text)
        except kargs.KargsError as e:
            raise BootError(f"{self.config}:{line}: {e}") from None

    def kargs(self) -> list[str]:
        lines = self._lines()
        i, m = self._appends(lines)[0]
        return self._split(m.group("args"), i + 1)

    def apply(self, edit: Edit) -> Change:
        before = self.kargs()
        lines = self._lines()
        new = list(lines)
        for i, m in self._appends(lines):
            args = edit.apply(self._split(m.group("args"), i + 1))
            sep = m["sep"] or " "
            new[i] = (
                f"{m['lead']}{m['kw']}{sep}{kargs.join(args)}{m['trail']}"
                if args
                else f"{m['lead']}{m['kw']}"
            )
        if edit.consoles:
            new = [ln for ln in new if not _SERIAL.match(ln)]
            serial = next((c for c in edit.consoles if c.serial), None)
            if serial is not None:
                # SERIAL must come before the first LABEL: put it first, after leading comments
                at = 0
                while at < len(new) and (not new[at].strip() or new[at].lstrip().startswith("#")):
                    at += 1
                new.insert(at, f"SERIAL {serial.unit} {serial.speed}")
        written = []
        if new != lines:
            write_atomic(self.config, "\n".join(new))
            written.append(self.config)
        return Change(self.name, before, self.kargs(), written)


def detect(root: Path) -> Extlinux | None:
    for rel in CONFIG_PATHS:
        path = root / rel
        if path.is_file():
            return Extlinux(root, path)
    return None
