"""Schema constructors shared by the generators in schemas/ignition/ and schemas/butane/.

Every optional field also accepts ``null``: Go's decoder (Ignition) takes it for any field, and an
empty ``key:`` in YAML (Butane) decodes to it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Schema = dict[str, Any]


def to_text(schema: Schema) -> str:
    """A schema file's text: indented JSON, non-ASCII kept, a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_or_check(files: dict[Path, str], argv: list[str], generator: str) -> int:
    """Write the generated files, or with ``--check`` only report those whose text differs."""
    check = "--check" in argv
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run {generator}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


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
