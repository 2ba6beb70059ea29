"""Errors and warnings about a config, each tied to a place in it.

A place is a JSON path (a tuple of keys and list indices, ``("storage", "files", 0, "path")``)
and, once resolved against the source text, a line and column. The text form is the one
``ignition-validate`` prints: ``error at $.storage.files.0.path, line 1 col 61: path not absolute``.

Plain classes with ``__slots__`` rather than dataclasses: this module is on the start-up path of
``pineinstall validate`` and ``pine-transpile``, where importing ``dataclasses`` alone costs more
than the whole time budget allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

ERROR = "error"
WARNING = "warning"

Path = tuple[str | int, ...]


LONG = 256  # characters of a key or value shown whole in a message


def shorten(text: str, keep: int = 64) -> str:
    """``text`` as shown in a message: whole up to :data:`LONG` characters, else its start and its
    length (a config may hold a megabyte-long key)."""
    return text if len(text) <= LONG else f"{text[:keep]}…({len(text)} characters)"


def format_path(path: Path) -> str:
    """``("storage", "files", 0)`` -> ``$.storage.files.0`` (Ignition's notation)."""
    return "$" + "".join(f".{shorten(part) if isinstance(part, str) else part}" for part in path)


class Entry:
    """One finding: its kind (error or warning), where, and what."""

    __slots__ = ("at_key", "col", "kind", "line", "message", "path")

    def __init__(
        self,
        kind: str,
        message: str,
        path: Path | None = None,
        line: int | None = None,
        col: int | None = None,
        at_key: bool = False,
    ) -> None:
        self.kind = kind
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        # The place is the key itself rather than its value (unused keys).
        self.at_key = at_key

    @property
    def is_error(self) -> bool:
        return self.kind == ERROR

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(format_path(self.path))
        if self.line is not None:
            where.append(f"line {self.line} col {self.col}")
        place = f" at {', '.join(where)}" if where else ""
        return f"{self.kind}{place}: {self.message}"

    def __repr__(self) -> str:
        return f"Entry({self.kind!r}, {self.message!r}, {self.path!r}, {self.line!r}, {self.col!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return (self.kind, self.message, self.path, self.line, self.col) == (
            other.kind,
            other.message,
            other.path,
            other.line,
            other.col,
        )

    def __hash__(self) -> int:
        return hash((self.kind, self.message, self.path))


class Report:
    """An ordered collection of entries; errors make a config unusable, warnings do not."""

    __slots__ = ("entries",)

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.entries: list[Entry] = list(entries)

    def error(self, message: str, path: Path | None = None) -> None:
        self.entries.append(Entry(ERROR, message, path))

    def warning(self, message: str, path: Path | None = None, at_key: bool = False) -> None:
        self.entries.append(Entry(WARNING, message, path, at_key=at_key))

    def extend(self, other: Report | Iterable[Entry]) -> None:
        self.entries.extend(other.entries if isinstance(other, Report) else other)

    @property
    def has_errors(self) -> bool:
        return any(e.kind == ERROR for e in self.entries)

    @property
    def errors(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == ERROR]

    @property
    def warnings(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == WARNING]

    def locate(self, find: Callable[[Path, bool], tuple[int, int] | None]) -> None:
        """Fill in line and column of every entry that has a path but no position yet."""
        for entry in self.entries:
            if entry.path is not None and entry.line is None:
                pos = find(entry.path, entry.at_key)
                if pos is not None:
                    entry.line, entry.col = pos

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __str__(self) -> str:
        return "".join(f"{e}\n" for e in self.entries)
