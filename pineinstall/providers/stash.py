"""The config ``pineinstall install --stash-config`` left on the boot filesystem:
``/boot/ignition/config.ign`` (directory 0700, file 0600: a config may hold secrets).

On a booted OSTree system the boot filesystem may be reached through ``/sysroot/boot`` rather than
``/boot``: both places are looked at.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pineinstall.providers import ProviderError

STASH_DIR = "boot/ignition"
STASH_FILE = "config.ign"
PLACES = ("", "sysroot")  # under the root: /boot/ignition, then /sysroot/boot/ignition


def locate(root: str | os.PathLike[str] = "/") -> Path | None:
    """The stashed config's path under root, or None."""
    for place in PLACES:
        path = Path(root, place, STASH_DIR, STASH_FILE)
        if path.is_file():
            return path
    return None


def fetch(root: str | os.PathLike[str] = "/") -> tuple[str, bytes] | None:
    """(path, config bytes) of the stashed config under root, or None."""
    path = locate(root)
    if path is None:
        return None
    try:
        return str(path), path.read_bytes()
    except OSError as exc:
        raise ProviderError(f"cannot read the stashed config {path}: {exc.strerror or exc}") from exc


def remove(root: str | os.PathLike[str] = "/") -> list[str]:
    """Delete every stashed config under root, and its directory when that is then empty."""
    removed = []
    for place in PLACES:
        path = Path(root, place, STASH_DIR, STASH_FILE)
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(str(path))
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty
    return removed
