"""Type check of a config against the JSON Schema of its spec version (``schemas/ignition/``).

This plays the part of Go's typed decoding in Ignition: wrong JSON types are errors, keys the spec
does not know are ``unused key`` warnings. Only the structural keywords are read (``type``,
``properties``, ``additionalProperties``, ``items``, local ``$ref``); the rest of the schema
(enums, patterns, descriptions) serves editors, while the semantic rules give Ignition's messages.

Two quirks of Go's decoder are kept because configs in the field depend on them: keys match
fields case-insensitively (with a warning), and a ``null`` list item decodes to an empty object.
``null`` is accepted for every field; where Go's field is a struct (not a pointer), Ignition warns
that its position tree does not match (the warning below).
"""

from __future__ import annotations

import json
import os

from .report import Path, Report, format_path, shorten

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~5 ms of start-up; annotations stay strings here
    from typing import Any

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")

# Exact Python types of each JSON type: ``type(True) is bool``, so booleans never pass as integers.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (),
}
_cache: dict[str, Node] = {}
_version = ""  # of the config being walked (check() sets it)


class Node:
    """One schema location, reduced to what the walk needs (built once per version)."""

    __slots__ = ("folded", "items", "leaf_items", "object_items", "open", "props", "types", "wanted")

    def __init__(self) -> None:
        self.types: frozenset[type] | None = None  # None: any type
        self.wanted = ""
        self.props: dict[str, Node] = {}
        self.folded: dict[str, str] = {}
        self.open: Node | bool = True  # additionalProperties
        self.items: Node | None = None
        self.object_items = False
        self.leaf_items: frozenset[type] | None = None  # the item types, when all are scalars


# JSON kinds by Python type; bool before int, as bool is a subclass of int.
_JSON_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def json_kind(value: Any) -> str:
    return next((kind for typ, kind in _JSON_KINDS if isinstance(value, typ)), "null")


def load(version: str) -> Node:
    """The schema of one spec version, compiled for the walk (cached)."""
    node = _cache.get(version)
    if node is None:
        with open(os.path.join(SCHEMA_DIR, "ignition", f"{version}.json"), encoding="utf-8") as f:
            schema = json.load(f)
        node = _cache[version] = _compile(schema, schema.get("$defs", {}), {})
    return node


def _compile(schema: dict[str, Any], defs: dict[str, Any], done: dict[int, Node]) -> Node:
    schema = _deref(schema, defs)
    node = done.get(id(schema))
    if node is not None:
        return node
    node = done[id(schema)] = Node()
    kinds = schema.get("type")
    if kinds is not None:
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        node.types = frozenset(t for kind in kinds for t in _PYTHON_TYPES[kind])
        node.wanted = " or ".join(k for k in kinds if k != "null")
    node.props = {name: _compile(sub, defs, done) for name, sub in schema.get("properties", {}).items()}
    node.folded = {name.lower(): name for name in node.props}
    extra = schema.get("additionalProperties", True)
    node.open = _compile(extra, defs, done) if isinstance(extra, dict) else extra
    if "items" in schema:
        node.items = _compile(schema["items"], defs, done)
        node.object_items = node.items.types is not None and dict in node.items.types
        if node.items.types is not None and not node.items.types & {dict, list}:
            node.leaf_items = node.items.types
    return node


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
            raise ValueError(f"unsupported schema reference {ref!r}")
        node = defs[ref[len(prefix) :]]
    return node


def check(config: Any, version: str, report: Report) -> None:
    """Add an error for every value of the wrong type and a warning for every unknown key."""
    global _version
    _version = version
    try:
        _walk(config, load(version), (), report)
    finally:
        _shadowed.clear()
        _latest.clear()
        _replaced.clear()


def _walk(value: Any, node: Node, path: Path, report: Report) -> None:
    kind = type(value)
    if node.types is not None and kind not in node.types:
        if value is not None:  # Go's decoder accepts null for every field
            report.error(f"cannot unmarshal {json_kind(value)} into a field of type {node.wanted}", path)
        return
    if kind is dict:
        _walk_object(value, node, path, report)
    elif kind is list and node.items is not None:
        _walk_list(value, node, path, report)


_SCALARS = frozenset((str, int, bool, float))


def _walk_list(value: list[Any], node: Node, path: Path, report: Report) -> None:
    items = node.items
    assert items is not None
    types = items.types
    objects = types is None or dict in types  # the common case (lists of objects) goes straight in
    for i, item in enumerate(value):
        kind = type(item)
        if kind is dict and objects:
            _walk_object(item, items, (*path, i), report)
        elif kind in _SCALARS and types is not None:
            if kind not in types:
                report.error(
                    f"cannot unmarshal {json_kind(item)} into a field of type {items.wanted}", (*path, i)
                )
        else:
            if item is None and node.object_items:
                # Go decodes a null element into a zero struct; Ignition warns that positions
                # may be off from here on, and then validates the empty object.
                value[i] = item = {}
                _mismatch(report, (*path, i))
            _walk(item, items, (*path, i), report)


def _mismatch(report: Report, path: Path) -> None:
    report.warning(
        f"context tree does not match content tree at {format_path(path)}. "
        "Line and column reporting may be inconsistent. Unused keys may not be reported",
        path,
    )


# Object fields that are Go pointers in some spec (a null leaves them nil, without the warning).
_POINTER_FIELDS = {("3.2.0", "clevis"), ("3.2.0", "custom")}


def _walk_object(value: dict[str, Any], node: Node, path: Path, report: Report) -> None:
    if _latest or _replaced or _shadowed:  # a key was given twice somewhere: the careful walk
        _walk_merged_object(value, node, path, report)
        return
    # The common case inline, one call per object rather than one per key: a known key holding a
    # scalar, an object or a list; anything else (an unknown key, null) goes through _walk_key.
    props = node.props
    inexact: list[str] = []
    for key, child in value.items():
        sub = props.get(key)
        kind = type(child)
        if sub is None or child is None:
            _walk_key(key, child, node, path, report, inexact)
            continue
        types = sub.types
        if types is not None and kind not in types:
            report.error(
                f"cannot unmarshal {json_kind(child)} into a field of type {sub.wanted}", (*path, key)
            )
        elif kind is dict:
            _walk_object(child, sub, (*path, key), report)
        elif kind is list and sub.items is not None:
            leaf = sub.leaf_items
            if leaf is None:
                _walk_list(child, sub, (*path, key), report)
                continue
            # a list of scalars (a user's groups and keys): nothing to say when each has its type
            for item in child:
                if type(item) not in leaf:
                    _walk_list(child, sub, (*path, key), report)
                    break
    for field in inexact:
        fold_fields(value, (field,), path)


def _walk_merged_object(value: dict[str, Any], node: Node, path: Path, report: Report) -> None:
    inexact: list[str] = []
    latest = _latest.get(id(value))
    for key, child in value.items():
        if latest is not None and key not in latest:
            # from an earlier object under a key given twice: Go decoded it, but Ignition's
            # position tree (the last object) lacks it, so only its errors count
            below = Report()
            _walk_key(key, child, node, path, below, inexact)
            report.extend(e for e in below if e.is_error)
        else:
            _walk_key(key, child, node, path, report, inexact)
    for key, old in _replaced.get(id(value), ()):
        # replaced by a later key: only the type errors Go's decoder found in it count
        below = Report()
        _walk_key(key, old, node, path, below, [])
        report.extend(e for e in below if e.is_error)
    for field in inexact:
        fold_fields(value, (field,), path)


def _walk_key(key: str, child: Any, node: Node, path: Path, report: Report, inexact: list[str]) -> None:
    props = node.props
    sub = props.get(key)
    if sub is not None:
        kind = type(child)
        if kind is dict and id(child) in _shadowed:
            # given again as null: Ignition's position tree holds the null (a mismatch, and no
            # unused keys below), Go's struct the object (whose type errors count)
            _mismatch(report, path + (key,))
            below = Report()
            _walk(child, sub, path + (key,), below)
            report.extend(e for e in below if e.is_error)
        elif kind is dict or kind is list:
            _walk(child, sub, path + (key,), report)
        elif child is None and sub.types is not None and dict in sub.types:
            if (_version, key) not in _POINTER_FIELDS:
                _mismatch(report, path + (key,))
        elif child is not None and sub.types is not None and kind not in sub.types:
            # a scalar: its type is all there is to check (inline: most values are scalars)
            report.error(
                f"cannot unmarshal {json_kind(child)} into a field of type {sub.wanted}", path + (key,)
            )
        return
    if isinstance(node.open, Node):
        _walk(child, node.open, path + (key,), report)
        return
    report.warning(f"unused key {shorten(key)}", path + (key,), at_key=True)
    field = node.folded.get(key.lower())
    if field is not None:
        # Go's decoder fills the field anyway: keep what it would decode. Ignition does not
        # look for unused keys below such a key, so only its type errors count.
        below = Report()
        _walk(child, props[field], path + (key,), below)
        report.extend(e for e in below if e.is_error)
        inexact.append(field)


# Fields that are plain Go values (not pointers) in Ignition's types, by spec: a null decodes into
# them as nothing (the value of an earlier key stays), where it makes a pointer nil.
_PLAIN_FIELDS = {"device", "name", "number", "path", "version"}
_PLAIN_FROM = {
    "3.0.0": {"level", "source", "target"},
    "3.1.0": {"level", "target"},
    "3.2.0": {"config", "level", "pin", "target", "url"},
}


def go_loads(text: str, **kwargs: Any) -> Any:
    """``json.loads`` as Go's decoder fills Ignition's structs (see ``go_object``); the next
    ``check`` reads what it noted."""
    _shadowed.clear()
    _latest.clear()
    _replaced.clear()
    return json.loads(text, object_pairs_hook=go_object, **kwargs)


def go_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object as Go's decoder fills a struct from it (``json.loads``'s object_pairs_hook): a key
    given twice decodes into what the first one left, so a later object merges into the earlier one,
    a later list's items into the earlier list's items at the same index (Go reuses the slice's
    backing array), and a later null leaves a plain field or an object as it was."""
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    value = {}
    for key, child in pairs:
        value[key] = _decoded_again(value[key], child, key, value) if key in value else child
    return value


# Objects a later null left in place, and merged objects with the keys of their last occurrence
# (what Ignition's position tree holds), by id, while one config is decoded and checked.
_shadowed: set[int] = set()
_latest: dict[int, set[str]] = {}
# Values a later key replaced, by the id of the object holding them: (key, value).
_replaced: dict[int, list[tuple[str, Any]]] = {}


def _decoded_again(old: Any, new: Any, key: str, holder: dict[str, Any] | None = None) -> Any:
    """What Go leaves in the field ``key`` of ``holder`` decoding ``new`` over ``old``. A value
    replaced by another is kept aside: Go's decoder checked its type when it read it."""
    if new is None and isinstance(old, dict):
        _shadowed.add(id(old))
        return old
    if new is None and key in _PLAIN_FIELDS:
        return old
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for k, v in new.items():
            merged[k] = _decoded_again(merged[k], v, k, merged) if k in merged else v
        _latest[id(merged)] = set(new)
        if id(old) in _replaced:
            _replaced[id(merged)] = _replaced[id(old)]
        return merged
    if isinstance(old, list) and isinstance(new, list):
        return [_decoded_again(old[i], v, "") if i < len(old) else v for i, v in enumerate(new)]
    if holder is not None and old is not None and new is not old:
        _replaced.setdefault(id(holder), []).append((key, old))
    return new


def fold_fields(value: dict[str, Any], fields: tuple[str, ...], where: Path = ()) -> None:
    """Give each field the value Go's decoder would: that of the last key equal to it but for case
    (the last non-null one for a plain Go field). ``where``: the object's path ("path" is plain
    in files, directories and links only; a filesystem's is a pointer)."""
    plain = _PLAIN_FIELDS | _PLAIN_FROM.get(_version, {"url"})
    if len(where) < 2 or where[-2] not in ("files", "directories", "links"):
        plain = plain - {"path"}
    for field in fields:
        lowered = field.lower()
        matches = [key for key in value if key.lower() == lowered]
        if field in plain:
            matches = [key for key in matches if value[key] is not None]
        if matches and matches[-1] != field:
            value[field] = value[matches[-1]]
