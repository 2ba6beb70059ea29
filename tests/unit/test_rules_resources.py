"""Rules of resources: URLs (Go's url.Parse outcomes), data URLs, hashes, compression, headers."""

from __future__ import annotations

import pytest
from _rules_helpers import err, findings

from pineinstall.config.rules.urls import dataurl_error, url_error

SRC = "$.storage.files.0.contents"


def contents(version=(3, 3), **res):
    return findings({"storage": {"files": [{"path": "/a", "contents": res}]}}, version)


@pytest.mark.parametrize(
    ("url", "version"),
    [
        ("http://x/a", (3, 0)),
        ("HTTPS://x/a", (3, 3)),
        ("tftp://10.0.0.1/a", (3, 0)),
        ("s3://bucket/key", (3, 0)),
        ("s3://bucket/key?versionId=abc", (3, 3)),
        ("gs://bucket/obj", (3, 2)),
        ("data:,x", (3, 0)),
        ("http://user:pw@host/a", (3, 3)),
        ("http://[fe80::1%25en0]/", (3, 3)),
        ("http://x/a#\t", (3, 3)),  # control characters are only refused before the fragment
        ("arn:aws:s3:::bucket/key", (3, 4)),
        ("arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/key", (3, 6)),
    ],
)
def test_accepted_urls(url, version):
    assert url_error(url, version) is None


@pytest.mark.parametrize(
    ("url", "version", "message"),
    [
        ("ftp://x/a", (3, 3), "invalid url scheme"),
        ("gs://bucket/obj", (3, 1), "invalid url scheme"),
        ("arn:aws:s3:::bucket/key", (3, 3), "invalid url scheme"),
        ("//host/a", (3, 3), "invalid url scheme"),
        ("a:b", (3, 3), "invalid url scheme"),
        ("", (3, 3), "invalid url scheme"),
        (":foo", (3, 3), "unable to parse url"),
        ("http://[::1/a", (3, 3), "unable to parse url"),
        ("http://host:port/", (3, 3), "unable to parse url"),
        ("http://x/\x07", (3, 3), "unable to parse url"),
        ("http://x/%zz", (3, 3), "unable to parse url"),
        ("http://a b/", (3, 3), "unable to parse url"),
        ("http://a%41/", (3, 3), "unable to parse url"),
        ("http://x/a#%x", (3, 3), "unable to parse url"),
        ("s3://bucket/key?versionId=", (3, 3), "invalid S3 object VersionId"),
        ("s3://bucket/key?versionId", (3, 3), "invalid S3 object VersionId"),
        ("arn:aws:s3:::bucket", (3, 4), "invalid S3 ARN format"),
        ("arn:aws:ec2:us-east-1:1:instance/i", (3, 4), "invalid S3 ARN format"),
        ("arn:aws:s3:us-east-1:1:accesspoint/ap", (3, 5), "invalid S3 ARN format"),
        ("arn:aws:s3:::bucket/key?versionId=", (3, 4), "invalid S3 object VersionId"),
    ],
)
def test_rejected_urls(url, version, message):
    assert url_error(url, version) == message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:text/plain", "incomplete media type"),
        ("data:text", "missing media type slash"),
        ("data:", "missing comma before data"),
        ("data:text/", "incomplete media type"),
        ("data:foo/bar,x", "invalid media type"),
        ("data:x-foo,a", "invalid character for media type"),
        ("data:te(t/plain,x", "invalid character for media type"),
        ("data:;base65,x", "expected base64, got base65"),
        ('data:;a="x,y', "unclosed quoted string"),
        ("data:;=x,y", "unterminated parameter sequence"),
        ("data:,a b", "invalid data character"),
        ("data:,%zz", "rfc2396: invalid char 0x25 in unescape sequence"),
        ("data:,a%4", "rfc2396: unexpected end of unescape sequence"),
        ("data:,\u00e9", "invalid data character"),
        ("data:;base64,QQ=", "illegal base64 data at input byte 3"),
        ("data:;base64,QQ", "illegal base64 data at input byte 0"),
        ("data:;base64,Q===", "illegal base64 data at input byte 1"),
        ("data:;base64,QU*D", "invalid data character"),
        ("data:;base64,QU=D", "illegal base64 data at input byte 2"),
        # a parameter value is decoded as soon as it is read, before later syntax errors
        ('data:;a=%zz;a="x,y', "rfc2396: invalid char 0x25 in unescape sequence"),
        ('data:;a="\\q",x', "invalid syntax"),
    ],
)
def test_data_url_errors(url, message):
    assert dataurl_error(url) == message


@pytest.mark.parametrize(
    "url",
    [
        "data:,",
        "data:,hello%20world",
        "data:text/plain;base64,aGVsbG8=",
        "data:x-custom/thing,abc",
        'data:text/plain;charset="utf-8",x',
        "data:;a=b,x",
        "data:text/plain;a=b;base64,QUJD",
    ],
)
def test_data_url_accepted(url):
    assert dataurl_error(url) is None


def test_source_error_is_reported_on_the_source():
    assert contents(source="data:text") == {err(f"{SRC}.source", "missing media type slash")}


def test_compression():
    assert contents(source="http://x/a", compression="xz") == {
        err(f"{SRC}.compression", "invalid compression method")
    }
    assert contents(source="http://x/a", compression="gzip") == set()
    assert contents(source="http://x/a", compression="") == set()


@pytest.mark.parametrize(
    ("digest", "version", "message"),
    [
        ("sha512", (3, 3), "malformed hash specifier"),
        ("md5-" + "0" * 32, (3, 3), "unrecognized hash function"),
        ("sha256-" + "a" * 64, (3, 0), "unrecognized hash function"),
        ("sha512-abc", (3, 3), "incorrect size for hash sum"),
        ("sha256-" + "a" * 63, (3, 1), "incorrect size for hash sum"),
    ],
)
def test_bad_hashes(digest, version, message):
    got = contents(version, source="http://x/a", verification={"hash": digest})
    assert got == {err(f"{SRC}.verification.hash", message)}


@pytest.mark.parametrize(
    ("digest", "version"), [("sha512-" + "f" * 128, (3, 0)), ("sha256-" + "a" * 64, (3, 1))]
)
def test_good_hashes(digest, version):
    assert contents(version, source="http://x/a", verification={"hash": digest}) == set()


def test_verification_needs_source():
    got = contents(verification={"hash": "sha512-" + "0" * 128})
    assert got == {err(f"{SRC}.verification.hash", "source must be specified if verification is specified")}


def test_http_headers():
    assert contents(source="data:,x", httpHeaders=[{"name": "A"}]) == {
        err(f"{SRC}.httpHeaders", "cannot use HTTP headers with this source scheme")
    }
    assert contents(httpHeaders=[{"name": "A"}]) == {err(f"{SRC}.httpHeaders", "unable to parse url")}
    assert contents(source="https://x", httpHeaders=[{"name": ""}, {"name": "A"}, {"name": "A"}]) == {
        err(f"{SRC}.httpHeaders.0.name", "HTTP header name can't be empty"),
        err(f"{SRC}.httpHeaders.2", "duplicate entry defined"),
    }
    assert contents(source="https://x", httpHeaders=[{"name": "Authorization", "value": "t"}]) == set()
    # httpHeaders arrived with 3.1.0: in 3.0.0 the field is unknown and not checked
    assert contents((3, 0), source="data:,x", httpHeaders=[{"name": ""}]) == set()


def test_append_resources_are_checked():
    got = findings(
        {"storage": {"files": [{"path": "/a", "append": [{"source": "data:,x", "compression": "zstd"}]}]}}
    )
    assert got == {err("$.storage.files.0.append.0.compression", "invalid compression method")}
