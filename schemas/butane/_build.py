"""Generate the JSON Schemas of the Butane-like YAML variants (the `.bu` side of pine-transpile).

One file per variant/version: ``fcos-1.0.0.json`` ... ``fcos-1.7.0.json``, ``flatcar-1.0.0.json``,
``flatcar-1.1.0.json`` and ``pine-1.0.0.json``. They exist for editors: with a schema-aware YAML
language server (``# yaml-language-server: $schema=.../fcos-1.5.0.json`` on the first line of a
``.bu`` file) keys complete, descriptions show on hover and mistakes are underlined. They are not on
the transpiler's path (pine-transpile never imports jsonschema).

The eleven files share almost everything, so they come from one table in which each field is gated
by what the variant/version offers (``Spec``): the Ignition spec it targets (``ign``), the Butane
"base" level that carries the sugar (``base``: 1 = fcos 1.0.0 ... 7 = fcos 1.7.0), and variant
switches (boot_device, grub, clevis, the pine extras). Facts come from Butane's published spec
documents (docs/config-fcos-v1_N.md, docs/config-flatcar-v1_N.md), its release notes and the YAML
keys of its Go types, plus Ignition's migration notes; the wording is ours.

Conventions (the same as schemas/ignition/): every optional value may be ``null`` (Go's YAML
decoder accepts null for every field); list items may not (Butane drops them with a warning);
``additionalProperties: false`` everywhere, so a key from a later version is flagged.

    python schemas/butane/_build.py           # rewrite the files next to this script
    python schemas/butane/_build.py --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

# The shared constructors live one level up (run as a script or loaded by file path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _builder import Schema, array, boolean, integer, ref, refs, string

HERE = Path(__file__).resolve().parent
ID_BASE = "https://pine.example/schemas/butane/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

Version = tuple[int, int]


class Spec(NamedTuple):
    """What one variant/version offers; every gate in the table reads one of these fields."""

    variant: str
    version: str
    ign: Version  # Ignition spec version produced
    base: int  # Butane sugar level (fcos 1.N.0 -> N + 1 for N <= 2, see SPECS)
    boot_device: bool
    grub: bool
    clevis: bool  # flatcar refuses storage.luks.clevis
    layouts: tuple[str, ...]
    pine: bool = False

    @property
    def ign_version(self) -> str:
        return f"{self.ign[0]}.{self.ign[1]}.0"


_L3 = ("aarch64", "ppc64le", "x86_64")
_L6 = ("aarch64", "ppc64le", "s390x-eckd", "s390x-virt", "s390x-zfcp", "x86_64")

SPECS: tuple[Spec, ...] = (
    Spec("fcos", "1.0.0", (3, 0), 1, False, False, True, ()),
    Spec("fcos", "1.1.0", (3, 1), 2, False, False, True, ()),
    Spec("fcos", "1.2.0", (3, 2), 3, False, False, True, ()),
    Spec("fcos", "1.3.0", (3, 2), 3, True, False, True, _L3),
    Spec("fcos", "1.4.0", (3, 3), 4, True, False, True, _L3),
    Spec("fcos", "1.5.0", (3, 4), 5, True, True, True, _L3),
    Spec("fcos", "1.6.0", (3, 5), 6, True, True, True, _L6),
    Spec("fcos", "1.7.0", (3, 6), 7, True, True, True, _L6),
    Spec("flatcar", "1.0.0", (3, 3), 4, False, False, False, ()),
    Spec("flatcar", "1.1.0", (3, 4), 5, False, False, False, ()),
    Spec("pine", "1.0.0", (3, 5), 6, True, True, True, _L6, pine=True),
)


def file_name(spec: Spec) -> str:
    return f"{spec.variant}-{spec.version}.json"


# --- small constructors -------------------------------------------------------------------------
# A field is (present, name, schema); ``obj`` drops the fields whose gate is false.


def strings(desc: str, item_desc: str, **item_extra: Any) -> Schema:
    return array({"type": "string", "description": item_desc, **item_extra}, desc)


Field = tuple[bool, str, Schema]


def obj(desc: str, fields: list[Field], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    props = {name: schema for present, name, schema in fields if present}
    out: Schema = {
        "type": ["object", "null"],
        "description": desc,
        "properties": props,
        "additionalProperties": False,
    }
    req = [name for name in required if name in props]
    if req:
        out["required"] = req
    out.update(extra)
    return out


def exclusive(*names: str) -> Schema:
    """`not` clause: at most one of ``names`` may be given (null counts as absent)."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    given = {"not": {"type": "null"}}
    return {"not": {"anyOf": [{"required": [a, b], "properties": {a: given, b: given}} for a, b in pairs]}}


ABS_PATH = "^/"


# --- shared pieces ------------------------------------------------------------------------------


def _schemes(s: Spec) -> str:
    names = ["http", "https", "tftp", "s3"]
    if s.ign >= (3, 4):
        names.append("arn")
    if s.ign >= (3, 2):
        names.append("gs")
    names.append("data")
    return ", ".join(f"`{n}`" for n in names)


def _hash(s: Spec) -> Schema:
    if s.ign >= (3, 1):
        return string(
            "Expected digest of the (decompressed) data, written `<function>-<hex>` with function "
            "sha512 or sha256. Ignition refuses data that does not match.",
            pattern="^(sha512-[0-9a-fA-F]{128}|sha256-[0-9a-fA-F]{64})$",
            examples=["sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        )
    return string(
        "Expected digest of the (decompressed) data, written `sha512-<hex>` (this version knows "
        "only sha512). Ignition refuses data that does not match.",
        pattern="^sha512-[0-9a-fA-F]{128}$",
    )


def _mode(s: Spec, kind: str, default: int) -> Schema:
    if s.ign >= (3, 6):
        special = "Setuid, setgid and sticky bits are carried over."
    else:
        special = f"Setuid, setgid and sticky bits draw a warning: Ignition {s.ign_version} cannot set them."
    return integer(
        f"Permission bits of the {kind}. Write them in octal (`0{default:o}` or `0o{default:o}`); "
        f"a decimal-looking value such as 644 is almost always a mistake and draws a warning. "
        f"{special} When omitted a new {kind} gets 0{default:o}; an existing one keeps its mode.",
        minimum=0,
        maximum=0o7777,
        default=default,
    )


def _owner(who: str) -> Schema:
    return obj(
        f"The {who} owning the node, given by number or by name (not both).",
        [
            (True, "id", integer(f"Numeric {who} id.", minimum=0)),
            (True, "name", string(f"{who.capitalize()} name, resolved in the target's databases.")),
        ],
        **exclusive("id", "name"),
    )


def _headers() -> Schema:
    return array(
        {
            "type": "object",
            "description": "One HTTP request header.",
            "properties": {
                "name": {"type": "string", "description": "Header name, e.g. `Authorization`."},
                "value": string("Header value."),
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "Extra HTTP headers sent when `source` is an http or https URL.",
    )


def _resource(s: Spec, what: str, *, sugar: bool, source_required: bool = False) -> Schema:
    """A fetched blob: remote `source`, or Butane's `inline`/`local` which become a data URL."""
    fields: list[Field] = [
        (
            True,
            "source",
            string(
                f"URL of the {what}; schemes {_schemes(s)}. Prefer a `verification` hash with plain "
                "http." + (" Excludes `inline` and `local`." if sugar else "")
            ),
        ),
        (
            sugar,
            "inline",
            string(
                f"The {what} itself, written in the YAML (literal block `|` keeps newlines). "
                "Butane turns it into a data URL, gzipped when that is shorter. Excludes `source`"
                + (" and `local`." if s.base >= 2 else ".")
            ),
        ),
        (
            sugar and s.base >= 2,
            "local",
            string(
                f"Path of a file holding the {what}, relative to the `--files-dir` directory "
                "(it cannot escape it); embedded as a data URL. Excludes `source` and `inline`."
            ),
        ),
        (
            s.base >= 2 or what == "file contents",
            "compression",
            string(
                "Compression of the data at `source`: `gzip`, or empty for none. Not with s3 URLs. "
                "Leave it unset with `inline`/`local`: Butane chooses.",
                enum=["", "gzip"],
            ),
        ),
        (s.ign >= (3, 1), "http_headers", _headers()),
        (
            True,
            "verification",
            obj("How to check the fetched data.", [(True, "hash", _hash(s))]),
        ),
    ]
    extra: Schema = {}
    if sugar and s.base >= 2:
        extra = exclusive("source", "inline", "local")
    elif sugar:
        extra = exclusive("source", "inline")
    return obj(
        f"Where the {what} comes from.",
        fields,
        required=("source",) if source_required else (),
        **extra,
    )


def _is_true(key: str) -> Schema:
    return {"required": [key], "properties": {key: {"const": True}}}


def _mount_unit_rules(s: Spec) -> list[Schema]:
    """with_mount_unit needs a format, and a path unless it is swap (under /etc or /var from 1.6)."""
    path: Schema = {"type": "string"}
    if s.base >= 6:
        path["pattern"] = "^/(etc|var)(/|$)"
    needs_path: Schema = _is_true("with_mount_unit")
    if s.base >= 4:  # swap units exist from fcos 1.4.0 on
        needs_path = {
            "required": ["with_mount_unit"],
            "properties": {"with_mount_unit": {"const": True}, "format": {"not": {"const": "swap"}}},
        }
    return [
        {
            "if": _is_true("with_mount_unit"),
            "then": {"required": ["format"], "properties": {"format": {"type": "string"}}},
        },
        {"if": needs_path, "then": {"required": ["path"], "properties": {"path": path}}},
    ]


def _boot_device_rules() -> list[Schema]:
    """s390x layouts (fcos 1.6.0 on): the LUKS device prefix, and CEX only there, without Clevis."""
    s390x = ["s390x-eckd", "s390x-virt", "s390x-zfcp"]

    def device_prefix(layout: str, prefix: str) -> Schema:
        return {
            "if": {"required": ["layout"], "properties": {"layout": {"const": layout}}},
            "then": {
                "properties": {
                    "luks": {"properties": {"device": {"type": "string", "pattern": f"^{prefix}"}}}
                }
            },
        }

    return [
        device_prefix("s390x-eckd", "/dev/dasd"),
        device_prefix("s390x-zfcp", "/dev/sd"),
        {
            "if": {
                "required": ["luks"],
                "properties": {"luks": {"required": ["cex"], "properties": {"cex": _is_true("enabled")}}},
            },
            "then": {
                "required": ["layout"],
                "properties": {
                    "layout": {"enum": s390x},
                    "luks": {
                        "properties": {
                            "tpm2": {"not": {"const": True}},
                            "tang": {"type": ["array", "null"], "maxItems": 0},
                        }
                    },
                },
            },
        },
    ]


# --- the definitions ----------------------------------------------------------------------------


def _defs(s: Spec) -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    old = s.base == 1  # fcos 1.0.0: config/CA references are plain Ignition 3.0 references

    d["ConfigRef"] = _resource(s, "Ignition config", sugar=not old, source_required=old)
    d["CaRef"] = _resource(s, "PEM certificate bundle", sugar=not old, source_required=old)
    d["FileContents"] = _resource(s, "file contents", sugar=True)
    d["Resource"] = _resource(s, "key file", sugar=True)

    d["Ignition"] = obj(
        "Settings of Ignition itself: other configs to pull in, timeouts, TLS and proxies. "
        "(The Ignition `version` is not written here: the transpiler sets it.)",
        [
            (
                True,
                "config",
                obj(
                    "Other Ignition configs that extend or supersede this one at boot.",
                    [
                        (
                            True,
                            "merge",
                            refs("ConfigRef", "Configs fetched at boot and merged into this one, in order."),
                        ),
                        (
                            True,
                            "replace",
                            ref("ConfigRef", "A config fetched at boot and used instead of this one."),
                        ),
                    ],
                ),
            ),
            (
                True,
                "timeouts",
                obj(
                    "Limits for http and https fetches.",
                    [
                        (
                            True,
                            "http_response_headers",
                            integer(
                                "Seconds to wait for the response headers of a request; 0 means no limit.",
                                minimum=0,
                                default=10,
                            ),
                        ),
                        (
                            True,
                            "http_total",
                            integer(
                                "Seconds a whole fetch (connecting, retries, body) may take; 0 means "
                                "no limit.",
                                minimum=0,
                                default=0,
                            ),
                        ),
                    ],
                ),
            ),
            (
                True,
                "security",
                obj(
                    "Network security settings for fetches.",
                    [
                        (
                            True,
                            "tls",
                            obj(
                                "TLS settings for https fetches.",
                                [
                                    (
                                        True,
                                        "certificate_authorities",
                                        refs(
                                            "CaRef",
                                            "CA bundles trusted in addition to the system ones; each "
                                            "must be distinct.",
                                        ),
                                    )
                                ],
                            ),
                        )
                    ],
                ),
            ),
            (
                s.ign >= (3, 1),
                "proxy",
                obj(
                    "Proxies for fetching resources.",
                    [
                        (
                            True,
                            "http_proxy",
                            string(
                                "Proxy URL for http requests (and https ones unless `https_proxy` is set)."
                            ),
                        ),
                        (True, "https_proxy", string("Proxy URL for https requests.")),
                        (
                            True,
                            "no_proxy",
                            strings(
                                "Hosts reached without a proxy.",
                                "An IP (`10.0.0.1`), a CIDR (`10.0.0.0/8`), a domain (`example.com`, "
                                "which includes subdomains; `.example.com` only subdomains), each "
                                "optionally with `:port`, or `*` for no proxy at all.",
                            ),
                        ),
                    ],
                ),
            ),
        ],
    )

    d["Partition"] = obj(
        "One GPT partition.",
        [
            (True, "label", string("GPT partition name (PARTLABEL).", maxLength=36)),
            (
                True,
                "number",
                integer(
                    "Partition number (1-based). 0 takes the next free slot; then `label` must be unique.",
                    minimum=0,
                    default=0,
                ),
            ),
            (True, "size_mib", integer("Size in MiB; 0 takes the largest space available.", minimum=0)),
            (
                True,
                "start_mib",
                integer(
                    "Start offset in MiB; 0 places it at the start of the largest free block.", minimum=0
                ),
            ),
            (
                True,
                "type_guid",
                string(
                    "GPT type GUID. Unset: Linux filesystem data (0FC63DAF-8483-4772-8E79-3D69D8477DE4).",
                    default="0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                ),
            ),
            (True, "guid", string("GPT unique partition GUID.")),
            (
                True,
                "wipe_partition_entry",
                boolean(
                    "Whether Ignition may delete and recreate an existing partition that does not "
                    "match; otherwise it fails.",
                    default=False,
                ),
            ),
            (
                True,
                "should_exist",
                boolean(
                    "false deletes the partition `number` (or fails unless `wipe_partition_entry`); "
                    "then give nothing but `number`.",
                    default=True,
                ),
            ),
            (
                s.ign >= (3, 2),
                "resize",
                boolean(
                    "Grow or shrink an existing partition that matches in everything but its size.",
                    default=False,
                ),
            ),
        ],
    )
    d["Disk"] = obj(
        "A disk whose partition table is set up.",
        [
            (
                True,
                "device",
                {
                    "type": "string",
                    "description": "Absolute path of the disk, usually a /dev/disk/by-* link"
                    + (
                        " (the boot disk is /dev/disk/by-id/coreos-boot-disk)."
                        if s.variant == "fcos" or s.pine
                        else "."
                    ),
                    "pattern": ABS_PATH,
                },
            ),
            (
                True,
                "wipe_table",
                boolean("Erase the whole partition table before anything else.", default=False),
            ),
            (True, "partitions", refs("Partition", "Partitions on this disk (unique numbers or labels).")),
        ],
        required=("device",),
    )
    d["Raid"] = obj(
        "A software RAID (md) array.",
        [
            (True, "name", {"type": "string", "description": "Name of the md device (/dev/md/NAME)."}),
            (
                True,
                "level",
                string(
                    "RAID level.",
                    enum=[
                        "linear",
                        "raid0",
                        "0",
                        "stripe",
                        "raid1",
                        "1",
                        "mirror",
                        "raid4",
                        "4",
                        "raid5",
                        "5",
                        "raid6",
                        "6",
                        "raid10",
                        "10",
                    ],
                ),
            ),
            (
                True,
                "devices",
                strings("Member devices.", "Absolute path of a member device.", pattern=ABS_PATH),
            ),
            (True, "spares", integer("Number of spare devices among `devices`.", minimum=0)),
            (True, "options", strings("Extra mdadm --create arguments.", "One argument.")),
        ],
        required=("name", "level", "devices"),
    )
    formats = ["ext4", "btrfs", "xfs", "vfat", "swap"] + (["none"] if s.ign >= (3, 3) else [])
    mount_unit = (
        "Also generate a systemd unit for it: a .mount unit named after the escaped `path`"
        + (", or a .swap unit named after the escaped `device` for swap" if s.base >= 4 else "")
        + ". A unit of the same name in `systemd.units` is merged into the generated one."
        + (
            " On a Tang-backed LUKS device named /dev/mapper/NAME or /dev/disk/by-id/dm-name-NAME "
            "the mount waits for the network."
            if s.base >= 3
            else ""
        )
        + (" The path must lie under /etc or /var." if s.base >= 6 else "")
    )
    d["Filesystem"] = obj(
        "A filesystem to create (or keep) on a device.",
        [
            (
                True,
                "device",
                {"type": "string", "description": "Absolute path of the block device.", "pattern": ABS_PATH},
            ),
            (
                True,
                "format",
                string(
                    "Filesystem type"
                    + (" (`none` leaves the device unformatted)." if s.ign >= (3, 3) else "."),
                    enum=formats,
                ),
            ),
            (
                True,
                "path",
                string(
                    "Where Ignition mounts it while provisioning, relative to the future root; best "
                    "the same as its mount point in the running system.",
                    pattern=ABS_PATH,
                ),
            ),
            (
                True,
                "wipe_filesystem",
                boolean(
                    "Wipe the device and create a new filesystem even if a matching one exists.",
                    default=False,
                ),
            ),
            (True, "label", string("Filesystem label (xfs at most 12 characters, ext4 16, vfat 11).")),
            (True, "uuid", string("Filesystem UUID.")),
            (True, "options", strings("Extra arguments for mkfs.", "One argument.")),
            (
                s.ign >= (3, 1),
                "mount_options",
                strings("Options for mounting it (also put into a generated mount unit).", "One option."),
            ),
            (s.base >= 2, "with_mount_unit", boolean(mount_unit, default=False)),
        ],
        required=("device",),
        **({"allOf": _mount_unit_rules(s)} if s.base >= 2 else {}),
    )
    d["File"] = obj(
        "A regular file.",
        [
            (
                True,
                "path",
                {"type": "string", "description": "Absolute path of the file.", "pattern": ABS_PATH},
            ),
            (
                True,
                "overwrite",
                boolean("Replace whatever exists at `path`; needs `contents`.", default=False),
            ),
            (True, "contents", ref("FileContents", "What the file contains.")),
            (True, "append", refs("FileContents", "Fragments appended to the file, in order.")),
            (True, "mode", _mode(s, "file", 0o644)),
            (True, "user", _owner("user")),
            (True, "group", _owner("group")),
        ],
        required=("path",),
        # overwriting needs something to write
        **{
            "if": _is_true("overwrite"),
            "then": {
                "required": ["contents"],
                "properties": {
                    "contents": {
                        "type": "object",
                        "anyOf": [
                            {"required": [k], "properties": {k: {"type": "string"}}}
                            for k in ("source", "inline", "local")
                        ],
                    }
                },
            },
        },
    )
    d["Directory"] = obj(
        "A directory.",
        [
            (
                True,
                "path",
                {"type": "string", "description": "Absolute path of the directory.", "pattern": ABS_PATH},
            ),
            (
                True,
                "overwrite",
                boolean(
                    "Remove a non-directory found at `path`. Without it an existing directory only "
                    "gets its mode and owner set, and anything else there is an error.",
                    default=False,
                ),
            ),
            (True, "mode", _mode(s, "directory", 0o755)),
            (True, "user", _owner("user")),
            (True, "group", _owner("group")),
        ],
        required=("path",),
    )
    d["Link"] = obj(
        "A symbolic or hard link.",
        [
            (
                True,
                "path",
                {"type": "string", "description": "Absolute path of the link.", "pattern": ABS_PATH},
            ),
            (
                True,
                "overwrite",
                boolean("Replace whatever exists at `path`.", default=False),
            ),
            (
                True,
                "target",
                string(
                    "What the link points to. May be left out only to override the attributes of a "
                    "link that comes from `storage.trees`."
                    if s.base >= 2
                    else "What the link points to."
                ),
            ),
            (True, "hard", boolean("Create a hard link instead of a symbolic one.", default=False)),
            (True, "user", _owner("user")),
            (True, "group", _owner("group")),
        ],
        required=("path",),
    )
    if s.ign >= (3, 2):
        d["Tang"] = obj(
            "A Tang server for network-bound decryption.",
            [
                (True, "url", {"type": "string", "description": "URL of the Tang server."}),
                (True, "thumbprint", string("Thumbprint of a trusted signing key of the server.")),
                (
                    s.ign >= (3, 4),
                    "advertisement",
                    string(
                        "The server's advertisement (JSON), so provisioning works offline; fetched "
                        "from the server when omitted."
                    ),
                ),
            ],
            required=("url", "thumbprint"),
        )
        clevis = obj(
            "Automatic unlocking with Clevis.",
            [
                (True, "tang", refs("Tang", "Tang servers (distinct URLs).")),
                (True, "tpm2", boolean("Bind to the machine's TPM 2.0.", default=False)),
                (
                    True,
                    "threshold",
                    integer("How many of the pins must succeed to unlock.", minimum=1, default=1),
                ),
                (
                    True,
                    "custom",
                    obj(
                        "A hand-written Clevis binding, given to `clevis luks bind` as is; excludes "
                        "tang, tpm2 and threshold.",
                        [
                            (True, "pin", string("Clevis pin, e.g. `tpm2`, `tang` or `sss`.")),
                            (True, "config", string("Clevis configuration JSON for the pin.")),
                            (True, "needs_network", boolean("Unlocking needs the network.", default=False)),
                        ],
                        required=("pin", "config"),
                    ),
                ),
            ],
        )
        cex = obj(
            "IBM Crypto Express (CEX) card support (s390x).",
            [(True, "enabled", boolean("Use a CEX card for the volume key.", default=False))],
        )
        d["Luks"] = obj(
            "A LUKS2 encrypted volume.",
            [
                (
                    True,
                    "name",
                    {
                        "type": "string",
                        "description": "Name of the opened volume (/dev/mapper/NAME); no slashes.",
                        "pattern": "^[^/]+$",
                    },
                ),
                (True, "device", string("Absolute path of the underlying device.", pattern=ABS_PATH)),
                (True, "key_file", ref("Resource", "Key file; a random key is used when omitted.")),
                (True, "label", string("LUKS label.")),
                (True, "uuid", string("LUKS UUID.")),
                (True, "options", strings("Extra `cryptsetup luksFormat` arguments.", "One argument.")),
                (
                    s.ign >= (3, 4),
                    "discard",
                    boolean(
                        "Pass discards (TRIM) through: faster on SSDs and thin storage, but it reveals "
                        "which blocks are in use.",
                        default=False,
                    ),
                ),
                (
                    s.ign >= (3, 4),
                    "open_options",
                    strings(
                        "Extra `cryptsetup luksOpen` arguments, stored in the header where possible.",
                        "One argument.",
                    ),
                ),
                (
                    True,
                    "wipe_volume",
                    boolean(
                        "Wipe the device and create a new volume even if a matching one exists.",
                        default=False,
                    ),
                ),
                (s.clevis, "clevis", clevis),
                (s.ign >= (3, 5), "cex", cex),
            ],
            required=("name", "device"),
        )
    d["Tree"] = obj(
        "A local directory embedded file by file.",
        [
            (
                True,
                "local",
                {
                    "type": "string",
                    "description": "Directory relative to `--files-dir` (which it cannot escape).",
                },
            ),
            (True, "path", string("Where the tree lands in the target.", pattern=ABS_PATH, default="/")),
        ],
        required=("local",),
    )
    local5 = s.base >= 5
    d["Dropin"] = obj(
        "A drop-in (NAME.d/DROPIN.conf) for the unit.",
        [
            (
                True,
                "name",
                {
                    "type": "string",
                    "description": "File name of the drop-in; ends in `.conf`.",
                    "pattern": r"\.conf$",
                },
            ),
            (
                True,
                "contents",
                string("Text of the drop-in." + (" Excludes `contents_local`." if local5 else "")),
            ),
            (
                local5,
                "contents_local",
                string(
                    "Path of a file with the drop-in's text, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
        ],
        required=("name",),
        **(exclusive("contents", "contents_local") if local5 else {}),
    )
    d["Unit"] = obj(
        "A systemd unit.",
        [
            (
                True,
                "name",
                {
                    "type": "string",
                    "description": "Unit name with its type suffix, e.g. `backup.service`.",
                    "pattern": r"\.(service|socket|device|mount|automount|swap|target|path|timer|"
                    r"snapshot|slice|scope)$",
                },
            ),
            (
                True,
                "enabled",
                boolean(
                    "true enables the unit, false disables it, unset leaves it alone; needs an "
                    "[Install] section to do anything."
                ),
            ),
            (
                True,
                "mask",
                boolean("true masks the unit (link to /dev/null); false removes such a mask."),
            ),
            (
                True,
                "contents",
                string("Text of the unit file." + (" Excludes `contents_local`." if local5 else "")),
            ),
            (
                local5,
                "contents_local",
                string(
                    "Path of a file with the unit's text, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
            (True, "dropins", refs("Dropin", "Drop-ins for the unit (distinct names).")),
        ],
        required=("name",),
        **(exclusive("contents", "contents_local") if local5 else {}),
    )
    d["User"] = obj(
        "A user account.",
        [
            (True, "name", {"type": "string", "description": "Login name."}),
            (True, "password_hash", string("Password hash as in /etc/shadow (crypt(3) format).")),
            (
                True,
                "ssh_authorized_keys",
                strings("SSH public keys allowed to log in (all distinct).", "One public key line."),
            ),
            (
                local5,
                "ssh_authorized_keys_local",
                strings(
                    "Files of SSH public keys, relative to `--files-dir`; one key per line, blank "
                    "lines skipped; added after `ssh_authorized_keys`.",
                    "Path of a key file.",
                ),
            ),
            (True, "uid", integer("Numeric user id; chosen by the system when omitted.", minimum=0)),
            (True, "gecos", string("GECOS (comment) field.")),
            (True, "home_dir", string("Home directory.", pattern=ABS_PATH)),
            (
                True,
                "no_create_home",
                boolean("Do not create the home directory (new accounts only).", default=False),
            ),
            (True, "primary_group", string("Name of the primary group.")),
            (True, "groups", strings("Supplementary groups.", "Group name.")),
            (
                True,
                "no_user_group",
                boolean("Do not create a group named after the user (new accounts only).", default=False),
            ),
            (
                True,
                "no_log_init",
                boolean("Keep the user out of lastlog and faillog (new accounts only).", default=False),
            ),
            (True, "shell", string("Login shell.")),
            (
                s.ign >= (3, 2),
                "should_exist",
                boolean("false deletes the account.", default=True),
            ),
            (True, "system", boolean("Create a system account (new accounts only).", default=False)),
        ],
        required=("name",),
    )
    d["Group"] = obj(
        "A group.",
        [
            (True, "name", {"type": "string", "description": "Group name."}),
            (True, "gid", integer("Numeric group id; chosen by the system when omitted.", minimum=0)),
            (True, "password_hash", string("Group password hash (crypt(3) format).")),
            (s.ign >= (3, 2), "should_exist", boolean("false deletes the group.", default=True)),
            (True, "system", boolean("Create a system group (new groups only).", default=False)),
        ],
        required=("name",),
    )
    if s.pine:
        d["OpenrcService"] = obj(
            "An OpenRC service: written to /etc/init.d/NAME (mode 0755) and, when enabled, linked "
            "from /etc/runlevels/RUNLEVEL/NAME.",
            [
                (
                    True,
                    "name",
                    {
                        "type": "string",
                        "description": "Service name (file name under /etc/init.d).",
                        "pattern": "^[A-Za-z0-9_.@+-]+$",
                    },
                ),
                (
                    True,
                    "contents",
                    string("Text of the init script (`#!/sbin/openrc-run` ...). Excludes `contents_local`."),
                ),
                (
                    True,
                    "contents_local",
                    string(
                        "Path of a file with the init script, relative to `--files-dir`. Excludes `contents`."
                    ),
                ),
                (True, "enabled", boolean("Add the service to `runlevel`.", default=True)),
                (
                    True,
                    "runlevel",
                    string(
                        "Runlevel the service is added to.",
                        pattern="^[A-Za-z0-9_.-]+$",
                        default="default",
                        examples=["default", "boot", "sysinit", "shutdown", "nonetwork"],
                    ),
                ),
            ],
            required=("name",),
            **exclusive("contents", "contents_local"),
        )
        cidr = (
            r"^(([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])"
            r"|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$"
        )
        ip = r"^(([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"
        d["Interface"] = {
            **obj(
                "A network interface, written to /etc/network/interfaces: either `dhcp: true` or a "
                "static `address`.",
                [
                    (
                        True,
                        "name",
                        {
                            "type": "string",
                            "description": "Interface name, e.g. `eth0`.",
                            "pattern": "^[^/\\s]{1,15}$",
                        },
                    ),
                    (True, "dhcp", boolean("Configure the interface with DHCP.", default=False)),
                    (
                        True,
                        "address",
                        string(
                            "Static address in CIDR form, e.g. `192.0.2.10/24` or `2001:db8::10/64`.",
                            pattern=cidr,
                        ),
                    ),
                    (True, "gateway", string("Default gateway for a static address.", pattern=ip)),
                ],
                required=("name",),
            ),
            # dhcp: true and a static address are exclusive; one of them must be there
            "anyOf": [
                {"required": ["dhcp"], "properties": {"dhcp": {"const": True}}},
                {"required": ["address"], "properties": {"address": {"type": "string"}}},
            ],
            "if": {"required": ["dhcp"], "properties": {"dhcp": {"const": True}}},
            "then": {
                "properties": {"address": {"type": "null"}, "gateway": {"type": "null"}},
            },
        }
        d["Interface"]["type"] = "object"
        d["Network"] = obj(
            "Basic networking for ifupdown/busybox: /etc/hostname, /etc/network/interfaces and "
            "/etc/resolv.conf.",
            [
                (
                    True,
                    "hostname",
                    string(
                        "Host name, written to /etc/hostname.",
                        pattern="^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$",
                    ),
                ),
                (True, "interfaces", refs("Interface", "Interfaces to configure (distinct names).")),
                (
                    True,
                    "dns",
                    strings(
                        "Name servers, written to /etc/resolv.conf.",
                        "IP address of a name server.",
                        pattern=ip,
                    ),
                ),
            ],
        )
    return d


def _root(s: Spec) -> Schema:
    d = _defs(s)
    storage: list[Field] = [
        (True, "disks", refs("Disk", "Disks to partition (distinct devices).")),
        (True, "raid", refs("Raid", "Software RAID arrays (distinct names).")),
        (True, "filesystems", refs("Filesystem", "Filesystems (distinct devices).")),
        (True, "files", refs("File", "Files (paths distinct across files, directories and links).")),
        (True, "directories", refs("Directory", "Directories.")),
        (True, "links", refs("Link", "Links.")),
        (s.ign >= (3, 2), "luks", refs("Luks", "LUKS volumes (distinct names).")),
        (
            s.base >= 2,
            "trees",
            refs(
                "Tree",
                "Local directory trees to embed: regular files get mode 0755 if executable else "
                "0644, symlinks are kept, ownership is not. An entry in files (without contents), "
                "directories or links (without target) with the same path overrides attributes.",
            ),
        ),
    ]
    fields: list[Field] = [
        (
            True,
            "variant",
            {
                "type": "string",
                "const": s.variant,
                "description": f"Which flavour of config this is; `{s.variant}` for this schema.",
            },
        ),
        (
            True,
            "version",
            {
                "type": "string",
                "const": s.version,
                "description": f"Version of the {s.variant} spec; {s.version} produces Ignition "
                f"{s.ign_version}. Written as is: `version: {s.version}`.",
            },
        ),
        (True, "ignition", ref("Ignition", "Settings of Ignition itself.")),
        (True, "storage", obj("Disks, filesystems and the files on them.", storage)),
        (
            True,
            "systemd",
            obj("systemd units.", [(True, "units", refs("Unit", "Units (distinct names)."))]),
        ),
        (
            True,
            "passwd",
            obj(
                "Accounts.",
                [
                    (True, "users", refs("User", "User accounts (distinct names).")),
                    (True, "groups", refs("Group", "Groups (distinct names).")),
                ],
            ),
        ),
        (
            s.ign >= (3, 3),
            "kernel_arguments",
            obj(
                "Kernel command-line arguments to ensure, applied with a reboot on first boot.",
                [
                    (True, "should_exist", strings("Arguments that must be present.", "One argument.")),
                    (True, "should_not_exist", strings("Arguments that must be absent.", "One argument.")),
                ],
            ),
        ),
    ]
    if s.boot_device:
        bd_luks: list[Field] = [
            (
                s.base >= 6,
                "device",
                string(
                    "Whole-disk device to encrypt: /dev/dasd* with layout s390x-eckd, /dev/sd* with "
                    "s390x-zfcp.",
                    pattern=ABS_PATH,
                ),
            ),
            (True, "tang", refs("Tang", "Tang servers (distinct URLs).")),
            (True, "tpm2", boolean("Bind to the machine's TPM 2.0.", default=False)),
            (
                True,
                "threshold",
                integer("How many of the pins must succeed to unlock.", minimum=1, default=1),
            ),
            (
                s.base >= 5,
                "discard",
                boolean(
                    "Pass discards (TRIM) through to the disk; reveals which blocks are in use.",
                    default=False,
                ),
            ),
            (
                s.base >= 6,
                "cex",
                obj(
                    "IBM Crypto Express (CEX) card support (s390x).",
                    [(True, "enabled", boolean("Use a CEX card for the volume key.", default=False))],
                ),
            ),
        ]
        fields.append(
            (
                True,
                "boot_device",
                obj(
                    "Encrypt and/or mirror the boot disk; give `luks`, `mirror` or both.",
                    [
                        (
                            True,
                            "layout",
                            string(
                                "Partition layout of the OS image.",
                                enum=list(s.layouts),
                                default="x86_64",
                            ),
                        ),
                        (
                            True,
                            "luks",
                            obj("Encrypt the root filesystem (LUKS, unlocked by Clevis).", bd_luks),
                        ),
                        (
                            True,
                            "mirror",
                            obj(
                                "Mirror the boot disk (RAID1) across several disks.",
                                [
                                    (
                                        True,
                                        "devices",
                                        {
                                            **strings(
                                                "Whole disks to mirror across, at least two.",
                                                "Absolute path of a whole disk.",
                                                pattern=ABS_PATH,
                                            ),
                                            "minItems": 2,
                                        },
                                    )
                                ],
                            ),
                        ),
                    ],
                    **({"allOf": _boot_device_rules()} if s.base >= 6 else {}),
                ),
            )
        )
    if s.grub:
        fields.append(
            (
                True,
                "grub",
                obj(
                    "GRUB settings.",
                    [
                        (
                            True,
                            "users",
                            array(
                                {
                                    "type": "object",
                                    "description": "A GRUB superuser.",
                                    "properties": {
                                        "name": {"type": "string", "description": "User name."},
                                        "password_hash": {
                                            "type": "string",
                                            "description": "PBKDF2 hash from `grub2-mkpasswd-pbkdf2` "
                                            "(grub.pbkdf2.sha512....).",
                                            "pattern": "^grub\\.pbkdf2\\.",
                                        },
                                    },
                                    "required": ["name", "password_hash"],
                                    "additionalProperties": False,
                                },
                                "GRUB superusers, written to /boot/grub2/user.cfg.",
                            ),
                        )
                    ],
                ),
            )
        )
    if s.pine:
        fields.append(
            (
                True,
                "openrc",
                obj(
                    "OpenRC services (Pine runs OpenRC, not systemd).",
                    [(True, "services", refs("OpenrcService", "Services (distinct names)."))],
                ),
            )
        )
        fields.append((True, "network", ref("Network", "Hostname, interfaces and DNS.")))

    root = obj(
        f"A {s.variant} {s.version} config (Butane-compatible YAML) for pine-transpile, which turns "
        f"it into Ignition {s.ign_version} JSON.",
        fields,
        required=("variant", "version"),
    )
    root["type"] = "object"
    return {
        "$schema": DRAFT,
        "$id": ID_BASE + file_name(s),
        "title": f"{s.variant} {s.version} config (YAML)",
        **root,
        "$defs": d,
    }


def render(s: Spec) -> str:
    return json.dumps(_root(s), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for s in SPECS:
        target = HERE / file_name(s)
        text = render(s)
        if check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
