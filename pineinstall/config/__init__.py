"""The Ignition config: checking (this module) and the typed model (``model``, for the engine).

``check`` runs what Ignition runs, in its order: JSON syntax, ``ignition.version``, types (the
spec version's schema; unknown keys are warnings), the semantic rules, then translation to the
newest spec. Positions are resolved only for what is reported. Nothing here imports more than
``json``: this is the start-up path of ``pineinstall validate`` (see docs/interfaces.md).
"""

from __future__ import annotations

import json
import sys

from . import schema
from .jsonpos import finder, line_col, locator
from .report import Path, Report
from .versions import SUPPORTED, describe_supported

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~5 ms of start-up; annotations stay strings here
    from typing import Any

__all__ = ["Checked", "Report", "check", "check_dict", "paused_gc"]


class Checked:
    """The outcome of checking one config text."""

    __slots__ = ("config", "report", "version")

    def __init__(self, report: Report, version: str | None = None, config: dict[str, Any] | None = None):
        self.report = report
        self.version = version
        # The config in the 3.6.0 shape; None when there were errors.
        self.config = config

    @property
    def ok(self) -> bool:
        return not self.report.has_errors


class paused_gc:
    """``with paused_gc():`` the cyclic garbage collector is off. Parsing a large config creates
    millions of dicts and lists, none of them in a reference cycle, and the collector's passes over
    them cost as much as the parsing (500,000 entries: half the CPU time); reference counting still
    frees everything as usual."""

    def __enter__(self) -> None:
        import gc  # built in: free

        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        import gc

        if self.was_enabled:
            gc.enable()


def is_json(data: bytes) -> bool:
    """An Ignition config is a JSON object; anything else is taken for Butane-like YAML."""
    return data.lstrip(b" \t\r\n\xef\xbb\xbf").startswith(b"{")


# A YAML mapping's first key, after comments and an optional "---": what a Butane document starts with.
_YAML_MAPPING = (
    rb"(?:[ \t]*(?:#[^\n]*)?\r?\n)*(?:---[ \t]*\r?\n)?[ \t]*[A-Za-z_][\w-]*[ \t]*:(?:[ \t]|\r?\n|$)"
)


def is_yaml_mapping(data: bytes) -> bool:
    """A Butane-like YAML document, not JSON and not garbage (which ``validate`` reports as JSON:
    empty input, ``[]``, a number or stray text keep their located JSON errors)."""
    import re  # loaded by json already

    return re.match(_YAML_MAPPING, data.lstrip(b"\xef\xbb\xbf")) is not None


def check(data: bytes | str) -> Checked:
    """Check a config text; every entry of the report carries a line and column."""
    with paused_gc():
        return _check_text(data)


def _check_text(data: bytes | str) -> Checked:
    report = Report()
    # Go's decoder replaces invalid UTF-8 in strings by U+FFFD; so do we.
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if not data:
        report.error("not a config (empty)")
        report.entries[-1].line, report.entries[-1].col = 1, 1
        return Checked(report)
    try:
        obj = schema.go_loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, RecursionError):
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
        _report_syntax(report, raw)
        return Checked(report)
    except ValueError:  # an integer with more digits than Python converts (sys.get_int_max_str_digits)
        report.error(*_huge_integer(text))
        report.locate(finder(text))
        return Checked(report)
    checked = _check_object(obj, report)
    _locate(report, text)
    for entry in report:
        if entry.line is None:  # entries about the whole document
            entry.line, entry.col = line_col(text, len(text) - len(text.lstrip()))
    return checked


_TYPED = "cannot unmarshal "


def _locate(report: Report, text: str) -> None:
    """Positions for the entries: a type error where Go's decoder read the value (a key given
    twice: at the occurrence holding a value of that kind), the others by ``jsonpos.locate``."""
    places = locator(text)
    for entry in report:
        if entry.line is None and entry.path and entry.message.startswith(_TYPED):
            kind = entry.message[len(_TYPED) :].split(" ", 1)[0]
            pos = places.locate_typed(entry.path, kind, schema.json_kind)
            if pos is not None:
                entry.line, entry.col = pos
    report.locate(places.locate)


def check_dict(obj: Any, safety: bool = True, typed: bool = False) -> Report:
    """Check an in-memory config (the transpiler's output): entries carry paths, no positions.
    ``safety=False`` leaves out our rules beyond Ignition's (see ``rules.validate``); ``typed``:
    ``obj`` is known to have only the schema's keys and types (the transpiler's typed copy, see
    tests/unit/test_transpile_typed_output.py), so the schema walk, which finds nothing, is left out."""
    report = Report()
    _check_object(obj, report, safety, upgrade=False, typed=typed)  # the report only: ``obj`` stays
    return report


def _check_object(
    obj: Any, report: Report, safety: bool = True, upgrade: bool = True, typed: bool = False
) -> Checked:
    version = _version(obj, report)
    if version is None:
        return Checked(report)
    if not typed:
        schema.check(obj, version, report)
    if report.has_errors:
        return Checked(report, version)
    minor = SUPPORTED[version]
    from . import rules

    rules.validate(obj, minor, report, safety)
    if report.has_errors or not upgrade:
        return Checked(report, version)
    from .translate import upgrade as to_newest

    return Checked(report, version, to_newest(obj, minor))


_NO_VERSION = "ignition.version is required: the config declares no spec version"


def _version(obj: Any, report: Report) -> str | None:
    if obj is None:  # Go decodes a null document as an empty object: no version
        report.error(_NO_VERSION, ())
        return None
    if not isinstance(obj, dict):
        report.error(f"config must be a JSON object, not {schema.json_kind(obj)}", ())
        return None
    # Keys match case-insensitively in Go's decoder: the schema walk warns, but the version is read.
    schema.fold_fields(obj, ("ignition",))
    ignition = obj.get("ignition")
    if ignition is None:
        report.error(_NO_VERSION, ("ignition",))
        return None
    if not isinstance(ignition, dict):
        kind = schema.json_kind(ignition)
        report.error(f"cannot unmarshal {kind} into a field of type object", ("ignition",))
        return None
    schema.fold_fields(ignition, ("version",))
    version = ignition.get("version")
    path = ("ignition", "version")
    if version is None:
        report.error(_NO_VERSION, ("ignition",))
        return None
    if not isinstance(version, str):
        report.error(f"cannot unmarshal {schema.json_kind(version)} into a field of type string", path)
        return None
    if version not in SUPPORTED:
        report.error(f"unsupported config version {version!r} (supported: {describe_supported()})", path)
        return None
    return version


class _Digits(str):
    """An integer's text, kept as text: too long for ``int()``."""


def _huge_integer(text: str) -> tuple[str, Path]:
    """The error for the first integer too long to convert, and its path (decoded again, with the
    long integers kept as text: Go's int fields could not hold them either)."""
    limit = sys.get_int_max_str_digits() or 1 << 62

    def parse_int(digits: str) -> int | str:
        return _Digits(digits) if len(digits.lstrip("-")) > limit else int(digits)

    todo: list[tuple[Any, Path]] = [(json.JSONDecoder(parse_int=parse_int).decode(text), ())]
    while todo:
        value, path = todo.pop()
        if isinstance(value, _Digits):
            return f"integer {value[:16]}… ({len(value.lstrip('-'))} digits) is out of range", path
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        todo.extend((child, (*path, key)) for key, child in reversed(list(items)))
    raise AssertionError("no long integer found")  # pragma: no cover - json raised for one


def _report_syntax(report: Report, raw: bytes) -> None:
    """Go's words and place for a text Python's decoder refused (a byte order mark, NaN, deep
    nesting included); nesting Go accepts but Python cannot follow is said as such."""
    from .jsonsyntax import line_col as go_line_col
    from .jsonsyntax import syntax_error

    found = syntax_error(raw)
    if found is None:
        report.error("config nests too deeply")
        report.entries[-1].line, report.entries[-1].col = 1, 1
        return
    report.error(found[0])
    report.entries[-1].line, report.entries[-1].col = go_line_col(raw, found[1])


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON (Python's decoder takes them; Go's does not)."""
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)
