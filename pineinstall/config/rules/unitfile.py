"""Parse systemd unit text the way Ignition's validator does (go-systemd's unit deserializer).

Only the decisions matter here: which texts are rejected, with which message, and which
section each option lands in (to see whether an enabled unit has an ``[Install]`` section).
Written from the deserializer's observable behaviour; lines are scanned from a cursor exactly
as that lexer advances through the text.
"""

from __future__ import annotations

from ..gocompat import go_quote

LINE_MAX = 2048


class UnitError(Exception):
    pass


def parse_unit(content: str) -> list[tuple[str, str, str]]:
    """Return the (section, name, value) options of a unit; raise UnitError with the message."""
    options = _parse_plain(content)
    return parse_unit_exact(content) if options is None else options


# A plain unit (see _parse_plain) in one match: comment or empty lines, a clean [section] line,
# then empty, comment, section and name=value lines (name not starting with white space, "[", "#",
# ";" or "="). Used with _parse_plain's checks for "\r", "\\" and long lines.
_PLAIN_UNIT = None
_INSTALL_OPTION = None


def has_install_option(content: str) -> bool | None:
    """Whether a unit has an option in an [Install] section; None when the text is not plainly
    valid (then ``parse_unit`` decides). One regular expression for the half a million units of
    a huge config, rather than a Python step per line."""
    global _PLAIN_UNIT, _INSTALL_OPTION
    if _PLAIN_UNIT is None:
        import re  # loaded by json already

        _PLAIN_UNIT = re.compile(
            r"(?:(?:[#;][^\n]*)?\n)*\[[^\]\n]*\](?:\n(?:[#;][^\n]*|\[[^\]\n]*\]|[^\s\[#;=][^=\n]*=[^\n]*)?)*"
        )
        _INSTALL_OPTION = re.compile(r"^\[Install\]\n(?:(?:[#;][^\n]*)?\n)*[^\s\[#;=]", re.M)
    if "\r" in content or "\\" in content or _PLAIN_UNIT.fullmatch(content) is None:
        return None
    if len(content) >= LINE_MAX // 4 and max(map(len, content.split("\n"))) >= LINE_MAX // 4:
        return None
    assert _INSTALL_OPTION is not None
    return "[Install]" in content and _INSTALL_OPTION.search(content) is not None


def _parse_plain(content: str) -> list[tuple[str, str, str]] | None:
    """The options of a plain unit, line by line; None when the text may need the exact lexer.

    Plain: no "\\r", no backslash (no continuation), no line of LINE_MAX / 4 characters (no
    length error), and every line empty, a comment, a clean ``[section]`` line or, after the
    first section, ``name=value`` not starting with whitespace. The lexer reads such text
    line by line too, so the options are the same.
    """
    if "\r" in content or "\\" in content:
        return None
    lines = content.split("\n")
    if max(map(len, lines)) >= LINE_MAX // 4:
        return None
    options: list[tuple[str, str, str]] = []
    section = None
    for line in lines:
        if not line:
            continue
        first = line[0]
        if first == "[":
            end = line.find("]")
            if end != len(line) - 1 and (end < 0 or line[end + 1 :].strip()):
                return None
            section = line[1:end]
        elif first == "#" or first == ";":
            continue
        elif section is None or first.isspace():
            return None
        else:
            name, eq, value = line.partition("=")
            if not eq:
                return None
            options.append((section, name.strip(), value.strip()))
    return options


def parse_unit_exact(content: str) -> list[tuple[str, str, str]]:
    """The lexer's walk through any text, with its errors (parse_unit's reference)."""
    data = content
    n = len(data)
    pos = 0
    options: list[tuple[str, str, str]] = []

    def to_eol() -> tuple[str, bool]:
        nonlocal pos
        nl = data.find("\n", pos)
        if nl < 0:
            line, pos = data[pos:], n
            eof = True
        else:
            line, pos = data[pos : nl + 1], nl + 1
            eof = False
        # the deserializer trims "\r" before "\n": a CRLF line keeps its "\r"
        if line.endswith("\r"):
            line = line[:-1]
        if line.endswith("\n"):
            line = line[:-1]
        return line, eof

    next_break = -1  # index of the next line break at or after pos (cached: this runs per step)

    def check_line_length() -> None:
        # the deserializer refuses a run of LINE_MAX bytes without a line break
        nonlocal next_break
        if n - pos < LINE_MAX // 4:
            return
        if next_break < pos:
            nl, cr = data.find("\n", pos), data.find("\r", pos)
            next_break = n if nl < 0 else nl
            if 0 <= cr < next_break:
                next_break = cr
        if next_break - pos >= LINE_MAX or (
            next_break - pos >= LINE_MAX // 4 and len(data[pos:next_break].encode()) >= LINE_MAX
        ):
            raise UnitError(f"line too long (max {LINE_MAX} bytes)")

    def skip_comment() -> None:
        while True:
            line, _ = to_eol()
            if not line.rstrip(" ").endswith("\\") or pos >= n:
                break

    section: str | None = None
    while True:
        check_line_length()
        if pos >= n:
            return options
        ch = data[pos]
        pos += 1
        if ch == "[":
            section = _read_section(data, pos)
            pos += len(section) + 1
            garbage, _ = to_eol()
            if garbage.strip():
                raise UnitError(f"found garbage after section name : {go_quote(garbage.strip())}")
            continue
        if ch in "#;":
            skip_comment()
            continue
        if section is None or ch.isspace():  # before the first section, anything else is ignored
            continue
        pos -= 1
        name_start = pos
        while True:
            if pos >= n:
                raise UnitError("EOF")
            c = data[pos]
            pos += 1
            if c in "\r\n":
                raise UnitError("unexpected newline encountered while parsing option name")
            if c == "=":
                break
        name = data[name_start : pos - 1].strip()
        value_parts: list[str] = []
        while True:
            check_line_length()
            line, eof = to_eol()
            if not line.strip():
                break
            value_parts.append(line)
            idx = line.rfind("\\")
            if idx == -1 or idx != len(line) - 1:
                break
            if not eof:
                value_parts.append("\n")
        options.append((section, name, "".join(value_parts).strip()))


def _read_section(data: str, pos: int) -> str:
    end = data.find("]", pos)
    if end < 0:
        raise UnitError("unable to find end of section")
    return data[pos:end]
