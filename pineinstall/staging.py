"""Staged files: what a run keeps outside DEST for a while -- a downloaded image (``--tmpdir``), a
qcow2 converted to raw, the decompressed copy read for the image's accounts, gpg's work directory,
the raw disk behind a qcow2 DEST.

A ``kill -9`` or a power cut leaves them behind (a tmpfs forgets them at the reboot, a disk does
not). So each is named with its run's pid, ``[PREFIX]pine-WHAT.PID.RANDOM[SUFFIX]``, and the run
holds an exclusive ``flock`` on it for as long as it lives (the kernel drops the lock with the
process). :func:`sweep` removes, from one directory, what such a name says a run of ours left when
that run is gone: its pid is not alive, and its lock is free (so a live run in another pid
namespace, or one whose pid came back, is never touched). Only regular files and directories owned
by this user are considered, never a symlink. Every new staged name sweeps its directory first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import tempfile
from typing import TYPE_CHECKING

from pineinstall.run import pid_alive

if TYPE_CHECKING:
    from pineinstall.stages import Log

NAME = re.compile(r"pine-[a-z0-9-]+\.(?P<pid>[0-9]+)\.[a-z0-9_]+")


class Staged:
    """One staged file or directory, locked while this process lives; :meth:`remove` when done."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock: int | None = _lock(path)

    def remove(self) -> None:
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def _lock(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _name(what: str, prefix: str) -> str:
    return f"{prefix}pine-{what}.{os.getpid()}."


def new_file(directory: str | None, what: str, *, suffix: str = "", prefix: str = "") -> tuple[int, Staged]:
    """A new empty file in ``directory`` (default: the system's temporary directory): an fd open
    for writing, and the :class:`Staged` holding its lock."""
    directory = directory or tempfile.gettempdir()
    sweep(directory, prefix)
    fd, path = tempfile.mkstemp(prefix=_name(what, prefix), suffix=suffix, dir=directory)
    try:
        return fd, Staged(path)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise


def new_dir(directory: str | None, what: str, *, prefix: str = "") -> Staged:
    """A new private (0700) directory in ``directory`` (default: the system's temporary directory)."""
    directory = directory or tempfile.gettempdir()
    sweep(directory, prefix)
    path = tempfile.mkdtemp(prefix=_name(what, prefix), dir=directory)
    try:
        return Staged(path)
    except BaseException:
        os.rmdir(path)
        raise


def _left_by(directory: str, name: str, prefix: str) -> int | None:
    """The pid of the dead run that left ``name``, or None (not ours, or its run is alive)."""
    if not name.startswith(prefix):
        return None
    m = NAME.match(name, len(prefix))
    if m is None:
        return None
    pid = int(m["pid"])
    if pid == os.getpid() or pid_alive(pid):
        return None
    try:
        st = os.lstat(os.path.join(directory, name))
    except OSError:
        return None
    if st.st_uid != os.geteuid() or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return None
    return pid


def sweep(directory: str | None, prefix: str = "", log: Log | None = None) -> list[str]:
    """Remove from ``directory`` what dead runs of ours staged there (names starting with
    ``prefix``); returns the paths removed. ``log``: a :class:`pineinstall.stages.Log` told of each."""
    directory = directory or tempfile.gettempdir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        pid = _left_by(directory, name, prefix)
        if pid is None:
            continue
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            continue  # held: a live run (another pid namespace, or a pid that came back)
        else:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        finally:
            os.close(fd)
        removed.append(path)
        if log is not None:
            log.info(f"removed {path}, staged by an earlier run (pid {pid}) that is gone")
    return removed
