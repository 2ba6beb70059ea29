"""Generate the JSON Schemas of Ignition config spec versions 3.0.0 ... 3.6.0 and 3.7.0-experimental.

Which object has which field in which spec version, and the field's type, come from the field
table ``pineinstall/config/fields.py`` (the typed model and the translator read it too); the value
lists (RAID levels, formats, hash functions, URL schemes) as well. This script adds the words:
per object, the order of its properties in the schema (the spec documents' order), descriptions and
the hints for editors. A field in the table without words here stops the build. Facts come from
Ignition's published spec documents (docs/configuration-v3_N.md), its migration notes and release
notes, and the key names of its Go types; the wording is ours.

Rules the files follow (see docs/interfaces.md, the fast walker in pineinstall/config/schema.py):
structure only through ``type``/``properties``/``additionalProperties: false``/``items``/local
``$ref``; every value may be ``null`` (Go's decoder accepts null for every field and list item),
except ``ignition.version``; everything else (enum, pattern, default, ...) is for editors.

    python schemas/ignition/_build.py           # rewrite the files next to this script
    python schemas/ignition/_build.py --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeAlias

# The shared constructors live one level up, the field table two (run as a script or loaded by path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _builder import Schema, array, boolean, closed, integer, ref, refs, string, to_text, write_or_check

from pineinstall.config import fields as table
from pineinstall.config.versions import SUPPORTED

HERE = Path(__file__).resolve().parent
VERSIONS = tuple(SUPPORTED)
ID_BASE = "https://pine.example/schemas/ignition/"

# The words of one field: a description, (description, schema extras) where a list of strings
# takes its item description as extra "item", or a whole schema used as is.
Doc: TypeAlias = str | tuple[str, dict[str, Any]] | Schema
# The words of one object: description, field -> words in schema order, required fields.
ObjDoc: TypeAlias = tuple[str, dict[str, Doc], tuple[str, ...]]


def _field(kind: Any, doc: Doc) -> Schema:
    if isinstance(doc, dict):
        return doc
    desc, extra = (doc, {}) if isinstance(doc, str) else (doc[0], dict(doc[1]))
    if kind == table.S:
        return string(desc, **extra)
    if kind == table.I:
        return integer(desc, **extra)
    if kind == table.B:
        return boolean(desc, **extra)
    if kind == table.L(table.S):
        return array({"type": ["string", "null"], "description": extra.pop("item")}, desc, **extra)
    if isinstance(kind, tuple):
        return refs(kind[1], desc)
    return ref(kind, desc)


def obj(name: str, minor: int, doc: ObjDoc) -> Schema:
    """The schema of object ``name`` in spec 3.``minor``.0: the table's fields with their words."""
    desc, docs, required = doc
    present = table.fields(name, minor)
    unworded = set(present) - set(docs)
    if unworded:
        raise KeyError(f"{name}: no words for {sorted(unworded)}")
    return closed(
        desc, {key: _field(present[key], words) for key, words in docs.items() if key in present}, required
    )


# --- words that depend on the version -----------------------------------------------------------


def _schemes(minor: int) -> str:
    return ", ".join(name for name, since in table.URL_SCHEMES.items() if since <= minor)


def _hash(minor: int) -> Doc:
    functions = [(f, digits) for f, (digits, since) in table.HASH_FUNCTIONS.items() if since <= minor]
    alternatives = "|".join(f"{f}-[0-9a-f]{{{digits}}}" for f, digits in functions)
    if len(functions) == 1:
        return (
            "Expected hash of the (decompressed) resource as `sha512-<hex digest>` (only sha512 in 3.0.0).",
            {"pattern": f"^{alternatives}$"},
        )
    return (
        "Expected hash of the (decompressed) resource as `<function>-<hex digest>`; "
        "function sha512 or sha256.",
        {
            "pattern": f"^({alternatives})$",
            "examples": ["sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        },
    )


_COMPRESSION: Doc = (
    "Compression of the fetched data: empty/null for none, or gzip. Not usable with s3 sources.",
    {"enum": ["", *table.COMPRESSIONS]},
)


def _source(minor: int, what: str, required: bool) -> str:
    note = "" if required else " Optional."
    return f"URL of the {what}; schemes {_schemes(minor)}.{note}"


def _mode(kind: str, default_octal: str, minor: int) -> Doc:
    special = (
        "setuid/setgid/sticky bits are honoured"
        if minor >= 6
        else "setuid/setgid/sticky bits are not supported before spec 3.6.0 (a warning)"
    )
    default = int(default_octal, 8)
    return (
        f"Permission bits of the {kind} as a decimal number (0{default_octal} octal is "
        f"{default}); {special}. Unset: 0{default_octal} for a new {kind}, else unchanged.",
        {"default": default, "minimum": 0, "maximum": 4095},
    )


def _owner(who: str) -> ObjDoc:
    return (
        f"Owning {who} of the node, by id or by name.",
        {"id": f"Numeric {who} id.", "name": f"{who.capitalize()} name, looked up in the target's database."},
        (),
    )


def _words(minor: int, version: str) -> dict[str, ObjDoc]:
    """Words of every object, in the order of the schema's $defs (the root is "Config")."""
    formats = table.filesystem_formats(minor)
    node_path = "Absolute path of the node in the target root."
    return {
        "Config": (
            f"Ignition config, spec version {version}.",
            {
                "ignition": "Metadata about the config itself.",
                "kernelArguments": "Kernel arguments to add or remove.",
                "passwd": "Users and groups.",
                "storage": "Disks, filesystems, files, directories and links.",
                "systemd": "systemd units.",
            },
            ("ignition",),
        ),
        "Ignition": (
            "Metadata about the config itself.",
            {
                "version": {
                    "type": "string",
                    "const": version,
                    "description": f"Spec version of this config; this schema describes {version}.",
                },
                "config": "Other configs to merge into or replace this one.",
                "timeouts": "HTTP(S) fetch timeouts.",
                "security": "Network security options for fetching.",
                "proxy": "HTTP(S) proxies used when fetching resources.",
            },
            ("version",),
        ),
        "IgnitionConfig": (
            "Configs that modify this one.",
            {
                "merge": "Configs fetched and merged on top of this one, in order.",
                "replace": "A config fetched and used instead of this one.",
            },
            (),
        ),
        "Timeouts": (
            "Timeouts for fetching over http and https.",
            {
                "httpResponseHeaders": (
                    "Seconds to wait for the response headers of a request; 0 means no limit.",
                    {"default": 10},
                ),
                "httpTotal": (
                    "Seconds allowed for a whole fetch including retries; 0 means no limit.",
                    {"default": 0},
                ),
            },
            (),
        ),
        "Security": ("Network security options.", {"tls": "TLS options for https."}, ()),
        "TLS": (
            "TLS options used when fetching over https.",
            {
                "certificateAuthorities": (
                    "Extra CA bundles (PEM) trusted besides the system ones; sources must be unique."
                )
            },
            (),
        ),
        "Proxy": (
            "Proxy settings for fetching resources.",
            {
                "httpProxy": "Proxy URL for http requests, and for https unless httpsProxy is set.",
                "httpsProxy": "Proxy URL for https requests.",
                "noProxy": (
                    "Hosts fetched without a proxy.",
                    {
                        "item": "An IP prefix, a CIDR, a domain (with subdomains; leading dot: only "
                        "subdomains), optionally with :port, or * for every host."
                    },
                ),
            },
            (),
        ),
        # Fetched resources: 3.0.0 has three shapes, 3.1.0 unified them into Resource.
        "Resource": (
            "A remote or inline resource (config, CA bundle, file contents, key file).",
            {
                "compression": _COMPRESSION,
                "httpHeaders": "Extra HTTP headers for http/https sources; names must be unique.",
                "source": _source(minor, "resource (required for configs and CA bundles)", required=False),
                "verification": "How to check the fetched data.",
            },
            (),
        ),
        "HTTPHeader": (
            "One HTTP request header.",
            {
                "name": "Header name.",
                "value": "Header value; a merged child config without value removes the header.",
            },
            ("name",),
        ),
        "ConfigReference": (
            "A config to fetch.",
            {
                "source": _source(minor, "config", required=True),
                "verification": "How to check the fetched config.",
            },
            ("source",),
        ),
        "CaReference": (
            "A certificate authority bundle to fetch.",
            {
                "source": _source(minor, "PEM bundle", required=True),
                "verification": "How to check the fetched bundle.",
            },
            ("source",),
        ),
        "FileContents": (
            "Contents of a file or of a fragment appended to it.",
            {
                "compression": _COMPRESSION,
                "source": _source(minor, "contents", required=False),
                "verification": "How to check the fetched contents.",
            },
            (),
        ),
        "Verification": ("Integrity check of fetched data.", {"hash": _hash(minor)}, ()),
        # storage
        "Storage": (
            "Desired state of disks, arrays, filesystems and nodes.",
            {
                "disks": "Disks to partition; devices must be unique.",
                "raid": "Software RAID arrays; names must be unique.",
                "filesystems": "Filesystems to create or reuse; devices must be unique.",
                "files": "Regular files to write.",
                "directories": "Directories to create.",
                "links": "Symbolic or hard links to create.",
                "luks": "LUKS2 volumes to create or reuse; names must be unique.",
            },
            (),
        ),
        "Disk": (
            "One disk and its partition table (GPT).",
            {
                "device": "Absolute path of the disk, usually a /dev/disk/by-* link.",
                "wipeTable": "Erase the partition table before any other change.",
                "partitions": "Partitions of the disk; numbers (or labels if 0) unique.",
            },
            ("device",),
        ),
        "Partition": (
            "One GPT partition.",
            {
                "label": "PARTLABEL of the partition.",
                "number": "Partition number (1-based); 0 picks the next free slot.",
                "sizeMiB": "Size in MiB; 0 fills the largest free space.",
                "startMiB": "Start in MiB; 0 places it at the start of the largest free block.",
                "typeGuid": (
                    "GPT partition type GUID; unset means Linux filesystem data for new partitions.",
                    {"default": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
                ),
                "guid": "GPT unique partition GUID.",
                "wipePartitionEntry": (
                    "Replace an existing partition that does not match instead of failing.",
                    {"default": False},
                ),
                "shouldExist": (
                    "False deletes the partition (needs a nonzero number and nothing else).",
                    {"default": True},
                ),
                "resize": (
                    "Resize an existing partition that matches in everything but its size.",
                    {"default": False},
                ),
            },
            (),
        ),
        "Raid": (
            "One md software RAID array.",
            {
                "name": "Name of the md device to create.",
                "level": ("RAID level passed to mdadm.", {"enum": list(table.RAID_LEVELS)}),
                "devices": ("Member devices of the array.", {"item": "Absolute path of a member device."}),
                "spares": "Number of spare devices (not for linear/raid0).",
                "options": ("Extra mdadm --create options.", {"item": "One mdadm option."}),
            },
            ("name", "level", "devices"),
        ),
        "Filesystem": (
            "A filesystem to create or reuse, optionally mounted while provisioning.",
            {
                "device": "Absolute path of the block device, usually a /dev/disk/by-* link.",
                "format": (
                    "Filesystem type"
                    + ("; none only erases signatures." if "none" in formats else ".")
                    + " Empty/unset only when nothing else is set.",
                    {"enum": ["", *formats]},
                ),
                "path": "Where Ignition mounts it while running, relative to the target root (e.g. /var).",
                "wipeFilesystem": (
                    "Wipe the device and create a new filesystem instead of reusing a matching one.",
                    {"default": False},
                ),
                "label": "Filesystem label.",
                "uuid": "Filesystem UUID.",
                "options": ("Extra options for the mkfs tool.", {"item": "One mkfs option."}),
                "mountOptions": (
                    "Options for mounting it while Ignition runs (mount -o).",
                    {"item": "One mount option."},
                ),
            },
            ("device", "format"),
        ),
        "File": (
            "A regular file.",
            {
                "path": node_path,
                "overwrite": ("Replace whatever exists at the path (needs contents).", {"default": False}),
                "contents": "Initial contents; unset keeps an existing file or creates an empty one.",
                "append": "Fragments appended to the file, in order.",
                "mode": _mode("file", "644", minor),
                "user": "Owner of the file.",
                "group": "Group of the file.",
            },
            ("path",),
        ),
        "Directory": (
            "A directory.",
            {
                "path": node_path,
                "overwrite": (
                    "Replace a non-directory at the path; an existing directory only gets new permissions.",
                    {"default": False},
                ),
                "mode": _mode("directory", "755", minor),
                "user": "Owner of the directory.",
                "group": "Group of the directory.",
            },
            ("path",),
        ),
        "Link": (
            "A symbolic or hard link.",
            {
                "path": node_path,
                "overwrite": (
                    "Replace whatever exists at the path; a matching link only gets new ownership.",
                    {"default": False},
                ),
                "user": "Owner of a symbolic link (ignored for hard links).",
                "group": "Group of a symbolic link (ignored for hard links).",
                "target": "Target path of the link.",
                "hard": "Create a hard link instead of a symbolic one (unset/false: symbolic).",
            },
            ("path", "target"),
        ),
        "NodeUser": _owner("user"),
        "NodeGroup": _owner("group"),
        "Luks": (
            "A LUKS2 encrypted volume.",
            {
                "name": "Name of the opened device (/dev/mapper/NAME).",
                "device": "Absolute path of the underlying device, usually a /dev/disk/by-* link.",
                "keyFile": "Static key; without one (and without clevis) a random key is used.",
                "label": "Label of the LUKS volume.",
                "uuid": "UUID of the LUKS volume.",
                "options": (
                    "Extra options for cryptsetup luksFormat.",
                    {"item": "One luksFormat option."},
                ),
                "discard": (
                    "Pass discards (TRIM) to the underlying device; leaks which blocks are used.",
                    {"default": False},
                ),
                "openOptions": (
                    "Extra options for cryptsetup luksOpen, persisted in the volume where supported.",
                    {"item": "One luksOpen option."},
                ),
                "wipeVolume": "Wipe the device and create a new volume instead of reusing a matching one.",
                "clevis": "Automatic unlocking through Clevis (TPM2, Tang, or custom).",
                "cex": "IBM Crypto Express (CEX) secure key support.",
            },
            ("name", "device"),
        ),
        "Clevis": (
            "Clevis binding of a LUKS volume.",
            {
                "tang": "Tang servers; URLs must be unique.",
                "tpm2": "Bind to the TPM2 device.",
                "threshold": ("How many of the pins are needed to unlock.", {"default": 1}),
                "custom": "A clevis pin and config used verbatim; excludes the other fields.",
            },
            (),
        ),
        "Tang": (
            "One Tang server.",
            {
                "url": "URL of the Tang server.",
                "thumbprint": "Thumbprint of a trusted signing key of the server.",
                "advertisement": (
                    "The server's advertisement (JSON), for provisioning without reaching the server."
                ),
            },
            ("url", "thumbprint"),
        ),
        "ClevisCustom": (
            "Custom clevis binding passed to `clevis luks bind`.",
            {
                "pin": "The clevis pin (e.g. tpm2, tang, sss).",
                "config": "The pin's configuration, a JSON text.",
                "needsNetwork": "The binding needs the network to unlock.",
            },
            ("pin", "config"),
        ),
        "Cex": (
            "IBM Crypto Express settings of a LUKS volume.",
            {"enabled": ("Use a CEX secure key for the volume.", {"default": False})},
            (),
        ),
        # systemd
        "Systemd": ("Desired state of systemd units.", {"units": "Units; names unique."}, ()),
        "Unit": (
            "One systemd unit.",
            {
                "name": "Unit file name with its type suffix, e.g. thing.service.",
                "enabled": "True enables, false disables, unset leaves as is (needs [Install]).",
                "mask": "True masks the unit (link to /dev/null); false removes such a mask.",
                "contents": "Contents of the unit file.",
                "dropins": "Drop-in files of the unit; names must be unique.",
            },
            ("name",),
        ),
        "Dropin": (
            "A systemd drop-in file.",
            {"name": "File name of the drop-in, ending in .conf.", "contents": "Contents of the drop-in."},
            ("name",),
        ),
        # passwd
        "Passwd": (
            "Users and groups to add to the passwd database.",
            {"users": "User accounts; names must be unique.", "groups": "Groups; names must be unique."},
            (),
        ),
        "PasswdUser": (
            "One user account.",
            {
                "name": "Login name.",
                "passwordHash": "Hashed password (crypt(3) format).",
                "sshAuthorizedKeys": (
                    "SSH public keys written to ~/.ssh/authorized_keys.d/ignition; unique.",
                    {"item": "One public key line."},
                ),
                "uid": "User id.",
                "gecos": "GECOS (comment) field.",
                "homeDir": "Home directory.",
                "noCreateHome": "Do not create the home directory (new accounts only).",
                "primaryGroup": "Name of the primary group.",
                "groups": ("Supplementary groups.", {"item": "A group name."}),
                "noUserGroup": "Do not create a group named after the user (new accounts only).",
                "noLogInit": "Do not add the user to lastlog/faillog (new accounts only).",
                "shell": "Login shell.",
                "shouldExist": ("False deletes the account.", {"default": True}),
                "system": "Create a system account (new accounts only).",
            },
            ("name",),
        ),
        "PasswdGroup": (
            "One group.",
            {
                "name": "Group name.",
                "gid": "Group id.",
                "passwordHash": "Hashed group password.",
                "shouldExist": ("False deletes the group.", {"default": True}),
                "system": "Create a system group (new groups only).",
            },
            ("name",),
        ),
        "KernelArguments": (
            "Kernel command-line arguments to ensure present or absent.",
            {
                "shouldExist": (
                    "Arguments that must be present.",
                    {"item": "An argument (or several, in order)."},
                ),
                "shouldNotExist": ("Arguments that must be absent.", {"item": "An argument."}),
            },
            (),
        ),
    }


def build(version: str) -> Schema:
    """The schema of one spec version, as a dict."""
    if version not in VERSIONS:
        raise ValueError(f"unknown spec version {version}")
    minor = int(version.split(".")[1])
    words = _words(minor, version)
    missing = set(table.IGNITION) - set(words)
    if missing:
        raise KeyError(f"no words for objects {sorted(missing)}")
    root = obj("Config", minor, words.pop("Config"))
    root["type"] = "object"  # the document itself cannot be null
    defs = {name: obj(name, minor, doc) for name, doc in words.items() if table.fields(name, minor)}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{ID_BASE}{version}.json",
        "title": f"Ignition config {version}",
        **root,
        "$defs": defs,
    }


def render(version: str) -> str:
    return to_text(build(version))


def main(argv: list[str]) -> int:
    return write_or_check(
        {HERE / f"{version}.json": render(version) for version in VERSIONS}, argv, Path(__file__).name
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
