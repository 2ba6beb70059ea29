"""The transpiler's output needs no type walk (``check_dict(typed=True)`` skips it): shown here.

The field copy writes each decoded (typed) Butane field under its camelCase name; every such field
of every variant and version is a field of its Ignition spec's schema, of the same type. The
sugar's own output, and the corpus as a whole, are covered by running the walk over the output of
every Butane input of the conformance corpus: it finds nothing there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from butane_like import output_check, translate
from butane_like.base.translate import _SUGAR
from butane_like.fields import VARIANTS, B, I, S, Spec, camel
from pineinstall.config import schema
from pineinstall.config.report import Report

_PY = {S: str, I: int, B: bool}
CORPUS = Path(__file__).resolve().parents[1] / "conformance"


def _typed(spec: Spec, typ: object, node: schema.Node, where: str) -> list[str]:
    """What of ``typ``'s copy the schema ``node`` would not take."""
    if isinstance(typ, tuple):
        if (node.types is not None and list not in node.types) or node.items is None:
            return [f"{where}: not a list in the schema"]
        return _typed(spec, typ[1], node.items, f"{where}[]")
    if typ in _PY:
        ok = node.types is None or _PY[typ] in node.types
        return [] if ok else [f"{where}: {typ} where the schema has {node.wanted}"]
    assert isinstance(typ, str)
    if node.types is not None and dict not in node.types:
        return [f"{where}: an object where the schema has {node.wanted}"]
    wrong = []
    skip = _SUGAR.get(typ, ())
    for key, ftyp in spec.fields(typ).items():
        if key in skip:
            continue
        sub = node.props.get(camel(key))
        if sub is None:
            wrong.append(f"{where}.{key}: no {camel(key)} in the schema")
        else:
            wrong += _typed(spec, ftyp, sub, f"{where}.{key}")
    return wrong


@pytest.mark.parametrize("variant,version", [(v, n) for v, versions in VARIANTS.items() for n in versions])
def test_field_copy_is_typed(variant: str, version: str) -> None:
    spec = Spec(variant, version)
    assert _typed(spec, "Config", schema.load(spec.ign_version), "Config") == []


def test_corpus_output_passes_the_type_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[tuple[str, list]] = []
    checked = []
    case = [""]
    check_dict = output_check._typed_check_dict

    def walked(cfg: dict, safety: bool) -> Report:
        report = Report()
        schema.check(cfg, cfg["ignition"]["version"], report)
        if report.entries:
            found.append((case[0], [(e.kind, e.message, e.path) for e in report]))
        checked.append(case[0])
        return check_dict(cfg, safety)

    monkeypatch.setattr(output_check, "_typed_check_dict", walked)
    inputs = sorted(CORPUS.glob("butane/*/input.bu")) + sorted(CORPUS.glob("butane_diff/cases/*/input.bu"))
    assert len(inputs) > 700
    here = os.getcwd()
    try:
        for src in inputs:
            os.chdir(src.parent)  # (trees and local files are relative to the case)
            files = src.parent / "files"
            for safety in (False, True):
                case[0] = f"{src.parent.name} safety={safety}"
                translate(
                    src.read_bytes(), files_dir=str(files if files.exists() else src.parent), safety=safety
                )
    finally:
        os.chdir(here)
    assert found == []
    assert len(checked) > 700  # (half the inputs are refused before their output is checked)
