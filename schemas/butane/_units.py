"""Definitions of systemd units and drop-ins."""

from __future__ import annotations

from _builder import Schema, boolean, refs, string
from _spec import Spec, exclusive, obj

from pineinstall.config import fields as table


def unit_defs(s: Spec) -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    dropin_local = s.has("Dropin", "contents_local")
    unit_local = s.has("Unit", "contents_local")
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
                string("Text of the drop-in." + (" Excludes `contents_local`." if dropin_local else "")),
            ),
            (
                dropin_local,
                "contents_local",
                string(
                    "Path of a file with the drop-in's text, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
        ],
        required=("name",),
        **(exclusive("contents", "contents_local") if dropin_local else {}),
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
                    "pattern": r"\.(" + "|".join(e[1:] for e in table.UNIT_EXTENSIONS) + ")$",
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
                string("Text of the unit file." + (" Excludes `contents_local`." if unit_local else "")),
            ),
            (
                unit_local,
                "contents_local",
                string(
                    "Path of a file with the unit's text, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
            (True, "dropins", refs("Dropin", "Drop-ins for the unit (distinct names).")),
        ],
        required=("name",),
        **(exclusive("contents", "contents_local") if unit_local else {}),
    )
    if s.has("Systemd", "quadlets"):
        d["Quadlet"] = quadlet_def()
    return d


def quadlet_def() -> Schema:
    """A Podman quadlet (base v0_8_exp): a file, or for a template instance a link to its template."""
    extensions = "container|volume|network|kube|image|build|pod|artifact"
    return obj(
        "A Podman quadlet, written to /etc/containers/systemd/users (or /etc/containers/systemd when "
        "rootful); a template instance (`name@x.container`) becomes a link to its template.",
        [
            (True, "contents", string("Text of the quadlet file. Excludes `contents_local`.")),
            (
                True,
                "contents_local",
                string(
                    "Path of a file with the quadlet's text, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
            (
                True,
                "name",
                {
                    "type": "string",
                    "description": "File name of the quadlet with its type suffix, e.g. `web.container`.",
                    "pattern": r"\.(" + extensions + ")$",
                },
            ),
            (True, "rootful", boolean("true writes the quadlet under /etc/containers/systemd.")),
            (True, "dropins", refs("Dropin", "Drop-ins for the quadlet, written under NAME.d/.")),
        ],
        required=("name",),
        **exclusive("contents", "contents_local"),
    )
