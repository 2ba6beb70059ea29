"""Shared helpers of the unit tests that work on a scratch root."""

from __future__ import annotations

from pathlib import Path


def scratch_root(path: Path, **etc: str) -> Path:
    """A root at path whose /etc holds the files named by keyword (``passwd=..., group=...``)."""
    (path / "etc").mkdir(parents=True, exist_ok=True)
    for name, text in etc.items():
        (path / "etc" / name).write_text(text)
    return path


def write(root: Path, rel: str, text: str) -> Path:
    """A file at root/rel holding text, its directories made."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
