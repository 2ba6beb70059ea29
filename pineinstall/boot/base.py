"""What every bootloader module offers: read the default entry's arguments and rewrite them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pineinstall.errors import PineError

from .kargs import Edit


class BootError(PineError):
    """No bootloader configuration found, or one this module cannot edit. Names the file."""


@dataclass
class Change:
    """What apply_kargs did: the bootloader, the files written, the default entry's args before/after."""

    bootloader: str
    before: list[str]
    after: list[str]
    files: list[Path] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.files)


class Bootloader:
    name = "?"

    def __init__(self, root: Path, config: Path) -> None:
        self.root = root
        self.config = config

    def kargs(self) -> list[str]:
        """The arguments the default entry boots with."""
        raise NotImplementedError

    def apply(self, edit: Edit) -> Change:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config}>"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace path's content through a temporary file + rename, keeping its mode; fsync'd."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    tmp = path.with_name(f".{path.name}.pine-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
