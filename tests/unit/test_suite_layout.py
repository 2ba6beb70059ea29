"""The suite collects as one process: test directories without ``__init__.py`` put their own folder on
``sys.path`` (pytest's prepend import mode, and the generators' own imports), so two modules with one
name in two such folders shadow each other and the whole run stops at collection."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_module_names_are_unique_outside_packages() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if any((parent / "__init__.py").exists() for parent in path.parents if TESTS in parent.parents):
            continue  # inside a package: imported under its package's name
        if path.name != "conftest.py":
            where[path.stem].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert not clashes, clashes
