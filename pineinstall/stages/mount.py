"""The mount and umount stages: filesystems with a ``path`` are mounted under the target root,
shallowest first (so ``/var`` is there before ``/var/log``), with their ``mountOptions``; umount
goes in the reverse order.

Accepts the config's filesystems (``pineinstall.config.model.Filesystem``) or the plan's
(:class:`pineinstall.stages.plan.FsPlan`, whose ``node`` is the resolved device).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pineinstall.block import mkfs, wait
from pineinstall.run import CommandError, run
from pineinstall.stages import Log, StageError
from pineinstall.stages.plan import FsPlan
from pineinstall.target import Target, TargetError, as_target


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p and p != "."])


def mountable(filesystems: Any) -> list[Any]:
    """The filesystems that get mounted, in mount order (shallowest first; stable otherwise)."""
    chosen = [
        fs
        for fs in filesystems
        if fs.path
        and fs.format is not None
        and str(fs.format) in mkfs.FORMATS
        and mkfs.FORMATS[str(fs.format)].mountable
    ]
    return sorted(chosen, key=lambda fs: _depth(fs.path))


def mount_point(root: Target | str | os.PathLike[str], path: str) -> Path:
    """Where ``path`` is on the host: symlinks on the way followed *inside* the root (as Ignition
    joins mount paths), so a mount never lands outside it."""
    try:
        return as_target(root).resolve_all(path if path.startswith("/") else "/" + path)
    except TargetError as exc:
        raise StageError(f"mount path {path!r}: {exc}") from exc


def _device(fs: Any, timeout: float) -> str:
    node = (fs.node if isinstance(fs, FsPlan) else None) or fs.device
    try:
        return wait.wait_for(node, timeout)
    except wait.DeviceTimeout as exc:
        raise StageError(f"mount: {exc}") from exc


def mount_all(
    filesystems: Any, target_root: Target | str | os.PathLike[str], log: Log, *, timeout: float = 30.0
) -> list[Path]:
    """Mount every filesystem with a path under ``target_root``; returns the mount points in the
    order mounted. On a failure, what was mounted is unmounted again before the error is raised."""
    done: list[Path] = []
    try:
        for fs in mountable(filesystems):
            where = mount_point(target_root, fs.path)
            device = _device(fs, timeout)
            with log.op(f"mounting {fs.device} at {fs.path}"):
                where.mkdir(parents=True, exist_ok=True)
                argv = ["mount", "-t", str(fs.format)]
                options = list(fs.mount_options or ())
                if options:
                    argv += ["-o", ",".join(options)]
                run([*argv, device, str(where)])
            done.append(where)
    except (CommandError, StageError, OSError) as exc:
        _umount(list(reversed(done)), log)
        if isinstance(exc, StageError):
            raise
        raise StageError(f"mount: {exc}") from exc
    return done


def _umount(points: list[Path], log: Log) -> None:
    for point in points:
        try:
            run(["umount", str(point)])
        except CommandError as exc:
            log.warning(f"could not unmount {point}: {exc}")


def umount_all(filesystems: Any, target_root: Target | str | os.PathLike[str], log: Log) -> None:
    """Unmount what :func:`mount_all` mounted, deepest first; every one is tried, the first
    failure is raised at the end."""
    failed: list[str] = []
    for fs in reversed(mountable(filesystems)):
        where = mount_point(target_root, fs.path)
        if not os.path.ismount(where):
            continue
        with log.op(f"unmounting {fs.path}"):
            try:
                run(["umount", str(where)])
            except CommandError as exc:
                failed.append(str(exc))
    if failed:
        raise StageError(f"umount: {failed[0]}")
