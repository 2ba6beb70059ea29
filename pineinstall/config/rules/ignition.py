"""Rules of the ``ignition`` section: merged/replacing configs, TLS CA bundles, the proxy."""

from __future__ import annotations

from ..report import Report
from ._common import arr, duplicates, obj, str_key, text
from .resources import check_resource, hash_error, resource_key
from .urls import ERR_INVALID_URL, URLError, go_url_parse, url_error

ERR_INVALID_PROXY = "proxies must be http(s)"
ERR_INSECURE_PROXY = "insecure plaintext HTTP proxy specified for HTTPS resources"


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    ign = obj(cfg.get("ignition"))
    config = obj(ign.get("config"))
    merge = arr(config.get("merge"))
    cas = arr(obj(obj(ign.get("security")).get("tls")).get("certificateAuthorities"))
    if version < (3, 1):
        # 3.0.0 had ConfigReference/CaReference: no "source is required", and a CA's source
        # is checked as a URL even when empty.
        for i, ref in enumerate(merge):
            check_resource(
                _without_compression(ref),
                ("ignition", "config", "merge", i),
                version,
                report,
                verification_needs_source=False,
            )
        if "replace" in config and config["replace"] is not None:
            check_resource(
                _without_compression(config["replace"]),
                ("ignition", "config", "replace"),
                version,
                report,
                verification_needs_source=False,
            )
        for i, ca in enumerate(cas):
            base = ("ignition", "security", "tls", "certificateAuthorities", i)
            ca = obj(ca)
            msg = url_error(text(ca.get("source")), version)
            if msg:
                report.error(msg, (*base, "source"))
            digest = obj(ca.get("verification")).get("hash")
            if digest is not None:
                msg = hash_error(digest, version)
                if msg:
                    report.error(msg, (*base, "verification", "hash"))
    else:
        for i, ref in enumerate(merge):
            check_resource(ref, ("ignition", "config", "merge", i), version, report, required=True)
        if config.get("replace") is not None:
            check_resource(config["replace"], ("ignition", "config", "replace"), version, report)
        for i, ca in enumerate(cas):
            check_resource(
                ca,
                ("ignition", "security", "tls", "certificateAuthorities", i),
                version,
                report,
                required=True,
            )
    if version >= (3, 1):
        proxy = obj(ign.get("proxy"))
        _check_proxy(report, proxy.get("httpProxy"), ("ignition", "proxy", "httpProxy"), http_ok=True)
        _check_proxy(report, proxy.get("httpsProxy"), ("ignition", "proxy", "httpsProxy"), http_ok=False)
        duplicates(report, arr(proxy.get("noProxy")), ("ignition", "proxy", "noProxy"), str_key)
    duplicates(report, merge, ("ignition", "config", "merge"), resource_key)
    duplicates(report, cas, ("ignition", "security", "tls", "certificateAuthorities"), resource_key)


def _check_proxy(report: Report, value, where, *, http_ok: bool) -> None:
    if not isinstance(value, str):
        return
    try:
        scheme = go_url_parse(value).scheme
    except URLError:
        report.error(ERR_INVALID_URL, where)
        return
    if scheme not in ("http", "https"):
        report.error(ERR_INVALID_PROXY, where)
    elif scheme == "http" and not http_ok:
        report.warning(ERR_INSECURE_PROXY, where)


def _without_compression(ref) -> dict:
    """3.0.0 config references had no compression field (the schema walk reports it unused)."""
    return {k: v for k, v in obj(ref).items() if k != "compression"}
