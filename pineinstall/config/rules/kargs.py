"""Rules of ``kernelArguments`` (3.3.0+): one key space over ``shouldExist`` and
``shouldNotExist``, so an argument listed twice, or in both lists, is a duplicate."""

from __future__ import annotations

from ..report import Report
from ._common import arr, duplicates, obj, str_key


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    if version < (3, 3):
        return  # kernelArguments arrived with 3.3.0; before, the schema walk warns it is unused
    kargs = obj(cfg.get("kernelArguments"))
    seen: set = set()
    for field in ("shouldExist", "shouldNotExist"):
        duplicates(report, arr(kargs.get(field)), ("kernelArguments", field), str_key, seen)
