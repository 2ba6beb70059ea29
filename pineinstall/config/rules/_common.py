"""Small helpers shared by the rule modules: field access with Go's nil semantics, path checks.

The config is a plain dict from ``json.loads``. Go decodes ``null`` and an absent key the same
way (a nil pointer, or the zero value for non-pointer fields), so every accessor here treats
``None`` as "not given".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..report import Path, Report

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13 on

# Ignition 2.15 added four checks to EVERY spec version: nodes at a unit's path (an error), and
# warnings for user/group on hard links, filesystems made over partitioned or wiped disks, and
# enabled instances of templates without [Install]. We follow the newest Ignition (2.26, which
# Butane 0.29 links too) on every version; Debian's ignition-validate 2.14, the live reference
# for 3.0.0-3.3.0 in the tests, predates them, and those tests leave these four findings out.
POST_2_14_CHECKS_FROM = (3, 0)

# Message texts of ignition-validate (config/shared/errors in Ignition).
ERR_DUPLICATE = "duplicate entry defined"
ERR_NO_PATH = "path not specified"
ERR_PATH_RELATIVE = "path not absolute"
ERR_DIRTY_PATH = "path is not fully simplified"


def obj(value: object) -> dict:
    """A JSON object, or an empty one when absent/null (Go's zero struct)."""
    return value if isinstance(value, dict) else {}


def arr(value: object) -> list:
    """A JSON array, or an empty one when absent/null (Go's nil slice)."""
    return value if isinstance(value, list) else []


def text(value: object) -> str:
    """A string field of a non-pointer Go type: absent/null is ""."""
    return value if isinstance(value, str) else ""


def opt_str(value: object) -> str | None:
    """A *string field: the string, or None when absent, null (or, defensively, not a string)."""
    return value if isinstance(value, str) else None


def nil_or_empty(value: object) -> TypeIs[Literal[""] | None]:
    """Ignition's util.NilOrEmpty for a *string (when false, a ``str | None`` is known to be a str)."""
    return value is None or value == ""


def not_empty(value: object) -> bool:
    return isinstance(value, str) and value != ""


def is_true(value: object) -> bool:
    return value is True


def is_false(value: object) -> bool:
    return value is False


def clean_path(p: str) -> str:
    """Go's path.Clean: the shortest lexically equivalent path."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def join_path(base: str, rel: str) -> str:
    """Go's path.Join of two elements."""
    if base == "" and rel == "":
        return ""
    if base == "":
        return clean_path(rel)
    if rel == "":
        return clean_path(base)
    return clean_path(base + "/" + rel)


def path_error(p: str) -> str | None:
    """Ignition's validatePath: the message for a path that is not absolute and clean."""
    if p == "":
        return ERR_NO_PATH
    if not p.startswith("/"):
        return ERR_PATH_RELATIVE
    if "//" not in p and "/." not in p and p[-1] != "/":
        return None  # no empty, "." or ".." element and no trailing slash: already clean
    if clean_path(p) != p:
        return ERR_DIRTY_PATH
    return None


def check_path(report: Report, value: object, path: Path) -> None:
    msg = path_error(text(value))
    if msg:
        report.error(msg, path)


def check_path_nil_ok(report: Report, value: object, path: Path) -> None:
    """validatePathNilOK: a missing, null or empty path is fine."""
    if nil_or_empty(value):
        return
    check_path(report, value, path)


def duplicates(report: Report, items: list, base: Path, key, seen: set | None = None) -> set:
    """Report every element whose key was already seen (ValidateDups); returns the key set.

    ``seen`` lets several lists share one key space (files, directories and links).
    """
    if seen is None and len(items) < 2:
        return {key(item) for item in items}  # nothing to repeat (most lists of one user's keys)
    seen = set() if seen is None else seen
    name = getattr(key, "field", None)
    if name is not None:  # one field of each object: read without a Python-level call per item
        keys = [item.get(name) if type(item) is dict else None for item in items]
        if set(map(type, keys)) != {str}:
            keys = [k if type(k) is str else "" for k in keys]
    else:
        keys = [key(item) for item in items]
    distinct = set(keys)
    if len(distinct) == len(keys) and seen.isdisjoint(distinct):
        seen |= distinct  # the common case, without a Python-level step per item
        return seen
    for i, k in enumerate(keys):
        if k in seen:
            report.error(ERR_DUPLICATE, (*base, i))
        seen.add(k)
    return seen


def str_key(item: object) -> str:
    """Key of a list of strings: the string itself (null decodes to "")."""
    return text(item)


def field_key(name: str):
    """Key of a list of objects: one string field of each (Key() of the Go type)."""

    def key(item: object) -> str:
        value = item.get(name) if isinstance(item, dict) else None
        return value if isinstance(value, str) else ""

    key.field = name  # type: ignore[attr-defined]  # for duplicates' fast path
    return key
