"""The shared retry policy (pineinstall.resources.retry) and URL scrubbing."""

from __future__ import annotations

import socket

import pytest

from pineinstall.resources import RetryableError, scrub, shown_url
from pineinstall.resources.retry import LASTING_ATTEMPTS, Retry, lasting, reason


def wrapped(inner: BaseException) -> RetryableError:
    exc = RetryableError("GET http://x/: ConnectionError: ...")
    exc.__cause__ = inner
    return exc


@pytest.mark.parametrize(
    ("exc", "short", "heals"),
    [
        (wrapped(socket.gaierror(-2, "Name or service not known")), "name resolution failed", False),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused", False),
        (wrapped(ConnectionResetError(104, "Connection reset by peer")), "connection reset", True),
        (RetryableError("GET http://x/: server answered 503"), "HTTP 503", True),
        (OSError("body ended at byte 5 of 9"), "connection dropped mid-body", True),
    ],
)
def test_reasons(exc: BaseException, short: str, heals: bool) -> None:
    assert reason(exc) == short
    assert lasting(exc) is not heals


def test_lasting_errors_stop_early_with_one_line_per_retry() -> None:
    lines: list[str] = []
    slept: list[float] = []
    retry = Retry(12, log=lines.append, sleep=slept.append)

    def give_up(ending: str) -> Exception:
        return RuntimeError(f"gave up {ending}")

    with pytest.raises(RuntimeError, match=f"gave up after {LASTING_ATTEMPTS} attempts"):
        for _ in range(12):
            retry.failed(ConnectionRefusedError(111, "Connection refused"), give_up)
    assert lines == [
        "retrying (1/2) in 0.2 s: connection refused",
        "retrying (2/2) in 0.4 s: connection refused",
    ]
    assert slept == [0.2, 0.4]


def test_scrub_removes_password_query_and_user() -> None:
    url = "https://me:hunter22@example.com/a/img.xz?X-Amz-Signature=abc&token=def#frag"
    text = f"GET {url} failed; HTTPSConnectionPool: Max retries exceeded with url: /a/img.xz?X-Amz-Signature=abc&token=def (hunter22)"
    out = scrub(text, url)
    assert "hunter22" not in out and "abc" not in out and "def" not in out and "me:" not in out
    assert shown_url(url) == "https://example.com/a/img.xz"
