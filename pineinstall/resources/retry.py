"""How downloads retry, for config resources (:class:`pineinstall.resources.Fetcher`) and images
(:class:`pineinstall.image.source.HttpSource`): the backoff (200 ms doubling to 5 s), a short name
for each failure, errors that waiting will not heal (stopped after :data:`LASTING_ATTEMPTS`), and
one line per retry with its count, e.g. ``retrying (2/5) in 0.4 s: connection reset``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

INITIAL_BACKOFF = 0.2
MAX_BACKOFF = 5.0
# An unknown host or a refused connection: a few quick attempts (the network may just be coming
# up at boot), not a minute of them.
LASTING_ATTEMPTS = 3

# (words in an exception's text or class name, the short reason); the first match wins.
_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("NameResolution", "gaierror", "Name or service not known", "name resolution",
      "nodename nor servname", "No address associated"), "name resolution failed"),
    (("Connection refused", "ConnectionRefused"), "connection refused"),
    (("Connection reset", "ConnectionReset", "RemoteDisconnected", "Connection aborted",
      "BrokenPipe"), "connection reset"),
    (("IncompleteRead", "body ended", "ProtocolError", "InvalidChunkLength"), "connection dropped mid-body"),
    (("ReadTimeout", "Read timed out", "stalled"), "stalled (no data)"),
    (("ConnectTimeout", "timed out", "Timeout"), "timed out"),
)  # fmt: skip
_LASTING = ("name resolution failed", "connection refused")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it wraps (``raise from``, requests' and urllib3's ``reason``)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 12:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [
            e.__cause__,
            e.__context__,
            getattr(e, "reason", None) if isinstance(getattr(e, "reason", None), BaseException) else None,
        ]
        todo += [a for a in e.args if isinstance(a, BaseException)]
    return seen


def reason(exc: BaseException) -> str:
    """A few words saying what went wrong (no URL: they go next to the one shown)."""
    chain = _chain(exc)
    for e in chain:  # an OSError's errno is the most precise
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError | BrokenPipeError):
            return "connection reset"
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    status = re.search(r"(?:HTTP|answered) ([1-5]\d\d)\b", text)
    if status:
        return f"HTTP {status.group(1)}"
    for words, short in _REASONS:
        if any(w.lower() in text.lower() for w in words):
            return short
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return first[:120]


def lasting(exc: BaseException) -> bool:
    """Will waiting not help? (name resolution failure, connection refused)"""
    return reason(exc) in _LASTING


class Retry:
    """The retries of one download: call :meth:`failed` after each failed attempt; it waits, or
    raises ``give_up(ending)`` when the attempts (or the time until ``deadline``, a ``clock``
    time, named by ``limit``) are used up; ``ending`` is e.g. ``after 3 attempts``."""

    def __init__(
        self,
        attempts: int | None,
        *,
        deadline: float | None = None,
        limit: str = "the time limit",
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.deadline = deadline
        self.limit = limit
        self.log = log or (lambda _line: None)
        self.sleep = sleep
        self.clock = clock
        self.tries = 0
        self.delay = INITIAL_BACKOFF

    def failed(self, exc: BaseException, give_up: Callable[[str], BaseException]) -> None:
        self.tries += 1
        why = reason(exc)
        limit = self.attempts
        if why in _LASTING:
            limit = min(limit or LASTING_ATTEMPTS, LASTING_ATTEMPTS)
        attempts = f"{self.tries} attempt{'s' if self.tries > 1 else ''}"
        if limit is not None and self.tries >= limit:
            raise give_up(f"after {attempts}") from exc
        if self.deadline is not None and self.clock() + self.delay > self.deadline:
            raise give_up(f"{self.limit} reached after {attempts}") from exc
        of = f"/{limit - 1}" if limit is not None else ""
        self.log(f"retrying ({self.tries}{of}) in {self.delay:.1f} s: {why}")
        self.sleep(self.delay)
        self.delay = min(self.delay * 2, MAX_BACKOFF)

    def succeeded(self) -> None:
        """Progress was made: the next failure starts the backoff over."""
        self.delay = INITIAL_BACKOFF
