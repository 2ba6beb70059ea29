"""Home directories: create (with ``/etc/skel``), move, re-own and remove, as useradd/usermod/userdel.

Host paths come from the caller, already resolved inside the target root. Nothing here follows a
symlink below the home directory: the skeleton's links are copied as links, ownership changes use
``lchown``, removal never descends through a link, and a hard-linked file is re-owned as a private
copy (``pineinstall.target.hardlinks``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from pineinstall.target.hardlinks import unshare

from .dbfile import AccountsError


def make_parents(path: Path) -> None:
    """Missing parents of ``path`` as root-owned 0755 directories (useradd does the same)."""
    missing = []
    p = path.parent
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        os.chmod(d, 0o755)


def create_home(home: Path, uid: int, gid: int, mode: int, skel: Path | None) -> bool:
    """Create ``home`` owned by uid:gid with ``mode`` and copy ``skel`` into it.

    Returns False (and touches nothing) when something already exists there: useradd then warns and
    copies nothing.
    """
    if os.path.lexists(home):
        return False
    make_parents(home)
    os.mkdir(home, 0o700)
    os.chown(home, uid, gid, follow_symlinks=False)
    os.chmod(home, mode)
    if skel is not None and skel.is_dir():
        copy_tree(skel, home, uid, gid)
    return True


def copy_tree(src: Path, dst: Path, uid: int, gid: int) -> None:
    """Copy the contents of ``src`` into the existing ``dst``: modes and times kept, owned by uid:gid."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        s = Path(entry.path)
        d = dst / entry.name
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISDIR(st.st_mode):
            os.mkdir(d, 0o700)
            copy_tree(s, d, uid, gid)
        elif stat.S_ISREG(st.st_mode):
            with open(s, "rb") as fin:
                fd = os.open(d, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(d, 0o600)
        else:
            continue  # devices and sockets have no place in a home
        os.chown(d, uid, gid, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(d, stat.S_IMODE(st.st_mode))
        os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def move_home(old: Path, new: Path) -> bool:
    """usermod --move-home: rename (or copy and remove across filesystems). False if no old home."""
    try:
        st = os.lstat(old)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise AccountsError(f"the previous home directory ({old.name}) was not a directory")
    if os.path.lexists(new):
        raise AccountsError(f"directory {new} exists")
    make_parents(new)
    try:
        os.rename(old, new)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV
            raise
        shutil.copytree(old, new, symlinks=True, copy_function=shutil.copy2)
        _copy_owners(old, new)
        shutil.rmtree(old)
    return True


def _copy_owners(src: Path, dst: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        for name in [".", *dirnames, *filenames]:
            s = os.path.join(dirpath, name)
            st = os.lstat(s)
            os.chown(os.path.join(dst, rel, name), st.st_uid, st.st_gid, follow_symlinks=False)


def chown_tree(top: Path, old_uid: int, new_uid: int, old_gid: int | None, new_gid: int | None) -> None:
    """usermod -u/-g: what the user owned under the home follows the new IDs."""
    if not os.path.isdir(top) or os.path.islink(top):
        return
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [".", *dirnames, *filenames] if dirpath == str(top) else [*dirnames, *filenames]:
            p = os.path.join(dirpath, name) if name != "." else dirpath
            st = os.lstat(p)
            u = new_uid if st.st_uid == old_uid else -1
            g = new_gid if (old_gid is not None and new_gid is not None and st.st_gid == old_gid) else -1
            if u != -1 or g != -1:
                unshare(Path(p), st)  # a hard link may lead out of the root: never chown through it
                mode = stat.S_IMODE(st.st_mode)
                os.chown(p, u, g, follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode) and mode & 0o6000:
                    os.chmod(p, mode)  # chown dropped the set-id bits; the owner meant them


def remove_home(home: Path, uid: int) -> str | None:
    """userdel -r: remove the home if it is a directory the user owns; else a warning text."""
    try:
        st = os.lstat(home)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return f"{home} is not a directory, not removing"
    if st.st_uid != uid:
        return f"{home} not owned by the user, not removing"
    shutil.rmtree(home)
    return None


def remove_mail_spool(spool: Path, uid: int) -> str | None:
    try:
        st = os.lstat(spool)
    except FileNotFoundError:
        return None
    if st.st_uid != uid:
        return f"{spool} not owned by the user, not removing"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spool)
    return None
