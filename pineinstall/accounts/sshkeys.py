"""``~/.ssh/authorized_keys`` with a block of keys that belongs to the provisioning config.

Pine writes keys to ``authorized_keys`` itself (a plain OpenSSH reads it; Alpine has no key-dir
helper) rather than Ignition's ``authorized_keys.d/ignition``. Keys already in the file and not
ours are kept: our keys sit between two marker lines, and applying a config replaces only that
block, so applying the same keys twice leaves the file byte-identical and removing a key from the
config removes it from the file. ``~/.ssh`` is created 0700 and the file is written 0600, both owned
by the user; an existing ``~/.ssh`` keeps its mode.

Symlinks are refused below the home directory: a user could have pointed ``~/.ssh`` at ``/etc``
and had root chown it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .dbfile import AccountsError

BEGIN = "# BEGIN pine provisioning: keys below are managed by pineinstall, edits are replaced"
END = "# END pine provisioning"


def key_lines(keys: tuple[str, ...] | list[str]) -> list[str]:
    """The configured keys, one per line, without blank lines or duplicates (first one kept)."""
    out: list[str] = []
    for k in keys:
        for line in k.split("\n"):
            line = line.rstrip("\r").strip()
            if line and line not in out:
                out.append(line)
    return out


def merge(existing: str, keys: list[str]) -> str:
    """``existing`` with our block replaced by ``keys`` (or appended when there is none)."""
    block = [BEGIN, *keys, END]
    lines = existing.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        start = end = -1
    if start >= 0:
        lines[start : end + 1] = block
    else:
        lines.extend(block)
    return "".join(line + "\n" for line in lines)


def managed_keys(text: str) -> list[str]:
    """The keys inside our block (for tests and for reporting)."""
    lines = text.split("\n")
    try:
        start = lines.index(BEGIN)
        end = lines.index(END, start)
    except ValueError:
        return []
    return [x for x in lines[start + 1 : end] if x and not x.startswith("#")]


def write_authorized_keys(home: Path, uid: int, gid: int, keys: list[str]) -> bool:
    """Put ``keys`` into ``home/.ssh/authorized_keys``; returns whether anything changed.

    ``home`` is a host path already resolved inside the target. A missing home is created 0700 for
    the user (Ignition creates it the same way when it writes keys for a user without a home).
    """
    changed = False
    if not os.path.lexists(home):
        parent = home.parent
        if not parent.is_dir():
            if uid != 0:  # the user could not have created it either; leave no trace
                raise AccountsError(f"cannot create {home}: permission denied ({parent} does not exist)")
            os.makedirs(parent, 0o755, exist_ok=True)
        _check_user_may_create(parent, uid, gid, home)
        os.mkdir(home, 0o700)
        os.chown(home, uid, gid, follow_symlinks=False)
        changed = True
    home_fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            st = os.stat(".ssh", dir_fd=home_fd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                raise AccountsError(f"refusing to write SSH keys: {home}/.ssh is {kind}")
        except FileNotFoundError:
            _check_user_may_create(home, uid, gid, home / ".ssh")
            os.mkdir(".ssh", 0o700, dir_fd=home_fd)
            os.chown(".ssh", uid, gid, dir_fd=home_fd, follow_symlinks=False)
            os.chmod(".ssh", 0o700, dir_fd=home_fd)
            changed = True
        ssh_fd = os.open(".ssh", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home_fd)
        try:
            ssh = home / ".ssh"
            _check_user_may_create(ssh, uid, gid, ssh / "authorized_keys", os.fstat(ssh_fd))
        except BaseException:
            os.close(ssh_fd)
            raise
    finally:
        os.close(home_fd)
    try:
        return _write_file(ssh_fd, home, uid, gid, keys) or changed
    finally:
        os.close(ssh_fd)


def _check_user_may_create(
    directory: Path, uid: int, gid: int, what: Path, st: os.stat_result | None = None
) -> None:
    """Refuse to create ``what`` where the user could not have: Ignition writes keys as the user
    (setfsuid), so a home or ``.ssh`` the user does not control is "permission denied" there, and
    root never plants a user-owned directory in a place the user has no say over."""
    if uid == 0:
        return
    st = st if st is not None else os.stat(directory)
    if st.st_uid == uid:
        bits = (st.st_mode >> 6) & 0o7
    elif st.st_gid == gid:
        bits = (st.st_mode >> 3) & 0o7
    else:
        bits = st.st_mode & 0o7
    if bits & 0o3 != 0o3:
        raise AccountsError(f"cannot create {what}: permission denied (the user cannot write to {directory})")


def _write_file(ssh_fd: int, home: Path, uid: int, gid: int, keys: list[str]) -> bool:
    name = "authorized_keys"
    existing = ""
    try:
        st = os.stat(name, dir_fd=ssh_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise AccountsError(f"refusing to write SSH keys: {home}/.ssh/{name} is not a regular file")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=ssh_fd)
        with os.fdopen(fd, "rb") as f:
            existing = f.read().decode("utf-8", "surrogateescape")
        same_meta = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o600)
    except FileNotFoundError:
        same_meta = False
        st = None
    new = merge(existing, keys)
    if st is not None and new == existing and same_meta:
        return False
    tmp = f".{name}.pine-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=ssh_fd)
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=ssh_fd
    )
    try:
        os.write(fd, new.encode("utf-8", "surrogateescape"))
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o600)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, name, src_dir_fd=ssh_fd, dst_dir_fd=ssh_fd)
    return True
