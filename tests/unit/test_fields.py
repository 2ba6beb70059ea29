"""The field table (pineinstall/config/fields.py) is the one source: the typed model, the committed
Ignition schemas, the translator's tables and the closed value lists all agree with it."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from butane_like import fields as butane_fields
from pineinstall.block import mdadm
from pineinstall.config import fields, model
from pineinstall.config.rules import systemd as systemd_rules

ROOT = Path(__file__).parents[2]
MODEL_CLASSES = {
    name: cls
    for name, cls in vars(model).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == model.__name__
}


def _kind(f: dataclasses.Field) -> object:
    """A model field's type written the table's way."""
    meta = f.metadata
    inner = meta.get("obj") or meta.get("ptr")
    if inner is not None:
        return inner.__name__
    if "list" in meta:
        return fields.L(meta["list"].__name__ if meta["list"] is not None else fields.S)
    text = str(f.type)
    if "enum" in meta or text.startswith("str"):
        return fields.S
    return fields.I if text.startswith("int") else fields.B


def test_model_fields_are_the_table_fields_of_the_newest_spec() -> None:
    newest = {name for name in fields.IGNITION if fields.newest(name)}
    assert set(MODEL_CLASSES) == newest
    for name, cls in MODEL_CLASSES.items():
        got = {fields.camel(f.name): _kind(f) for f in dataclasses.fields(cls)}
        assert got == fields.newest(name), name


def test_model_enums_are_the_table_lists() -> None:
    assert {str(m) for m in model.RaidLevel} == set(fields.RAID_LEVELS.values())
    assert [str(m) for m in model.FilesystemFormat] == list(fields.FILESYSTEM_FORMATS)
    assert {str(m) for m in model.HashFunction} == set(fields.HASH_FUNCTIONS)
    assert [str(m) for m in model.Compression] == list(fields.COMPRESSIONS)


@pytest.mark.parametrize("minor", range(fields.NEWEST_MINOR + 1))
def test_committed_ignition_schema_has_the_table_fields(minor: int) -> None:
    schema = json.loads((ROOT / "schemas" / "ignition" / f"3.{minor}.0.json").read_text(encoding="utf-8"))
    objects = {"Config": schema, **schema["$defs"]}
    assert set(objects) == {name for name in fields.IGNITION if fields.fields(name, minor)}
    for name, node in objects.items():
        assert set(node["properties"]) == set(fields.fields(name, minor)), name


def test_the_lists_are_shared_not_copied() -> None:
    assert mdadm.LEVELS is fields.RAID_LEVELS
    assert frozenset(fields.UNIT_EXTENSIONS) == systemd_rules.UNIT_EXTENSIONS
    assert butane_fields.camel is fields.camel
    assert {
        name: list(fields.newest(name).items()) for name in fields.IGNITION if fields.newest(name)
    } == butane_fields.OUTPUT_ORDER


def test_butane_base_objects_follow_the_ignition_table() -> None:
    """A Butane base field that Ignition has too exists from base level N + 1 of spec 3.N, same type."""
    resource = {"ConfigResource": "Resource"}  # Butane's name of the config flavour of Resource
    in_3_0 = {"Resource": "FileContents", "ConfigResource": "ConfigReference"}
    for name, (go, kind, keys) in butane_fields.OBJECTS.items():
        if kind != "base" or go not in fields.IGNITION:
            continue
        for key, typ, level in keys:
            json_key = fields.camel(key)
            first = next(
                (
                    minor
                    for minor in range(fields.NEWEST_MINOR + 1)
                    if json_key in fields.fields(in_3_0.get(name, go) if minor == 0 else go, minor)
                ),
                None,
            )
            if first is None:
                continue  # Butane sugar (inline, local, trees, with_mount_unit, ...)
            typ = fields.L(resource.get(typ[1], typ[1])) if isinstance(typ, tuple) else resource.get(typ, typ)
            assert (typ, level) == (fields.newest(go)[json_key], first + 1), (name, key)


def test_fields_module_imports_nothing() -> None:
    """It is on the validate path, which imports only json."""
    tree = ast.parse((ROOT / "pineinstall" / "config" / "fields.py").read_text(encoding="utf-8"))
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [ast.unparse(n) for n in imports] == ["from __future__ import annotations"]


def test_camel_and_snake_are_inverse() -> None:
    for keys in fields.IGNITION.values():
        for key, _, _ in keys:
            assert fields.camel(fields.snake(key)) == key
