"""Bootloaders and kernel arguments on a mounted root (a plain root or an OSTree sysroot).

    from pineinstall.boot import apply_kargs, detect
    change = apply_kargs(root, should_exist=["quiet"], console=["ttyS0,115200n8"])
    change.before, change.after, change.files

One module per bootloader: ``bls`` (OSTree's BLS entries; looked for first), ``grub`` (grub.cfg linux
lines / grubenv kernelopts), ``extlinux`` (APPEND lines). ``kargs`` holds the semantics: see
``kargs.Edit`` for the order of operations.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .base import BootError, Bootloader, Change
from .kargs import Console, Edit, KargsError, parse_console


def detect(root: str | Path) -> Bootloader:
    """The bootloader configuration of the filesystem mounted at root; BootError when none is found."""
    from . import bls, extlinux, grub

    root = Path(root)
    for module in (bls, grub, extlinux):
        found = module.detect(root)
        if found is not None:
            return found
    raise BootError(
        f"{root}: no bootloader configuration found (looked for boot/loader/entries/*.conf, "
        f"{', '.join(grub.CONFIG_PATHS)}, {', '.join(extlinux.CONFIG_PATHS)})"
    )


def apply_kargs(
    root: str | Path,
    should_exist: Iterable[str] = (),
    should_not_exist: Iterable[str] = (),
    append: Iterable[str] = (),
    delete: Iterable[str] = (),
    console: Iterable[str | Console] = (),
) -> Change:
    """Edit the kernel arguments (and console settings) of the bootloader found under root.

    Ignition's kernelArguments: should_exist added at the end when missing, should_not_exist removed
    when present, the other arguments keep their order. append/delete are coreos-installer's
    --append-karg/--delete-karg; console its --console (``ttyS0,115200n8``, ``tty0``, ...): every
    ``console=`` argument is replaced and GRUB/syslinux get matching serial settings. Nothing is
    written when nothing changes.
    """
    consoles = tuple(c if isinstance(c, Console) else parse_console(c) for c in console)
    edit = Edit(tuple(should_exist), tuple(should_not_exist), tuple(append), tuple(delete), consoles)
    loader = detect(root)
    if edit.empty:
        args = loader.kargs()
        return Change(loader.name, args, list(args), [])
    return loader.apply(edit)


__all__ = [
    "BootError",
    "Bootloader",
    "Change",
    "Console",
    "Edit",
    "KargsError",
    "apply_kargs",
    "detect",
    "parse_console",
]
