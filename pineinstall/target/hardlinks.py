"""No write outside the root through a hard link: a regular file of the root with other names --
one of them may be outside the root, on the same filesystem -- is replaced by a private copy before
its mode or owner is changed or data is appended to it (the other names keep the old inode)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path


def unshare(p: Path, st: os.stat_result) -> os.stat_result:
    """A regular file with other hard links -- one may be outside the root -- is replaced by a copy
    of itself (new file, same contents, owner and mode, then rename) before it is changed, so that
    the change reaches this name only. Returns the stat of what is at ``p`` now."""
    if not stat.S_ISREG(st.st_mode) or st.st_nlink <= 1:
        return st
    fd, tmp = tempfile.mkstemp(prefix=".pine-", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(p, "rb", opener=_no_follow) as src:
            shutil.copyfileobj(src, out, 1 << 20)
            os.fchown(out.fileno(), st.st_uid, st.st_gid)  # ownership first: chown clears set-id bits
            os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
        os.rename(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return os.lstat(p)


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)
