"""Butane's report: entries at YAML places, printed raw or as snippets with carets.

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

ERROR = "error"
WARNING = "warning"


def format_path(path: tuple) -> str:
    return "$" + "".join(f".{p}" for p in path)


class Entry:
    """One finding of the translation; ``path`` is a YAML path (snake_case keys, list indices)."""

    __slots__ = ("at_key", "col", "kind", "line", "message", "path")

    def __init__(self, kind: str, message: str, path: tuple = (), at_key: bool = False) -> None:
        self.kind = kind
        self.message = message
        self.path = path
        self.at_key = at_key
        self.line: int | None = None
        self.col: int | None = None

    @property
    def is_error(self) -> bool:
        return self.kind == ERROR

    def raw(self) -> str:
        if self.line is not None:
            return f"{self.kind} at {format_path(self.path)}, line {self.line} col {self.col}: {self.message}"
        return f"{self.kind} at {format_path(self.path)}: {self.message}"

    __str__ = raw

    def __repr__(self) -> str:
        return f"Entry({self.kind!r}, {self.message!r}, {self.path!r}, line={self.line}, col={self.col})"


def _is_space(ch: str) -> bool:
    return ch.isspace()


_RED, _YELLOW, _BLUE, _RESET = "\033[1;31m", "\033[1;33m", "\033[1;34m", "\033[0m"


def _c(text: str, code: str, color: bool) -> str:
    return code + text + _RESET if color else text


def pretty(entry: Entry, filename: str, lines: list[str], color: bool = False) -> str:
    line, col = entry.line, entry.col
    if line is None or col is None or line < 1 or line > len(lines) or col < 1:
        return entry.raw() + "\n"
    text = lines[line - 1]
    # Go indexes the line by bytes; columns count characters. Match Go where they agree (ASCII).
    btext = text.encode("utf-8", "surrogateescape")
    if col > len(btext):
        return entry.raw() + "\n"
    kind = _c(entry.kind, _RED if entry.kind == ERROR else _YELLOW, color)
    out = [f"{kind}[{format_path(entry.path)}]:\n", f"  {_c('-->', _BLUE, color)} {filename}:{line}:{col}\n"]
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
        return "".join(e.raw() + "\n" for e in entries)
    lines = source.split("\n")
    return "\n".join(pretty(e, filename, lines, color) for e in entries)
