"""The build cache: ``~/.cache/pineinstall-tests`` (``PINE_VM_CACHE`` moves it) and :func:`cached_build`,
the one way every image in ``iso/`` and the VM harness is built and reused.

A build runs once per key: under an flock, in ``<name>.tmp-PID`` next to its final directory, which
gets ``manifest.json`` and is then renamed into place, so a reader sees either nothing or a finished
build, and a build killed half-way leaves only a temporary directory (removed by the next build).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``~/.cache/pineinstall-tests``, or PINE_VM_CACHE when set (created if missing)."""
    env = os.environ.get("PINE_VM_CACHE")
    path = Path(env) if env else Path.home() / ".cache" / "pineinstall-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(name: str) -> Path:
    """A sub-directory of the cache (``images``, ``installer``, ...), created if missing."""
    path = cache_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path: Path, waiting: str = "") -> Iterator[None]:
    """An exclusive flock held for the block (released by the kernel if the process dies); when
    another process holds it, ``waiting`` is said on stderr before waiting for it."""
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def clean_stale(parent: Path) -> None:
    """Remove the temporary directories of builders that died (their pid no longer exists)."""
    for tmp in parent.glob("*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(directory: Path) -> dict | None:
    """The manifest of a finished build in directory, None when there is none."""
    try:
        return json.loads((directory / "manifest.json").read_text())
    except FileNotFoundError:
        return None


def cached_build(
    directory: Path,
    build: Callable[[Path], dict],
    *,
    keep: Collection[str] | None = None,
    needs_root: bool = True,
) -> dict:
    """The manifest of the build in directory, running ``build(tmp)`` first if there is none.

    build fills tmp and returns the manifest (a JSON object); ``build_seconds``, ``built_at`` and
    ``key`` (the directory's name) are added. keep: the only names left in tmp besides manifest.json
    (None keeps everything). Returns the manifest; the files are read-only for callers (copy them).
    """
    found = read_manifest(directory)
    if found is not None:
        return found
    parent = directory.parent
    parent.mkdir(parents=True, exist_ok=True)
    with file_lock(parent / f"{directory.name}.lock"):
        found = read_manifest(directory)  # another process built it while we waited
        if found is not None:
            return found
        if needs_root and os.geteuid() != 0:
            raise RuntimeError(f"building {directory.name} needs root (mmdebstrap, chroot, loop devices)")
        clean_stale(parent)
        tmp = parent / f"{directory.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        started = time.monotonic()
        try:
            manifest = build(tmp)
            manifest.setdefault("build_seconds", round(time.monotonic() - started, 1))
            manifest["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            manifest["key"] = directory.name
            if keep is not None:
                for leftover in tmp.iterdir():
                    if leftover.name not in keep:
                        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            os.rename(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"[images] built {directory} in {manifest['build_seconds']} s", file=sys.stderr, flush=True)
    return manifest
