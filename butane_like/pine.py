"""The ``pine`` variant's own sections (filled in below)."""

from __future__ import annotations

from typing import Any


def validate(cfg: dict, tr: Any) -> None:
    return None


def render(cfg: dict, tr: Any) -> dict | None:
    return None
