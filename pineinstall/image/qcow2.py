"""qcow2 images: converted by ``qemu-img`` (Debian package qemu-utils) into a sparse raw file.

qcow2 is not a stream format (clusters are found through tables anywhere in the file), so the image
must be a local file; the raw result is written like any sparse raw file (holes skipped).
"""

from __future__ import annotations

import os
import shutil

from pineinstall.image.errors import FormatError
from pineinstall.staging import Staged


def available() -> bool:
    from pineinstall.run import clean_env

    return shutil.which("qemu-img", path=clean_env()["PATH"]) is not None


def to_raw(path: str, tmpdir: str | None) -> Staged:
    """Convert ``path`` to a sparse raw staged file; the caller removes it."""
    from pineinstall import run, staging

    if not available():
        raise FormatError(
            f"{path}: qcow2 images need qemu-img (Debian package qemu-utils), which is not installed"
        )
    fd, out = staging.new_file(tmpdir, "qcow2", suffix=".raw")
    os.close(fd)
    try:
        run.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", "-S", "4k", path, out.path])
    except run.CommandError as exc:
        out.remove()
        raise FormatError(f"{path}: qemu-img could not convert it: {exc.stderr.strip() or exc}") from exc
    return out
