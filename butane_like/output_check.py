"""Checks of the generated Ignition config (``config generated was invalid`` when they fail).

Duplicates as Ignition's ``ValidateDups``, then Ignition's own validation
(``pineinstall.config.check_dict``); each finding is reported at the YAML place that produced the
output field, in the order of Ignition's validation walk.
"""

from __future__ import annotations

import re

from .errors import ERR_DUPLICATE
from .report import ERROR, WARNING

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

    from .base.translate import Translator


def check_output(tr: Translator, out: dict, pruned: dict) -> None:
    """Report the problems of the output ``out`` (``pruned``: as it will be written)."""
    report = tr.report
    for jpath in duplicates(pruned):
        report.error(ERR_DUPLICATE, tr.origins.yaml_path(out, jpath))
    # (What the source checks already reported is not repeated; Ignition's own repeats are kept:
    # Butane merges its report as it is.)
    seen = {(e.kind, e.message, e.path) for e in report}
    for kind, msg, jpath in _ignition_check(_for_check(pruned, tr.generated, tr.invalid_utf8), tr.safety):
        ypath = tr.origins.yaml_path(out, jpath)
        if (kind, msg, ypath) in seen:
            continue
        if kind == ERROR:
            report.error(msg, ypath)
        else:
            report.warning(msg, ypath)


def duplicates(out: dict) -> list[tuple]:
    """Output paths of entries that repeat a key, as Ignition's ValidateDups."""
    found: list[tuple] = []
    storage = out.get("storage") or {}
    seen: set = set()
    for kind in ("directories", "files", "links"):
        for i in _repeats(storage.get(kind), "path", seen):
            found.append(("storage", kind, i))
    for kind, key in (("disks", "device"), ("filesystems", "device"), ("luks", "name"), ("raid", "name")):
        for i in _repeats(storage.get(kind), key, set()):
            found.append(("storage", kind, i))
    passwd = out.get("passwd") or {}
    for kind in ("users", "groups"):
        for i in _repeats(passwd.get(kind), "name", set()):
            found.append(("passwd", kind, i))
    for i, user in enumerate(passwd.get("users") or []):
        keys = user.get("sshAuthorizedKeys")
        if keys and len(keys) > 1 and len(set(keys)) < len(keys):  # (most users: one key, no set)
            seen = set()
            for j, key in enumerate(keys):
                if key in seen:
                    found.append(("passwd", "users", i, "sshAuthorizedKeys", j))
                seen.add(key)
    units = (out.get("systemd") or {}).get("units") or []
    repeated = set(_repeats(units, "name", set()))
    for i, unit in enumerate(units):
        if i in repeated:  # (each unit's, then its drop-ins')
            found.append(("systemd", "units", i))
        dropins = unit.get("dropins")
        if dropins and len(dropins) > 1:  # (likewise)
            for j in _repeats(dropins, "name", set()):
                found.append(("systemd", "units", i, "dropins", j))
    return found


def _repeats(items: list | None, key: str, seen: set) -> list[int]:
    """The indexes of the ``items`` (objects) whose ``key`` is in ``seen`` or an earlier item's;
    adds the keys to ``seen``. (Without a Python-level step per item when none repeats.)"""
    if not items:
        return []
    keys = [node.get(key) for node in items]
    distinct = set(keys)
    if len(distinct) == len(keys) and seen.isdisjoint(distinct):
        seen |= distinct
        return []
    found = []
    for i, k in enumerate(keys):
        if k in seen:
            found.append(i)
        seen.add(k)
    return found


_SPECIAL_BITS_PREFIX = "setuid/setgid/sticky bits are not supported in spec versions older than"
_SPECIAL_BITS_BUTANE = (
    "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0"
)


def _ignition_check(cfg: dict, safety: bool) -> list[tuple[str, str, tuple]]:
    """Ignition's validation of the generated config (pineinstall.config.check_dict)."""
    out = []
    for e in sorted(_typed_check_dict(cfg, safety), key=lambda e: _walk_key(tuple(e.path or ()), e.message)):
        msg = e.message
        if msg.startswith(_SPECIAL_BITS_PREFIX):
            # Butane 0.29 links a newer Ignition than Debian's 2.14, with this wording.
            msg = _SPECIAL_BITS_BUTANE
        out.append((ERROR if e.kind == "error" else WARNING, msg, tuple(e.path or ())))
    return out


def _typed_check_dict(cfg: dict, safety: bool) -> Any:
    """``check_dict`` of the transpiler's output: typed by its construction, no schema walk (a
    tenth of a large check; tests/unit/test_transpile_typed_output.py shows it would find nothing)."""
    from pineinstall.config import check_dict

    return check_dict(cfg, safety, typed=True)


# Checks Ignition runs from Storage.Validate / Config.Validate, i.e. before walking into the fields.
_STORAGE_LEVEL = frozenset(
    (
        "file path includes link in config",
        "directory path includes link in config",
        "link path includes link in config",
        "link target is required",
        "hard link target is a directory",
        "filesystem overwrites partitioned device",
        "device matches disk with wipeTable enabled; filesystem will be wiped",
    )
)
_CONFIG_LEVEL = frozenset(("path conflicts with systemd unit or dropin",))


def _walk_key(jpath: tuple, message: str) -> tuple:
    """Sort key giving the order of Ignition's validation walk (struct field order, parent first)."""
    from .fields import OUTPUT_ORDER
    from .report import struct_order

    if message in _CONFIG_LEVEL:
        return (-1,)
    if message in _STORAGE_LEVEL:
        jpath = ("storage",)
    key = struct_order(jpath, lambda typ: OUTPUT_ORDER.get(typ) or (), unknown=99)
    if message in _STORAGE_LEVEL:
        key.append(-1)
    return tuple(key)


def _for_check(v: Any, generated: set[int], surrogates: bool) -> Any:
    """The config as Ignition's validation should see it, cheaply.

    Data URLs we generated are valid by construction; Ignition's check would scan every byte
    of them, so they are shown to it as short ``data:,N`` stand-ins, one per distinct URL, so that
    its duplicate checks (merge, certificate authorities) still tell them apart. Invalid UTF-8
    from local files becomes U+FFFD, as in Go's JSON.
    """
    if not generated and not surrogates:
        # nothing to stand in for: the config itself, not a copy of a huge one (check_dict
        # changes nothing in a clean config, which the transpiler's pruned output is)
        return v
    return _shown(v, generated, surrogates, {})


def _shown(v: Any, generated: set[int], surrogates: bool, stand_ins: dict[str, str]) -> Any:
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "source" and id(x) in generated:
                out[k] = stand_ins.setdefault(x, f"data:,{len(stand_ins)}")
            else:
                out[k] = _shown(x, generated, surrogates, stand_ins)
        return out
    if isinstance(v, list):
        return [_shown(x, generated, surrogates, stand_ins) for x in v]
    if surrogates and isinstance(v, str):
        return _replace_surrogates(v)
    return v


def _replace_surrogates(v: Any) -> Any:
    """Strings as Go sees them after JSON: invalid bytes (lone surrogates here) are U+FFFD."""
    if isinstance(v, str):
        return re.sub(_SURROGATES, "\ufffd", v)
    if isinstance(v, list):
        return [_replace_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {k: _replace_surrogates(x) for k, x in v.items()}
    return v


_SURROGATES = "[\ud800-\udfff]"
