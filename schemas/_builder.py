"""Schema constructors shared by the generators in schemas/ignition/ and schemas/butane/.

Every optional field also accepts ``null``: Go's decoder (Ignition) takes it for any field, and an
empty ``key:`` in YAML (Butane) decodes to it.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _scalar(kind: str, desc: str, **extra: Any) -> Schema:
    out: Schema = {"type": [kind, "null"], "description": desc}
    if "enum" in extra:
        extra["enum"] = [*extra["enum"], None]
    out.update(extra)
    return out


def string(desc: str, **extra: Any) -> Schema:
    return _scalar("string", desc, **extra)


def integer(desc: str, **extra: Any) -> Schema:
    return _scalar("integer", desc, **extra)


def boolean(desc: str, **extra: Any) -> Schema:
    return _scalar("boolean", desc, **extra)


def ref(name: str, desc: str) -> Schema:
    return {"$ref": f"#/$defs/{name}", "description": desc}


def array(items: Schema, desc: str, **extra: Any) -> Schema:
    return {"type": ["array", "null"], "description": desc, "items": items, **extra}


def refs(name: str, desc: str) -> Schema:
    return array({"$ref": f"#/$defs/{name}"}, desc)


def closed(desc: str, props: Schema, required: tuple[str, ...] = (), **extra: Any) -> Schema:
    """An object (or null) with exactly ``props``; of ``required``, those present in ``props``."""
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
