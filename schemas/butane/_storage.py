"""Definitions of the `storage` section: disks, RAID, filesystems, files, directories, links, LUKS,
trees."""

from __future__ import annotations

from _builder import Schema, boolean, integer, ref, refs, string
from _spec import ABS_PATH, Field, Spec, is_true, mode, mount_unit_rules, obj, owner, strings

from pineinstall.config import fields as table


def _node_fields(what: str, overwrite: str, *own: Field) -> list[Field]:
    """A node's fields as Ignition's Node struct gives them to files, directories and links: path and
    overwrite, the kind's own fields, then user and group."""
    path = {"type": "string", "description": f"Absolute path of the {what}.", "pattern": ABS_PATH}
    return [
        (True, "path", path),
        (True, "overwrite", boolean(overwrite, default=False)),
        *own,
        (True, "user", owner("user")),
        (True, "group", owner("group")),
    ]


def storage_defs(s: Spec) -> dict[str, Schema]:
    d: dict[str, Schema] = {}
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
                s.has("Partition", "resize"),
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
                    enum=list(table.RAID_LEVELS),
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
    formats = table.filesystem_formats(s.ign[1])
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
                s.has("Filesystem", "mount_options"),
                "mount_options",
                strings("Options for mounting it (also put into a generated mount unit).", "One option."),
            ),
            (s.has("Filesystem", "with_mount_unit"), "with_mount_unit", boolean(mount_unit, default=False)),
        ],
        required=("device",),
        **({"allOf": mount_unit_rules(s)} if s.base >= 2 else {}),
    )
    d["File"] = obj(
        "A regular file.",
        _node_fields(
            "file",
            "Replace whatever exists at `path`; needs `contents`.",
            (True, "contents", ref("FileContents", "What the file contains.")),
            (True, "append", refs("FileContents", "Fragments appended to the file, in order.")),
            (True, "mode", mode(s, "file", 0o644)),
        ),
        required=("path",),
        # overwriting needs something to write
        **{
            "if": is_true("overwrite"),
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
        _node_fields(
            "directory",
            "Remove a non-directory found at `path`. Without it an existing directory only "
            "gets its mode and owner set, and anything else there is an error.",
            (True, "mode", mode(s, "directory", 0o755)),
        ),
        required=("path",),
    )
    d["Link"] = obj(
        "A symbolic or hard link.",
        _node_fields(
            "link",
            "Replace whatever exists at `path`.",
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
        ),
        required=("path",),
    )
    if s.has("Storage", "luks"):  # Tang and Luks are reachable only from storage.luks
        d["Tang"] = obj(
            "A Tang server for network-bound decryption.",
            [
                (True, "url", {"type": "string", "description": "URL of the Tang server."}),
                (True, "thumbprint", string("Thumbprint of a trusted signing key of the server.")),
                (
                    s.has("Tang", "advertisement"),
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
                    s.has("Luks", "discard"),
                    "discard",
                    boolean(
                        "Pass discards (TRIM) through: faster on SSDs and thin storage, but it reveals "
                        "which blocks are in use.",
                        default=False,
                    ),
                ),
                (
                    s.has("Luks", "open_options"),
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
                (s.has("Luks", "cex"), "cex", cex),
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
            (s.base >= 7, "user", owner("user")),
            (s.base >= 7, "group", owner("group")),
            (s.base >= 7, "file_mode", mode(s, "files of the tree", 0o644)),
            (
                s.base >= 7,
                "dir_mode",
                mode(
                    s,
                    "directories of the tree (an entry is made for each when this or an owner is set)",
                    0o755,
                ),
            ),
        ],
        required=("local",),
    )
    return d
