"""Line and column of a JSON path in the source text, found only when something is reported.

Positions are not recorded while parsing: ``json.loads`` runs at C speed and most configs have
nothing to report. When an entry needs a place, we walk the text along its path, skipping the
values we do not descend into with the C scanner (``raw_decode``).

Conventions (those of ignition-validate): a value's position is its first character; with
``at_key`` the position is the opening quote of the last key of the path (unused keys). A path that
does not exist in the text (a field the config did not give) resolves to its deepest existing
ancestor. When a key occurs twice, the last occurrence counts, as it does for the decoded value;
but a type error is Go's decoder's, found where it reads the value: ``locate_typed`` places it at the
first occurrence along the path that holds a value of the reported kind. Columns count bytes of
UTF-8, as Go does.
"""

from __future__ import annotations

import json
import re  # loaded by json already
from collections.abc import Callable

from .report import Path

# json's own string scanner (C when available); typeshed does not declare it.
_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

_WS = " \t\n\r"
_decoder = json.JSONDecoder()
_lenient = json.JSONDecoder(parse_int=str)


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and byte column of a character index."""
    line_start = text.rfind("\n", 0, index) + 1
    line = text.count("\n", 0, index) + 1
    return line, len(text[line_start:index].encode("utf-8", "surrogatepass")) + 1


def _skip_ws(text: str, i: int) -> int:
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    return i


def _skip_value(text: str, i: int) -> int:
    try:
        return _decoder.raw_decode(text, i)[1]
    except json.JSONDecodeError:
        return len(text)
    except ValueError:  # an integer too long for int(): skip it as text
        try:
            return _lenient.raw_decode(text, i)[1]
        except ValueError:
            return len(text)


class _Locator:
    """Positions in one text. The keys of an object and the element starts of an array are found
    in one pass over it and kept: every further path through it costs a dictionary lookup (a
    config with 100,000 findings would otherwise rescan the text 100,000 times)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.objects: dict[int, dict[str, tuple[int, int]]] = {}
        # keys given more than once in an object: key -> every (key index, value index), in order
        self.repeated: dict[int, dict[str, list[tuple[int, int]]]] = {}
        self.arrays: dict[int, list[int]] = {}
        self.newlines: list[int] | None = None
        self.ascii = text.isascii()

    def line_col(self, index: int) -> tuple[int, int]:
        """:func:`line_col`, without counting the text again for every position."""
        import bisect  # only when something is reported

        if self.newlines is None:
            self.newlines = [m.start() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_left(self.newlines, index)
        line_start = self.newlines[line - 1] + 1 if line else 0
        if self.ascii:
            return line + 1, index - line_start + 1
        return line + 1, len(self.text[line_start:index].encode("utf-8", "surrogatepass")) + 1

    def keys(self, i: int) -> dict[str, tuple[int, int]]:
        """The object starting at ``text[i] == '{'``: key -> (key index, value index), the last
        occurrence of a key winning; as far as the text is well formed."""
        found = self.objects.get(i)
        if found is not None:
            return found
        text, n = self.text, len(self.text)
        found = self.objects[i] = {}
        at = i
        i = _skip_ws(text, i + 1)
        while i < n and text[i] == '"':
            key_at = i
            try:
                name, i = _scanstring(text, i + 1)
            except (json.JSONDecodeError, ValueError):
                break
            i = _skip_ws(text, i)
            if i >= n or text[i] != ":":
                break
            value_at = _skip_ws(text, i + 1)
            if name in found:
                self.repeated.setdefault(at, {}).setdefault(name, [found[name]]).append((key_at, value_at))
            found[name] = (key_at, value_at)
            i = _skip_ws(text, _skip_value(text, value_at))
            if i < n and text[i] == ",":
                i = _skip_ws(text, i + 1)
        return found

    def elements(self, i: int) -> list[int]:
        """The array starting at ``text[i] == '['``: the index of each element."""
        starts = self.arrays.get(i)
        if starts is not None:
            return starts
        text, n = self.text, len(self.text)
        starts = self.arrays[i] = []
        i = _skip_ws(text, i + 1)
        while i < n and text[i] != "]":
            starts.append(i)
            i = _skip_ws(text, _skip_value(text, i))
            if i >= n or text[i] != ",":
                break
            i = _skip_ws(text, i + 1)
        return starts

    def locate(self, path: Path, at_key: bool = False) -> tuple[int, int] | None:
        """Line and column of ``path`` (see the module docstring), or None for an empty text."""
        text = self.text
        i = _skip_ws(text, 0)
        if i >= len(text):
            return None
        depth_reached = 0
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(part, str):
                if text[i] != "{":
                    break
                hit = self.keys(i).get(part)
                if hit is None:
                    break
                i = hit[0] if (last and at_key) else hit[1]
            else:
                if text[i] != "[":
                    break
                starts = self.elements(i)
                if not 0 <= part < len(starts):
                    break
                i = starts[part]
            depth_reached = depth + 1
        return self._place(i, at_key and depth_reached == len(path))

    def _place(self, i: int, key: bool = False) -> tuple[int, int]:
        line, col = self.line_col(i)
        # ignition-validate places an object or array just inside its opening bracket.
        if self.text[i] in "{[" and not key:
            col += 1
        return line, col

    def locate_typed(self, path: Path, kind: str, kind_of: Callable[[object], str]) -> tuple[int, int] | None:
        """The place of the first value at ``path``, in text order over every occurrence of a
        key given twice, whose kind (``kind_of`` of its decoded value) is ``kind``; None when
        there is none (``locate`` then places the error)."""
        text = self.text
        todo = [(_skip_ws(text, 0), 0)]
        while todo:
            i, depth = todo.pop()
            if i >= len(text):
                continue
            if depth == len(path):
                try:
                    value = _decoder.raw_decode(text, i)[0]
                except ValueError:
                    continue
                if kind_of(value) == kind:
                    return self._place(i)
                continue
            part = path[depth]
            nxt: list[int] = []
            if isinstance(part, str):
                if text[i] == "{":
                    last = self.keys(i).get(part)  # scans the object: fills self.repeated
                    hits = self.repeated.get(i, {}).get(part) or ([last] if last is not None else [])
                    nxt = [value_at for _, value_at in hits]
            elif text[i] == "[":
                starts = self.elements(i)
                nxt = [starts[part]] if 0 <= part < len(starts) else []
            todo.extend((j, depth + 1) for j in reversed(nxt))
        return None


def locate(text: str, path: Path, at_key: bool = False) -> tuple[int, int] | None:
    """Line and column of ``path`` in ``text`` (see the module docstring), or None for an empty text."""
    return _Locator(text).locate(path, at_key)


def locator(text: str) -> _Locator:
    """The positions of one text, for ``locate`` (as ``finder``) and ``locate_typed``."""
    return _Locator(text)


def finder(text: str) -> Callable[[Path, bool], tuple[int, int] | None]:
    """A ``locate`` bound to one text (its scans shared by every call), for ``Report.locate``."""
    return _Locator(text).locate
