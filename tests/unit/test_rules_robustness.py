"""The rules never raise, whatever JSON value sits in any field.

The schema walk normally stops a config with type errors before the rules run, but the rules are
also reachable through ``check_dict`` and must not turn a bad value into a traceback. Every field
of every corpus config is replaced in turn by values of each JSON type.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pineinstall.config import rules
from pineinstall.config.report import Report

CASES = Path(__file__).parents[1] / "conformance" / "ignition_validate" / "cases"
REPLACEMENTS = (None, {}, [], "", "x", 5, -1, 1.5, True, [None], {"a": 1})


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


def _configs():
    for path in sorted(CASES.glob("*.ign")):
        try:
            cfg = json.loads(path.read_text())
            minor = int(cfg["ignition"]["version"].split(".")[1])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        yield pytest.param(cfg, (3, minor), id=path.stem)


@pytest.mark.parametrize(("cfg", "version"), list(_configs()))
def test_rules_survive_any_value_anywhere(cfg, version):
    for where in list(_paths(cfg)):
        if len(where) < 2:
            continue
        for value in REPLACEMENTS:
            mutated = copy.deepcopy(cfg)
            parent = mutated
            for key in where[:-1]:
                parent = parent[key]
            parent[where[-1]] = value
            report = Report()
            rules.validate(mutated, version, report)  # must not raise
            assert all(e.path is not None for e in report)
