"""GRUB's environment block (``grubenv``): a 1024-byte file of ``name=value`` lines padded with ``#``.

As GRUB's envblk code does, a backslash or newline inside a value is written preceded by a backslash.
"""

from __future__ import annotations

HEADER = "# GRUB Environment Block\n"
SIZE = 1024


def parse(data: bytes) -> dict[str, str]:
    text = data.decode("utf-8", "surrogateescape")
    if not text.startswith(HEADER):
        raise ValueError("not a GRUB environment block (missing header)")
    env: dict[str, str] = {}
    line: list[str] = []
    escaped = False
    for ch in text[len(HEADER) :] + "\n":
        if escaped:
            line.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "\n":
            entry = "".join(line)
            line = []
            if entry and not entry.startswith("#"):
                name, sep, value = entry.partition("=")
                if sep:
                    env[name] = value
        else:
            line.append(ch)
    return env


def comments(data: bytes) -> list[str]:
    """The comment lines after the header (grub-editenv writes a warning), padding excluded."""
    text = data.decode("utf-8", "surrogateescape")[len(HEADER) :]
    return [ln for ln in text.split("\n") if ln.startswith("#") and ln.strip("#")]


def render(env: dict[str, str], size: int = SIZE, notes: list[str] | None = None) -> bytes:
    def esc(value: str) -> str:
        return "".join("\\" + ch if ch in "\\\n" else ch for ch in value)

    head = HEADER + "".join(f"{n}\n" for n in notes or [])
    raw = (head + "".join(f"{k}={esc(v)}\n" for k, v in env.items())).encode("utf-8", "surrogateescape")
    if len(raw) > size:
        raise ValueError(f"GRUB environment block overflows its {size} bytes")
    return raw + b"#" * (size - len(raw))
