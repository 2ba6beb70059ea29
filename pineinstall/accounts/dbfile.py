"""One colon-separated account file (passwd, shadow, group, gshadow, subuid, subgid).

Lines that are not entries (comments, blank lines, NIS ``+``/``-`` lines) are kept verbatim and in
place, so an edited file differs from the original only in the entries we touched. Writing follows
shadow-utils' commonio: the old contents go to ``FILE-`` (same mode and owner), the new contents to
``FILE+``, which is flushed and renamed over ``FILE`` keeping its mode and owner. Nothing is written
when nothing changed, so applying the same config twice leaves the files byte-identical.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from pineinstall.atomicfile import replace_file
from pineinstall.errors import PineError
from pineinstall.run import pid_alive

LOCK_TIMEOUT = 15.0  # seconds, as lckpwdf(3)


class AccountsError(PineError):
    """An account operation cannot be done; the message says which and why."""


class DbFile:
    """The entries of one file; ``entries`` are lists of fields, other lines are kept as strings."""

    def __init__(self, path: Path, nfields: int, *, default_mode: int = 0o644) -> None:
        self.path = path
        self.nfields = nfields
        self.default_mode = default_mode
        self.exists = path.exists()
        self.original = path.read_bytes() if self.exists else b""
        # Each item: list[str] (an entry) or str (a line kept verbatim, without newline).
        self.lines: list[list[str] | str] = []
        text = self.original.decode("utf-8", "surrogateescape")
        raw = text.split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        for line in raw:
            fields = line.split(":")
            if line.startswith(("#", "+", "-")) or len(fields) != nfields:
                self.lines.append(line)  # not an entry we understand: kept verbatim
            else:
                self.lines.append(fields)

    # --- queries -------------------------------------------------------------------------------------

    def entries(self) -> list[list[str]]:
        return [e for e in self.lines if isinstance(e, list)]

    def get(self, name: str) -> list[str] | None:
        for e in self.lines:
            if isinstance(e, list) and e[0] == name:
                return e
        return None

    # --- changes ------------------------------------------------------------------------------------

    def append(self, fields: list[str]) -> None:
        if len(fields) != self.nfields:
            raise ValueError(f"{self.path.name}: {len(fields)} fields, want {self.nfields}")
        for f in fields:
            if ":" in f or "\n" in f:
                raise AccountsError(f"{self.path.name}: field {f!r} contains ':' or a newline")
        self.lines.append(list(fields))

    def remove(self, name: str) -> bool:
        before = len(self.lines)
        self.lines = [e for e in self.lines if not (isinstance(e, list) and e[0] == name)]
        return len(self.lines) != before

    def render(self) -> bytes:
        out = []
        for e in self.lines:
            out.append(":".join(e) if isinstance(e, list) else e)
        text = "".join(line + "\n" for line in out)
        return text.encode("utf-8", "surrogateescape")

    @property
    def changed(self) -> bool:
        return self.render() != self.original

    def write(self, *, mode: int | None = None, owner: tuple[int, int] = (0, 0)) -> bool:
        """Replace the file if its contents changed; returns whether it wrote."""
        data = self.render()
        if self.exists and data == self.original:
            return False
        if self.exists:
            st = os.stat(self.path)
            mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
            replace_file(
                self.path.with_name(self.path.name + "-"), self.original, mode, owner, tmp_suffix="+"
            )
        elif mode is None:
            mode = self.default_mode
        assert mode is not None
        replace_file(self.path, data, mode, owner, tmp_suffix="+")  # passwd+, as shadow-utils
        self.original, self.exists = data, True
        return True


class Lock:
    """``/etc/.pwd.lock`` (fcntl, as lckpwdf) plus shadow-utils' per-file ``FILE.lock`` links.

    The per-file lock is a hard link ``FILE.lock`` -> ``FILE.PID`` holding our PID; a lock left by a
    process that no longer exists is stale and taken over, as commonio does.
    """

    def __init__(self, etc: Path, names: list[str]) -> None:
        self.etc = etc
        self.names = names
        self._fd: int | None = None
        self._held: list[Path] = []
        self._created = False
        self.wrote = False  # set by the user of the lock; a lock file we created is then kept

    def __enter__(self) -> Lock:
        self.etc.mkdir(parents=True, exist_ok=True)
        self._created = not os.path.lexists(self.etc / ".pwd.lock")
        fd = os.open(self.etc / ".pwd.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > deadline:
                    os.close(fd)
                    raise AccountsError(f"cannot lock {self.etc / '.pwd.lock'}: {exc.strerror}") from exc
                time.sleep(0.05)
        self._fd = fd
        try:
            for name in self.names:
                self._lock_file(self.etc / name)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _lock_file(self, path: Path) -> None:
        lock = path.with_name(path.name + ".lock")
        mine = path.with_name(f"{path.name}.{os.getpid()}")
        mine.write_text(f"{os.getpid()}")
        try:
            for _ in range(2):
                try:
                    os.link(mine, lock)
                    self._held.append(lock)
                    return
                except FileExistsError:
                    try:
                        pid = int(lock.read_text().strip() or "0")
                    except (OSError, ValueError):
                        pid = 0
                    if pid > 0 and pid != os.getpid() and pid_alive(pid):
                        raise AccountsError(f"cannot lock {path}: locked by process {pid}") from None
                    lock.unlink(missing_ok=True)  # stale
            raise AccountsError(f"cannot lock {path}")
        finally:
            mine.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        for lock in reversed(self._held):
            with contextlib.suppress(OSError):
                lock.unlink()
        self._held.clear()
        if self._fd is not None:
            if self._created and not self.wrote:
                # Nothing changed: leave the root as we found it (shadow-utils' tools do not run then).
                with contextlib.suppress(OSError):
                    os.unlink(self.etc / ".pwd.lock")
            os.close(self._fd)  # closing drops the fcntl lock
            self._fd = None
