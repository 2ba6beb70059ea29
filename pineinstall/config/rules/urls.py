"""URL checks with the outcomes of Go's ``net/url.Parse`` and of the data-URL parser Ignition uses.

ignition-validate reports "unable to parse url" exactly when Go's parser fails, and a data URL
that does not decode yields the decoder's own message (``missing media type slash``,
``illegal base64 data at input byte 3``...). This module reproduces those decisions on plain
strings; it is written from the behaviour of those parsers, not from their code.
"""

from __future__ import annotations

import re  # already loaded by json: free on the start-up path

from ..fields import URL_SCHEMES

ERR_INVALID_SCHEME = "invalid url scheme"
ERR_INVALID_URL = "unable to parse url"
ERR_S3_VERSION = "invalid S3 object VersionId"
ERR_S3_ARN = "invalid S3 ARN format"

_HEX = set("0123456789abcdefABCDEF")

# Fast whole-string checks (a config may hold thousands of URLs); the character-by-character
# code below still decides which message an invalid string gets.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '<>#"{}|\\^[]`')
_URL_DATA = re.compile("[" + re.escape(_URL_CHARS) + "]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_B64_DATA = re.compile(r"[A-Za-z0-9+/=]*")
_ALNUM = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# Characters Go accepts unescaped in a host name (besides letters and digits).
_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~%")
_PLAIN_HOST = re.compile(r"[A-Za-z0-9._~-]*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# The URLs nearly every config holds, which Go's parser and the data-URL decoder both accept:
# matched whole in C instead of parsed character by character (500,000 of them take 0.3 s, not 8).
_PLAIN_WEB = re.compile(
    r"(https?|tftp|gs)://[A-Za-z0-9._~-]*(?::[0-9]*)?(?:/[A-Za-z0-9._~!$&'()*+,;=:@/-]*)?"
)
# possessive runs (no "%" in the class, so nothing to give back): half the time of one char per step
_PLAIN_DATA = re.compile("data:,(?:[" + re.escape(_URL_CHARS.replace("%", "")) + "]++|%[0-9A-Fa-f]{2})*+")
_BASE64_DATA = re.compile(r"data:;base64,([A-Za-z0-9+/=]*)")


class URLError(Exception):
    pass


class GoURL:
    __slots__ = ("host", "opaque", "query", "scheme")

    def __init__(self, scheme: str, opaque: str, host: str, query: str) -> None:
        self.scheme = scheme
        self.opaque = opaque
        self.host = host
        self.query = query


def _unescape(s: str, host: bool = False) -> None:
    """Raise when Go's unescape would fail for a path, fragment or host."""
    if "%" not in s and (not host or _PLAIN_HOST.fullmatch(s)):
        return  # the common case: nothing to unescape, no character to refuse
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError("invalid URL escape")
            if host and int(s[i + 1], 16) < 8 and s[i : i + 3] != "%25":
                raise URLError("invalid URL escape")
            i += 3
            continue
        if host and ord(c) < 0x80 and c not in _ALNUM and c not in _HOST_OK:
            raise URLError("invalid character in host name")
        i += 1


def _valid_port(port: str) -> bool:
    if port == "":
        return True
    return port[0] == ":" and all(ch in "0123456789" for ch in port[1:])


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise URLError("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise URLError("invalid port")
        zone = host.find("%25", 0, end)
        if zone >= 0:
            _unescape(host[:zone], host=True)
            _unescape(host[zone:end], host=False)
            _unescape(host[end:], host=True)
            return host
    else:
        colon = host.rfind(":")
        if colon != -1 and not _valid_port(host[colon:]):
            raise URLError("invalid port")
    _unescape(host, host=True)
    return host


def go_url_parse(raw: str) -> GoURL:
    """Parse like Go's url.Parse; raise URLError where it returns an error."""
    rest, _, fragment = raw.partition("#")
    # only the part before the fragment is checked for control characters
    if _CONTROL.search(rest):
        raise URLError("invalid control character in URL")
    scheme = ""
    # A letter, then letters, digits, "+-."; up to a colon. Anything else first: no scheme.
    m = _SCHEME.match(rest)
    if m:
        scheme, rest = m.group(1).lower(), rest[m.end() :]
    elif rest.startswith(":"):
        raise URLError("missing protocol scheme")
    query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest, _, query = rest.partition("?")
    host = ""
    opaque = ""
    if not rest.startswith("/"):
        if scheme:
            opaque = rest
            _unescape(fragment)
            return GoURL(scheme, opaque, host, query)
        first = rest.split("/", 1)[0]
        if ":" in first:
            raise URLError("first path segment in URL cannot contain colon")
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        at = authority.rfind("@")
        if at >= 0:
            userinfo = authority[:at]
            for ch in userinfo:
                if not (ch in _ALNUM or ch in "-._:~!$&'()*+,;=%@"):
                    raise URLError("invalid userinfo")
            _unescape(userinfo)
        host = _parse_host(authority[at + 1 :])
    _unescape(rest)
    _unescape(fragment)
    return GoURL(scheme, opaque, host, query)


def _query_values(query: str, key: str) -> list[str] | None:
    """Values of ``key`` as Go's url.Values from ParseQuery (bad pairs are skipped)."""
    from urllib.parse import unquote_plus  # lazy: only s3/arn URLs need it

    values: list[str] | None = None
    for part in query.split("&"):
        if part == "" or ";" in part:
            continue
        k, _, v = part.partition("=")
        try:
            _strict_unescape(k)
            _strict_unescape(v)
        except URLError:
            continue
        if unquote_plus(k) == key:
            values = (values or []) + [unquote_plus(v)]
    return values


def _strict_unescape(s: str) -> None:
    i = 0
    while i < len(s):
        if s[i] == "%":
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError("invalid URL escape")
            i += 3
        else:
            i += 1


def _s3_version_error(query: str) -> str | None:
    values = _query_values(query, "versionId")
    if values is not None and (not values or values[0] == ""):
        return ERR_S3_VERSION
    return None


def _arn_error(u: GoURL) -> str | None:
    full = "arn:" + u.opaque
    if full.count(":") < 5:
        return ERR_S3_ARN
    sections = full.split(":", 5)
    if sections[1] == "":
        return "arn: invalid partition"
    if sections[2] == "":
        return "arn: invalid service"
    if sections[5] == "":
        return "arn: invalid resource"
    if sections[2] != "s3":
        return ERR_S3_ARN
    pieces = full.split("/")
    if sections[5].startswith("accesspoint/"):
        if len(pieces) < 3:
            return ERR_S3_ARN
    elif len(pieces) < 2:
        return ERR_S3_ARN
    return _s3_version_error(u.query)


def url_error(raw: object, version: tuple[int, int]) -> str | None:
    """Ignition's validateURL for a config of ``version``: the message, or None when valid."""
    if not isinstance(raw, str):
        return None  # a type error, reported by the schema walk
    if raw[:5] == "data:" and _PLAIN_DATA.fullmatch(raw):
        return None
    plain = _PLAIN_WEB.fullmatch(raw)
    if plain:
        return ERR_INVALID_SCHEME if URL_SCHEMES[plain.group(1)] > version[1] else None
    plain = _BASE64_DATA.fullmatch(raw)
    if plain:
        return _base64_error(plain.group(1)) if plain.group(1) else None
    try:
        u = go_url_parse(raw)
    except URLError:
        return ERR_INVALID_URL
    scheme = u.scheme
    if URL_SCHEMES.get(scheme, 99) > version[1]:
        return ERR_INVALID_SCHEME
    if scheme == "s3":
        return _s3_version_error(u.query)
    if scheme == "arn":
        return _arn_error(u)
    if scheme == "data":
        return dataurl_error(raw)
    return None  # http, https, tftp, gs


# --- data URLs (RFC 2397), with the decisions and messages of the Go decoder Ignition uses ---

_TSPECIALS = set('()<>@,;:\\"/[]?=')


def _is_token(ch: str) -> bool:
    return ch.isascii() and ord(ch) >= 0x20 and ord(ch) != 0x7F and not ch.isspace() and ch not in _TSPECIALS


def _media_type_ok(t: str) -> bool:
    return t.startswith(("text", "image", "audio", "video", "application", "message", "multipart"))


def dataurl_error(s: str) -> str | None:
    """Decode a data URL the way Ignition does; return the decoder's error message or None."""
    if not s.startswith("data:"):
        return "missing data prefix"
    n = len(s)
    pos = 5
    base64 = False

    def at(i: int) -> str | None:
        return s[i] if i < n else None

    # media type
    ch = at(pos)
    if ch not in (";", ","):
        if ch is None:
            return "missing comma before data"
        start = pos
        x_token = False
        if ch in "xX":
            pos += 1
            if at(pos) == "-":
                x_token = True
                pos += 1
        elif _is_token(ch):
            pos += 1
        else:
            return "invalid character after data prefix"
        while True:
            ch = at(pos)
            if ch == "/":
                if not x_token and not _media_type_ok(s[start:pos]):
                    return "invalid media type"
                pos += 1
                break
            if ch is None:
                return "missing media type slash"
            if not _is_token(ch):
                return "invalid character for media type"
            pos += 1
        while True:
            ch = at(pos)
            if ch in (";", ","):
                break
            if ch is None:
                return "incomplete media type"
            if not _is_token(ch):
                return "invalid character for media subtype"
            pos += 1
    # parameters and the base64 marker
    while at(pos) == ";":
        pos += 1
        ch = at(pos)
        if ch is None or ch in "=,":
            return "unterminated parameter sequence"
        if not _is_token(ch):
            return "invalid character for parameter attribute"
        start = pos
        while True:
            ch = at(pos)
            if ch == "=":
                break
            if ch == ",":
                if s[start:pos] != "base64":
                    return f"expected base64, got {s[start:pos]}"
                base64 = True
                break
            if ch is None:
                return "unterminated parameter sequence"
            if not _is_token(ch):
                return "invalid character for parameter attribute"
            pos += 1
        if base64:
            break
        pos += 1  # '='
        ch = at(pos)
        if ch == '"':
            pos += 1
            start = pos
            while True:
                ch = at(pos)
                if ch is None:
                    return "unclosed quoted string"
                if ch == "\\":
                    pos += 1
                    ch = at(pos)
                    if ch is None:
                        return "unexpected eof"
                    if ord(ch) > 0x7F:
                        return "invalid escaped character"
                    pos += 1
                    continue
                if ch == '"':
                    break
                if ord(ch) > 0x7F:
                    return "invalid character for parameter value"
                pos += 1
            # the decoder reads each item as the lexer emits it: a bad value stops it here
            err = _unquote_error(s[start:pos])
            if err:
                return err
            pos += 1
        elif ch is None:
            return "missing comma before data"
        elif _is_token(ch):
            start = pos
            while True:
                ch = at(pos)
                if ch in (";", ","):
                    break
                if ch is None:
                    return "missing comma before data"
                if not _is_token(ch):
                    return "invalid character for parameter value"
                pos += 1
            err = _rfc2396_error(s[start:pos])
            if err:
                return err
        else:
            return "invalid character for parameter value"
        ch = at(pos)
        if ch is None:
            return "missing comma before data"
        if ch not in (";", ","):
            return "expected semicolon or comma"
    if at(pos) != ",":
        return "missing comma before data"
    pos += 1
    data = s[pos:]
    if not (_B64_DATA if base64 else _URL_DATA).fullmatch(data):
        return "invalid data character"
    if data:
        return _base64_error(data) if base64 else _rfc2396_error(data)
    return None


def _rfc2396_error(s: str) -> str | None:
    if s.isascii() and not _BAD_ESCAPE.search(s):
        return None
    raw = s.encode()
    i = 0
    while i < len(raw):
        if raw[i] >= 0x80:
            return "rfc2396: non-ASCII char detected"
        if raw[i] == 0x25:
            for k in (1, 2):
                if i + k >= len(raw):
                    return "rfc2396: unexpected end of unescape sequence"
                if chr(raw[i + k]) not in _HEX:
                    return "rfc2396: invalid char 0x25 in unescape sequence"
            i += 3
            continue
        i += 1
    return None


def _unquote_error(value: str) -> str | None:
    """strconv.Unquote of a quoted parameter value: "invalid syntax" on a bad escape."""
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt in "abfnrtv\\\"'":
                i += 2
                continue
            if nxt in "01234567":
                digits = value[i + 1 : i + 4]
                if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) < 256:
                    i += 4
                    continue
                return "invalid syntax"
            widths = {"x": 2, "u": 4, "U": 8}
            if nxt in widths:
                digits = value[i + 2 : i + 2 + widths[nxt]]
                if len(digits) == widths[nxt] and all(d in _HEX for d in digits):
                    i += 2 + widths[nxt]
                    continue
            return "invalid syntax"
        if ch == '"' or (ord(ch) < 0x20 and ch != "\t"):
            return "invalid syntax"
        i += 1
    return None


_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_error(src: str) -> str | None:
    """Go's base64.StdEncoding.DecodeString: "illegal base64 data at input byte N"."""
    import binascii

    try:
        binascii.a2b_base64(src, strict_mode=True)
        return None  # what the strict C decoder takes, Go takes too; the loop below names the byte
    except binascii.Error:
        pass
    si = 0
    n = len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return f"illegal base64 data at input byte {si - j}"
            ch = src[si]
            si += 1
            if ch in _B64:
                j += 1
                continue
            if ch != "=":
                return f"illegal base64 data at input byte {si - 1}"
            if j in (0, 1):
                return f"illegal base64 data at input byte {si - 1}"
            if j == 2:
                if si == n:
                    return f"illegal base64 data at input byte {n}"
                if src[si] != "=":
                    return f"illegal base64 data at input byte {si - 1}"
                si += 1
            if si < n:
                return f"illegal base64 data at input byte {si}"
            return None
