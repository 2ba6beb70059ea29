"""What one Butane-like variant/version offers (``Spec``), and the schema pieces shared by the
modules of schemas/butane/_build.py. The variants and versions come from the translator's table
(``butane_like/fields.py``), the value lists from the Ignition field table
(``pineinstall/config/fields.py``)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from _builder import Schema, array, closed, integer, string

from butane_like import fields as butane_fields
from pineinstall.config import fields as table

ID_BASE = "https://pine.example/schemas/butane/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

Version = tuple[int, int]


class Spec(NamedTuple):
    """What one variant/version offers: which fields exist comes from the translator's table
    (``has``); the switches below gate whole sections and wording."""

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

    def has(self, obj: str, key: str) -> bool:
        """Whether the translator's field table (butane_like/fields.py) takes ``key`` in ``obj`` here."""
        return key in _translator_spec(self.variant, self.version).fields(obj)


_translator_spec = functools.cache(butane_fields.Spec)


def _spec(variant: str, version: str, ign: str, base: int, fcos: int) -> Spec:
    """A Spec from the translator's variant and field tables."""
    layouts: tuple[str, ...] = ()
    if fcos >= 3:  # boot_device arrived with fcos 1.3.0, the s390x layouts with 1.6.0
        s390x = butane_fields.LAYOUTS_S390X if fcos >= 6 else ()
        layouts = tuple(sorted(butane_fields.LAYOUTS_LEGACY + s390x))
    major, minor, _ = ign.split(".")
    top = _translator_spec(variant, version).fields("Config")
    return Spec(
        variant,
        version,
        (int(major), int(minor)),
        base,
        boot_device="boot_device" in top,
        grub="grub" in top,
        clevis=variant != "flatcar",
        layouts=layouts,
        pine=variant == "pine",
    )


SPECS: tuple[Spec, ...] = tuple(
    _spec(variant, version, ign, base, fcos)
    for variant, versions in butane_fields.VARIANTS.items()
    for version, (ign, base, fcos, _go_package) in versions.items()
)


def file_name(spec: Spec) -> str:
    return f"{spec.variant}-{spec.version}.json"


# --- small constructors -------------------------------------------------------------------------
# A field is (present, name, schema); ``obj`` drops the fields whose gate is false.


def strings(desc: str, item_desc: str, **item_extra: Any) -> Schema:
    return array({"type": "string", "description": item_desc, **item_extra}, desc)


Field = tuple[bool, str, Schema]


def obj(desc: str, fields: list[Field], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object of the fields whose gate is true."""
    return closed(desc, {name: schema for present, name, schema in fields if present}, required, **extra)


def exclusive(*names: str) -> Schema:
    """`not` clause: at most one of ``names`` may be given (null counts as absent)."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    given = {"not": {"type": "null"}}
    return {"not": {"anyOf": [{"required": [a, b], "properties": {a: given, b: given}} for a, b in pairs]}}


ABS_PATH = "^/"


# --- shared pieces ------------------------------------------------------------------------------


def schemes(s: Spec) -> str:
    return ", ".join(f"`{n}`" for n, since in table.URL_SCHEMES.items() if since <= s.ign[1])


def digest(s: Spec) -> Schema:
    functions = [(f, n) for f, (n, since) in table.HASH_FUNCTIONS.items() if since <= s.ign[1]]
    alternatives = "|".join(f"{f}-[0-9a-fA-F]{{{n}}}" for f, n in functions)
    if len(functions) > 1:
        return string(
            "Expected digest of the (decompressed) data, written `<function>-<hex>` with function "
            "sha512 or sha256. Ignition refuses data that does not match.",
            pattern=f"^({alternatives})$",
            examples=["sha256-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
        )
    return string(
        "Expected digest of the (decompressed) data, written `sha512-<hex>` (this version knows "
        "only sha512). Ignition refuses data that does not match.",
        pattern=f"^{alternatives}$",
    )


def mode(s: Spec, kind: str, default: int) -> Schema:
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


def owner(who: str) -> Schema:
    return obj(
        f"The {who} owning the node, given by number or by name (not both).",
        [
            (True, "id", integer(f"Numeric {who} id.", minimum=0)),
            (True, "name", string(f"{who.capitalize()} name, resolved in the target's databases.")),
        ],
        **exclusive("id", "name"),
    )


def headers() -> Schema:
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


def resource(s: Spec, what: str, *, sugar: bool, source_required: bool = False) -> Schema:
    """A fetched blob: remote `source`, or Butane's `inline`/`local` which become a data URL."""
    fields: list[Field] = [
        (
            True,
            "source",
            string(
                f"URL of the {what}; schemes {schemes(s)}. Prefer a `verification` hash with plain "
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
                enum=["", *table.COMPRESSIONS],
            ),
        ),
        (s.has("Resource", "http_headers"), "http_headers", headers()),
        (
            True,
            "verification",
            obj("How to check the fetched data.", [(True, "hash", digest(s))]),
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


def is_true(key: str) -> Schema:
    return {"required": [key], "properties": {key: {"const": True}}}


def mount_unit_rules(s: Spec) -> list[Schema]:
    """with_mount_unit needs a format, and a path unless it is swap (under /etc or /var from 1.6)."""
    path: Schema = {"type": "string"}
    if s.base >= 6:
        path["pattern"] = "^/(etc|var)(/|$)"
    needs_path: Schema = is_true("with_mount_unit")
    if s.base >= 4:  # swap units exist from fcos 1.4.0 on
        needs_path = {
            "required": ["with_mount_unit"],
            "properties": {"with_mount_unit": {"const": True}, "format": {"not": {"const": "swap"}}},
        }
    return [
        {
            "if": is_true("with_mount_unit"),
            "then": {"required": ["format"], "properties": {"format": {"type": "string"}}},
        },
        {"if": needs_path, "then": {"required": ["path"], "properties": {"path": path}}},
    ]
