"""Generate the JSON Schemas of Ignition config spec versions 3.0.0 ... 3.6.0.

Most of each spec version repeats the previous one, so the seven files are built from one
table: every field carries the spec version that introduced it (``since``). Facts come from
Ignition's published spec documents (docs/configuration-v3_N.md), its migration notes and
release notes, and the key names of its Go types; the wording is ours.

Rules the files follow (see docs/interfaces.md, the fast walker in pineinstall/config/schema.py):
structure only through ``type``/``properties``/``additionalProperties: false``/``items``/local
``$ref``; every value may be ``null`` (Go's decoder accepts null for every field and list item),
except ``ignition.version``; everything else (enum, pattern, default, ...) is for editors.

    python schemas/ignition/_build.py           # rewrite the seven files next to this script
    python schemas/ignition/_build.py --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The shared constructors live one level up (run as a script or loaded by file path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _builder import Schema, array, boolean, integer, ref, refs, string

VERSIONS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0")
HERE = Path(__file__).resolve().parent
ID_BASE = "https://pine.example/schemas/ignition/"

Version = tuple[int, int]


def _v(version: str) -> Version:
    major, minor, _patch = version.split(".")
    return int(major), int(minor)


# --- small constructors -------------------------------------------------------------------------
# A field is (since, name, schema); the object builders drop fields newer than the version.


def strings(desc: str, item_desc: str) -> Schema:
    return array({"type": ["string", "null"], "description": item_desc}, desc)


def obj(
    v: Version, desc: str, fields: list[tuple[Version, str, Schema]], required: tuple[str, ...] = ()
) -> Schema:
    props = {name: schema for since, name, schema in fields if v >= since}
    out: Schema = {
        "type": ["object", "null"],
        "description": desc,
        "properties": props,
        "additionalProperties": False,
    }
    req = [name for name in required if name in props]
    if req:
        out["required"] = req
    return out


V30, V31, V32, V33, V34, V35, V36 = (3, 0), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6)


# --- shared pieces ------------------------------------------------------------------------------


def _schemes(v: Version) -> str:
    names = ["http", "https", "tftp", "s3"]
    if v >= V34:
        names.append("arn")
    if v >= V32:
        names.append("gs")
    names.append("data")
    return ", ".join(names)


def _hash(v: Version) -> Schema:
    if v >= V31:
        return string(
            "Expected hash of the (decompressed) resource as `<function>-<hex digest>`; "
            "function sha512 or sha256.",
            pattern="^(sha512-[0-9a-f]{128}|sha256-[0-9a-f]{64})$",
            examples=["sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        )
    return string(
        "Expected hash of the (decompressed) resource as `sha512-<hex digest>` (only sha512 in 3.0.0).",
        pattern="^sha512-[0-9a-f]{128}$",
    )


def _compression() -> Schema:
    return string(
        "Compression of the fetched data: empty/null for none, or gzip. Not usable with s3 sources.",
        enum=["", "gzip"],
    )


def _source(v: Version, what: str, required: bool) -> Schema:
    note = "" if required else " Optional."
    return string(f"URL of the {what}; schemes {_schemes(v)}.{note}")


def _mode_desc(kind: str, default_octal: str, v: Version) -> str:
    special = (
        "setuid/setgid/sticky bits are honoured"
        if v >= V36
        else "setuid/setgid/sticky bits are not supported before spec 3.6.0 (a warning)"
    )
    return (
        f"Permission bits of the {kind} as a decimal number (0{default_octal} octal is "
        f"{int(default_octal, 8)}); {special}. Unset: 0{default_octal} for a new {kind}, else unchanged."
    )


def _owner(v: Version, who: str) -> Schema:
    return obj(
        v,
        f"Owning {who} of the node, by id or by name.",
        [
            (V30, "id", integer(f"Numeric {who} id.")),
            (V30, "name", string(f"{who.capitalize()} name, looked up in the target's database.")),
        ],
    )


# --- the definitions ----------------------------------------------------------------------------


def _defs(v: Version, version: str) -> dict[str, Schema]:
    d: dict[str, Schema] = {}

    d["Ignition"] = obj(
        v,
        "Metadata about the config itself.",
        [
            (
                V30,
                "version",
                {
                    "type": "string",
                    "const": version,
                    "description": f"Spec version of this config; this schema describes {version}.",
                },
            ),
            (V30, "config", ref("IgnitionConfig", "Other configs to merge into or replace this one.")),
            (V30, "timeouts", ref("Timeouts", "HTTP(S) fetch timeouts.")),
            (V30, "security", ref("Security", "Network security options for fetching.")),
            (V31, "proxy", ref("Proxy", "HTTP(S) proxies used when fetching resources.")),
        ],
        required=("version",),
    )
    remote = "Resource" if v >= V31 else "ConfigReference"
    d["IgnitionConfig"] = obj(
        v,
        "Configs that modify this one.",
        [
            (V30, "merge", refs(remote, "Configs fetched and merged on top of this one, in order.")),
            (V30, "replace", ref(remote, "A config fetched and used instead of this one.")),
        ],
    )
    d["Timeouts"] = obj(
        v,
        "Timeouts for fetching over http and https.",
        [
            (
                V30,
                "httpResponseHeaders",
                integer(
                    "Seconds to wait for the response headers of a request; 0 means no limit.",
                    default=10,
                ),
            ),
            (
                V30,
                "httpTotal",
                integer(
                    "Seconds allowed for a whole fetch including retries; 0 means no limit.",
                    default=0,
                ),
            ),
        ],
    )
    d["Security"] = obj(v, "Network security options.", [(V30, "tls", ref("TLS", "TLS options for https."))])
    ca = "Resource" if v >= V31 else "CaReference"
    d["TLS"] = obj(
        v,
        "TLS options used when fetching over https.",
        [
            (
                V30,
                "certificateAuthorities",
                refs(ca, "Extra CA bundles (PEM) trusted besides the system ones; sources must be unique."),
            )
        ],
    )
    if v >= V31:
        d["Proxy"] = obj(
            v,
            "Proxy settings for fetching resources.",
            [
                (
                    V31,
                    "httpProxy",
                    string("Proxy URL for http requests, and for https unless httpsProxy is set."),
                ),
                (V31, "httpsProxy", string("Proxy URL for https requests.")),
                (
                    V31,
                    "noProxy",
                    strings(
                        "Hosts fetched without a proxy.",
                        "An IP prefix, a CIDR, a domain (with subdomains; leading dot: only subdomains), "
                        "optionally with :port, or * for every host.",
                    ),
                ),
            ],
        )

    # Fetched resources: 3.0.0 has three shapes, 3.1.0 unified them into Resource.
    if v >= V31:
        d["Resource"] = obj(
            v,
            "A remote or inline resource (config, CA bundle, file contents, key file).",
            [
                (V31, "compression", _compression()),
                (
                    V31,
                    "httpHeaders",
                    refs("HTTPHeader", "Extra HTTP headers for http/https sources; names must be unique."),
                ),
                (V31, "source", _source(v, "resource (required for configs and CA bundles)", required=False)),
                (V31, "verification", ref("Verification", "How to check the fetched data.")),
            ],
        )
        d["HTTPHeader"] = obj(
            v,
            "One HTTP request header.",
            [
                (V31, "name", string("Header name.")),
                (
                    V31,
                    "value",
                    string("Header value; a merged child config without value removes the header."),
                ),
            ],
            required=("name",),
        )
    else:
        d["ConfigReference"] = obj(
            v,
            "A config to fetch.",
            [
                (V30, "source", _source(v, "config", required=True)),
                (V30, "verification", ref("Verification", "How to check the fetched config.")),
            ],
            required=("source",),
        )
        d["CaReference"] = obj(
            v,
            "A certificate authority bundle to fetch.",
            [
                (V30, "source", _source(v, "PEM bundle", required=True)),
                (V30, "verification", ref("Verification", "How to check the fetched bundle.")),
            ],
            required=("source",),
        )
        d["FileContents"] = obj(
            v,
            "Contents of a file or of a fragment appended to it.",
            [
                (V30, "compression", _compression()),
                (V30, "source", _source(v, "contents", required=False)),
                (V30, "verification", ref("Verification", "How to check the fetched contents.")),
            ],
        )
    d["Verification"] = obj(v, "Integrity check of fetched data.", [(V30, "hash", _hash(v))])

    # storage
    d["Storage"] = obj(
        v,
        "Desired state of disks, arrays, filesystems and nodes.",
        [
            (V30, "disks", refs("Disk", "Disks to partition; devices must be unique.")),
            (V30, "raid", refs("Raid", "Software RAID arrays; names must be unique.")),
            (
                V30,
                "filesystems",
                refs("Filesystem", "Filesystems to create or reuse; devices must be unique."),
            ),
            (V30, "files", refs("File", "Regular files to write.")),
            (V30, "directories", refs("Directory", "Directories to create.")),
            (V30, "links", refs("Link", "Symbolic or hard links to create.")),
            (V32, "luks", refs("Luks", "LUKS2 volumes to create or reuse; names must be unique.")),
        ],
    )
    d["Disk"] = obj(
        v,
        "One disk and its partition table (GPT).",
        [
            (V30, "device", string("Absolute path of the disk, usually a /dev/disk/by-* link.")),
            (V30, "wipeTable", boolean("Erase the partition table before any other change.")),
            (
                V30,
                "partitions",
                refs("Partition", "Partitions of the disk; numbers (or labels if 0) unique."),
            ),
        ],
        required=("device",),
    )
    d["Partition"] = obj(
        v,
        "One GPT partition.",
        [
            (V30, "label", string("PARTLABEL of the partition.")),
            (V30, "number", integer("Partition number (1-based); 0 picks the next free slot.")),
            (V30, "sizeMiB", integer("Size in MiB; 0 fills the largest free space.")),
            (V30, "startMiB", integer("Start in MiB; 0 places it at the start of the largest free block.")),
            (
                V30,
                "typeGuid",
                string(
                    "GPT partition type GUID; unset means Linux filesystem data for new partitions.",
                    default="0FC63DAF-8483-4772-8E79-3D69D8477DE4",
                ),
            ),
            (V30, "guid", string("GPT unique partition GUID.")),
            (
                V30,
                "wipePartitionEntry",
                boolean(
                    "Replace an existing partition that does not match instead of failing.", default=False
                ),
            ),
            (
                V30,
                "shouldExist",
                boolean(
                    "False deletes the partition (needs a nonzero number and nothing else).", default=True
                ),
            ),
            (
                V32,
                "resize",
                boolean(
                    "Resize an existing partition that matches in everything but its size.", default=False
                ),
            ),
        ],
    )
    d["Raid"] = obj(
        v,
        "One md software RAID array.",
        [
            (V30, "name", string("Name of the md device to create.")),
            (
                V30,
                "level",
                string(
                    "RAID level passed to mdadm.",
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
            (V30, "devices", strings("Member devices of the array.", "Absolute path of a member device.")),
            (V30, "spares", integer("Number of spare devices (not for linear/raid0).")),
            (V30, "options", strings("Extra mdadm --create options.", "One mdadm option.")),
        ],
        required=("name", "level", "devices"),
    )
    formats = ["ext4", "btrfs", "xfs", "vfat", "swap"] + (["none"] if v >= V33 else [])
    d["Filesystem"] = obj(
        v,
        "A filesystem to create or reuse, optionally mounted while provisioning.",
        [
            (V30, "device", string("Absolute path of the block device, usually a /dev/disk/by-* link.")),
            (
                V30,
                "format",
                string(
                    "Filesystem type"
                    + ("; none only erases signatures." if v >= V33 else ".")
                    + " Empty/unset only when nothing else is set.",
                    enum=["", *formats],
                ),
            ),
            (
                V30,
                "path",
                string("Where Ignition mounts it while running, relative to the target root (e.g. /var)."),
            ),
            (
                V30,
                "wipeFilesystem",
                boolean(
                    "Wipe the device and create a new filesystem instead of reusing a matching one.",
                    default=False,
                ),
            ),
            (V30, "label", string("Filesystem label.")),
            (V30, "uuid", string("Filesystem UUID.")),
            (V30, "options", strings("Extra options for the mkfs tool.", "One mkfs option.")),
            (
                V31,
                "mountOptions",
                strings("Options for mounting it while Ignition runs (mount -o).", "One mount option."),
            ),
        ],
        required=("device", "format"),
    )
    contents = "Resource" if v >= V31 else "FileContents"
    node_fields = [
        (V30, "path", string("Absolute path of the node in the target root.")),
    ]
    d["File"] = obj(
        v,
        "A regular file.",
        [
            *node_fields,
            (
                V30,
                "overwrite",
                boolean("Replace whatever exists at the path (needs contents).", default=False),
            ),
            (
                V30,
                "contents",
                ref(contents, "Initial contents; unset keeps an existing file or creates an empty one."),
            ),
            (V30, "append", refs(contents, "Fragments appended to the file, in order.")),
            (V30, "mode", integer(_mode_desc("file", "644", v), default=420, minimum=0, maximum=4095)),
            (V30, "user", ref("NodeUser", "Owner of the file.")),
            (V30, "group", ref("NodeGroup", "Group of the file.")),
        ],
        required=("path",),
    )
    d["Directory"] = obj(
        v,
        "A directory.",
        [
            *node_fields,
            (
                V30,
                "overwrite",
                boolean(
                    "Replace a non-directory at the path; an existing directory only gets new permissions.",
                    default=False,
                ),
            ),
            (V30, "mode", integer(_mode_desc("directory", "755", v), default=493, minimum=0, maximum=4095)),
            (V30, "user", ref("NodeUser", "Owner of the directory.")),
            (V30, "group", ref("NodeGroup", "Group of the directory.")),
        ],
        required=("path",),
    )
    d["Link"] = obj(
        v,
        "A symbolic or hard link.",
        [
            *node_fields,
            (
                V30,
                "overwrite",
                boolean(
                    "Replace whatever exists at the path; a matching link only gets new ownership.",
                    default=False,
                ),
            ),
            (V30, "user", ref("NodeUser", "Owner of a symbolic link (ignored for hard links).")),
            (V30, "group", ref("NodeGroup", "Group of a symbolic link (ignored for hard links).")),
            (V30, "target", string("Target path of the link.")),
            (V30, "hard", boolean("Create a hard link instead of a symbolic one (unset/false: symbolic).")),
        ],
        required=("path", "target"),
    )
    d["NodeUser"] = _owner(v, "user")
    d["NodeGroup"] = _owner(v, "group")

    if v >= V32:
        d["Luks"] = obj(
            v,
            "A LUKS2 encrypted volume.",
            [
                (V32, "name", string("Name of the opened device (/dev/mapper/NAME).")),
                (
                    V32,
                    "device",
                    string("Absolute path of the underlying device, usually a /dev/disk/by-* link."),
                ),
                (
                    V32,
                    "keyFile",
                    ref("Resource", "Static key; without one (and without clevis) a random key is used."),
                ),
                (V32, "label", string("Label of the LUKS volume.")),
                (V32, "uuid", string("UUID of the LUKS volume.")),
                (
                    V32,
                    "options",
                    strings("Extra options for cryptsetup luksFormat.", "One luksFormat option."),
                ),
                (
                    V34,
                    "discard",
                    boolean(
                        "Pass discards (TRIM) to the underlying device; leaks which blocks are used.",
                        default=False,
                    ),
                ),
                (
                    V34,
                    "openOptions",
                    strings(
                        "Extra options for cryptsetup luksOpen, persisted in the volume where supported.",
                        "One luksOpen option.",
                    ),
                ),
                (
                    V32,
                    "wipeVolume",
                    boolean(
                        "Wipe the device and create a new volume instead of reusing a matching one.",
                    ),
                ),
                (V32, "clevis", ref("Clevis", "Automatic unlocking through Clevis (TPM2, Tang, or custom).")),
                (V35, "cex", ref("Cex", "IBM Crypto Express (CEX) secure key support.")),
            ],
            required=("name", "device"),
        )
        d["Clevis"] = obj(
            v,
            "Clevis binding of a LUKS volume.",
            [
                (V32, "tang", refs("Tang", "Tang servers; URLs must be unique.")),
                (V32, "tpm2", boolean("Bind to the TPM2 device.")),
                (
                    V32,
                    "threshold",
                    integer("How many of the pins are needed to unlock.", default=1),
                ),
                (
                    V32,
                    "custom",
                    ref("ClevisCustom", "A clevis pin and config used verbatim; excludes the other fields."),
                ),
            ],
        )
        d["Tang"] = obj(
            v,
            "One Tang server.",
            [
                (V32, "url", string("URL of the Tang server.")),
                (V32, "thumbprint", string("Thumbprint of a trusted signing key of the server.")),
                (
                    V34,
                    "advertisement",
                    string(
                        "The server's advertisement (JSON), for provisioning without reaching the server."
                    ),
                ),
            ],
            required=("url", "thumbprint"),
        )
        d["ClevisCustom"] = obj(
            v,
            "Custom clevis binding passed to `clevis luks bind`.",
            [
                (V32, "pin", string("The clevis pin (e.g. tpm2, tang, sss).")),
                (V32, "config", string("The pin's configuration, a JSON text.")),
                (V32, "needsNetwork", boolean("The binding needs the network to unlock.")),
            ],
            required=("pin", "config"),
        )
    if v >= V35:
        d["Cex"] = obj(
            v,
            "IBM Crypto Express settings of a LUKS volume.",
            [(V35, "enabled", boolean("Use a CEX secure key for the volume.", default=False))],
        )

    # systemd
    d["Systemd"] = obj(
        v, "Desired state of systemd units.", [(V30, "units", refs("Unit", "Units; names unique."))]
    )
    d["Unit"] = obj(
        v,
        "One systemd unit.",
        [
            (V30, "name", string("Unit file name with its type suffix, e.g. thing.service.")),
            (V30, "enabled", boolean("True enables, false disables, unset leaves as is (needs [Install]).")),
            (V30, "mask", boolean("True masks the unit (link to /dev/null); false removes such a mask.")),
            (V30, "contents", string("Contents of the unit file.")),
            (V30, "dropins", refs("Dropin", "Drop-in files of the unit; names must be unique.")),
        ],
        required=("name",),
    )
    d["Dropin"] = obj(
        v,
        "A systemd drop-in file.",
        [
            (V30, "name", string("File name of the drop-in, ending in .conf.")),
            (V30, "contents", string("Contents of the drop-in.")),
        ],
        required=("name",),
    )

    # passwd
    d["Passwd"] = obj(
        v,
        "Users and groups to add to the passwd database.",
        [
            (V30, "users", refs("PasswdUser", "User accounts; names must be unique.")),
            (V30, "groups", refs("PasswdGroup", "Groups; names must be unique.")),
        ],
    )
    d["PasswdUser"] = obj(
        v,
        "One user account.",
        [
            (V30, "name", string("Login name.")),
            (V30, "passwordHash", string("Hashed password (crypt(3) format).")),
            (
                V30,
                "sshAuthorizedKeys",
                strings(
                    "SSH public keys written to ~/.ssh/authorized_keys.d/ignition; unique.",
                    "One public key line.",
                ),
            ),
            (V30, "uid", integer("User id.")),
            (V30, "gecos", string("GECOS (comment) field.")),
            (V30, "homeDir", string("Home directory.")),
            (V30, "noCreateHome", boolean("Do not create the home directory (new accounts only).")),
            (V30, "primaryGroup", string("Name of the primary group.")),
            (V30, "groups", strings("Supplementary groups.", "A group name.")),
            (V30, "noUserGroup", boolean("Do not create a group named after the user (new accounts only).")),
            (V30, "noLogInit", boolean("Do not add the user to lastlog/faillog (new accounts only).")),
            (V30, "shell", string("Login shell.")),
            (V32, "shouldExist", boolean("False deletes the account.", default=True)),
            (V30, "system", boolean("Create a system account (new accounts only).")),
        ],
        required=("name",),
    )
    d["PasswdGroup"] = obj(
        v,
        "One group.",
        [
            (V30, "name", string("Group name.")),
            (V30, "gid", integer("Group id.")),
            (V30, "passwordHash", string("Hashed group password.")),
            (V32, "shouldExist", boolean("False deletes the group.", default=True)),
            (V30, "system", boolean("Create a system group (new groups only).")),
        ],
        required=("name",),
    )

    if v >= V33:
        d["KernelArguments"] = obj(
            v,
            "Kernel command-line arguments to ensure present or absent.",
            [
                (
                    V33,
                    "shouldExist",
                    strings("Arguments that must be present.", "An argument (or several, in order)."),
                ),
                (V33, "shouldNotExist", strings("Arguments that must be absent.", "An argument.")),
            ],
        )
    return d


def build(version: str) -> Schema:
    """The schema of one spec version, as a dict."""
    if version not in VERSIONS:
        raise ValueError(f"unknown spec version {version}")
    v = _v(version)
    root = obj(
        v,
        f"Ignition config, spec version {version}.",
        [
            (V30, "ignition", ref("Ignition", "Metadata about the config itself.")),
            (V33, "kernelArguments", ref("KernelArguments", "Kernel arguments to add or remove.")),
            (V30, "passwd", ref("Passwd", "Users and groups.")),
            (V30, "storage", ref("Storage", "Disks, filesystems, files, directories and links.")),
            (V30, "systemd", ref("Systemd", "systemd units.")),
        ],
        required=("ignition",),
    )
    root["type"] = "object"  # the document itself cannot be null
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}{version}.json",
        "title": f"Ignition config {version}",
        **root,
        "$defs": _defs(v, version),
    }


def render(version: str) -> str:
    return json.dumps(build(version), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for version in VERSIONS:
        path = HERE / f"{version}.json"
        text = render(version)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)} (run {Path(__file__).name})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
