"""Rules of the ignition section: merge/replace, TLS CAs, proxy."""

from __future__ import annotations

from _rules_helpers import err, findings, warn

H512 = "sha512-" + "0" * 128


def ign(version=(3, 3), **section):
    return findings({"ignition": {"version": f"3.{version[1]}.0", **section}}, version)


def test_merge_requires_source_from_3_1():
    got = ign((3, 1), config={"merge": [{}, {"source": "ftp://x"}]})
    assert got == {
        err("$.ignition.config.merge.0", "source is required"),
        err("$.ignition.config.merge.1", "invalid url scheme"),
        err("$.ignition.config.merge.1.source", "invalid url scheme"),
    }
    assert ign((3, 0), config={"merge": [{"source": "http://a"}]}) == set()
    assert ign((3, 0), config={"merge": [{}]}) == set()


def test_sourceless_merges_are_duplicates():
    assert ign((3, 0), config={"merge": [{}, {}]}) == {
        err("$.ignition.config.merge.1", "duplicate entry defined")
    }


def test_replace():
    assert ign((3, 2), config={"replace": {}}) == set()
    assert ign(config={"replace": {"verification": {"hash": H512}}}) == {
        err(
            "$.ignition.config.replace.verification.hash",
            "source must be specified if verification is specified",
        )
    }
    # 3.0.0 config references had no such rule
    assert ign((3, 0), config={"replace": {"verification": {"hash": H512}}}) == set()


def test_merge_compression_unknown_in_3_0():
    assert ign((3, 0), config={"merge": [{"source": "http://x", "compression": "xz"}]}) == set()
    assert ign((3, 1), config={"merge": [{"source": "http://x", "compression": "xz"}]}) == {
        err("$.ignition.config.merge.0.compression", "invalid compression method")
    }


def test_certificate_authorities():
    base = "$.ignition.security.tls.certificateAuthorities"
    assert ign((3, 1), security={"tls": {"certificateAuthorities": [{}]}}) == {
        err(f"{base}.0", "source is required")
    }
    # 3.0.0 checked the (empty) source as a URL
    assert ign((3, 0), security={"tls": {"certificateAuthorities": [{}]}}) == {
        err(f"{base}.0.source", "invalid url scheme")
    }
    cas = [{"source": "data:,x"}, {"source": "data:,x", "compression": "bz2"}]
    assert ign(security={"tls": {"certificateAuthorities": cas}}) == {
        err(f"{base}.1.compression", "invalid compression method"),
        err(f"{base}.1", "duplicate entry defined"),
    }


def test_proxy():
    assert ign(proxy={"httpsProxy": "http://p:3128"}) == {
        warn("$.ignition.proxy.httpsProxy", "insecure plaintext HTTP proxy specified for HTTPS resources")
    }
    assert ign(proxy={"httpProxy": "socks5://p"}) == {
        err("$.ignition.proxy.httpProxy", "proxies must be http(s)")
    }
    assert ign(proxy={"httpProxy": "http://[p"}) == {err("$.ignition.proxy.httpProxy", "unable to parse url")}
    assert ign(proxy={"noProxy": ["a", "a"]}) == {
        err("$.ignition.proxy.noProxy.1", "duplicate entry defined")
    }
    assert ign(proxy={"httpProxy": "http://p", "httpsProxy": "https://p", "noProxy": ["a"]}) == set()
    # no proxy section before 3.1.0
    assert ign((3, 0), proxy={"httpProxy": "ftp://p"}) == set()
