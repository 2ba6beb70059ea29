"""Type check of a config against the JSON Schema of its spec version (``schemas/ignition/``).

This plays the part of Go's typed decoding in Ignition: wrong JSON types are errors, keys the spec
does not know are ``Unused key`` warnings. Only the structural keywords are read (``type``,
``properties``, ``additionalProperties``, ``items``, local ``$ref``); the rest of the schema
(enums, patterns, descriptions) serves editors, while the semantic rules give Ignition's messages.

Two quirks of Go's decoder are kept because configs in the field depend on them: keys match
fields case-insensitively (with a warning), and a ``null`` list item decodes to an empty object.
``null`` is accepted for every field.
"""

from __future__ import annotations

import json
import os

from .report import Path, Report, format_path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~5 ms of start-up; annotations stay strings here
    from typing import Any

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_cache: dict[str, dict[str, Any]] = {}


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def load(version: str) -> dict[str, Any]:
    """The schema of one spec version, with every ``$ref`` resolved in place (cached)."""
    schema = _cache.get(version)
    if schema is None:
        with open(os.path.join(SCHEMA_DIR, "ignition", f"{version}.json"), encoding="utf-8") as f:
            schema = json.load(f)
        _resolve_refs(schema, schema.get("$defs", {}), set())
        _cache[version] = schema
    return schema


def _resolve_refs(node: Any, defs: dict[str, Any], seen: set[int]) -> None:
    """Replace ``{"$ref": "#/$defs/X"}`` by the definition itself, so the walk never looks them up."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, dict):
        for key, child in list(node.items()):
            if isinstance(child, dict) and "$ref" in child:
                node[key] = child = _deref(child, defs)
            _resolve_refs(child, defs, seen)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            if isinstance(child, dict) and "$ref" in child:
                node[i] = child = _deref(child, defs)
            _resolve_refs(child, defs, seen)


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
            raise ValueError(f"unsupported schema reference {ref!r}")
        node = defs[ref[len(prefix) :]]
    return node


def _allowed(schema: dict[str, Any]) -> tuple[str, ...]:
    kinds = schema.get("type")
    if kinds is None:
        return ()
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


def check(config: Any, version: str, report: Report) -> None:
    """Add an error for every value of the wrong type and a warning for every unknown key."""
    _walk(config, load(version), (), report)


def _walk(value: Any, schema: dict[str, Any], path: Path, report: Report) -> None:
    if value is None:
        return
    kinds = _allowed(schema)
    if kinds and not _is_one_of(value, kinds):
        wanted = " or ".join(k for k in kinds if k != "null")
        report.error(f"cannot unmarshal {json_kind(value)} into a field of type {wanted}", path)
        return
    if isinstance(value, dict):
        _walk_object(value, schema, path, report)
    elif isinstance(value, list):
        items = schema.get("items")
        if items is None:
            return
        object_items = "object" in _allowed(items)
        for i, item in enumerate(value):
            if item is None and object_items:
                # Go decodes a null element into a zero struct; Ignition warns that positions
                # may be off from here on, and then validates the empty object.
                value[i] = item = {}
                report.warning(
                    f"context tree does not match content tree at {format_path(path + (i,))}. "
                    "Line and column reporting may be inconsistent. Unused keys may not be reported.",
                    path + (i,),
                )
            _walk(item, items, path + (i,), report)


def _walk_object(value: dict[str, Any], schema: dict[str, Any], path: Path, report: Report) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    folded: dict[str, str] | None = None
    inexact: list[str] = []
    for key, child in value.items():
        sub = props.get(key)
        if sub is not None:
            _walk(child, sub, path + (key,), report)
            continue
        if isinstance(extra, dict):
            _walk(child, extra, path + (key,), report)
            continue
        report.warning(f"Unused key {key}", path + (key,), at_key=True)
        if folded is None:
            folded = {name.lower(): name for name in props}
        field = folded.get(key.lower())
        if field is not None:
            # Go's decoder fills the field anyway: keep what it would decode.
            _walk(child, props[field], path + (key,), report)
            inexact.append(field)
    for field in inexact:
        fold_fields(value, (field,))


def fold_fields(value: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Give each field the value Go's decoder would: that of the last key equal to it but for case."""
    for field in fields:
        lowered = field.lower()
        matches = [key for key in value if key.lower() == lowered]
        if matches and matches[-1] != field:
            value[field] = value[matches[-1]]


def _is_one_of(value: Any, kinds: tuple[str, ...]) -> bool:
    for kind in kinds:
        if kind == "null":
            continue
        if isinstance(value, bool) and kind not in ("boolean",):
            continue
        if isinstance(value, _PYTHON_TYPES.get(kind, ())):
            return True
    return False
