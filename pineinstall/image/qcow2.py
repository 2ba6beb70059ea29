"""qcow2 images: converted by ``qemu-img`` (Debian package qemu-utils) into a sparse raw file.

qcow2 is not a stream format (clusters are found through tables anywhere in the file), so the image
must be a local file; the raw result is written like any sparse raw file (holes skipped).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from pineinstall.image.errors import FormatError


def available() -> bool:
    from pineinstall.run import clean_env

    return shutil.which("qemu-img", path=clean_env()["PATH"]) is not None


def to_raw(path: str, tmpdir: str | None) -> str:
    """Convert ``path`` to a sparse raw temporary file; the caller removes it."""
    from pineinstall import run

    if not available():
        raise FormatError(
            f"{path}: qcow2 images need qemu-img (Debian package qemu-utils), which is not installed"
        )
    fd, out = tempfile.mkstemp(prefix="pine-qcow2-", suffix=".raw", dir=tmpdir)
    os.close(fd)
    try:
        run.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", "-S", "4k", path, out])
    except run.CommandError as exc:
        os.unlink(out)
        raise FormatError(f"{path}: qemu-img could not convert it: {exc.stderr.strip() or exc}") from exc
    return out
