"""Go's text conventions our messages reproduce byte for byte (Ignition and Butane are Go):
``%q`` quoting and syscall error texts.

Shared by the Ignition checker (``pineinstall.config.rules``) and the Butane translator
(``butane_like``): one implementation, nothing imported at load: cheap on the start-up path of both.
"""

from __future__ import annotations


def go_quote(data: str) -> str:
    """Go's %q of a byte string (enough for ASCII and UTF-8 text)."""
    out = ['"']
    for ch in data:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o >= 0x80 and not ch.isprintable():
            out.append(f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_errno_text(e: OSError) -> str:
    """Go's lowercase syscall error text ("no such file or directory")."""
    import os

    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]
