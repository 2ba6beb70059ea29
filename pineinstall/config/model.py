"""The typed model of an Ignition config, spec 3.6.0, for the engine.

Built by :func:`from_dict` from a config that ``pineinstall.config.check`` already validated and
up-translated to the 3.6.0 shape; nothing here validates again. Conventions (docs/interfaces.md):

- field names are the snake_case of the JSON keys (``passwordHash`` -> ``password_hash``);
- a scalar field that is absent or null is ``None`` (Ignition's pointer fields: "not given" is not
  ``False``/``0``/``""``); lists are tuples and default to ``()``;
- an object field that Ignition's Go types hold by value (``storage``, ``contents``, ``user``,
  ``verification``...) is always an instance, empty when absent, so consumers need no ``None`` checks;
  object fields held by pointer (``ignition.config.replace``, ``clevis.custom``) are ``None`` when absent;
- closed enumerations are StrEnums; an empty string where Go accepts it as "unset" (compression,
  filesystem format) becomes ``None``.

The classes and their fields mirror the Ignition field table, ``pineinstall/config/fields.py``
(names and types of the 3.6.0 fields, the enum values); tests/unit/test_fields.py holds them equal.

Importing ``dataclasses`` costs ~40 ms, which is why this module is never on the ``validate`` path.
"""

# The helpers _obj/_list/_ptr/_enum return dataclasses.field(...) objects, not shared defaults.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .fields import camel


class Compression(StrEnum):
    GZIP = "gzip"


class HashFunction(StrEnum):
    SHA256 = "sha256"
    SHA512 = "sha512"


class FilesystemFormat(StrEnum):
    EXT4 = "ext4"
    BTRFS = "btrfs"
    XFS = "xfs"
    VFAT = "vfat"
    SWAP = "swap"
    NONE = "none"


class RaidLevel(StrEnum):
    LINEAR = "linear"
    RAID0 = "raid0"
    RAID1 = "raid1"
    RAID4 = "raid4"
    RAID5 = "raid5"
    RAID6 = "raid6"
    RAID10 = "raid10"


# --- field helpers: metadata tells from_dict how to convert a JSON value -------------------------


def _obj(cls: type) -> Any:
    """An object held by value: always present (empty instance when absent)."""
    return field(default_factory=cls, metadata={"obj": cls})


def _ptr(cls: type) -> Any:
    """An object held by pointer: None when absent."""
    return field(default=None, metadata={"ptr": cls})


def _list(cls: type | None = None) -> Any:
    """A list (of objects of ``cls``, or of scalars when ``cls`` is None) as a tuple."""
    return field(default=(), metadata={"list": cls})


def _enum(cls: type[StrEnum]) -> Any:
    return field(default=None, metadata={"enum": cls})


# --- resources -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HTTPHeader:
    name: str | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    hash: str | None = None  # "sha512-<hex>"

    @property
    def hash_function(self) -> HashFunction | None:
        return HashFunction(self.hash.split("-", 1)[0]) if self.hash else None

    @property
    def hash_sum(self) -> str | None:
        return self.hash.split("-", 1)[1].lower() if self.hash else None


@dataclass(frozen=True, slots=True)
class Resource:
    """A fetchable resource: ``contents``, ``append`` fragments, config references, CA bundles."""

    source: str | None = None
    compression: Compression | None = _enum(Compression)
    http_headers: tuple[HTTPHeader, ...] = _list(HTTPHeader)
    verification: Verification = _obj(Verification)


# --- ignition --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnitionConfig:
    merge: tuple[Resource, ...] = _list(Resource)
    replace: Resource | None = _ptr(Resource)


@dataclass(frozen=True, slots=True)
class Timeouts:
    http_response_headers: int | None = None
    http_total: int | None = None


@dataclass(frozen=True, slots=True)
class TLS:
    certificate_authorities: tuple[Resource, ...] = _list(Resource)


@dataclass(frozen=True, slots=True)
class Security:
    tls: TLS = _obj(TLS)


@dataclass(frozen=True, slots=True)
class Proxy:
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: tuple[str, ...] = _list()


@dataclass(frozen=True, slots=True)
class Ignition:
    version: str | None = None
    config: IgnitionConfig = _obj(IgnitionConfig)
    timeouts: Timeouts = _obj(Timeouts)
    security: Security = _obj(Security)
    proxy: Proxy = _obj(Proxy)


# --- kernel arguments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelArguments:
    should_exist: tuple[str, ...] = _list()
    should_not_exist: tuple[str, ...] = _list()


# --- passwd ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PasswdUser:
    name: str
    password_hash: str | None = None
    ssh_authorized_keys: tuple[str, ...] = _list()
    uid: int | None = None
    gecos: str | None = None
    home_dir: str | None = None
    no_create_home: bool | None = None
    primary_group: str | None = None
    groups: tuple[str, ...] = _list()
    no_user_group: bool | None = None
    no_log_init: bool | None = None
    shell: str | None = None
    should_exist: bool | None = None
    system: bool | None = None


@dataclass(frozen=True, slots=True)
class PasswdGroup:
    name: str
    gid: int | None = None
    password_hash: str | None = None
    should_exist: bool | None = None
    system: bool | None = None


@dataclass(frozen=True, slots=True)
class Passwd:
    users: tuple[PasswdUser, ...] = _list(PasswdUser)
    groups: tuple[PasswdGroup, ...] = _list(PasswdGroup)


# --- storage ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    label: str | None = None
    number: int = 0
    size_mib: int | None = None
    start_mib: int | None = None
    type_guid: str | None = None
    guid: str | None = None
    wipe_partition_entry: bool | None = None
    should_exist: bool | None = None
    resize: bool | None = None


@dataclass(frozen=True, slots=True)
class Disk:
    device: str
    wipe_table: bool | None = None
    partitions: tuple[Partition, ...] = _list(Partition)


@dataclass(frozen=True, slots=True)
class Raid:
    name: str
    level: RaidLevel | None = _enum(RaidLevel)
    devices: tuple[str, ...] = _list()
    spares: int | None = None
    options: tuple[str, ...] = _list()


@dataclass(frozen=True, slots=True)
class Filesystem:
    device: str
    format: FilesystemFormat | None = _enum(FilesystemFormat)
    path: str | None = None
    wipe_filesystem: bool | None = None
    label: str | None = None
    uuid: str | None = None
    options: tuple[str, ...] = _list()
    mount_options: tuple[str, ...] = _list()


@dataclass(frozen=True, slots=True)
class NodeUser:
    id: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NodeGroup:
    id: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class File:
    path: str
    overwrite: bool | None = None
    user: NodeUser = _obj(NodeUser)
    group: NodeGroup = _obj(NodeGroup)
    contents: Resource = _obj(Resource)
    append: tuple[Resource, ...] = _list(Resource)
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class Directory:
    path: str
    overwrite: bool | None = None
    user: NodeUser = _obj(NodeUser)
    group: NodeGroup = _obj(NodeGroup)
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class Link:
    path: str
    overwrite: bool | None = None
    user: NodeUser = _obj(NodeUser)
    group: NodeGroup = _obj(NodeGroup)
    target: str | None = None
    hard: bool | None = None


@dataclass(frozen=True, slots=True)
class Tang:
    url: str
    thumbprint: str | None = None
    advertisement: str | None = None


@dataclass(frozen=True, slots=True)
class ClevisCustom:
    pin: str | None = None
    config: str | None = None
    needs_network: bool | None = None


@dataclass(frozen=True, slots=True)
class Clevis:
    tang: tuple[Tang, ...] = _list(Tang)
    tpm2: bool | None = None
    threshold: int | None = None
    custom: ClevisCustom | None = _ptr(ClevisCustom)


@dataclass(frozen=True, slots=True)
class Cex:
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class Luks:
    name: str
    device: str | None = None
    key_file: Resource = _obj(Resource)
    label: str | None = None
    uuid: str | None = None
    options: tuple[str, ...] = _list()
    discard: bool | None = None
    open_options: tuple[str, ...] = _list()
    wipe_volume: bool | None = None
    clevis: Clevis = _obj(Clevis)
    cex: Cex = _obj(Cex)


@dataclass(frozen=True, slots=True)
class Storage:
    disks: tuple[Disk, ...] = _list(Disk)
    raid: tuple[Raid, ...] = _list(Raid)
    filesystems: tuple[Filesystem, ...] = _list(Filesystem)
    files: tuple[File, ...] = _list(File)
    directories: tuple[Directory, ...] = _list(Directory)
    links: tuple[Link, ...] = _list(Link)
    luks: tuple[Luks, ...] = _list(Luks)


# --- systemd ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dropin:
    name: str
    contents: str | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    enabled: bool | None = None
    mask: bool | None = None
    contents: str | None = None
    dropins: tuple[Dropin, ...] = _list(Dropin)


@dataclass(frozen=True, slots=True)
class Systemd:
    units: tuple[Unit, ...] = _list(Unit)


# --- the whole config ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    ignition: Ignition = _obj(Ignition)
    kernel_arguments: KernelArguments = _obj(KernelArguments)
    passwd: Passwd = _obj(Passwd)
    storage: Storage = _obj(Storage)
    systemd: Systemd = _obj(Systemd)


# --- conversion ------------------------------------------------------------------------------------


_PLANS: dict[type, list[tuple[str, str, str, Any]]] = {}


def _plan(cls: type) -> list[tuple[str, str, str, Any]]:
    """(field name, JSON key, kind, type) per field, computed once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if "obj" in meta or "ptr" in meta:
                kind, inner = "obj", meta.get("obj") or meta["ptr"]
            elif "list" in meta:
                kind, inner = "list", meta["list"]
            elif "enum" in meta:
                kind, inner = "enum", meta["enum"]
            else:
                kind, inner = "scalar", None
            plan.append((f.name, camel(f.name), kind, inner))
        _PLANS[cls] = plan
    return plan


def _convert(cls: type, data: dict[str, Any] | None) -> Any:
    if data is None:
        return cls()
    kwargs: dict[str, Any] = {}
    for name, key, kind, inner in _plan(cls):
        value = data.get(key)
        if value is None:
            continue  # the field's default: None, (), or an empty object
        if kind == "obj":
            value = _convert(inner, value)
        elif kind == "list":
            value = tuple(_convert(inner, v) for v in value) if inner is not None else tuple(value)
        elif kind == "enum":
            if value == "":
                continue  # Go treats "" as unset for these
            value = inner(value)
        kwargs[name] = value
    return cls(**kwargs)


def from_dict(cfg36: dict[str, Any]) -> Config:
    """The typed model of a checked, 3.6.0-shaped config dict."""
    return _convert(Config, cfg36)


def to_dict(obj: Any) -> Any:
    """The JSON shape of a model object again (absent fields omitted); used for records and tests."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = to_dict(getattr(obj, f.name))
            if value is None or (isinstance(value, list | dict) and not value):
                continue
            out[camel(f.name)] = value
        return out
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, StrEnum):
        return str(obj)
    return obj
