"""Validation of the source config, before translation (Butane's ``base/v0_x/validate.go``).

Errors here make the source invalid (``source config is invalid``). The order of the checks is
the order of the report: the variant's storage checks, the base checks in Butane's walk order,
then the variant's own sections (``butane_like.variants``).
"""

from __future__ import annotations

from ..errors import (
    ERR_CONFIG_INVALID,
    ERR_DECIMAL_MODE,
    ERR_MOUNT_NO_FORMAT,
    ERR_MOUNT_NO_PATH,
    ERR_TOO_MANY_SOURCES,
    ERR_TOO_MANY_UNIT_SOURCES,
    ERR_TREE_NO_LOCAL,
    WARN_MERGE_UNKNOWN_VERSION,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from .translate import Translator


def validate_source(tr: Translator, cfg: dict) -> None:
    storage = cfg.get("storage") or {}
    tr.variant.validate_storage(tr, cfg)
    ign = cfg.get("ignition") or {}
    conf = ign.get("config") or {}
    for i, r in enumerate(conf.get("merge") or []):
        _resource(tr, r, ("ignition", "config", "merge", i), config_ref=True)
    if "replace" in conf:
        _resource(tr, conf["replace"], ("ignition", "config", "replace"), config_ref=True)
    tls = (ign.get("security") or {}).get("tls") or {}
    for i, r in enumerate(tls.get("certificate_authorities") or []):
        _resource(tr, r, ("ignition", "security", "tls", "certificate_authorities", i))
    for i, d in enumerate(storage.get("directories") or []):
        _decimal_mode(tr, d, ("storage", "directories", i), True)
    for i, f in enumerate(storage.get("files") or []):
        # (inline for the usual file, a plain mode and one source: no call, no path made)
        mode = f.get("mode")
        if mode is not None and (mode.__class__ is not int or _suspicious.get(-1 - mode) is not False):
            _decimal_mode(tr, f, ("storage", "files", i), False)
        if "append" in f:
            for j, r in enumerate(f["append"] or []):
                _resource(tr, r, ("storage", "files", i, "append", j))
        if "contents" in f:
            r = f["contents"]
            if ("local" in r) + ("inline" in r) + ("source" in r) > 1:
                _resource(tr, r, ("storage", "files", i, "contents"))
    for i, fs in enumerate(storage.get("filesystems") or []):
        if fs.get("with_mount_unit") is True and tr.spec.base < 4:
            # Before swap units (fcos 1.4, base v0_4): path and format are both required, each checked.
            if not fs.get("path"):
                tr.report.error(ERR_MOUNT_NO_PATH, ("storage", "filesystems", i, "path"))
            if not fs.get("format"):
                tr.report.error(ERR_MOUNT_NO_FORMAT, ("storage", "filesystems", i, "format"))
        elif fs.get("with_mount_unit") is True:
            if not fs.get("format"):
                tr.report.error(ERR_MOUNT_NO_FORMAT, ("storage", "filesystems", i, "format"))
            elif fs["format"] != "swap" and not fs.get("path"):
                tr.report.error(ERR_MOUNT_NO_PATH, ("storage", "filesystems", i, "path"))
    for i, lk in enumerate(storage.get("luks") or []):
        if "key_file" in lk:
            _resource(tr, lk["key_file"], ("storage", "luks", i, "key_file"))
    for i, t in enumerate(storage.get("trees") or []):
        if not t.get("local"):
            tr.report.error(ERR_TREE_NO_LOCAL, ("storage", "trees", i))
    for i, u in enumerate((cfg.get("systemd") or {}).get("units") or []):
        if "contents" in u and "contents_local" in u:
            tr.report.error(ERR_TOO_MANY_UNIT_SOURCES, ("systemd", "units", i, "contents_local"))
        for j, d in enumerate(u.get("dropins") or []):
            if "contents" in d and "contents_local" in d:
                tr.report.error(
                    ERR_TOO_MANY_UNIT_SOURCES, ("systemd", "units", i, "dropins", j, "contents_local")
                )
    if (cfg.get("systemd") or {}).get("quadlets"):
        from .quadlets import validate_quadlets

        validate_quadlets(tr, cfg["systemd"]["quadlets"])
    tr.variant.validate(tr, cfg)


def _decimal_mode(tr: Translator, node: dict, base: tuple, directory: bool) -> None:
    mode = node.get("mode")
    if isinstance(mode, int) and decimal_mode_suspicious(mode, directory):
        tr.report.warning(ERR_DECIMAL_MODE, (*base, "mode"))


def _resource(tr: Translator, r: dict, path: tuple, config_ref: bool = False) -> None:
    field = ""
    n = 0
    for key in ("local", "inline", "source"):
        if key in r:
            n += 1
            field = key
    if n > 1:
        # fcos 1.0 (base v0_1) has no local files and reports the pair at "inline".
        tr.report.error(ERR_TOO_MANY_SOURCES, (*path, field if tr.spec.base >= 2 else "inline"))
    if config_ref and field == "inline":
        _inline_config(tr, r["inline"], path)


def _inline_config(tr: Translator, text: str, path: tuple) -> None:
    """An inline config to merge or replace with is checked as Ignition would (same version only)."""
    import json

    from pineinstall.config.jsonsyntax import syntax_error

    raw = text.encode("utf-8", "surrogateescape")
    found = syntax_error(raw)
    if found is not None:
        # Ignition's parser refuses it: Go's words, placed (as Butane places a path-less entry) at
        # the document, then the inline itself is not valid.
        from ..report import ERROR, Entry

        tr.report.extend([Entry(ERROR, found[0], None)])
        tr.report.error(ERR_CONFIG_INVALID, (*path, "inline"))
        return
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    ignition = obj.get("ignition") if isinstance(obj, dict) else None
    version = (
        ignition.get("version", "") if isinstance(ignition, dict) else "" if isinstance(obj, dict) else None
    )
    if not isinstance(version, str):
        tr.report.warning(WARN_MERGE_UNKNOWN_VERSION, (*path, "version"))
        return
    import re

    from pineinstall.config import check_dict

    assert isinstance(obj, dict)
    if re.match(_SEMVER, version) is None:
        # Ignition cannot parse the version: that error, then the whole check as of this spec.
        tr.report.error(ERR_INVALID_CONFIG_VERSION, ("ignition", "version"))
        obj = {**obj, "ignition": {**(ignition or {}), "version": tr.spec.ign_version}}
    elif version != tr.spec.ign_version:
        tr.report.warning(WARN_MERGE_UNKNOWN_VERSION, (*path, "version"))
        return
    # Butane merges Ignition's report as it is: its paths are the inline config's own, placed
    # against the Butane document.
    for e in check_dict(obj, tr.safety):
        where = tuple(e.path or ())
        if e.is_error:
            tr.report.error(e.message, where)
        else:
            tr.report.warning(e.message, where)


# Semantic versions as github.com/coreos/go-semver parses them.
_SEMVER = r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
ERR_INVALID_CONFIG_VERSION = "invalid config version (couldn't parse)"


def decimal_mode_suspicious(mode: int, directory: bool) -> bool:
    """A mode written in decimal by mistake (``644``): odd as it is, typical read as octal."""
    if not 0 <= mode <= 7777:
        return False  # (no decimal spelling of an octal mode)
    key = mode if directory else -1 - mode
    got = _suspicious.get(key)
    if got is None:
        corrected = _decimal_to_octal(mode)
        if corrected is None:
            return False
        got = not _typical_mode(mode, directory) and _typical_mode(corrected, directory)
        _suspicious[key] = got  # at most 2 * 7,778 of them (0 to 7777, as files or directories)
    return got


_suspicious: dict[int, bool] = {}  # (directory ? mode : -1 - mode) -> decimal_mode_suspicious


def _decimal_to_octal(mode: int) -> int | None:
    if mode < 0 or mode > 7777:
        return None
    ret = 0
    for divisor in (1000, 100, 10, 1):
        digit = (mode // divisor) % 10
        if digit > 7:
            return None
        ret = (ret << 3) | digit
    return ret


def _typical_mode(mode: int, directory: bool) -> bool:
    if mode == 0:
        return True
    had_r = had_w = had_x = False
    for perm in (mode & 0o7, (mode >> 3) & 0o7, (mode >> 6) & 0o7):
        r, w, x = bool(perm & 4), bool(perm & 2), bool(perm & 1)
        # A more specific class has every bit of the less specific ones (r--rw---- is odd).
        if (not r and had_r) or (not w and had_w) or (not x and had_x):
            return False
        if x and had_r and not had_x:
            return False
        if (w or x) and not r:
            return False
        had_r, had_w, had_x = had_r or r, had_w or w, had_x or x
    if not had_r:
        return False
    if directory:
        if not had_x or mode & 0o4000:
            return False
        if mode & 0o3000 and not had_w:
            return False
    else:
        if mode & 0o6000 and (not had_x or mode & 2):
            return False
        if mode & 0o1000:
            return False
    return True
