"""The field table of Ignition config specs 3.0.0 ... 3.6.0, and the closed value lists.

One source for: the JSON Schemas (``schemas/ignition/_build.py`` reads which fields exist in which
version and their types; ``schemas/butane/`` the value lists), the typed model (``model.py``; its
fields and enums are checked against this table by tests/unit/test_fields.py), the semantic rules
(``rules/``), mdadm's level names and the translator's output side (``butane_like/fields.py``).

Pure data and two small helpers: it is imported on the ``validate`` path, which imports only json.

A field is ``(json key, type, since)``, ``since`` being the minor of the first 3.x spec that has
it. Types: ``"string"``, ``"int"``, ``"bool"``, ``("list", T)`` or the name of another object.
Objects list their fields in the order Go's encoding/json writes them: struct field order, which
for Ignition's generated types is the alphabetical order of the Go field names (the embedded node
fields of files, directories and links first).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

S, I, B = "string", "int", "bool"  # noqa: E741 - short names keep the table readable


def L(t: Any) -> tuple[str, Any]:
    return ("list", t)


_NODE = (("group", "NodeGroup", 0), ("overwrite", B, 0), ("path", S, 0), ("user", "NodeUser", 0))
_REF = (("source", S, 0), ("verification", "Verification", 0))

IGNITION: dict[str, tuple[tuple[str, Any, int], ...]] = {
    "Config": (
        ("ignition", "Ignition", 0),
        ("kernelArguments", "KernelArguments", 3),
        ("passwd", "Passwd", 0),
        ("storage", "Storage", 0),
        ("systemd", "Systemd", 0),
    ),
    "Ignition": (
        ("config", "IgnitionConfig", 0),
        ("proxy", "Proxy", 1),
        ("security", "Security", 0),
        ("timeouts", "Timeouts", 0),
        ("version", S, 0),
    ),
    "IgnitionConfig": (("merge", L("Resource"), 0), ("replace", "Resource", 0)),
    "Resource": (
        ("compression", S, 1),
        ("httpHeaders", L("HTTPHeader"), 1),
        ("source", S, 1),
        ("verification", "Verification", 1),
    ),
    "HTTPHeader": (("name", S, 1), ("value", S, 1)),
    "Verification": (("hash", S, 0),),
    "Proxy": (("httpProxy", S, 1), ("httpsProxy", S, 1), ("noProxy", L(S), 1)),
    "Security": (("tls", "TLS", 0),),
    "TLS": (("certificateAuthorities", L("Resource"), 0),),
    "Timeouts": (("httpResponseHeaders", I, 0), ("httpTotal", I, 0)),
    "KernelArguments": (("shouldExist", L(S), 3), ("shouldNotExist", L(S), 3)),
    "Passwd": (("groups", L("PasswdGroup"), 0), ("users", L("PasswdUser"), 0)),
    "PasswdGroup": (
        ("gid", I, 0),
        ("name", S, 0),
        ("passwordHash", S, 0),
        ("shouldExist", B, 2),
        ("system", B, 0),
    ),
    "PasswdUser": (
        ("gecos", S, 0),
        ("groups", L(S), 0),
        ("homeDir", S, 0),
        ("name", S, 0),
        ("noCreateHome", B, 0),
        ("noLogInit", B, 0),
        ("noUserGroup", B, 0),
        ("passwordHash", S, 0),
        ("primaryGroup", S, 0),
        ("sshAuthorizedKeys", L(S), 0),
        ("shell", S, 0),
        ("shouldExist", B, 2),
        ("system", B, 0),
        ("uid", I, 0),
    ),
    "Storage": (
        ("directories", L("Directory"), 0),
        ("disks", L("Disk"), 0),
        ("files", L("File"), 0),
        ("filesystems", L("Filesystem"), 0),
        ("links", L("Link"), 0),
        ("luks", L("Luks"), 2),
        ("raid", L("Raid"), 0),
    ),
    "NodeUser": (("id", I, 0), ("name", S, 0)),
    "NodeGroup": (("id", I, 0), ("name", S, 0)),
    "Directory": (*_NODE, ("mode", I, 0)),
    "File": (*_NODE, ("append", L("Resource"), 0), ("contents", "Resource", 0), ("mode", I, 0)),
    "Link": (*_NODE, ("hard", B, 0), ("target", S, 0)),
    "Disk": (("device", S, 0), ("partitions", L("Partition"), 0), ("wipeTable", B, 0)),
    "Partition": (
        ("guid", S, 0),
        ("label", S, 0),
        ("number", I, 0),
        ("resize", B, 2),
        ("shouldExist", B, 0),
        ("sizeMiB", I, 0),
        ("startMiB", I, 0),
        ("typeGuid", S, 0),
        ("wipePartitionEntry", B, 0),
    ),
    "Filesystem": (
        ("device", S, 0),
        ("format", S, 0),
        ("label", S, 0),
        ("mountOptions", L(S), 1),
        ("options", L(S), 0),
        ("path", S, 0),
        ("uuid", S, 0),
        ("wipeFilesystem", B, 0),
    ),
    "Luks": (
        ("cex", "Cex", 5),
        ("clevis", "Clevis", 2),
        ("device", S, 2),
        ("discard", B, 4),
        ("keyFile", "Resource", 2),
        ("label", S, 2),
        ("name", S, 2),
        ("openOptions", L(S), 4),
        ("options", L(S), 2),
        ("uuid", S, 2),
        ("wipeVolume", B, 2),
    ),
    "Cex": (("enabled", B, 5),),
    "Clevis": (("custom", "ClevisCustom", 2), ("tang", L("Tang"), 2), ("threshold", I, 2), ("tpm2", B, 2)),
    "ClevisCustom": (("config", S, 2), ("needsNetwork", B, 2), ("pin", S, 2)),
    "Tang": (("advertisement", S, 4), ("thumbprint", S, 2), ("url", S, 2)),
    "Raid": (("devices", L(S), 0), ("level", S, 0), ("name", S, 0), ("options", L(S), 0), ("spares", I, 0)),
    "Systemd": (("units", L("Unit"), 0),),
    "Unit": (
        ("contents", S, 0),
        ("dropins", L("Dropin"), 0),
        ("enabled", B, 0),
        ("mask", B, 0),
        ("name", S, 0),
    ),
    "Dropin": (("contents", S, 0), ("name", S, 0)),
    # Spec 3.0.0 only: 3.1.0 merged these three into Resource (see RESOURCE_3_0).
    "ConfigReference": _REF,
    "CaReference": _REF,
    "FileContents": (("compression", S, 0), *_REF),
}

# Objects that exist only up to a spec minor.
UNTIL = {"ConfigReference": 0, "CaReference": 0, "FileContents": 0}
# In spec 3.0.0 the Resource fields of these objects point at the older types instead.
RESOURCE_3_0 = {"IgnitionConfig": "ConfigReference", "TLS": "CaReference", "File": "FileContents"}


def fields(obj: str, minor: int) -> dict[str, Any]:
    """json key -> type of the fields that object ``obj`` has in spec 3.``minor``.0 (empty if none)."""
    if UNTIL.get(obj, minor) < minor:
        return {}
    old = RESOURCE_3_0.get(obj) if minor == 0 else None
    out: dict[str, Any] = {}
    for key, kind, since in IGNITION[obj]:
        if since <= minor:
            if old is not None:
                kind = old if kind == "Resource" else L(old) if kind == L("Resource") else kind
            out[key] = kind
    return out


NEWEST_MINOR = 6

# snake_case key (model fields, Butane's YAML) -> JSON key, where the plain rule does not give it.
JSON_KEY = {"size_mib": "sizeMiB", "start_mib": "startMiB"}


def camel(key: str) -> str:
    """The JSON key of a snake_case key: ``password_hash`` -> ``passwordHash``."""
    got = JSON_KEY.get(key)
    if got is not None:
        return got
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def snake(key: str) -> str:
    """The snake_case key of a JSON key: ``sizeMiB`` -> ``size_mib``."""
    out = []
    for ch in key.replace("MiB", "_mib"):
        out.append("_" + ch.lower() if ch.isupper() else ch)
    return "".join(out)


def newest(obj: str) -> dict[str, Any]:
    """The fields of ``obj`` in the newest spec (3.6.0), in Go's output order."""
    return fields(obj, NEWEST_MINOR)


# --- closed value lists ---------------------------------------------------------------------------

# RAID level spellings storage.raid[].level accepts -> the level mdadm gets. Ignition's spec names
# linear and raid0..raid10; the numeric and alias spellings mdadm itself accepts are taken too.
RAID_LEVELS = {
    "linear": "linear",
    "raid0": "raid0",
    "0": "raid0",
    "stripe": "raid0",
    "raid1": "raid1",
    "1": "raid1",
    "mirror": "raid1",
    "raid4": "raid4",
    "4": "raid4",
    "raid5": "raid5",
    "5": "raid5",
    "raid6": "raid6",
    "6": "raid6",
    "raid10": "raid10",
    "10": "raid10",
}
# Spellings of the levels that have no spare devices.
RAID_LEVELS_NO_SPARES = frozenset(k for k, level in RAID_LEVELS.items() if level in ("linear", "raid0"))

# storage.filesystems[].format -> the spec minor that added it ("" means unset and is always taken).
FILESYSTEM_FORMATS = {"ext4": 0, "btrfs": 0, "xfs": 0, "vfat": 0, "swap": 0, "none": 3}


def filesystem_formats(minor: int) -> list[str]:
    return [name for name, since in FILESYSTEM_FORMATS.items() if since <= minor]


# Hash functions of verification.hash -> (hex digits of the sum, spec minor that added it).
HASH_FUNCTIONS = {"sha512": (128, 0), "sha256": (64, 1)}

# Compression of fetched resources ("" and null mean none).
COMPRESSIONS = ("gzip",)

# URL schemes of resource sources -> the spec minor that added them, in the spec documents' order.
URL_SCHEMES = {"http": 0, "https": 0, "tftp": 0, "s3": 0, "arn": 4, "gs": 2, "data": 0}

# systemd unit name suffixes Ignition accepts (the unit types of systemd.unit(5) at the time).
UNIT_EXTENSIONS = (
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
)
