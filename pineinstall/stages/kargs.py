"""The kargs stage: the config's ``kernelArguments`` (and an installer's ``--append-karg``,
``--delete-karg``, ``--console``) on the target's bootloader, edited by :mod:`pineinstall.boot`.

Where the bootloader configuration is depends on the caller (an installed image's root, the
running system's ``/boot`` or ``/sysroot/boot``): :class:`Kargs` carries a function that finds it,
called only when there is something to edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pineinstall.stages import Log
from pineinstall.target import Target


@dataclass(frozen=True)
class Kargs:
    """What the kargs stage edits besides the config's ``kernelArguments``, and where.

    ``boot_root(target)`` is the directory whose ``boot/`` holds the bootloader configuration (it
    raises when there is none). ``console`` is None for a caller that never edits consoles.
    """

    boot_root: Callable[[Target], str]
    append: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    console: tuple[str, ...] | None = None


def wanted(config: Any, kargs: Kargs) -> bool:
    """Whether there is anything to edit."""
    ka = config.kernel_arguments
    return any((ka.should_exist, ka.should_not_exist, kargs.append, kargs.delete, kargs.console))


def plan_lines(config: Any) -> list[str]:
    """The dry-run plan: ``karg: +ARG`` for each argument added, ``karg: -ARG`` for each removed."""
    ka = config.kernel_arguments
    return [f"karg: +{a}" for a in ka.should_exist] + [f"karg: -{a}" for a in ka.should_not_exist]


def run(config: Any, kargs: Kargs, target: Target, log: Log) -> Any:
    """Edit the bootloader; the :class:`pineinstall.boot.Change`, or None when nothing is asked."""
    from pineinstall.boot import apply_kargs

    if not wanted(config, kargs):
        return None
    ka = config.kernel_arguments
    where = kargs.boot_root(target)
    what = "kernel arguments" + (" and console" if kargs.console is not None else "") + " on the bootloader"
    with log.stage("kargs"), log.op(what):
        change = apply_kargs(
            where,
            should_exist=ka.should_exist,
            should_not_exist=ka.should_not_exist,
            append=kargs.append,
            delete=kargs.delete,
            console=kargs.console or (),
        )
    with log.stage("kargs"):
        log.info(f"{change.bootloader}: {' '.join(change.before)} -> {' '.join(change.after)}")
    return change
