"""Rules of ``storage.files``, ``storage.directories`` and ``storage.links`` (the filesystem nodes).

Files, directories and links share one key space (their ``path``): a path defined twice across
the three lists is a duplicate, reported on the later entry, in Ignition's field order
(directories, then files, then links).
"""

from __future__ import annotations

from collections import Counter

from ..report import Path, Report
from ._common import (
    POST_2_14_CHECKS_FROM,
    arr,
    check_path,
    clean_path,
    duplicates,
    field_key,
    is_true,
    join_path,
    nil_or_empty,
    not_empty,
    obj,
    text,
)
from .resources import check_resource
from .urls import url_error

ERR_BOTH_ID_AND_NAME = "cannot set both id and name"
ERR_ILLEGAL_MODE = "illegal file mode"
ERR_OVERWRITE_NO_SOURCE = "overwrite must be false if source is unspecified"
ERR_FILE_USED_SYMLINK = "file path includes link in config"
ERR_DIRECTORY_USED_SYMLINK = "directory path includes link in config"
ERR_LINK_USED_SYMLINK = "link path includes link in config"
ERR_LINK_TARGET_REQUIRED = "link target is required"
ERR_HARD_LINK_TO_DIRECTORY = "hard link target is a directory"
ERR_HARD_LINK_OWNER = "user/group ignored for hard link"
ERR_PATH_CONFLICTS_SYSTEMD = "path conflicts with systemd unit or dropin"
SYSTEMD_DIR = "/etc/systemd/system/"


# Setuid/setgid/sticky bits in specs that cannot express them (3.0.0-3.5.0), in the words of the
# newest Ignition (2.26) for every version (ignition-validate 2.14 said "... not supported in spec
# versions older than 3.4.0" for 3.0.0-3.3.0).
WARN_SPECIAL_BITS = (
    "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0"
)


def _check_owner(report: Report, node: dict, base: Path) -> None:
    for field in ("user", "group"):
        owner = obj(node.get(field))
        if owner.get("id") is not None and not_empty(owner.get("name")):
            report.error(ERR_BOTH_ID_AND_NAME, (*base, field))


def _check_mode(report: Report, node: dict, base: Path, version: tuple[int, int]) -> None:
    mode = node.get("mode")
    if mode is None or isinstance(mode, bool) or not isinstance(mode, int):
        return
    if mode < 0 or mode > 0o7777:
        report.error(ERR_ILLEGAL_MODE, (*base, "mode"))
    if version < (3, 6) and mode & 0o7000:
        report.warning(WARN_SPECIAL_BITS, (*base, "mode"))


def _links_above(p: str, link_paths: Counter[str], depths: list[int]) -> int:
    """How many of the links' paths ``lp`` have ``p.startswith(lp + "/")``. ``depths``: the
    numbers of "/" in the links' paths, ascending: a link path with j slashes can only be the
    part of ``p`` before its j-th slash (counting from 0), so only those prefixes are looked up."""
    count = 0
    last = p.count("/") - 1
    if last < depths[0]:  # (no link path has so few slashes: most nodes, with no split)
        return 0
    parts = p.split("/")
    for j in depths:
        if j > last:
            break
        count += link_paths.get("/".join(parts[: j + 1]), 0)
    return count


def _node_path(node: object) -> str:
    """A node's path ("" when absent or null, as Go's zero string)."""
    p = node.get("path") if type(node) is dict else None
    return p if type(p) is str else ""


def _check_links_in_paths(report: Report, storage: dict, version: tuple[int, int]) -> None:
    """Storage.Validate: nothing may live under a configured link; link targets and hard links."""
    dirs = arr(storage.get("directories"))
    files = arr(storage.get("files"))
    links = arr(storage.get("links"))
    if not links:
        return
    # Ignition compares every node with every link; a count per link path gives its findings
    # (one per link whose path + "/" starts the node's path) without the quadratic loop.
    link_paths = Counter([_node_path(link) for link in links])
    depths = sorted({lp.count("/") for lp in link_paths})
    for field, items, msg in (
        ("directories", dirs, ERR_DIRECTORY_USED_SYMLINK),
        ("files", files, ERR_FILE_USED_SYMLINK),
    ):
        for i, node in enumerate(items):
            for _ in range(_links_above(_node_path(node), link_paths, depths)):
                report.error(msg, ("storage", field, i))
    dir_paths = Counter([_node_path(d) for d in dirs])
    for i, link in enumerate(links):
        link = obj(link)
        p = text(link.get("path"))
        for _ in range(_links_above(p, link_paths, depths)):
            report.error(ERR_LINK_USED_SYMLINK, ("storage", "links", i))
        target = link.get("target")
        if version >= (3, 3) and nil_or_empty(target):
            # 3.3.0 made the target a pointer and started requiring it
            report.error(ERR_LINK_TARGET_REQUIRED, ("storage", "links", i, "target"))
            continue
        if not is_true(link.get("hard")):
            continue
        resolved = clean_path(text(target))
        if not resolved.startswith("/"):
            resolved = join_path(p, text(target))
        for _ in range(dir_paths[resolved]):
            report.error(ERR_HARD_LINK_TO_DIRECTORY, ("storage", "links", i))
        if version >= POST_2_14_CHECKS_FROM:
            for field in ("user", "group"):
                owner = obj(link.get(field))
                for key in ("id", "name"):
                    if owner.get(key) is not None:
                        report.warning(ERR_HARD_LINK_OWNER, ("storage", "links", i, field, key))


def _check_systemd_conflicts(report: Report, cfg: dict) -> None:
    """3.4.0+: a node may not sit where a configured unit or drop-in will be written."""
    storage = obj(cfg.get("storage"))
    if not any(arr(storage.get(field)) for field in ("files", "directories", "links")):
        return  # no node that could conflict: the units need not be listed
    unit_paths = set()
    for unit in arr(obj(cfg.get("systemd")).get("units")):
        unit = obj(unit)
        name = text(unit.get("name"))
        if not nil_or_empty(unit.get("contents")):
            unit_paths.add(SYSTEMD_DIR + name)
        for dropin in arr(unit.get("dropins")):
            dropin = obj(dropin)
            if not nil_or_empty(dropin.get("contents")):
                unit_paths.add(SYSTEMD_DIR + name + ".d/" + text(dropin.get("name")))
    if not unit_paths:
        return
    for field in ("files", "directories", "links"):
        for i, node in enumerate(arr(storage.get(field))):
            if text(obj(node).get("path")) in unit_paths:
                report.error(ERR_PATH_CONFLICTS_SYSTEMD, ("storage", field, i, "path"))


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    if version >= POST_2_14_CHECKS_FROM:
        _check_systemd_conflicts(report, cfg)
    storage = obj(cfg.get("storage"))
    _check_links_in_paths(report, storage, version)
    for field in ("directories", "files", "links"):
        # The common cases are tested inline (an absolute clean path, no owner, a plain mode):
        # half a million nodes cost a function call less each.
        for i, node in enumerate(arr(storage.get(field))):
            if type(node) is not dict:
                node = {}
            # (the place, ("storage", field, i), is built only for a finding)
            p = node.get("path")
            if not (type(p) is str and p[:1] == "/" and "//" not in p and "/." not in p and p[-1] != "/"):
                check_path(report, p, ("storage", field, i, "path"))
            if "user" in node or "group" in node:
                _check_owner(report, node, ("storage", field, i))
            mode = node.get("mode")
            if field != "links" and not (type(mode) is int and 0 <= mode <= 0o777):  # a link has no mode
                _check_mode(report, node, ("storage", field, i), version)
            if field == "files":
                contents = node.get("contents")
                if node.get("overwrite") is True and obj(contents).get("source") is None:
                    report.error(ERR_OVERWRITE_NO_SOURCE, ("storage", field, i, "overwrite"))
                if contents is not None:
                    # contents with a source alone (the usual file): check_resource's own checks
                    if type(contents) is dict and len(contents) == 1 and "source" in contents:
                        source = contents["source"]
                        if type(source) is str and source != "":
                            msg = url_error(source, version)
                            if msg:
                                report.error(msg, ("storage", field, i, "contents", "source"))
                    else:
                        check_resource(contents, ("storage", field, i, "contents"), version, report)
                if "append" in node:
                    for j, res in enumerate(arr(node["append"])):
                        check_resource(res, ("storage", field, i, "append", j), version, report)
    # one key space for the three lists, in Ignition's struct field order
    seen: set = set()
    for field in ("directories", "files", "links"):
        duplicates(report, arr(storage.get(field)), ("storage", field), field_key("path"), seen)
