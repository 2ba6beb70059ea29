"""Definitions of fetched resources (configs, CA bundles, file contents, key files) and of the
`ignition` section."""

from __future__ import annotations

from _builder import Schema, integer, ref, refs, string
from _spec import Spec, obj, resource, strings


def fetch_defs(s: Spec) -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    old = s.base == 1  # fcos 1.0.0: config/CA references are plain Ignition 3.0 references

    d["ConfigRef"] = resource(s, "Ignition config", sugar=not old, source_required=old)
    d["CaRef"] = resource(s, "PEM certificate bundle", sugar=not old, source_required=old)
    d["FileContents"] = resource(s, "file contents", sugar=True)
    d["Resource"] = resource(s, "key file", sugar=True)

    d["Ignition"] = obj(
        "Settings of Ignition itself: other configs to pull in, timeouts, TLS and proxies. "
        "(The Ignition `version` is not written here: the transpiler sets it.)",
        [
            (
                True,
                "config",
                obj(
                    "Other Ignition configs that extend or supersede this one at boot.",
                    [
                        (
                            True,
                            "merge",
                            refs("ConfigRef", "Configs fetched at boot and merged into this one, in order."),
                        ),
                        (
                            True,
                            "replace",
                            ref("ConfigRef", "A config fetched at boot and used instead of this one."),
                        ),
                    ],
                ),
            ),
            (
                True,
                "timeouts",
                obj(
                    "Limits for http and https fetches.",
                    [
                        (
                            True,
                            "http_response_headers",
                            integer(
                                "Seconds to wait for the response headers of a request; 0 means no limit.",
                                minimum=0,
                                default=10,
                            ),
                        ),
                        (
                            True,
                            "http_total",
                            integer(
                                "Seconds a whole fetch (connecting, retries, body) may take; 0 means "
                                "no limit.",
                                minimum=0,
                                default=0,
                            ),
                        ),
                    ],
                ),
            ),
            (
                True,
                "security",
                obj(
                    "Network security settings for fetches.",
                    [
                        (
                            True,
                            "tls",
                            obj(
                                "TLS settings for https fetches.",
                                [
                                    (
                                        True,
                                        "certificate_authorities",
                                        refs(
                                            "CaRef",
                                            "CA bundles trusted in addition to the system ones; each "
                                            "must be distinct.",
                                        ),
                                    )
                                ],
                            ),
                        )
                    ],
                ),
            ),
            (
                s.has("Ignition", "proxy"),
                "proxy",
                obj(
                    "Proxies for fetching resources.",
                    [
                        (
                            True,
                            "http_proxy",
                            string(
                                "Proxy URL for http requests (and https ones unless `https_proxy` is set)."
                            ),
                        ),
                        (True, "https_proxy", string("Proxy URL for https requests.")),
                        (
                            True,
                            "no_proxy",
                            strings(
                                "Hosts reached without a proxy.",
                                "An IP (`10.0.0.1`), a CIDR (`10.0.0.0/8`), a domain (`example.com`, "
                                "which includes subdomains; `.example.com` only subdomains), each "
                                "optionally with `:port`, or `*` for no proxy at all.",
                            ),
                        ),
                    ],
                ),
            ),
        ],
    )
    return d
