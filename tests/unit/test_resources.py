"""Resources: data URLs, gzip, streaming hash verification, scheme checks, noProxy matching, the
retry schedule, and TFTP against a small real UDP server on 127.0.0.1."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import socket
import struct
import threading

import pytest

from pineinstall.config import model
from pineinstall.resources import (
    Fetcher,
    ResourceError,
    RetryableError,
    _bypass_proxy,
    check_resource,
    check_source,
    decode_data_url,
)


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("data:,hello", b"hello"),
        ("data:,", b""),
        ("data:,a%20b%0A", b"a b\n"),
        ("data:text/plain;charset=utf-8,%C3%A9", "é".encode()),
        ("data:;base64,aGVsbG8=", b"hello"),
        ("data:;base64,aGVsbG8", b"hello"),  # unpadded
        ("data:application/octet-stream;base64,AAEC", b"\x00\x01\x02"),
        ("data:text/plain;base64,YSBi%0AYw==", b"a bc"),  # percent-encoding inside base64
        ("DATA:,upper", b"upper"),
    ],
)
def test_data_urls(url: str, data: bytes) -> None:
    assert decode_data_url(url) == data


def test_data_url_without_comma() -> None:
    with pytest.raises(ResourceError, match="no comma"):
        decode_data_url("data:text/plain")


def res(source: str, **kw: object) -> model.Resource:
    return (
        model.from_dict({"storage": {"files": [{"path": "/x", "contents": {"source": source, **kw}}]}})
        .storage.files[0]
        .contents
    )


def b64(b: bytes) -> str:
    return "data:;base64," + base64.b64encode(b).decode()


def test_gzip_and_hash_of_the_decompressed_data() -> None:
    plain = b"x" * 100_000 + b"tail"
    r = res(
        b64(gzip.compress(plain)),
        compression="gzip",
        verification={"hash": "sha256-" + hashlib.sha256(plain).hexdigest()},
    )
    assert Fetcher().fetch(r) == plain


def test_hash_of_the_compressed_data_is_wrong() -> None:
    packed = gzip.compress(b"abc")
    r = res(
        b64(packed), compression="gzip", verification={"hash": "sha256-" + hashlib.sha256(packed).hexdigest()}
    )
    with pytest.raises(ResourceError, match="sha256 hash mismatch"):
        Fetcher().fetch(r)


def test_gzip_multiple_members() -> None:
    r = res(b64(gzip.compress(b"one,") + gzip.compress(b"two")), compression="gzip")
    assert Fetcher().fetch(r) == b"one,two"


@pytest.mark.parametrize("packed", [gzip.compress(b"truncated data here")[:-12], b"", b"not gzip at all"])
def test_broken_gzip(packed: bytes) -> None:
    with pytest.raises(ResourceError, match="gzip"):
        Fetcher().fetch(res(b64(packed), compression="gzip"))


def test_sha512_ok_and_uppercase_hex() -> None:
    digest = hashlib.sha512(b"hello").hexdigest().upper()
    assert Fetcher().fetch(res("data:,hello", verification={"hash": "sha512-" + digest})) == b"hello"


def test_hash_mismatch_names_both_digests() -> None:
    with pytest.raises(ResourceError) as exc:
        Fetcher().fetch(res("data:,hello", verification={"hash": "sha512-" + "0" * 128}))
    assert "0" * 128 in str(exc.value)
    assert hashlib.sha512(b"hello").hexdigest() in str(exc.value)


def test_fetch_to_starts_at_the_current_position() -> None:
    out = io.BytesIO(b"head:")
    out.seek(0, io.SEEK_END)
    Fetcher().fetch_to(res("data:,tail"), out)
    assert out.getvalue() == b"head:tail"


@pytest.mark.parametrize("source", ["s3://b/k", "gs://b/o", "arn:aws:s3:::b/k"])
def test_cloud_schemes_not_supported(source: str) -> None:
    with pytest.raises(ResourceError, match="not supported by this build"):
        check_source(source)


def test_unknown_scheme_and_bad_hash_text() -> None:
    with pytest.raises(ResourceError, match="unsupported source scheme"):
        check_source("ftp://x/y")
    with pytest.raises(ResourceError, match="not hexadecimal"):
        check_resource(res("data:,x", verification={"hash": "sha256-zz"}))
    with pytest.raises(ResourceError, match="unsupported hash function"):
        check_resource(res("data:,x", verification={"hash": "md5-00"}))


@pytest.mark.parametrize(
    ("host", "port", "entries", "bypass"),
    [
        ("example.com", None, ("*",), True),
        ("example.com", None, ("example.com",), True),
        ("a.example.com", None, ("example.com",), True),
        ("badexample.com", None, ("example.com",), False),
        ("example.com", None, (".example.com",), False),
        ("a.example.com", None, (".example.com",), True),
        ("10.1.2.3", None, ("10.0.0.0/8",), True),
        ("11.1.2.3", None, ("10.0.0.0/8",), False),
        ("127.0.0.1", 8080, ("127.0.0.1:8080",), True),
        ("127.0.0.1", 9090, ("127.0.0.1:8080",), False),
        ("::1", None, ("::1",), True),
        ("example.org", None, ("", "example.com"), False),
    ],
)
def test_no_proxy(host: str, port: int | None, entries: tuple[str, ...], bypass: bool) -> None:
    assert _bypass_proxy(host, port, entries) is bypass


def test_retry_schedule_doubles_from_200ms_to_5s() -> None:
    slept: list[float] = []
    f = Fetcher(sleep=slept.append, max_attempts=10)
    calls = 0

    def flaky() -> int:
        nonlocal calls
        calls += 1
        raise RetryableError("503")

    with pytest.raises(ResourceError, match="after 10 attempts"):
        f._with_retries(flaky, "http://x")
    assert calls == 10
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]


def test_retry_succeeds_and_stops() -> None:
    slept: list[float] = []
    answers = iter([RetryableError("reset"), RetryableError("503"), 7])

    def attempt() -> int:
        a = next(answers)
        if isinstance(a, Exception):
            raise a
        return a

    assert Fetcher(sleep=slept.append)._with_retries(attempt, "http://x") == 7
    assert slept == [0.2, 0.4]


def test_total_timeout_bounds_the_retries() -> None:
    slept: list[float] = []
    f = Fetcher(sleep=slept.append, clock=lambda: sum(slept), total_timeout=1)

    def always() -> int:
        raise RetryableError("503")

    with pytest.raises(ResourceError, match="total timeout"):
        f._with_retries(always, "http://x")
    assert slept == [0.2, 0.4]  # a third wait (0.8 s) would pass the 1 s limit


def test_for_config_fetches_the_cas_and_reads_timeouts() -> None:
    ign = model.from_dict(
        {
            "ignition": {
                "timeouts": {"httpResponseHeaders": 3, "httpTotal": 30},
                "security": {
                    "tls": {"certificateAuthorities": [{"source": "data:,PEM1"}, {"source": "data:,PEM2"}]}
                },
            }
        }
    ).ignition
    f = Fetcher.for_config(ign)
    assert f.ca_bundle == b"PEM1\nPEM2"
    assert (f.response_headers_timeout, f.total_timeout) == (3, 30)
    assert Fetcher.for_config(model.Ignition()).response_headers_timeout == 10


# --- tftp: a real (tiny) server ----------------------------------------------------------------------


def tftp_server(files: dict[str, bytes]) -> tuple[int, threading.Thread]:
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    listen.settimeout(5)

    def serve() -> None:
        try:
            req, client = listen.recvfrom(1024)
        except TimeoutError:
            return
        finally:
            pass
        name = req[2:].split(b"\0")[0].decode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as xfer:  # a new port per transfer
            xfer.bind(("127.0.0.1", 0))
            xfer.settimeout(5)
            if name not in files:
                xfer.sendto(struct.pack("!HH", 5, 1) + b"File not found\0", client)
                return
            data = files[name]
            block = 1
            for off in range(0, len(data) + 1, 512):
                chunk = data[off : off + 512]
                xfer.sendto(struct.pack("!HH", 3, block) + chunk, client)
                ack, _ = xfer.recvfrom(16)
                assert struct.unpack("!HH", ack) == (4, block)
                block += 1
                if len(chunk) < 512:
                    break
        listen.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return listen.getsockname()[1], t


@pytest.mark.parametrize("size", [0, 100, 512, 1024, 5000])
def test_tftp(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    port, t = tftp_server({"boot/file.ign": body})
    assert Fetcher().fetch(f"tftp://127.0.0.1:{port}/boot/file.ign") == body
    t.join(5)


def test_tftp_error_packet() -> None:
    port, t = tftp_server({})
    with pytest.raises(ResourceError, match="File not found"):
        Fetcher().fetch(f"tftp://127.0.0.1:{port}/nope")
    t.join(5)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host:8443/path/cfg.ign?token=abc#frag", "https://host:8443/path/cfg.ign"),
        ("http://h/x", "http://h/x"),
        ("data:,secret-password", "data: URL (21 characters)"),
        ("tftp://10.0.0.1/boot/x", "tftp://10.0.0.1/boot/x"),
    ],
)
def test_urls_in_messages_carry_no_secrets(url: str, shown: str) -> None:
    from pineinstall.resources import shown_url

    assert shown_url(url) == shown


def test_unreachable_server_error_has_no_token() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    f = Fetcher(sleep=lambda _s: None, max_attempts=2)
    with pytest.raises(ResourceError) as exc:
        f.fetch(f"http://127.0.0.1:{port}/cfg.ign?token=SECRET123")
    assert "SECRET123" not in str(exc.value)
    assert f"http://127.0.0.1:{port}/cfg.ign" in str(exc.value)
