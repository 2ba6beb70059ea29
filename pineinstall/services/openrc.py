"""OpenRC services offline: an init script in ``/etc/init.d`` and a link in ``/etc/runlevels/LEVEL``.

Enabling is the link ``/etc/runlevels/LEVEL/NAME -> /etc/init.d/NAME`` (what ``rc-update add NAME
LEVEL`` creates); disabling removes the service's links from every runlevel (``rc-update del``).
:func:`check` reports runlevel links whose init script is missing or not executable, which OpenRC
would skip at boot with only a console message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pineinstall.errors import PineError
from pineinstall.target import Target

INIT_D = "/etc/init.d"
RUNLEVELS = "/etc/runlevels"


class OpenRCError(PineError):
    """An OpenRC service cannot be enabled or disabled as asked."""


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise OpenRCError(f"invalid OpenRC service name {name!r}")


def enable(target: Target, name: str, runlevel: str = "default") -> bool:
    """Link ``name`` into ``runlevel``; False when it already is."""
    _check_name(name)
    _check_name(runlevel)
    script = Path(target.resolve(f"{INIT_D}/{name}"))
    if not script.is_file():
        raise OpenRCError(f"{INIT_D}/{name} does not exist")
    level_dir = Path(target.resolve(f"{RUNLEVELS}/{runlevel}"))
    link = level_dir / name
    dest = f"{INIT_D}/{name}"
    if link.is_symlink() and os.readlink(link) == dest:
        return False
    if os.path.lexists(link):
        raise OpenRCError(f"{RUNLEVELS}/{runlevel}/{name} exists and is not a link to {dest}")
    level_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.symlink(dest, link)
    return True


def disable(target: Target, name: str) -> list[str]:
    """Remove ``name`` from every runlevel; returns the runlevels it was in."""
    _check_name(name)
    top = Path(target.resolve(RUNLEVELS))
    removed = []
    if top.is_dir():
        for level in sorted(os.listdir(top)):
            link = top / level / name
            if link.is_symlink():
                os.unlink(link)
                removed.append(level)
    return removed


def enabled(target: Target) -> set[tuple[str, str]]:
    """(runlevel, service) pairs linked in the target."""
    top = Path(target.resolve(RUNLEVELS))
    out: set[tuple[str, str]] = set()
    if top.is_dir():
        for level in os.listdir(top):
            d = top / level
            if d.is_dir() and not d.is_symlink():
                out.update((level, n) for n in os.listdir(d) if (d / n).is_symlink())
    return out


def check(target: Target) -> list[str]:
    """Problems OpenRC would meet at boot: runlevel links to missing or non-executable scripts."""
    problems = []
    for level, name in sorted(enabled(target)):
        link = Path(target.resolve(f"{RUNLEVELS}/{level}/{name}"))
        dest = os.readlink(link)
        script = target.resolve_all(dest) if dest.startswith("/") else link.parent / dest
        try:
            st = os.stat(script)
        except OSError:
            problems.append(f"{RUNLEVELS}/{level}/{name} -> {dest}: no such init script")
            continue
        if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
            problems.append(f"{RUNLEVELS}/{level}/{name} -> {dest}: init script is not executable")
    return problems
