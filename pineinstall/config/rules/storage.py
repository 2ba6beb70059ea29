"""Rules of ``storage.disks`` (and their partitions), ``storage.filesystems``, ``storage.raid``
and ``storage.luks`` (with Clevis and CEX)."""

from __future__ import annotations

import json
import re

from ..fields import RAID_LEVELS, RAID_LEVELS_NO_SPARES, filesystem_formats
from ..report import Path, Report
from ._common import (
    POST_2_14_CHECKS_FROM,
    arr,
    check_path,
    check_path_nil_ok,
    duplicates,
    field_key,
    is_false,
    is_true,
    nil_or_empty,
    not_empty,
    obj,
    opt_str,
    str_key,
    text,
)
from .resources import check_resource
from .urls import url_error

ERR_DISK_DEVICE_REQUIRED = "disk device is required"
ERR_PARTITION_NUMBERS_COLLIDE = "partition numbers collide"
ERR_PARTITIONS_OVERLAP = "partitions overlap"
ERR_ZEROES_WITH_SHOULD_NOT_EXIST = (
    "shouldExist is false for a partition and other partition(s) has start or size 0"
)
ERR_DUPLICATE_LABELS = "cannot use the same partition label twice"
ERR_SHOULD_NOT_EXIST_WITH_OTHERS = "shouldExist specified false with other options also specified"
ERR_NEED_LABEL_OR_NUMBER = "a partition number >= 1 or a label must be specified"
ERR_LABEL_TOO_LONG = "partition labels may not exceed 36 characters"
ERR_LABEL_CONTAINS_COLON = "partition label will be truncated to text before the colon"
ERR_GUID = 'doesn\'t match the form "01234567-89AB-CDEF-EDCB-A98765432101"'
ERR_FS_INVALID_FORMAT = "invalid filesystem format"
ERR_LABEL_NEEDS_FORMAT = "filesystem must specify format if label is specified"
ERR_FORMAT_NIL_WITH_OTHERS = (
    "format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified"
)
ERR_PARTITIONS_OVERWRITTEN = "filesystem overwrites partitioned device"
ERR_FILESYSTEM_IMPLICIT_WIPE = "device matches disk with wipeTable enabled; filesystem will be wiped"
ERR_RAID_LEVEL_REQUIRED = "raid level is required"
ERR_SPARES_UNSUPPORTED = "spares unsupported for linear and raid0 arrays"
ERR_UNRECOGNIZED_RAID_LEVEL = "unrecognized raid level"
ERR_RAID_DEVICES_REQUIRED = "raid devices required"
ERR_LUKS_NAME_SLASH = "device names cannot contain slashes"
ERR_LUKS_LABEL_TOO_LONG = "luks device labels cannot be longer than 47 characters"
ERR_INVALID_LUKS_KEY_FILE = "invalid key-file source"
ERR_CLEVIS_CUSTOM_WITH_OTHERS = "cannot use custom clevis config with tpm2, tang, or threshold"
ERR_CLEVIS_PIN_REQUIRED = "missing required custom clevis pin"
ERR_UNKNOWN_CLEVIS_PIN = "unsupported clevis pin"
ERR_CLEVIS_CONFIG_REQUIRED = "missing required custom clevis config"
ERR_TANG_THUMBPRINT_REQUIRED = "thumbprint is required"
ERR_TANG_ADVERTISEMENT = "advertisement is not valid JSON"
# CEX (3.5.0+): these two texts could not be checked against a binary here (see the report).
ERR_CEX_WITH_CLEVIS = "cannot use cex with clevis"
ERR_CEX_WITH_KEY_FILE = "cannot use key file with cex"

_GUID = re.compile(r"^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\Z")
_LABEL_LIMITS = {"ext4": 16, "btrfs": 256, "xfs": 12, "swap": 15, "vfat": 11}


def _num(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- disks and partitions ---


def _partition_key(p: dict) -> str:
    if _num(p.get("number")) != 0:
        return f"number:{_num(p.get('number'))}"
    if p.get("label") is not None:
        return f"label:{p.get('label')}"
    return ""


def _check_partition(report: Report, p: dict, base: Path) -> None:
    if is_false(p.get("shouldExist")) and (
        p.get("label") is not None
        or not_empty(p.get("typeGuid"))
        or not_empty(p.get("guid"))
        or p.get("startMiB") is not None
        or p.get("sizeMiB") is not None
    ):
        report.error(ERR_SHOULD_NOT_EXIST_WITH_OTHERS, base)
    if _num(p.get("number")) == 0 and p.get("label") is None:
        report.error(ERR_NEED_LABEL_OR_NUMBER, base)
    label = p.get("label")
    if isinstance(label, str):
        # Ignition counts bytes of UTF-8 (Go's len), not characters: checked against the binary
        if len(label.encode()) > 36:
            report.error(ERR_LABEL_TOO_LONG, (*base, "label"))
        elif ":" in label:
            report.error(ERR_LABEL_CONTAINS_COLON, (*base, "label"))
    for field in ("guid", "typeGuid"):
        value = p.get(field)
        if isinstance(value, str) and not _GUID.match(value):
            report.error(ERR_GUID, (*base, field))


def _overlap_index(parts: list[dict]) -> int | None:
    """Index of the first partition found overlapping another one with explicit geometry."""

    def sized(p: dict) -> bool:
        return p.get("startMiB") is not None and p.get("sizeMiB") is not None and _num(p["startMiB"]) != 0

    def end(p: dict) -> int:
        size = _num(p["sizeMiB"])
        return _num(p["startMiB"]) if size == 0 else _num(p["startMiB"]) + size - 1

    for i, p in enumerate(parts):
        if not sized(p):
            continue
        for j, o in enumerate(parts):
            if i == j or not sized(o):
                continue
            ps, pe, os_, oe = _num(p["startMiB"]), end(p), _num(o["startMiB"]), end(o)
            if os_ <= ps <= oe or os_ <= pe <= oe or (ps < os_ and pe > oe):
                return j
    return None


def _check_disk(report: Report, disk: dict, base: Path) -> None:
    device = text(disk.get("device"))
    parts = [obj(p) for p in arr(disk.get("partitions"))]
    if device == "":
        report.error(ERR_DISK_DEVICE_REQUIRED, (*base, "device"))
    else:
        check_path(report, device, (*base, "device"))
        # numbers: the second partition of a colliding number. With several colliding numbers
        # ignition-validate picks one at random (Go map order); we report the earliest.
        seen_numbers: dict[int, int] = {}
        collision = None
        for i, p in enumerate(parts):
            n = _num(p.get("number"))
            if n == 0:
                continue
            if n in seen_numbers:
                collision = i if collision is None else min(collision, i)
            seen_numbers[n] = i
        if collision is not None:
            report.error(ERR_PARTITION_NUMBERS_COLLIDE, (*base, "partitions", collision))
        overlap = _overlap_index(parts)
        if overlap is not None:
            report.error(ERR_PARTITIONS_OVERLAP, (*base, "partitions", overlap))
        if any(is_false(p.get("shouldExist")) for p in parts) and any(
            _num(p.get("number")) == 0 for p in parts
        ):
            report.error(ERR_ZEROES_WITH_SHOULD_NOT_EXIST, (*base, "partitions"))
        labels: set[str] = set()
        for i, p in enumerate(parts):
            label = p.get("label")
            if isinstance(label, str):
                if label in labels:
                    report.error(ERR_DUPLICATE_LABELS, (*base, "partitions", i))
                    break
                labels.add(label)
    for i, p in enumerate(parts):
        _check_partition(report, p, (*base, "partitions", i))
    duplicates(report, parts, (*base, "partitions"), _partition_key)


# --- filesystems ---


def _check_filesystem(report: Report, fs: dict, base: Path, version: tuple[int, int]) -> None:
    check_path_nil_ok(report, fs.get("path"), (*base, "path"))
    check_path(report, fs.get("device"), (*base, "device"))
    fmt = opt_str(fs.get("format"))
    if nil_or_empty(fmt):
        if (
            not_empty(fs.get("path"))
            or not_empty(fs.get("label"))
            or not_empty(fs.get("uuid"))
            or is_true(fs.get("wipeFilesystem"))
            or (version >= (3, 1) and arr(fs.get("mountOptions")))
            or arr(fs.get("options"))
        ):
            report.error(ERR_FORMAT_NIL_WITH_OTHERS, (*base, "format"))
    elif fmt not in filesystem_formats(version[1]):
        report.error(ERR_FS_INVALID_FORMAT, (*base, "format"))
    label = opt_str(fs.get("label"))
    if not nil_or_empty(label):
        if nil_or_empty(fmt):
            report.error(ERR_LABEL_NEEDS_FORMAT, (*base, "label"))
        else:
            limit = _LABEL_LIMITS.get(fmt)
            if limit is not None and len(label.encode()) > limit:
                report.error(
                    f"filesystem labels cannot be longer than {limit} characters when using {fmt}",
                    (*base, "label"),
                )


def _check_filesystems_vs_disks(report: Report, storage: dict) -> None:
    """3.4.0+: warn when a filesystem is made on a whole disk that is also partitioned or wiped."""
    disks: dict[str, dict] = {}
    for d in arr(storage.get("disks")):
        disks[text(obj(d).get("device"))] = obj(d)
    for i, fs in enumerate(arr(storage.get("filesystems"))):
        fs = obj(fs)
        disk = disks.get(text(fs.get("device")))
        if disk is None:
            continue
        where = ("storage", "filesystems", i, "device")
        if arr(disk.get("partitions")):
            report.warning(ERR_PARTITIONS_OVERWRITTEN, where)
        elif not is_true(fs.get("wipeFilesystem")) and is_true(disk.get("wipeTable")):
            report.warning(ERR_FILESYSTEM_IMPLICIT_WIPE, where)


# --- raid ---


def _check_raid(report: Report, raid: dict, base: Path, version: tuple[int, int]) -> None:
    level = raid.get("level")
    if version >= (3, 3) and nil_or_empty(level):
        report.error(ERR_RAID_LEVEL_REQUIRED, (*base, "level"))
    elif text(level) in RAID_LEVELS_NO_SPARES:
        if _num(raid.get("spares")) != 0:
            report.error(ERR_SPARES_UNSUPPORTED, (*base, "level"))
    elif text(level) not in RAID_LEVELS:
        report.error(ERR_UNRECOGNIZED_RAID_LEVEL, (*base, "level"))
    devices = arr(raid.get("devices"))
    if not devices:
        report.error(ERR_RAID_DEVICES_REQUIRED, (*base, "devices"))
    for j, dev in enumerate(devices):
        check_path(report, dev, (*base, "devices", j))
    duplicates(report, devices, (*base, "devices"), str_key)


# --- luks ---


def _check_clevis(report: Report, clevis: dict, base: Path, version: tuple[int, int]) -> None:
    custom_raw = clevis.get("custom")
    custom = obj(custom_raw)
    others = (
        bool(arr(clevis.get("tang"))) or is_true(clevis.get("tpm2")) or _num(clevis.get("threshold")) != 0
    )
    pin: object  # a string before 3.3.0, any JSON value (checked here) after
    config: object
    if version < (3, 3):
        # 3.2.0: custom was a pointer to a struct of plain strings
        if custom_raw is not None and others:
            report.error(ERR_CLEVIS_CUSTOM_WITH_OTHERS, base)
        pin, config = text(custom.get("pin")), text(custom.get("config"))
        if pin != "" or config != "":
            if pin not in ("tpm2", "tang", "sss"):
                report.error(ERR_UNKNOWN_CLEVIS_PIN, (*base, "custom", "pin"))
            if config == "":
                report.error(ERR_CLEVIS_CONFIG_REQUIRED, (*base, "custom", "config"))
    else:
        pin, config = custom.get("pin"), custom.get("config")
        if not_empty(pin) and others:
            report.error(ERR_CLEVIS_CUSTOM_WITH_OTHERS, base)
        if not (nil_or_empty(pin) and nil_or_empty(config) and not is_true(custom.get("needsNetwork"))):
            if nil_or_empty(pin):
                report.error(ERR_CLEVIS_PIN_REQUIRED, (*base, "custom", "pin"))
            elif version < (3, 6) and pin not in ("tpm2", "tang", "sss"):
                # 3.6.0 stopped checking custom pin names (Ignition 2.25)
                report.error(ERR_UNKNOWN_CLEVIS_PIN, (*base, "custom", "pin"))
            if nil_or_empty(config):
                report.error(ERR_CLEVIS_CONFIG_REQUIRED, (*base, "custom", "config"))
    tangs = arr(clevis.get("tang"))
    for j, tang in enumerate(tangs):
        tang = obj(tang)
        tbase = (*base, "tang", j)
        msg = url_error(text(tang.get("url")), version)
        if msg:
            report.error(msg, (*tbase, "url"))
        if nil_or_empty(tang.get("thumbprint")):
            report.error(ERR_TANG_THUMBPRINT_REQUIRED, (*tbase, "thumbprint"))
        adv = opt_str(tang.get("advertisement"))
        if version >= (3, 4) and not nil_or_empty(adv):
            try:
                json.loads(adv)
            except ValueError:
                report.error(ERR_TANG_ADVERTISEMENT, (*tbase, "advertisement"))
    duplicates(report, tangs, (*base, "tang"), field_key("url"))


def _clevis_present(clevis: dict) -> bool:
    return (
        not_empty(obj(clevis.get("custom")).get("pin"))
        or bool(arr(clevis.get("tang")))
        or is_true(clevis.get("tpm2"))
        or _num(clevis.get("threshold")) != 0
    )


def _check_luks(report: Report, luks: dict, base: Path, version: tuple[int, int]) -> None:
    if "/" in text(luks.get("name")):
        report.error(ERR_LUKS_NAME_SLASH, (*base, "name"))
    label = opt_str(luks.get("label"))
    if not nil_or_empty(label) and len(label.encode()) > 47:
        report.error(ERR_LUKS_LABEL_TOO_LONG, (*base, "label"))
    device = luks.get("device")
    if nil_or_empty(device):
        report.error(ERR_DISK_DEVICE_REQUIRED, (*base, "device"))
    else:
        check_path(report, device, (*base, "device"))
    clevis = obj(luks.get("clevis"))
    _check_clevis(report, clevis, (*base, "clevis"), version)
    key_file = obj(luks.get("keyFile"))
    source = key_file.get("source")
    if not nil_or_empty(source) and url_error(source, version):
        # Ignition attaches this one to a "keys" field that does not exist in the JSON
        report.error(ERR_INVALID_LUKS_KEY_FILE, (*base, "keys"))
    if luks.get("keyFile") is not None:
        check_resource(key_file, (*base, "keyFile"), version, report)
    if version >= (3, 5) and is_true(obj(luks.get("cex")).get("enabled")):
        if _clevis_present(clevis):
            report.error(ERR_CEX_WITH_CLEVIS, (*base, "cex"))
        if not nil_or_empty(source):
            report.error(ERR_CEX_WITH_KEY_FILE, (*base, "cex"))


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    storage = obj(cfg.get("storage"))
    if version >= POST_2_14_CHECKS_FROM:
        _check_filesystems_vs_disks(report, storage)
    disks = arr(storage.get("disks"))
    for i, disk in enumerate(disks):
        _check_disk(report, obj(disk), ("storage", "disks", i))
    filesystems = arr(storage.get("filesystems"))
    for i, fs in enumerate(filesystems):
        _check_filesystem(report, obj(fs), ("storage", "filesystems", i), version)
    raids = arr(storage.get("raid"))
    for i, raid in enumerate(raids):
        _check_raid(report, obj(raid), ("storage", "raid", i), version)
    luks_list = arr(storage.get("luks")) if version >= (3, 2) else []  # LUKS arrived with 3.2.0
    for i, luks in enumerate(luks_list):
        _check_luks(report, obj(luks), ("storage", "luks", i), version)
    duplicates(report, disks, ("storage", "disks"), field_key("device"))
    duplicates(report, filesystems, ("storage", "filesystems"), field_key("device"))
    duplicates(report, luks_list, ("storage", "luks"), field_key("name"))
    duplicates(report, raids, ("storage", "raid"), field_key("name"))
