"""Rules for a resource (a source URL with compression, verification and HTTP headers).

A resource appears as file contents, file appends, merged/replacing configs, CA bundles and
LUKS key files. ``check_resource`` is called by the other modules for each of those places.
"""

from __future__ import annotations

from ..fields import COMPRESSIONS, HASH_FUNCTIONS
from ..report import Path, Report
from ._common import duplicates, field_key, obj, text
from .urls import ERR_INVALID_URL, URLError, go_url_parse, url_error

ERR_COMPRESSION = "invalid compression method"
ERR_VERIFICATION_NO_SOURCE = "source must be specified if verification is specified"
ERR_HASH_MALFORMED = "malformed hash specifier"
ERR_HASH_UNRECOGNIZED = "unrecognized hash function"
ERR_HASH_SIZE = "incorrect size for hash sum"
ERR_SOURCE_REQUIRED = "source is required"
ERR_HEADER_NAME = "HTTP header name can't be empty"
ERR_HEADER_VALUE = "unable to parse HTTP header"
ERR_HEADER_SCHEME = "cannot use HTTP headers with this source scheme"


def hash_error(value: str, version: tuple[int, int]) -> str | None:
    if not isinstance(value, str):
        return None  # a type error, reported by the schema walk
    function, sep, digest = value.partition("-")
    if not sep:
        return ERR_HASH_MALFORMED
    digits, since = HASH_FUNCTIONS.get(function, (0, 99))
    if since > version[1]:
        return ERR_HASH_UNRECOGNIZED
    if len(digest) != digits:
        return ERR_HASH_SIZE
    return None


def check_verification(res: dict, base: Path, version: tuple[int, int], report: Report) -> None:
    """The verification hash: a source must exist, and the hash must be well formed."""
    digest = obj(res.get("verification")).get("hash")
    if digest is None:
        return
    where = (*base, "verification", "hash")
    if res.get("source") is None:
        report.error(ERR_VERIFICATION_NO_SOURCE, where)
    msg = hash_error(digest, version)
    if msg:
        report.error(msg, where)


def check_resource(
    res: object,
    base: Path,
    version: tuple[int, int],
    report: Report,
    *,
    required: bool = False,
    verification_needs_source: bool = True,
) -> None:
    """Every rule of one resource at ``base``.

    ``required``: the source must be given (merged configs and CA bundles from 3.1.0); the error
    then sits on the resource itself, as Ignition reports it.
    ``verification_needs_source``: false for 3.0.0 config references, which had no such rule.
    """
    # Half a million files' contents come through here: the common case costs no call beyond
    # url_error (type tests inline, the places built only for a finding).
    if type(res) is not dict:
        res = {}
    source = res.get("source")
    if required:
        if source is None or source == "":
            report.error(ERR_SOURCE_REQUIRED, base)
        else:
            msg = url_error(source, version)
            if msg:
                report.error(msg, base)
    compression = res.get("compression")
    if compression is not None and compression != "" and compression not in COMPRESSIONS:
        report.error(ERR_COMPRESSION, (*base, "compression"))
    verification = res.get("verification")
    if verification is not None:
        if verification_needs_source:
            check_verification(res, base, version, report)
        else:
            digest = obj(verification).get("hash")
            if digest is not None:
                msg = hash_error(digest, version)
                if msg:
                    report.error(msg, (*base, "verification", "hash"))
    if type(source) is str and source != "":
        msg = url_error(source, version)
        if msg:
            report.error(msg, (*base, "source"))
    # httpHeaders arrived with 3.1.0
    headers = res.get("httpHeaders")
    if headers and type(headers) is list and version >= (3, 1):
        msg = _header_scheme_error(source)
        if msg:
            report.error(msg, (*base, "httpHeaders"))
        for i, header in enumerate(headers):
            if text(obj(header).get("name")) == "":
                report.error(ERR_HEADER_NAME, (*base, "httpHeaders", i, "name"))
            if obj(header).get("value") == "":  # an empty value; a null one is no header value at all
                report.error(ERR_HEADER_VALUE, (*base, "httpHeaders", i, "value"))
        duplicates(report, headers, (*base, "httpHeaders"), field_key("name"))


def _header_scheme_error(source: object) -> str | None:
    if not isinstance(source, str) or source == "":
        return ERR_INVALID_URL
    try:
        scheme = go_url_parse(source).scheme
    except URLError:
        return ERR_INVALID_URL
    return None if scheme in ("http", "https") else ERR_HEADER_SCHEME


def resource_key(res: object) -> str:
    """Key() of a resource for duplicate detection: its source ("" when absent)."""
    return text(obj(res).get("source"))


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    """Resources are checked where they occur (see the other modules); nothing global here."""
