"""A config in a file, or ``-`` for stdin."""

from __future__ import annotations

import sys
from typing import IO

from pineinstall.providers import ProviderError


def read(path: str, stdin: IO[bytes] | None = None) -> bytes:
    """The bytes of path (``-``: all of stdin); ProviderError when it cannot be read."""
    try:
        if path == "-":
            return (stdin or sys.stdin.buffer).read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ProviderError(f"cannot read {path}: {exc.strerror or exc}") from exc
