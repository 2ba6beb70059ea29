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
    },
    "flatcar": {
        "1.0.0": ("3.3.0", 4, 0, "v1_0"),
        "1.1.0": ("3.4.0", 5, 0, "v1_1"),
    },
    "pine": {
        "1.0.0": ("3.5.0", 6, 6, "v1_0"),
    },
}


# Objects: name -> (Go type name, package kind "base" or "variant", fields)
_RES1 = [("source", S, 1), ("verification", "Verification", 1)]
OBJECTS: dict[str, tuple[str, str, list[tuple[str, Any, Any]]]] = {
    "Config": (
        "Config",
        "variant",
        [
            ("variant", S, 1),
            ("version", S, 1),
            ("ignition", "Ignition", 1),
            ("kernel_arguments", "KernelArguments", 4),
            ("passwd", "Passwd", 1),
            ("storage", "Storage", 1),
            ("systemd", "Systemd", 1),
            ("boot_device", "BootDevice", ("fcos", 3)),
            ("grub", "Grub", ("fcos", 5)),
            ("openrc", "Openrc", ("pine", 1)),
            ("network", "Network", ("pine", 1)),
        ],
    ),
    "Ignition": (
        "Ignition",
        "base",
        [
            ("config", "IgnitionConfig", 1),
            ("proxy", "Proxy", 2),
            ("security", "Security", 1),
            ("timeouts", "Timeouts", 1),
        ],
    ),
    "IgnitionConfig": (
        "IgnitionConfig",
        "base",
        [("merge", L("ConfigResource"), 1), ("replace", "ConfigResource", 1)],
    ),
    "ConfigResource": (
        "Resource",
        "base",
        [
            ("compression", S, 2),
            ("http_headers", L("HTTPHeader"), 2),
            ("inline", S, 2),
            ("local", S, 2),
            *_RES1,
        ],
    ),
    "Resource": (
        "Resource",
        "base",
        [
            ("compression", S, 1),
            ("http_headers", L("HTTPHeader"), 2),
            ("inline", S, 1),
            ("local", S, 2),
            *_RES1,
        ],
    ),
    "HTTPHeader": ("HTTPHeader", "base", [("name", S, 1), ("value", S, 1)]),
    "Verification": ("Verification", "base", [("hash", S, 1)]),
    "Proxy": ("Proxy", "base", [("http_proxy", S, 2), ("https_proxy", S, 2), ("no_proxy", L(S), 2)]),
    "Security": ("Security", "base", [("tls", "TLS", 1)]),
    "TLS": ("TLS", "base", [("certificate_authorities", L("ConfigResource"), 1)]),
    "Timeouts": ("Timeouts", "base", [("http_response_headers", I, 1), ("http_total", I, 1)]),
    "KernelArguments": (
        "KernelArguments",
        "base",
        [("should_exist", L(S), 4), ("should_not_exist", L(S), 4)],
    ),
    "Passwd": ("Passwd", "base", [("users", L("PasswdUser"), 1), ("groups", L("PasswdGroup"), 1)]),
    "PasswdUser": (
        "PasswdUser",
        "base",
        [
            ("name", S, 1),
            ("password_hash", S, 1),
            ("ssh_authorized_keys", L(S), 1),
            ("ssh_authorized_keys_local", L(S), 5),
            ("uid", I, 1),
            ("gecos", S, 1),
            ("home_dir", S, 1),
            ("no_create_home", B, 1),
            ("primary_group", S, 1),
            ("groups", L(S), 1),
            ("no_user_group", B, 1),
            ("no_log_init", B, 1),
            ("shell", S, 1),
            ("should_exist", B, 3),
            ("system", B, 1),
        ],
    ),
    "PasswdGroup": (
        "PasswdGroup",
        "base",
        [("name", S, 1), ("gid", I, 1), ("password_hash", S, 1), ("should_exist", B, 3), ("system", B, 1)],
    ),
    "Storage": (
        "Storage",
        "base",
        [
            ("directories", L("Directory"), 1),
            ("disks", L("Disk"), 1),
            ("files", L("File"), 1),
            ("filesystems", L("Filesystem"), 1),
            ("links", L("Link"), 1),
            ("luks", L("Luks"), 3),
            ("raid", L("Raid"), 1),
            ("trees", L("Tree"), 2),
        ],
    ),
    "NodeUser": ("NodeUser", "base", [("id", I, 1), ("name", S, 1)]),
    "NodeGroup": ("NodeGroup", "base", [("id", I, 1), ("name", S, 1)]),
    "Directory": (
        "Directory",
        "base",
        [
            ("group", "NodeGroup", 1),
            ("overwrite", B, 1),
            ("path", S, 1),
            ("user", "NodeUser", 1),
            ("mode", I, 1),
        ],
    ),
    "File": (
        "File",
        "base",
        [
            ("group", "NodeGroup", 1),
            ("overwrite", B, 1),
            ("path", S, 1),
            ("user", "NodeUser", 1),
            ("append", L("Resource"), 1),
            ("contents", "Resource", 1),
            ("mode", I, 1),
        ],
    ),
    "Link": (
        "Link",
        "base",
        [
            ("group", "NodeGroup", 1),
            ("overwrite", B, 1),
            ("path", S, 1),
            ("user", "NodeUser", 1),
            ("hard", B, 1),
            ("target", S, 1),
        ],
    ),
    "Disk": (
        "Disk",
        "base",
        [("device", S, 1), ("partitions", L("Partition"), 1), ("wipe_table", B, 1)],
    ),
    "Partition": (
        "Partition",
        "base",
        [
            ("guid", S, 1),
            ("label", S, 1),
            ("number", I, 1),
            ("resize", B, 3),
            ("should_exist", B, 1),
            ("size_mib", I, 1),
            ("start_mib", I, 1),
            ("type_guid", S, 1),
            ("wipe_partition_entry", B, 1),
        ],
    ),
    "Filesystem": (
        "Filesystem",
        "base",
        [
            ("device", S, 1),
            ("format", S, 1),
            ("label", S, 1),
            ("mount_options", L(S), 2),
            ("options", L(S), 1),
            ("path", S, 1),
            ("uuid", S, 1),
            ("wipe_filesystem", B, 1),
            ("with_mount_unit", B, 2),
        ],
    ),
    "Luks": (
        "Luks",
        "base",
        [
            ("cex", "Cex", 6),
            ("clevis", "Clevis", 3),
            ("device", S, 3),
            ("discard", B, 5),
            ("key_file", "Resource", 3),
            ("label", S, 3),
            ("name", S, 3),
            ("open_options", L(S), 5),
            ("options", L(S), 3),
            ("uuid", S, 3),
            ("wipe_volume", B, 3),
        ],
    ),
    "Cex": ("Cex", "base", [("enabled", B, 6)]),
    "Clevis": (
        "Clevis",
        "base",
        [("custom", "ClevisCustom", 3), ("tang", L("Tang"), 3), ("threshold", I, 3), ("tpm2", B, 3)],
    ),
    "ClevisCustom": ("ClevisCustom", "base", [("config", S, 3), ("needs_network", B, 3), ("pin", S, 3)]),
    "Tang": ("Tang", "base", [("advertisement", S, 5), ("thumbprint", S, 3), ("url", S, 3)]),
    "Raid": (
        "Raid",
        "base",
        [("devices", L(S), 1), ("level", S, 1), ("name", S, 1), ("options", L(S), 1), ("spares", I, 1)],
    ),
    "Tree": ("Tree", "base", [("local", S, 2), ("path", S, 2)]),
    "Systemd": ("Systemd", "base", [("units", L("Unit"), 1)]),
    "Unit": (
        "Unit",
        "base",
        [
            ("contents", S, 1),
            ("contents_local", S, 5),
            ("dropins", L("Dropin"), 1),
            ("enabled", B, 1),
            ("mask", B, 1),
            ("name", S, 1),
        ],
    ),
    "Dropin": ("Dropin", "base", [("contents", S, 1), ("contents_local", S, 5), ("name", S, 1)]),
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

# Boot-device layouts by fcos level.
LAYOUTS_LEGACY = ("aarch64", "ppc64le", "x86_64")
LAYOUTS_S390X = ("s390x-eckd", "s390x-virt", "s390x-zfcp")


class Spec:
    """One variant/version: its levels and the fields it accepts (``fields(obj)``)."""

    __slots__ = ("_cache", "base", "fcos", "go_pkg", "ign_version", "variant", "version")

    def __init__(self, variant: str, version: str) -> None:
        self.variant = variant
        self.version = version
        self.ign_version, self.base, self.fcos, self.go_pkg = VARIANTS[variant][version]
        self._cache: dict[str, dict[str, Any]] = {}

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

    def go_type(self, t: Any) -> str:
        """Go's spelling of a type, as yaml.v3 prints it in its errors (``[]v0_5.PasswdUser``)."""
        if isinstance(t, tuple):
            return "[]" + self.go_type(t[1])
        if t in (S, I, B):
            return t
        go, kind, _ = OBJECTS[t]
        pkg = f"v0_{self.base}" if kind == "base" else self.go_pkg
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
    name: list(keys.items()) for name in ignition_fields.IGNITION if (keys := ignition_fields.newest(name))
}

# Fields that are plain (non-pointer) Go values in Ignition: omitted when empty.
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
    ("Tang", "url"),
    ("Directory", "path"),
    ("File", "path"),
    ("Link", "path"),
    ("Ignition", "version"),
}
