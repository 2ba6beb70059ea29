"""Shared helper of the test_rules_* modules: run the rules on a config fragment."""

from __future__ import annotations

from pineinstall.config import rules
from pineinstall.config.report import Report, format_path


def findings(cfg: dict, version: tuple[int, int] = (3, 3)) -> set[tuple[str, str, str]]:
    """(kind, $.path, message) of every entry the rules add for ``cfg``."""
    report = Report()
    rules.validate({"ignition": {"version": f"3.{version[1]}.0"}, **cfg}, version, report)
    return {(e.kind, format_path(e.path), e.message) for e in report}


def err(path: str, message: str) -> tuple[str, str, str]:
    return ("error", path, message)


def warn(path: str, message: str) -> tuple[str, str, str]:
    return ("warning", path, message)
