"""Ignition JSON bytes exactly as Go's encoding/json writes Butane's output structs.

- keys in the order of Ignition's struct fields (``fields.OUTPUT_ORDER``), not sorted, not as built;
- ``omitempty``: absent/None values, empty lists and empty objects are left out (Butane marshals
  with clarketm/json, which also omits empty structs); plain (non-pointer) string fields are left
  out when empty, pointer fields (``"compression": ""``, ``"overwrite": false``) are kept;
- strings: ``<``, ``>``, ``&``, U+2028, U+2029 escaped as ``\\u003c``...; control characters as
  ``\\u00XX`` except ``\\n``, ``\\r``, ``\\t``; DEL and other non-ASCII raw UTF-8; bytes that were
  not UTF-8 (carried as lone surrogates by ``surrogateescape``) become ``\\ufffd``, one per byte;
- pretty mode is ``MarshalIndent(v, "", "  ")``.
"""

from __future__ import annotations

import re

from .fields import NON_POINTER, OMIT_EMPTY, OMIT_ZERO, OUTPUT_ORDER

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

_ESC = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
for _i in range(0x20):
    _ESC.setdefault(chr(_i), f"\\u{_i:04x}")
_NEEDS = re.compile('[\\x00-\\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def _sub(m: re.Match[str]) -> str:
    ch = m.group()
    got = _ESC.get(ch)
    return got if got is not None else "\\ufffd"


def string(s: str) -> str:
    if _NEEDS.search(s) is None:
        return '"' + s + '"'
    return '"' + _NEEDS.sub(_sub, s) + '"'


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, (list, dict)) and not v)


# struct -> [(key, type, plain string field, omitempty string, omitempty int, _nested)]
_PLANS: dict[str, list[tuple[str, Any, bool, bool, bool, int]]] = {}
_LEAF, _PRUNED, _PLAIN_LIST = 0, 1, 2  # a field pruned: not at all, by prune, as a list of leaves


def _nested(ktyp: Any) -> int:
    if isinstance(ktyp, tuple):
        elem = ktyp[1]
        return _PRUNED if isinstance(elem, str) and elem in OUTPUT_ORDER else _PLAIN_LIST
    return _PRUNED if ktyp in OUTPUT_ORDER else _LEAF


def _plan(typ: str) -> list[tuple[str, Any, bool, bool, bool, int]]:
    plan = _PLANS[typ] = [
        (
            key,
            ktyp,
            (typ, key) in NON_POINTER,
            (typ, key) in OMIT_EMPTY,
            (typ, key) in OMIT_ZERO,
            _nested(ktyp),
        )
        for key, ktyp in OUTPUT_ORDER[typ]
    ]
    return plan


def prune(v: Any, typ: Any) -> Any:
    """Drop what omitempty drops (recursively); returns None when the value itself is empty."""
    if isinstance(typ, tuple):  # list
        if not v:
            return None
        elem = typ[1]
        if isinstance(elem, str) and elem in OUTPUT_ORDER:
            # Go keeps zero-valued structs inside slices as {}.
            return [prune(x, elem) or {} for x in v]
        return list(v)
    if isinstance(typ, str) and typ in OUTPUT_ORDER:
        if not isinstance(v, dict):
            return None
        out = {}
        for key, ktyp, non_pointer, omit_empty, omit_zero, nested in _PLANS.get(typ) or _plan(typ):
            if non_pointer:
                # A plain Go string field (no pointer, no omitempty) is always written, "" included.
                out[key] = v.get(key) or ""
                continue
            if key not in v:
                continue
            val = v[key]
            if val is None or (omit_empty and val == ""):
                continue
            if omit_zero and val == 0 and type(val) is int:
                continue
            if nested == _PLAIN_LIST:  # what prune gives it, without the call
                if not val:
                    continue
                val = list(val)
            elif nested:
                val = prune(val, ktyp)
                if val is None or (isinstance(val, (list, dict)) and not val):  # _empty
                    continue
            out[key] = val
        return out or None
    return v


# How prune_in_place treats a field's value: as it is, dropped when "" or 0 (omitempty), dropped
# when an empty list, pruned as an object, as a list of objects.
_KEEP, _NONEMPTY_STR, _NONZERO_INT, _NONEMPTY_LIST, _OBJECT, _OBJECTS = range(6)
# struct -> ({output key: (how, the item or object type)}, its plain string fields)
_KEY_PLANS: dict[str, tuple[dict[str, tuple[int, str]], tuple[str, ...]]] = {}


def _key_plan(typ: str) -> tuple[dict[str, tuple[int, str]], tuple[str, ...]]:
    fields = {}
    for key, ktyp, _plain, omit_empty, omit_zero, nested in _PLANS.get(typ) or _plan(typ):
        how = _NONEMPTY_STR if omit_empty else _NONZERO_INT if omit_zero else _KEEP
        if nested == _PLAIN_LIST:
            how = _NONEMPTY_LIST
        elif nested == _PRUNED:
            how = _OBJECTS if isinstance(ktyp, tuple) else _OBJECT
        fields[key] = (how, ktyp[1] if isinstance(ktyp, tuple) else ktyp)
    got = _KEY_PLANS[typ] = (fields, tuple(key for key, _, plain, _, _, _ in _PLANS[typ] if plain))
    return got


def prune_in_place(v: Any, typ: str) -> Any:
    """``prune`` of an object done to ``v`` itself: what prune drops is deleted, the plain string
    fields it writes are set; returns ``v``, or None when it is empty (as ``prune``). The keys stay
    in their order, not Ignition's (``encode`` prunes again, idempotently, to write them). A check
    needs no copy, and an object's own keys are fewer than its type's fields (a file: 3 of 7)."""
    if not isinstance(v, dict):
        return None
    return v if _prune_object(v, _KEY_PLANS.get(typ) or _key_plan(typ)) else None


def _prune_object(v: dict, plan: tuple[dict[str, tuple[int, str]], tuple[str, ...]]) -> int:
    """prune_in_place of an object; its number of keys left."""
    fields, plain = plan
    drop = None
    for key, val in v.items():
        got = fields.get(key)
        if got is None or val is None:
            if got is None or key not in plain:  # (a plain field is set to "" below)
                drop = [key] if drop is None else [*drop, key]
            continue
        how, sub = got
        if how == _KEEP:
            continue
        if how == _OBJECTS:
            if val:
                elem = _KEY_PLANS.get(sub) or _key_plan(sub)
                for i, x in enumerate(val):
                    if x.__class__ is dict:
                        _prune_object(x, elem)
                    else:
                        val[i] = {}  # Go keeps zero-valued structs inside slices as {}
                continue
        elif how == _OBJECT:
            if val.__class__ is dict and _prune_object(val, _KEY_PLANS.get(sub) or _key_plan(sub)):
                continue
        elif how == _NONEMPTY_LIST:
            if val:
                continue
        elif how == _NONEMPTY_STR:
            if val != "":
                continue
        elif not (val == 0 and type(val) is int):  # _NONZERO_INT
            continue
        drop = [key] if drop is None else [*drop, key]
    if drop is not None:
        for key in drop:
            del v[key]
    for key in plain:
        if not v.get(key):
            v[key] = ""  # a plain Go string field is always written (as prune: ``or ""``)
    return len(v)


_SAFE: set[int] = set()


def encode(cfg: dict[str, Any], pretty: bool = False, safe: set[int] | None = None) -> bytes:
    """Compact (or indented) JSON of a Config dict, keys in Ignition's order.

    ``safe``: ids of strings known to need no escaping (the data URLs we generated: base64 and
    percent-encoding use no character JSON escapes), written without scanning them.
    """
    return join(encode_parts(cfg, pretty, safe))


def encode_parts(cfg: dict[str, Any], pretty: bool = False, safe: set[int] | None = None) -> list[str]:
    """``encode`` as the list of its pieces of text, not yet joined (see ``write_parts``)."""
    global _SAFE
    pruned = prune(cfg, "Config") or {}
    parts: list[str] = []
    _SAFE = safe or set()
    if pretty:
        _pretty(pruned, parts, "")
    else:
        _compact(pruned, parts)
    _SAFE = set()
    return parts


def join(parts: list[str]) -> bytes:
    return "".join(parts).encode("utf-8", "surrogateescape")


def write_parts(parts: list[str], write: Any) -> None:
    """Write the pieces in chunks of ~1 MiB, never the whole text at once: for tens of MiB, the
    joined copies (text, then bytes) cost more in fresh pages than the writing itself."""
    chunk: list[str] = []
    size = 0
    for p in parts:
        chunk.append(p)
        size += len(p)
        if size >= 1 << 20:
            write("".join(chunk).encode("utf-8", "surrogateescape"))
            chunk, size = [], 0
    if chunk:
        write("".join(chunk).encode("utf-8", "surrogateescape"))


def _scalar(v: Any) -> str:
    if id(v) in _SAFE:
        return '"' + v + '"'
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return string(v)


def _compact(v: Any, parts: list[str]) -> None:
    # Keys are already in order (prune rebuilt each object in Ignition's order).
    if isinstance(v, dict):
        parts.append("{")
        first = True
        for k, x in v.items():
            if not first:
                parts.append(",")
            first = False
            parts.append(string(k))
            parts.append(":")
            _compact(x, parts)
        parts.append("}")
    elif isinstance(v, list):
        parts.append("[")
        for i, x in enumerate(v):
            if i:
                parts.append(",")
            _compact(x, parts)
        parts.append("]")
    else:
        parts.append(_scalar(v))


def _pretty(v: Any, parts: list[str], indent: str) -> None:
    inner = indent + "  "
    if isinstance(v, dict):
        if not v:
            parts.append("{}")
            return
        parts.append("{\n")
        items = list(v.items())
        for i, (k, x) in enumerate(items):
            parts.append(inner + string(k) + ": ")
            _pretty(x, parts, inner)
            parts.append(",\n" if i < len(items) - 1 else "\n")
        parts.append(indent + "}")
    elif isinstance(v, list):
        if not v:
            parts.append("[]")
            return
        parts.append("[\n")
        for i, x in enumerate(v):
            parts.append(inner)
            _pretty(x, parts, inner)
            parts.append(",\n" if i < len(v) - 1 else "\n")
        parts.append(indent + "]")
    else:
        parts.append(_scalar(v))
