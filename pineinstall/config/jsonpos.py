"""Line and column of a JSON path in the source text, found only when something is reported.

Positions are not recorded while parsing: ``json.loads`` runs at C speed and most configs have
nothing to report. When an entry needs a place, we walk the text along its path, skipping the
values we do not descend into with the C scanner (``raw_decode``).

Conventions (those of ignition-validate): a value's position is its first character; with
``at_key`` the position is the opening quote of the last key of the path (unused keys). A path that
does not exist in the text (a field the config did not give) resolves to its deepest existing
ancestor. When a key occurs twice, the last occurrence counts, as it does for the decoded value.
Columns count bytes of UTF-8, as Go does.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .report import Path

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


def _find_key(text: str, i: int, key: str) -> tuple[int, int] | None:
    """In the object starting at ``text[i] == '{'``: (key index, value index) of the last ``key``."""
    found = None
    i = _skip_ws(text, i + 1)
    n = len(text)
    while i < n and text[i] == '"':
        key_at = i
        try:
            name, i = json.decoder.scanstring(text, i + 1)
        except (json.JSONDecodeError, ValueError):
            return found
        i = _skip_ws(text, i)
        if i >= n or text[i] != ":":
            return found
        value_at = _skip_ws(text, i + 1)
        if name == key:
            found = (key_at, value_at)
        i = _skip_ws(text, _skip_value(text, value_at))
        if i < n and text[i] == ",":
            i = _skip_ws(text, i + 1)
    return found


def _find_index(text: str, i: int, index: int) -> int | None:
    """In the array starting at ``text[i] == '['``: the index of element ``index``."""
    i = _skip_ws(text, i + 1)
    n = len(text)
    for _ in range(index):
        if i >= n or text[i] == "]":
            return None
        i = _skip_ws(text, _skip_value(text, i))
        if i >= n or text[i] != ",":
            return None
        i = _skip_ws(text, i + 1)
    if i >= n or text[i] == "]":
        return None
    return i


def locate(text: str, path: Path, at_key: bool = False) -> tuple[int, int] | None:
    """Line and column of ``path`` in ``text`` (see the module docstring), or None for an empty text."""
    i = _skip_ws(text, 0)
    if i >= len(text):
        return None
    depth_reached = 0
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(part, str):
            if text[i] != "{":
                break
            hit = _find_key(text, i, part)
            if hit is None:
                break
            i = hit[0] if (last and at_key) else hit[1]
        else:
            if text[i] != "[":
                break
            hit_index = _find_index(text, i, part)
            if hit_index is None:
                break
            i = hit_index
        depth_reached = depth + 1
    line, col = line_col(text, i)
    # ignition-validate places an object or array just inside its opening bracket.
    if text[i] in "{[" and not (at_key and depth_reached == len(path)):
        col += 1
    return line, col


def finder(text: str) -> Callable[[Path, bool], tuple[int, int] | None]:
    """A ``locate`` bound to one text, for ``Report.locate``."""
    return lambda path, at_key=False: locate(text, path, at_key)
