"""Butane's report as printed: entries at YAML places, raw or as snippets with carets.

The entries are ``pineinstall.config.report.Entry`` objects (their path a YAML path).

Raw form (``--raw-errors``, and the fallback when a position is off the line):
``warning at $.storage.files.0.mode, line 6 col 13: message``.

Pretty form (the default)::

    error[$.storage.files.0.path]:
      --> input.bu:5:13
       |
     3 | storage:
     4 |   files:
     5 |     - path: etc/relative
       |             ^^^^^^^^^^^^ path not absolute
     6 |   links:
     7 |     - path: /etc/nowhere
       |

two lines of context either side, the gutter as wide as the largest line number shown, carets from
the column to the next white space; entries separated by an empty line.
"""

from __future__ import annotations

from pineinstall.config.report import ERROR, WARNING, Entry, format_path

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["ERROR", "WARNING", "Entry", "format_entries", "format_path", "pretty", "struct_order"]


def struct_order(
    path: tuple, fields_of: Callable[[str], Sequence[tuple[str, Any]]], unknown: int | None = None
) -> list[int]:
    """Where a path comes in a walk of Go structs from ``Config``, the order entries are reported in.

    List indexes count as they are; a field counts by its place in its struct, whose ``(key, type)``
    pairs ``fields_of(type name)`` gives in Go's field order. A field the struct lacks counts as
    ``unknown`` (default: after the struct's fields), and nothing below it has a type.
    """
    key: list[int] = []
    typ: Any = "Config"
    for part in path:
        if isinstance(part, int):
            key.append(part)
            typ = typ[1] if isinstance(typ, tuple) else None
            continue
        fields = fields_of(typ) if isinstance(typ, str) else ()
        idx = next((i for i, (k, _) in enumerate(fields) if k == part), None)
        if idx is None:
            key.append(len(fields) if unknown is None else unknown)
            typ = None
        else:
            key.append(idx)
            typ = fields[idx][1]
    return key


def _is_space(ch: str) -> bool:
    return ch.isspace()


_RED, _YELLOW, _BLUE, _RESET = "\033[1;31m", "\033[1;33m", "\033[1;34m", "\033[0m"


def _c(text: str, code: str, color: bool) -> str:
    return code + text + _RESET if color else text


def pretty(entry: Entry, filename: str, lines: list[str], color: bool = False) -> str:
    line, col = entry.line, entry.col
    if line is None or col is None or line < 1 or line > len(lines) or col < 1:
        return f"{entry}\n"
    text = lines[line - 1]
    # Go indexes the line by bytes; columns count characters. Match Go where they agree (ASCII).
    btext = text.encode("utf-8", "surrogateescape")
    if col > len(btext):
        return f"{entry}\n"
    kind = _c(entry.kind, _RED if entry.kind == ERROR else _YELLOW, color)
    out = [
        f"{kind}[{format_path(entry.path)}]:\n" if entry.path else f"{kind}:\n",
        f"  {_c('-->', _BLUE, color)} {filename}:{line}:{col}\n",
    ]
    first = max(1, line - 2)
    last = min(len(lines), line + 2)
    width = len(str(last))
    pad = " " * width
    out.append(f" {pad} |\n")
    for n in range(first, last + 1):
        out.append(f" {_c(f'{n:>{width}}', _BLUE, color)} | {lines[n - 1]}\n")
        if n == line:
            rest = btext[col - 1 :].decode("utf-8", "surrogateescape")
            end = next((i for i, ch in enumerate(rest) if _is_space(ch)), len(rest))
            carets = "^" * len(rest[:end].encode("utf-8", "surrogateescape"))
            out.append(f" {pad} | {' ' * (col - 1)}{_c(carets, _BLUE, color)} {entry.message}\n")
    out.append(f" {pad} |\n")
    return "".join(out)


def format_entries(
    entries: list[Entry], filename: str, source: str, raw: bool = False, color: bool = False
) -> str:
    if raw:
        return "".join(f"{e}\n" for e in entries)
    lines = source.split("\n")
    return "\n".join(pretty(e, filename, lines, color) for e in entries)
