"""Go's JSON syntax errors, for the configs Python's decoder refuses.

Ignition reports a config that is not JSON with Go's words (``invalid character '}' after array
element``) at the place Go's scanner stopped: the byte *after* the offending one, counted in bytes,
and ``line 0 col 0`` when that is the end of the input. Python words and places its errors
otherwise, and accepts ``NaN`` and ``Infinity``; so on that path the text is scanned again by this
small copy of the state machine of Go's ``encoding/json/scanner.go``. It runs only for invalid
configs: valid ones are decoded by ``json`` alone.
"""

from __future__ import annotations

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'bfnrt\\/"'
_MAX_DEPTH = 10000
_LITERALS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}

# What the scanner waits for inside a container (Go's parseState values).
_OBJECT_KEY, _OBJECT_VALUE, _ARRAY_VALUE = range(3)


def quote_char(c: int) -> str:
    """Go's quoteChar: the byte as a rune in single quotes, escaped as strconv.Quote does."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    named = {92: "\\\\", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}
    if c in named:
        return f"'{named[c]}'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    ch = chr(c)
    return f"'{ch}'" if ch.isprintable() else f"'\\u{c:04x}'"


def syntax_error(data: bytes) -> tuple[str, int] | None:
    """Go's message and offset (bytes read, the offending byte included) for invalid JSON, or None
    when Go's scanner accepts ``data``."""
    stack: list[int] = []
    i, n = 0, len(data)

    def err(at: int, context: str) -> tuple[str, int]:
        return f"invalid character {quote_char(data[at])} {context}", at + 1

    def skip_space(at: int) -> int:
        while at < n and data[at] in _SPACE:
            at += 1
        return at

    def end_of_input() -> tuple[str, int]:
        return "unexpected end of JSON input", n

    # The scanner alternates between reading one value and what may follow it.
    want_value = True
    while True:
        if want_value:
            i = skip_space(i)
            if i >= n:
                return end_of_input()
            c = data[i]
            if c == ord("{") or c == ord("["):
                if len(stack) >= _MAX_DEPTH:
                    return err(i, "exceeded max depth")
                i = skip_space(i + 1)
                if i >= n:
                    return end_of_input()
                if c == ord("{"):
                    stack.append(_OBJECT_KEY)
                    if data[i] == ord("}"):
                        stack.pop()
                        i += 1
                        want_value = False
                        continue
                    if data[i] != ord('"'):
                        return err(i, "looking for beginning of object key string")
                    continue  # the key is read as a value, then ':' is expected
                stack.append(_ARRAY_VALUE)
                if data[i] == ord("]"):
                    stack.pop()
                    i += 1
                    want_value = False
                continue
            if c == ord('"'):
                got = _string(data, i + 1, err)
            elif c == ord("-") or c in _DIGITS:
                got = _number(data, i, err)
            elif c in _LITERALS:
                got = _literal(data, i, _LITERALS[c], err)
            else:
                return err(i, "looking for beginning of value")
            if isinstance(got, tuple):
                return got
            i = got
            want_value = False
            continue
        # after a value
        i = skip_space(i)
        if not stack:
            if i < n:
                return err(i, "after top-level value")
            return None
        if i >= n:
            return end_of_input()
        c, top = data[i], stack[-1]
        if top == _OBJECT_KEY:
            if c != ord(":"):
                return err(i, "after object key")
            stack[-1] = _OBJECT_VALUE
            i += 1
            want_value = True
        elif top == _OBJECT_VALUE:
            if c == ord(","):
                stack[-1] = _OBJECT_KEY
                i = skip_space(i + 1)
                if i >= n:
                    return end_of_input()
                if data[i] != ord('"'):
                    return err(i, "looking for beginning of object key string")
                want_value = True
            elif c == ord("}"):
                stack.pop()
                i += 1
            else:
                return err(i, "after object key:value pair")
        else:
            if c == ord(","):
                i += 1
                want_value = True
            elif c == ord("]"):
                stack.pop()
                i += 1
            else:
                return err(i, "after array element")


def _at_end(data: bytes, context: str) -> tuple[str, int]:
    """Input ending inside a token: Go's scanner steps a space through the state it was in."""
    return f"invalid character ' ' {context}", len(data)


def _string(data: bytes, i: int, err) -> int | tuple[str, int]:
    """The index after a string whose opening quote is before ``i``."""
    n = len(data)
    while i < n:
        c = data[i]
        if c == ord('"'):
            return i + 1
        if c == ord("\\"):
            i += 1
            if i >= n:
                return _at_end(data, "in string escape code")
            if data[i] == ord("u"):
                for k in range(1, 5):
                    if i + k >= n:
                        return _at_end(data, "in \\u hexadecimal character escape")
                    if data[i + k] not in _HEX:
                        return err(i + k, "in \\u hexadecimal character escape")
                i += 5
                continue
            if data[i] not in _ESCAPES:
                return err(i, "in string escape code")
        elif c < 0x20:
            return err(i, "in string literal")
        i += 1
    return "unexpected end of JSON input", n


def _number(data: bytes, i: int, err) -> int | tuple[str, int]:
    n = len(data)

    def digits(at: int) -> int:
        while at < n and data[at] in _DIGITS:
            at += 1
        return at

    if data[i] == ord("-"):
        i += 1
        if i >= n:
            return _at_end(data, "in numeric literal")
        if data[i] not in _DIGITS:
            return err(i, "in numeric literal")
    i = i + 1 if data[i] == ord("0") else digits(i)
    if i < n and data[i] == ord("."):
        i += 1
        if i >= n:
            return _at_end(data, "after decimal point in numeric literal")
        if data[i] not in _DIGITS:
            return err(i, "after decimal point in numeric literal")
        i = digits(i)
    if i < n and data[i] in b"eE":
        i += 1
        if i < n and data[i] in b"+-":
            i += 1
        if i >= n:
            return _at_end(data, "in exponent of numeric literal")
        if data[i] not in _DIGITS:
            return err(i, "in exponent of numeric literal")
        i = digits(i)
    return i


def _literal(data: bytes, i: int, word: bytes, err) -> int | tuple[str, int]:
    for k in range(1, len(word)):
        context = f"in literal {word.decode()} (expecting {quote_char(word[k])})"
        if i + k >= len(data):
            return _at_end(data, context)
        if data[i + k] != word[k]:
            return err(i + k, context)
    return i + len(word)


def line_col(data: bytes, offset: int) -> tuple[int, int]:
    """Where Ignition places an offset: the line and byte column of the byte at ``offset``, or
    (0, 0) past the end (its position walk never reaches it)."""
    if offset >= len(data):
        return 0, 0
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1
