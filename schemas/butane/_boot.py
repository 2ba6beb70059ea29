"""boot_device and grub: the fcos-style sugar at the top level of a config."""

from __future__ import annotations

from _builder import Schema, array, boolean, integer, refs, string
from _spec import ABS_PATH, Field, Spec, is_true, obj, strings

from butane_like import fields as butane_fields


def _boot_device_rules() -> list[Schema]:
    """s390x layouts (fcos 1.6.0 on): the LUKS device prefix, and CEX only there, without Clevis."""
    s390x = list(butane_fields.LAYOUTS_S390X)

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
                "properties": {"luks": {"required": ["cex"], "properties": {"cex": is_true("enabled")}}},
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


def boot_fields(s: Spec) -> list[Field]:
    """The top-level boot_device and grub fields, where the variant/version has them."""
    fields: list[Field] = []
    if s.boot_device:
        bd_luks: list[Field] = [
            (
                s.has("BootDeviceLuks", "device"),
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
                s.has("BootDeviceLuks", "discard"),
                "discard",
                boolean(
                    "Pass discards (TRIM) through to the disk; reveals which blocks are in use.",
                    default=False,
                ),
            ),
            (
                s.has("BootDeviceLuks", "cex"),
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
    return fields
