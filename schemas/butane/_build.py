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

The pieces: ``_spec.py`` (Spec, derived from the translator's variant table in
butane_like/fields.py, and the shared constructors), ``_fetch.py`` (resources, the ignition
section), ``_storage.py``, ``_units.py``, ``_passwd.py``, ``_boot.py`` (boot_device, grub) and
``_pine.py`` (the pine extras); value lists (RAID levels, formats, hash functions, URL schemes, unit
suffixes) come from the Ignition field table, pineinstall/config/fields.py.

Conventions (the same as schemas/ignition/): every optional value may be ``null`` (Go's YAML
decoder accepts null for every field); list items may not (Butane drops them with a warning);
``additionalProperties: false`` everywhere, so a key from a later version is flagged.

    python schemas/butane/_build.py           # rewrite the files next to this script
    python schemas/butane/_build.py --check   # exit 1 if a committed file differs
"""

from __future__ import annotations

import sys
from pathlib import Path

# The shared constructors live one level up, the tables in the packages at the top, the parts of
# this generator next to it (run as a script or loaded by file path).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _boot import boot_fields
from _builder import Schema, ref, refs, to_text, write_or_check
from _editor import editor_schema
from _fetch import fetch_defs
from _passwd import passwd_defs
from _pine import pine_defs, pine_fields
from _spec import DRAFT, ID_BASE, SPECS, Field, Spec, file_name, obj, strings
from _storage import storage_defs
from _units import unit_defs

HERE = Path(__file__).resolve().parent


def _defs(s: Spec) -> dict[str, Schema]:
    """All definitions, in the order of the files' $defs."""
    return {
        **fetch_defs(s),
        **storage_defs(s),
        **unit_defs(s),
        **passwd_defs(s),
        **(pine_defs() if s.pine else {}),
    }


def _root(s: Spec) -> Schema:
    d = _defs(s)
    storage: list[Field] = [
        (True, "disks", refs("Disk", "Disks to partition (distinct devices).")),
        (True, "raid", refs("Raid", "Software RAID arrays (distinct names).")),
        (True, "filesystems", refs("Filesystem", "Filesystems (distinct devices).")),
        (True, "files", refs("File", "Files (paths distinct across files, directories and links).")),
        (True, "directories", refs("Directory", "Directories.")),
        (True, "links", refs("Link", "Links.")),
        (s.has("Storage", "luks"), "luks", refs("Luks", "LUKS volumes (distinct names).")),
        (
            s.has("Storage", "trees"),
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
            obj(
                "systemd units and Podman quadlets." if s.has("Systemd", "quadlets") else "systemd units.",
                [
                    (True, "units", refs("Unit", "Units (distinct names).")),
                    (
                        s.has("Systemd", "quadlets"),
                        "quadlets",
                        refs("Quadlet", "Podman quadlets, written under /etc/containers/systemd."),
                    ),
                ],
            ),
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
            s.has("Config", "kernel_arguments"),
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
    fields += boot_fields(s)
    if s.pine:
        fields += pine_fields()

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
    return to_text(_root(s))


def render_editor(s: Spec) -> str:
    return to_text(editor_schema(_root(s), s.variant, s.version))


def main(argv: list[str]) -> int:
    (HERE / "editor").mkdir(exist_ok=True)
    files = {HERE / file_name(s): render(s) for s in SPECS}
    files.update({HERE / "editor" / file_name(s): render_editor(s) for s in SPECS})
    return write_or_check(files, argv, Path(__file__).name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
