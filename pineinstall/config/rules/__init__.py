"""Semantic rules of Ignition configs, with ignition-validate's message texts and paths.

``validate`` runs over a config as declared (straight from ``json.loads``, types already
checked by the schema walk, any field possibly absent or null) and adds errors and warnings to
the report. One module per area of the config; duplicates are checked where each list lives.
"""

from __future__ import annotations

from ..report import Report
from . import files, ignition, kargs, passwd, storage, systemd


def validate(cfg: dict, version: tuple[int, int], report: Report, safety: bool = True) -> None:
    """Check ``cfg`` of spec ``version`` (``(3, minor)``), adding entries to ``report``.

    ``safety``: also our rules beyond Ignition's (account fields that would break a passwd line,
    unit names that are not file names, a new user with uid 0); pine-transpile leaves them out for
    Butane's own variants, whose answers must be Butane's."""
    if not isinstance(cfg, dict):
        return
    ignition.validate(cfg, version, report)
    storage.validate(cfg, version, report)
    files.validate(cfg, version, report)
    passwd.validate(cfg, version, report, safety)
    systemd.validate(cfg, version, report, safety)
    kargs.validate(cfg, version, report)
