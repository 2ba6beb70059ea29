"""What each variant/version accepts (YAML side) and how Ignition orders its JSON keys (output side).

Data only, so that other tools (the JSON Schemas of ``schemas/butane/``, editors, tests) can read
it: ``accepted(variant, version)`` returns the YAML field tree of one variant/version, and
``OUTPUT_ORDER`` the key order of every Ignition type as Go's encoding/json writes it (struct field
order, which for Ignition's generated types is the alphabetical order of the Go field names),
derived from the Ignition field table ``pineinstall/config/fields.py``.

A field is ``(yaml_key, type, since)``; ``since`` is the *level* that introduced it:

- base levels 1..7 follow Butane's ``base/v0_N`` packages (Ignition 3.0 .. 3.6 features);
- ``("fcos", N)`` fields belong to the fcos-style top level (``boot_device``, ``grub``) and exist
  from fcos 1.N on (the ``pine`` variant counts as fcos 1.6);
- ``("pine", 1)`` fields exist only in the ``pine`` variant.

Fields Butane shares with Ignition take their type and level from the Ignition field table; only
Butane's own fields (sugar such as ``inline``/``local``/``trees``, the variant extras) are
written out here.

Types: ``"string"``, ``"int"``, ``"bool"``, ``("list", T)`` or the name of an object in ``OBJECTS``.
"""

from __future__ import annotations

from pineinstall.config import fields as ignition_fields
from pineinstall.config.fields import JSON_KEY as JSON_KEY
from pineinstall.config.fields import B, I, L, S
from pineinstall.config.fields import camel as camel
from pineinstall.config.fields import snake as snake

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

# variant -> version -> (Ignition version, base level, fcos-equivalent level or 0, Go package)
VARIANTS: dict[str, dict[str, tuple[str, int, int, str]]] = {
    "fcos": {
        "1.0.0": ("3.0.0", 1, 0, "v1_0"),
        "1.1.0": ("3.1.0", 2, 1, "v1_1"),
        "1.2.0": ("3.2.0", 3, 2, "v1_2"),
        "1.3.0": ("3.2.0", 3, 3, "v1_3"),
        "1.4.0": ("3.3.0", 4, 4, "v1_4"),
        "1.5.0": ("3.4.0", 5, 5, "v1_5"),
        "1.6.0": ("3.5.0", 6, 6, "v1_6"),
        "1.7.0": ("3.6.0", 7, 7, "v1_7"),
        "1.8.0-experimental": ("3.7.0-experimental", 8, 8, "v1_8_exp"),
    },
    "flatcar": {
        "1.0.0": ("3.3.0", 4, 0, "v1_0"),
        "1.1.0": ("3.4.0", 5, 0, "v1_1"),
        "1.2.0-experimental": ("3.7.0-experimental", 8, 0, "v1_2_exp"),
    },
    "pine": {
        "1.0.0": ("3.5.0", 6, 6, "v1_0"),
    },
}


# Objects: name -> (Go type name, package kind "base" or "variant", fields). A field given by its
# key alone is one of Ignition's: its type and level come from the Ignition field table (level =
# spec minor + 1); Butane's own fields (sugar, variant extras) are written (key, type, since).
_OBJECTS: dict[str, tuple[str, str, list[Any]]] = {
    "Config": (
        "Config",
        "variant",
        [
            ("variant", S, 1),
            ("version", S, 1),
            "ignition",
            "kernel_arguments",
            "passwd",
            "storage",
            "systemd",
            ("boot_device", "BootDevice", ("fcos", 3)),
            ("grub", "Grub", ("fcos", 5)),
            ("openrc", "Openrc", ("pine", 1)),
            ("network", "Network", ("pine", 1)),
        ],
    ),
    "Ignition": ("Ignition", "base", ["config", "proxy", "security", "timeouts"]),
    "IgnitionConfig": ("IgnitionConfig", "base", ["merge", "replace"]),
    "ConfigResource": (
        "Resource",
        "base",
        ["compression", "http_headers", ("inline", S, 2), ("local", S, 2), "source", "verification"],
    ),
    "Resource": (
        "Resource",
        "base",
        ["compression", "http_headers", ("inline", S, 1), ("local", S, 2), "source", "verification"],
    ),
    "HTTPHeader": ("HTTPHeader", "base", ["name", "value"]),
    "Verification": ("Verification", "base", ["hash"]),
    "Proxy": ("Proxy", "base", ["http_proxy", "https_proxy", "no_proxy"]),
    "Security": ("Security", "base", ["tls"]),
    "TLS": ("TLS", "base", ["certificate_authorities"]),
    "Timeouts": ("Timeouts", "base", ["http_response_headers", "http_total"]),
    "KernelArguments": ("KernelArguments", "base", ["should_exist", "should_not_exist"]),
    "Passwd": ("Passwd", "base", ["users", "groups"]),
    "PasswdUser": (
        "PasswdUser",
        "base",
        [
            "name",
            "password_hash",
            "ssh_authorized_keys",
            ("ssh_authorized_keys_local", L(S), 5),
            "uid",
            "gecos",
            "home_dir",
            "no_create_home",
            "primary_group",
            "groups",
            "no_user_group",
            "no_log_init",
            "shell",
            "should_exist",
            "system",
        ],
    ),
    "PasswdGroup": ("PasswdGroup", "base", ["name", "gid", "password_hash", "should_exist", "system"]),
    "Storage": (
        "Storage",
        "base",
        ["directories", "disks", "files", "filesystems", "links", "luks", "raid", ("trees", L("Tree"), 2)],
    ),
    "NodeUser": ("NodeUser", "base", ["id", "name"]),
    "NodeGroup": ("NodeGroup", "base", ["id", "name"]),
    "Directory": ("Directory", "base", ["group", "overwrite", "path", "user", "mode"]),
    "File": ("File", "base", ["group", "overwrite", "path", "user", "append", "contents", "mode"]),
    "Link": ("Link", "base", ["group", "overwrite", "path", "user", "hard", "target"]),
    "Disk": ("Disk", "base", ["device", "partitions", "wipe_table"]),
    "Partition": (
        "Partition",
        "base",
        [
            "guid",
            "label",
            "number",
            "resize",
            "should_exist",
            "size_mib",
            "start_mib",
            "type_guid",
            "wipe_partition_entry",
        ],
    ),
    "Filesystem": (
        "Filesystem",
        "base",
        [
            "device",
            "format",
            "label",
            "mount_options",
            "options",
            "path",
            "uuid",
            "wipe_filesystem",
            ("with_mount_unit", B, 2),
        ],
    ),
    "Luks": (
        "Luks",
        "base",
        [
            "cex",
            "clevis",
            "device",
            "discard",
            "key_file",
            "label",
            "name",
            "open_options",
            "options",
            "uuid",
            "wipe_volume",
        ],
    ),
    "Cex": ("Cex", "base", ["enabled"]),
    "Clevis": ("Clevis", "base", ["custom", "tang", "threshold", "tpm2"]),
    "ClevisCustom": ("ClevisCustom", "base", ["config", "needs_network", "pin"]),
    "Tang": ("Tang", "base", ["advertisement", "thumbprint", "url"]),
    "Raid": ("Raid", "base", ["devices", "level", "name", "options", "spares"]),
    "Tree": (
        "Tree",
        "base",
        [
            ("group", "NodeGroup", 7),
            ("local", S, 2),
            ("path", S, 2),
            ("user", "NodeUser", 7),
            ("file_mode", I, 7),
            ("dir_mode", I, 7),
        ],
    ),
    "Systemd": ("Systemd", "base", ["units", ("quadlets", L("Quadlet"), 8)]),
    "Quadlet": (
        "Quadlet",
        "base",
        [
            ("contents", S, 8),
            ("contents_local", S, 8),
            ("name", S, 8),
            ("rootful", B, 8),
            ("dropins", L("Dropin"), 8),
        ],
    ),
    "Unit": ("Unit", "base", ["contents", ("contents_local", S, 5), "dropins", "enabled", "mask", "name"]),
    "Dropin": ("Dropin", "base", ["contents", ("contents_local", S, 5), "name"]),
    # fcos-style sugar
    "BootDevice": (
        "BootDevice",
        "variant",
        [
            ("layout", S, ("fcos", 3)),
            ("luks", "BootDeviceLuks", ("fcos", 3)),
            ("mirror", "BootDeviceMirror", ("fcos", 3)),
        ],
    ),
    "BootDeviceLuks": (
        "BootDeviceLuks",
        "variant",
        [
            ("cex", "Cex", ("fcos", 6)),
            ("device", S, ("fcos", 6)),
            ("discard", B, ("fcos", 5)),
            ("tang", L("Tang"), ("fcos", 3)),
            ("threshold", I, ("fcos", 3)),
            ("tpm2", B, ("fcos", 3)),
        ],
    ),
    "BootDeviceMirror": ("BootDeviceMirror", "variant", [("devices", L(S), ("fcos", 3))]),
    "Grub": ("Grub", "variant", [("users", L("GrubUser"), ("fcos", 5))]),
    "GrubUser": ("GrubUser", "variant", [("name", S, ("fcos", 5)), ("password_hash", S, ("fcos", 5))]),
    # pine
    "Openrc": ("Openrc", "variant", [("services", L("OpenrcService"), ("pine", 1))]),
    "OpenrcService": (
        "OpenrcService",
        "variant",
        [
            ("name", S, ("pine", 1)),
            ("contents", S, ("pine", 1)),
            ("contents_local", S, ("pine", 1)),
            ("enabled", B, ("pine", 1)),
            ("runlevel", S, ("pine", 1)),
        ],
    ),
    "Network": (
        "Network",
        "variant",
        [
            ("hostname", S, ("pine", 1)),
            ("interfaces", L("NetworkInterface"), ("pine", 1)),
            ("dns", L(S), ("pine", 1)),
        ],
    ),
    "NetworkInterface": (
        "NetworkInterface",
        "variant",
        [
            ("name", S, ("pine", 1)),
            ("dhcp", B, ("pine", 1)),
            ("address", S, ("pine", 1)),
            ("gateway", S, ("pine", 1)),
        ],
    ),
}
# Where Ignition's Resource is Butane's ConfigResource (configs and CA bundles: other sugar).
_CONFIG_RESOURCE = {"IgnitionConfig", "TLS"}
# The spec 3.0.0 types that the Resource flavours replaced (their fields are as old as 3.0.0).
_IN_3_0 = {"Resource": "FileContents", "ConfigResource": "ConfigReference"}


# Ignition's fields by object and by key folded (lower case, no underscores: size_mib ~ sizeMiB);
# a dict lookup per field keeps this table cheap to build on pine-transpile's start-up path.
_IGNITION = {go: {k.lower(): (t, s) for k, t, s in keys} for go, keys in ignition_fields.IGNITION.items()}


def _ignition_field(name: str, go: str, key: str) -> tuple[str, Any, int]:
    folded = key.replace("_", "")
    typ, since = _IGNITION[go][folded]
    old = _IN_3_0.get(name)
    if old is not None and folded in _IGNITION[old]:
        since = 0
    if name in _CONFIG_RESOURCE:
        typ = "ConfigResource" if typ == "Resource" else L("ConfigResource") if typ == L("Resource") else typ
    return (key, typ, since + 1)


OBJECTS: dict[str, tuple[str, str, list[tuple[str, Any, Any]]]] = {
    name: (go, kind, [f if isinstance(f, tuple) else _ignition_field(name, go, f) for f in entries])
    for name, (go, kind, entries) in _OBJECTS.items()
}

# Base levels whose Go package is not plainly v0_N.
BASE_PACKAGES = {8: "v0_8_exp"}

# Boot-device layouts by fcos level.
LAYOUTS_LEGACY = ("aarch64", "ppc64le", "x86_64")
LAYOUTS_S390X = ("s390x-eckd", "s390x-virt", "s390x-zfcp")


class Spec:
    """One variant/version: its levels and the fields it accepts (``fields(obj)``)."""

    __slots__ = ("_cache", "_keys", "base", "fcos", "go_pkg", "ign_version", "variant", "version")

    def __init__(self, variant: str, version: str) -> None:
        self.variant = variant
        self.version = version
        self.ign_version, self.base, self.fcos, self.go_pkg = VARIANTS[variant][version]
        self._cache: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, dict[str, tuple[str, Any]]] = {}

    def allows(self, since: Any) -> bool:
        if isinstance(since, int):
            return self.base >= since
        kind, level = since
        if kind == "fcos":
            return self.fcos >= level
        return self.variant == "pine"

    def fields(self, obj: str) -> dict[str, Any]:
        """yaml key -> type, for the fields this spec accepts in object ``obj``."""
        got = self._cache.get(obj)
        if got is None:
            got = {k: t for k, t, since in OBJECTS[obj][2] if self.allows(since)}
            self._cache[obj] = got
        return got

    def keys(self, obj: str) -> dict[str, tuple[str, Any]]:
        """yaml key -> (the same key, as this table's string; its type), as ``fields``."""
        got = self._keys.get(obj)
        if got is None:
            got = self._keys[obj] = {k: (k, t) for k, t in self.fields(obj).items()}
        return got

    def go_type(self, t: Any) -> str:
        """Go's spelling of a type, as yaml.v3 prints it in its errors (``[]v0_5.PasswdUser``)."""
        if isinstance(t, tuple):
            return "[]" + self.go_type(t[1])
        if t in (S, I, B):
            return t
        go, kind, _ = OBJECTS[t]
        pkg = BASE_PACKAGES.get(self.base, f"v0_{self.base}") if kind == "base" else self.go_pkg
        return f"{pkg}.{go}"


def accepted(variant: str, version: str) -> dict[str, Any]:
    """The full accepted field tree of a variant/version, nested dicts (for schema generators)."""
    spec = Spec(variant, version)

    def tree(t: Any, depth: int = 0) -> Any:
        if isinstance(t, tuple):
            return [tree(t[1], depth + 1)]
        if t in (S, I, B):
            return t
        if depth > 12:
            return "object"
        return {k: tree(v, depth + 1) for k, v in spec.fields(t).items()}

    return tree("Config")


# Output side: Ignition JSON key order per type (Go's struct field order) and each key's type, for
# the newest spec; from the shared field table of pineinstall/config/fields.py.
OUTPUT_ORDER: dict[str, list[tuple[str, Any]]] = {
    name: [(key, typ) for key, typ, _ in keys]
    for name, keys in ignition_fields.IGNITION.items()
    if name not in ignition_fields.UNTIL
}

# Plain Go strings with omitempty: left out when "".
OMIT_EMPTY = {("Tang", "url")}
# Plain Go ints with omitempty: left out when 0 (a partition's number 0: "the next free one").
OMIT_ZERO = {("Partition", "number")}

# Fields that are plain Go strings in Ignition (no pointer, no omitempty): always written.
NON_POINTER = {
    ("Unit", "name"),
    ("Dropin", "name"),
    ("PasswdUser", "name"),
    ("PasswdGroup", "name"),
    ("HTTPHeader", "name"),
    ("Disk", "device"),
    ("Filesystem", "device"),
    ("Raid", "name"),
    ("Luks", "name"),
    ("Directory", "path"),
    ("File", "path"),
    ("Link", "path"),
    ("Ignition", "version"),
}
