"""Decode composed YAML nodes into plain values the way Go's yaml.v3 decodes Butane's structs.

What this reproduces, because users see it:

- scalar resolution of yaml.v3 (``0644`` and ``0o644`` octal, ``0x1a4`` hex, YAML 1.1 ``yes``/``on``
  only where a bool is expected, ``!!str`` for quoted scalars);
- its type errors (``line 6: cannot unmarshal !!str `0644` into int``), collected for the whole
  document, and its duplicate-key error, which stops the decoding of that mapping;
- null items of a sequence are dropped (Go cannot store nil in a struct slice), with Butane's
  "context tree does not match" warning;
- keys the variant/version does not know are *unused keys*: a warning at the key, value ignored;
- an alias (``*a``) is a leaf of Butane's context tree: a struct given by an alias gets the "context
  tree does not match" warning at the alias, and nothing inside an alias (or taken in by a merge key
  ``<<``) is checked for unused keys or placed anywhere but at the alias (see ``_aliased``).

Positions (1-based line/column) are recorded for every value (``pos``) and every key (``keypos``),
indexed by the YAML path, for the report.
"""

from __future__ import annotations

import re

from pineinstall.config.gocompat import go_quote

from .fields import B, I, S, Spec
from .yamlload import NeedPlaces, Tags

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_YES = frozenset(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"))
_NO = frozenset(("n", "N", "no", "No", "NO", "off", "Off", "OFF"))
_FLOAT = r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"
_FLOAT_SPECIAL = frozenset((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"))
_FLOAT_NAN = frozenset((".nan", ".NaN", ".NAN"))
_TIMESTAMP = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ]|$)"
_INT_RANGE = 1 << 63
_float_match = re.compile(_FLOAT).match
_timestamp_match = re.compile(_TIMESTAMP).match

NULL = object()  # marker: a null scalar
_STRINGS = ("list", S)
_QUOTED = Tags.QUOTED
_PLAIN = Tags.PLAIN
# How _light_mapping reads a field's value (the others: by ``decode``).
_K_STR, _K_INT, _K_BOOL, _K_OBJECT, _K_STRINGS, _K_OTHER = range(6)


def _light_kind(typ: Any) -> int:
    if typ == S:
        return _K_STR
    if typ == I:
        return _K_INT
    if typ == B:
        return _K_BOOL
    if typ == _STRINGS:
        return _K_STRINGS
    if typ.__class__ is str and typ[:1].isupper():
        return _K_OBJECT
    return _K_OTHER


def go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64) after yaml.v3 stripped underscores; None if it fails."""
    s = s.replace("_", "")
    if not s:
        return None
    sign = 1
    body = s
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body:
        return None
    low = body.lower()
    try:
        if low.startswith("0x"):
            val = int(body[2:], 16) if body[2:] and body[2:].isalnum() else None
        elif low.startswith("0o"):
            val = int(body[2:], 8) if body[2:].isdigit() else None
        elif low.startswith("0b"):
            val = int(body[2:], 2) if body[2:].isdigit() else None
        elif len(body) > 1 and body[0] == "0":
            val = int(body[1:], 8) if body[1:].isdigit() else None
        else:
            val = int(body, 10) if body.isdigit() and body.isascii() else None
    except ValueError:
        return None
    if val is None:
        return None
    val *= sign
    if -_INT_RANGE <= val < _INT_RANGE:
        return val
    if 0 <= val < (1 << 64):
        return val  # Go would take it as uint64
    return None


def resolve_plain(value: str) -> tuple[str, Any]:
    """(short tag, value) of a plain scalar, as yaml.v3's resolve()."""
    if value in _NULLS:
        return "!!null", NULL
    if value in _TRUE:
        return "!!bool", True
    if value in _FALSE:
        return "!!bool", False
    c = value[0]
    if c.isdigit() or c in "+-.":
        if c.isdigit() and _timestamp_match(value):
            return "!!timestamp", value
        iv = go_parse_int(value)
        if iv is not None:
            return "!!int", iv
        plain = value.replace("_", "")
        if _float_match(plain):
            return "!!float", float(plain)
        if value in _FLOAT_SPECIAL:
            return "!!float", float(value.replace(".", "").lower().replace("in", "in"))
        if value in _FLOAT_NAN:
            return "!!float", float("nan")
    return "!!str", value


def _short_explicit(tag: str) -> str | None:
    if tag.startswith("tag:yaml.org,2002:"):
        return "!!" + tag[len("tag:yaml.org,2002:") :]
    if tag.startswith("!!"):
        return tag
    return None


def _consumed(items: list, start: int = 0) -> Any:
    """The items of ``items`` from ``start``, each taken out of the list as it is handed over."""
    for i in range(start, len(items)):
        item = items[i]
        items[i] = None
        yield item


class Decoder:
    """One decoding pass over a document for one Spec."""

    def __init__(self, spec: Spec, text: bytes | str | None = None, places: bool = True) -> None:
        self.spec = spec
        # False for light nodes (yamlload.compose_light): no positions recorded, no aliases looked
        # for (the text has no anchor); whatever needs a place raises yamlload.NeedPlaces.
        self.places = places
        # Each list item taken out of its list as it is read, so that the tree goes as the values
        # come: for light nodes, and nodes with marks of a text without anchors (see _consumed).
        self.consume = not places
        self.text = text  # the YAML text, to find aliases in (their nodes are the anchors')
        self._lines: list[str] | None = None
        # > 0 while decoding what Butane's context tree does not have (aliased or merged values):
        # no unused keys, no mismatch warnings, no positions there.
        self.blind = 0
        self.errors: list[str] = []  # yaml.v3 type errors, "line N: ..."
        self.unused: list[tuple[tuple, str]] = []  # (path, key)
        self.mismatch: list[tuple[tuple, tuple[int, int]]] = []  # dropped null items: path, position
        # Null where a struct goes: Go still walks the (zero) struct, whose tree node is no map.
        self.null_structs: list[tuple] = []
        self.pos: dict[tuple, tuple[int, int]] = {}
        self.keypos: dict[tuple, tuple[int, int]] = {}
        self._lkeys: dict[str, dict[str, tuple[str, Any, int]]] = {}

    # -- scalars -------------------------------------------------------------
    @staticmethod
    def scalar(node: Any) -> tuple[str, Any]:
        tag = node.tag
        if tag == Tags.PLAIN:
            return resolve_plain(node.value)
        if tag == Tags.QUOTED:
            return "!!str", node.value
        short = _short_explicit(tag)
        if short == "!!str" or short is None:
            return "!!str", node.value
        got = resolve_plain(node.value)
        return (short, got[1]) if got[0] == short else ("!!str", node.value)

    @classmethod
    def is_null(cls, node: Any) -> bool:
        """``scalar(node)[0] == "!!null"`` of a scalar node, without resolving other values."""
        tag = node.tag
        if tag == Tags.PLAIN:
            return node.value in _NULLS
        return tag != Tags.QUOTED and cls.scalar(node)[0] == "!!null"

    def terror(self, node: Any, tag: str, go_type: str) -> None:
        value = ""
        if tag not in ("!!seq", "!!map"):
            raw = node.value
            b = raw.encode("utf-8", "surrogateescape")
            # yaml.v3 shortens long values to their first 7 bytes.
            value = " `" + (b[:7].decode("utf-8", "ignore") + "..." if len(b) > 10 else raw) + "`"
        line = node.start_mark.line + 1
        self.errors.append(f"line {line}: cannot unmarshal {tag}{value} into {go_type}")

    # -- values --------------------------------------------------------------
    def decode(self, node: Any, typ: Any, path: tuple) -> Any:
        """The value of ``node`` as type ``typ``; NULL for a null; None after a type error."""
        if self.places and not self.blind:
            m = node.start_mark
            self.pos[path] = (m.line + 1, m.column + 1)
        kind = node.id
        if kind == "scalar":
            if typ == S and not self.is_null(node):
                return node.value  # a string takes any other scalar as it is written
            tag, val = self.scalar(node)
            if tag == "!!null":
                if isinstance(typ, str) and typ[:1].isupper() and not self.blind:
                    self.null_structs.append(path)
                return NULL
            if typ == S:
                return node.value
            if typ == I:
                if tag == "!!int" and isinstance(val, int) and -_INT_RANGE <= val < _INT_RANGE:
                    return val
                if tag == "!!float" and val == val and abs(val) < 2**63:
                    return int(val)
                self.terror(node, tag, "int")
                return None
            if typ == B:
                if tag == "!!bool":
                    return val
                if tag == "!!str":
                    if val in _YES:
                        return True
                    if val in _NO:
                        return False
                self.terror(node, tag, "bool")
                return None
            self.terror(node, tag, self.spec.go_type(typ))
            return None
        if kind == "sequence":
            if not (isinstance(typ, tuple) and typ[0] == "list"):
                self.terror(node, "!!seq", self.spec.go_type(typ))
                return None
            items: list[Any] = []
            elem = typ[1]
            # An item that starts before the end of the text read so far is an alias (its node is
            # the anchor's, earlier in the text). Indexes compare (even in the text libyaml saw when
            # large bodies were cut out); the alias is then found in the text from ``after``.
            places = self.places
            cursor = node.start_mark.index if places else 0
            after: Any = node.start_mark if places else None  # where the next item's text starts
            plain_strings = elem == S and not places  # (the usual list of strings: read in place)
            # The usual list of objects, light: each item read in place, as ``decode`` reads it.
            light_objects = None
            if not (places or self.blind) and isinstance(elem, str) and elem[:1].isupper():
                light_objects = self._light_keys(elem)
            # Light nodes are read once: each item's nodes go as it is decoded, and the values
            # take their memory (a large config's peak is its tree, otherwise, plus its values).
            start = 0
            if light_objects is not None and self.consume:
                # (the list's objects read in a loop of their own, up to the first other item)
                values = node.value
                light_mapping = self._light_mapping
                for item in values:
                    if item.id != "mapping":
                        break
                    values[start] = None
                    items.append(light_mapping(item.value, light_objects, (*path, start)))
                    start += 1
                else:
                    return items
            for item in _consumed(node.value, start) if self.consume else node.value:
                if plain_strings and item.id == "scalar":
                    tag = item.tag
                    if tag == Tags.QUOTED or (tag == Tags.PLAIN and item.value not in _NULLS):
                        items.append(item.value)  # what ``decode`` gives it
                        continue
                elif light_objects is not None and item.id == "mapping":
                    items.append(self._light_mapping(item.value, light_objects, (*path, len(items))))
                    continue
                alias = None
                if places:
                    if item.start_mark.index < cursor and not self.blind:
                        alias = self._alias_at(after if type(after) is tuple else (after.line, after.column))
                    end = item.end_mark
                    if end.index > cursor:
                        cursor = end.index
                    after = alias[1] if alias else end
                if item.id == "scalar" and self.is_null(item):
                    # Go drops it: the struct slice cannot hold a nil.
                    if not self.blind:
                        mk = item.start_mark
                        where = alias[0] if alias else (mk.line + 1, mk.column + 1)
                        self.mismatch.append(((*path, len(items)), where))
                    continue
                ipath = (*path, len(items))
                v = self._aliased(item, elem, ipath, alias[0]) if alias else self.decode(item, elem, ipath)
                if v is not None and v is not NULL:
                    items.append(v)
                elif v is NULL:
                    items.append(None)
            return items
        # mapping
        if isinstance(typ, tuple) or typ in (S, I, B):
            self.terror(node, "!!map", self.spec.go_type(typ) if typ != S else "string")
            return None
        if not (self.places or self.blind):
            return self._light_mapping(node.value, self._light_keys(typ), path)
        pairs = node.value
        keys = [k.value for k, _ in pairs if k.id == "scalar"]
        if len(set(keys)) < len(keys) and self._duplicates(pairs):
            return None
        merged = 0  # pairs taken in by merge keys: unknown ones among them are not reported
        if "<<" in keys and any(
            k.id == "scalar" and k.value == "<<" and k.tag == Tags.PLAIN for k, _ in pairs
        ):
            own = len(pairs)
            pairs = self._merge_keys(pairs)
            merged = len(pairs) - own
        fields = self.spec.fields(typ)
        blind = self.blind  # unchanged by the calls below (they restore it)
        out: dict[str, Any] = {}
        for n, (knode, vnode) in enumerate(pairs):
            key = knode.value if isinstance(knode.value, str) else None
            if (key is None or key not in fields) and (n < merged or blind):
                continue
            if key is None or key not in fields:
                km = knode.start_mark
                kp = (*path, key if key is not None else "?")
                self.keypos[kp] = (km.line + 1, km.column + 1)
                self.unused.append((path, key if key is not None else "?"))
                continue
            kpath = (*path, key)
            if blind:
                v = self.decode(vnode, fields[key], kpath)
            elif n < merged:  # not in Butane's context tree: placed at the mapping holding "<<"
                self.blind += 1
                v = self.decode(vnode, fields[key], kpath)
                self.blind -= 1
            elif vnode.start_mark.index < knode.end_mark.index:  # an alias: the anchor's node
                km = knode.start_mark
                self.keypos[kpath] = (km.line + 1, km.column + 1)
                ke = knode.end_mark
                alias = self._alias_at((ke.line, ke.column))
                v = self._aliased(vnode, fields[key], kpath, alias[0] if alias else None)
            else:
                km = knode.start_mark
                self.keypos[kpath] = (km.line + 1, km.column + 1)
                v = self.decode(vnode, fields[key], kpath)
            if v is NULL or v is None:
                continue
            out[key] = v
        return out

    def _light_keys(self, typ: str) -> dict[str, tuple[str, Any, int]]:
        """``Spec.keys`` of ``typ`` with each field's reading in ``_light_mapping`` (_K_*)."""
        got = self._lkeys.get(typ)
        if got is None:
            got = self._lkeys[typ] = {
                k: (key, t, _light_kind(t)) for k, (key, t) in self.spec.keys(typ).items()
            }
        return got

    def _light_mapping(
        self, pairs: list, keys: dict[str, tuple[str, Any, int]], path: tuple
    ) -> dict[str, Any]:
        """The mapping part of ``decode`` for light nodes (``keys``: ``_light_keys`` of its type):
        what needs a place (an unused key, a merge key ``<<``, a key given twice, a type error)
        raises NeedPlaces, and the way with marks does it all. The usual scalars are read here,
        as ``decode`` reads them, without its call and path. The values are kept under the
        table's own key strings, not the text's (one string for all the objects of a large list:
        less memory, and the lookups after find them by identity)."""
        out: dict[str, Any] = {}
        nulls: set[str] | None = None  # keys given null: not in out
        for knode, vnode in pairs:
            kv = knode.value
            got = keys.get(kv) if kv.__class__ is str else None
            if got is None:
                knode.start_mark  # noqa: B018  # an unused key is placed: raises NeedPlaces
                raise AssertionError("a light node has no place")  # pragma: no cover
            key, ftyp, kind = got
            vid = vnode.id
            if vid == "scalar":
                tag = vnode.tag
                if kind == _K_STR:
                    if tag == _QUOTED:
                        out[key] = vnode.value
                        continue
                    if tag == _PLAIN:
                        val = vnode.value
                        if val not in _NULLS:
                            out[key] = val
                            continue
                elif tag == _PLAIN:
                    if kind == _K_INT:
                        val = vnode.value
                        # decimal, below 2**63
                        if (
                            len(val) < 19
                            and val.isdigit()
                            and val.isascii()
                            and (val[0] != "0" or len(val) == 1)
                        ):
                            out[key] = int(val)
                            continue
                    elif kind == _K_BOOL:
                        val = vnode.value
                        if val in _TRUE or val in _FALSE:
                            out[key] = val in _TRUE
                            continue
            elif vid == "mapping":
                if kind == _K_OBJECT:
                    # a nested object (a file's contents): ``decode``'s own reading, without its call
                    out[key] = self._light_mapping(vnode.value, self._light_keys(ftyp), (*path, key))
                    continue
            elif kind == _K_STRINGS:
                strings = []
                for item in vnode.value:
                    if item.id != "scalar":
                        break
                    tag = item.tag
                    if tag == _QUOTED:
                        strings.append(item.value)
                        continue
                    if tag != _PLAIN:
                        break
                    val = item.value
                    if val in _NULLS:
                        break
                    strings.append(val)
                else:
                    out[key] = strings  # a list of strings, as ``decode`` reads it
                    continue
            v = self.decode(vnode, ftyp, (*path, key))
            if v is not NULL and v is not None:
                out[key] = v
            elif nulls is None:
                nulls = {key}
            else:
                nulls.add(key)
        # A key given twice (Go's error names both lines) leaves fewer keys than pairs: told once
        # here, not looked for at each key (the light reading is then dropped as a whole).
        n = len(out)
        if nulls is not None:
            if not nulls.isdisjoint(out):
                raise NeedPlaces
            n += len(nulls)
        if n != len(pairs):
            raise NeedPlaces
        return out

    def _aliased(self, node: Any, typ: Any, path: tuple, where: tuple[int, int] | None) -> Any:
        """``decode`` of a value given by an alias at ``where`` (1-based line, column; None when
        the text does not show it). Butane's context tree has a leaf there: a struct gets the
        mismatch warning, and every finding inside is placed at the alias."""
        self.blind += 1
        v = self.decode(node, typ, path)
        self.blind -= 1
        if where is None:
            m = node.start_mark
            where = (m.line + 1, m.column + 1)
        self.pos[path] = where
        if v is not None and isinstance(typ, str) and typ[:1].isupper():
            self.null_structs.append(path)
        return v

    def _alias_at(self, start: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """(1-based place of the first alias ``*name`` at or after ``start`` (0-based line,
        column) with only indicators, blanks and comments before it, 0-based place just after its
        name); None when the text shows none."""
        if self.text is None:
            return None
        if self._lines is None:
            text = self.text.decode("utf-8", "replace") if isinstance(self.text, bytes) else self.text
            self._lines = text.split("\n")
        lines = self._lines
        line, col = start
        while line < len(lines):
            src = lines[line]
            while col < len(src):
                c = src[col]
                if c == "*":
                    end = col + 1
                    while end < len(src) and not src[end].isspace() and src[end] not in ",[]{}":
                        end += 1
                    return (line + 1, col + 1), (line, end)
                if c == "#" and (col == 0 or src[col - 1] in " \t"):
                    break  # a comment, to the end of its line
                if c not in " \t\r-:?,[{":
                    return None
                col += 1
            line, col = line + 1, 0
        return None

    @staticmethod
    def _merge_keys(pairs: list) -> list:
        """YAML merge keys (``<<: *base``), as yaml.v3 applies them: explicit keys win."""
        merged: list = []
        explicit = {
            k.value for k, _ in pairs if k.id == "scalar" and not (k.value == "<<" and k.tag == Tags.PLAIN)
        }
        taken: set = set()
        for k, v in pairs:
            if not (k.id == "scalar" and k.value == "<<" and k.tag == Tags.PLAIN):
                continue
            sources = v.value if v.id == "sequence" else [v]
            for src in sources:
                if src.id != "mapping":
                    continue
                for mk, mv in src.value:
                    if mk.id == "scalar" and mk.value not in explicit and mk.value not in taken:
                        taken.add(mk.value)
                        merged.append((mk, mv))
        # The "<<" keys stay: Butane's walk of the YAML tree finds no field for them (unused keys).
        return merged + pairs

    def _duplicates(self, pairs: list) -> bool:
        if len(pairs) < 2:
            return False
        first: dict[str, int] = {}
        found = False
        for k, _ in pairs:
            if k.id != "scalar":
                continue
            line = k.start_mark.line + 1
            if k.value in first:
                self.errors.append(
                    f"line {line}: mapping key {go_quote(k.value)} already defined at line {first[k.value]}"
                )
                found = True
            else:
                first[k.value] = line
        return found
