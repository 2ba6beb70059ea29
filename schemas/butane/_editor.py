"""The editor schemas (``schemas/butane/editor/``): the strict schemas loosened to what Butane
accepts without ``--strict``, as real YAML clients type it.

The strict files next to this one describe what ``pine-transpile --strict`` accepts: an unknown key
is an error. Butane itself only *warns* about a key it does not use (a typo, a key of a later
version or of another variant), and editors and checkers (yaml-language-server, check-jsonschema,
ajv) read YAML 1.2, where Go's yaml.v3 (Butane's reader) also takes YAML 1.1 spellings. So, for
editors, every strict schema is rewritten:

- no ``additionalProperties: false``: an unknown key is accepted (Butane warns and ignores it); the
  known keys still complete and show their descriptions;
- a boolean may also be written as YAML 1.1 words (``yes``, ``on``, ``n`` ...), which a YAML 1.2
  client reads as strings;
- a mode may be the decimal reading of a leading-zero octal (``04755`` is 4755 to YAML 1.2, 2541 to
  Butane), so the maximum is 7777, and ``0o750`` may arrive as a string from a YAML 1.1 client.

Multi-document files need nothing here: Butane reads the first document, yaml-language-server
checks each against the schema its modeline names.
"""

from __future__ import annotations

from typing import Any

# yaml.v3 decodes these into a bool field (YAML 1.1's bool words); YAML 1.2 clients see strings.
YAML11_BOOLS = sorted(
    {w for base in ("y", "yes", "n", "no", "true", "false", "on", "off") for w in (base, base.capitalize(), base.upper())}
)
MODE_MAX = 0o7777
OCTAL_STRING = "^0o[0-7]{1,4}$"
EDITOR_ID_BASE = "urn:pineinstall:schema:butane:"


def loosen(node: Any) -> Any:
    if isinstance(node, list):
        return [loosen(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: loosen(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    types = out.get("type")
    types = [types] if isinstance(types, str) else types
    if isinstance(types, list) and "boolean" in types:
        return _either(out, {"type": "string", "enum": YAML11_BOOLS})
    if out.get("maximum") == MODE_MAX:
        out["maximum"] = 7777  # 07777 read as YAML 1.2 decimal
        return _either(out, {"type": "string", "pattern": OCTAL_STRING})
    return out


def _either(schema: dict[str, Any], alternative: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or ``alternative``; the description stays on the outside for hovers."""
    inner = dict(schema)
    outer: dict[str, Any] = {k: inner.pop(k) for k in ("description", "default") if k in inner}
    return {**outer, "anyOf": [inner, alternative]}


def editor_schema(strict: dict[str, Any], variant: str, version: str) -> dict[str, Any]:
    out = loosen(strict)
    out["$id"] = f"{EDITOR_ID_BASE}{variant}:{version}"
    out["title"] = strict["title"] + ", for editors"
    out["description"] = (
        strict["description"] + " Editor schema: as loose as Butane without --strict (unknown keys, "
        "which Butane warns about, are accepted; YAML 1.1 spellings of booleans and modes too)."
    )
    return out
