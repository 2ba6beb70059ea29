"""Replacing a file whole: a temporary file beside it, written, owned, fsync'd and renamed over it,
so that a crash or a kill leaves the old file or the new one, never a part of either."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def replace_file(
    path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None, tmp_suffix: str = ""
) -> None:
    """path holds data with mode (and owner, when given) from one rename on; never through a link.
    The temporary file is ``.NAME.pine-tmp``, or ``NAME`` + tmp_suffix (shadow-utils' ``passwd+``)."""
    tmp = path.with_name(path.name + tmp_suffix if tmp_suffix else f".{path.name}.pine-tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a run that was killed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if owner is not None:
            os.fchown(fd, *owner)  # before the mode: chown clears set-id bits
        os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
