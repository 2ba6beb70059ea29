"""Where an image comes from: a local file or an http(s) URL.

An :class:`ImageSource` is probed first (reachability, length, the first bytes for sniffing) and can
read byte ranges (the xz index and the gzip trailer sit at the end), then opened as one stream of
the image's bytes as stored (compressed or not).

HTTP is streamed with ``requests`` (imported only when a URL is used): ``Accept-Encoding:
identity`` so that the bytes are exactly the file's. Every request (the probe, each ``Range`` read,
the download) is retried on a transport error, a 5xx answer, a body cut short or a stall (no byte
for ``stall_timeout`` s), with the policy of :mod:`pineinstall.resources.retry` (backoff, one line
per retry, an unknown host or a refused connection given up after 3 attempts); ``total_timeout``
bounds the whole (give or take one stall timeout). The download *resumes* where it stopped with a
``Range`` request, guarded by ``If-Range`` (the ETag or Last-Modified of the first answer) so that
a file replaced on the server is noticed instead of being spliced. A server that ignores ``Range``
is read again from the start and the already-seen bytes are skipped. Messages show the URL without
credentials or query (:func:`pineinstall.resources.shown_url`).
"""

from __future__ import annotations

import io
import os
import stat
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from pineinstall.image.errors import SourceError
from pineinstall.image.formats import SNIFF_BYTES
from pineinstall.resources.retry import Retry, reason

T = TypeVar("T")

DEFAULT_RETRIES = 5
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0


class ImageSource:
    """Base class. ``name`` is what messages show; ``size`` the stored length when known."""

    name: str
    is_remote: bool = False
    local_path: str | None = None

    def __init__(self) -> None:
        self.size: int | None = None
        self.head: bytes = b""

    def probe(self) -> None:
        """Check reachability; fill ``size`` (when known) and ``head`` (first bytes)."""
        raise NotImplementedError

    def read_range(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def open(self) -> BinaryIO:
        """A fresh stream of the stored bytes from offset 0."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name


class FileSource(ImageSource):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.name = path
        self.local_path = os.path.abspath(path)

    def probe(self) -> None:
        try:
            st = os.stat(self.local_path)  # type: ignore[arg-type]
            if stat.S_ISDIR(st.st_mode):
                raise SourceError(f"{self.name}: is a directory, not an image")
            with open(self.local_path, "rb") as f:  # type: ignore[arg-type]
                self.head = f.read(SNIFF_BYTES)
                self.size = f.seek(0, os.SEEK_END)
        except OSError as exc:
            raise SourceError(f"{self.name}: {exc.strerror}") from exc

    def read_range(self, offset: int, length: int) -> bytes:
        with open(self.local_path, "rb") as f:  # type: ignore[arg-type]
            f.seek(offset)
            return f.read(length)

    def open(self) -> BinaryIO:
        try:
            return open(self.local_path, "rb", buffering=0)  # type: ignore[arg-type,return-value]
        except OSError as exc:
            raise SourceError(f"{self.name}: {exc.strerror}") from exc


class _Again(Exception):
    """One attempt failed in a way worth another: a 5xx (or 408, 429) answer, a short body."""


class HttpSource(ImageSource):
    """An http(s) image. ``name`` is the URL without its secrets (:func:`shown_url`).

    ``total_timeout`` (``--fetch-timeout``) bounds everything fetched through this source, from the
    first request: probes, Range reads, the download and its retries. ``stall_timeout``: a
    transfer with no byte for that long is cut and resumed. ``log`` gets one line per retry."""

    is_remote = True

    def __init__(
        self,
        url: str,
        *,
        retries: int = DEFAULT_RETRIES,
        headers: dict[str, str] | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        verify_tls: bool | str = True,
        total_timeout: float | None = None,
        stall_timeout: float | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        from pineinstall.resources import shown_url

        super().__init__()
        self.name = shown_url(url)
        self.url = url
        self.retries = retries
        self.headers = dict(headers or {})
        self.timeout = timeout if stall_timeout is None else (timeout[0], stall_timeout)
        self.verify_tls = verify_tls
        self.total_timeout = total_timeout or None
        self.deadline: float | None = None  # set by the first request
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.validator: str | None = None  # ETag or Last-Modified, for If-Range
        self.accepts_ranges = False
        self._session: Any = None

    # -- plumbing --

    def session(self) -> Any:
        if self._session is None:
            import requests

            self._session = requests.Session()
            self._session.headers["Accept-Encoding"] = "identity"
            self._session.headers.update(self.headers)
        return self._session

    def transport_errors(self) -> tuple[type[BaseException], ...]:
        import requests
        import urllib3

        return (requests.RequestException, urllib3.exceptions.HTTPError, OSError, _Again)

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise SourceError(f"{self.name}: not downloaded within --fetch-timeout {self.total_timeout:g} s")

    def scrub(self, text: str) -> str:
        from pineinstall.resources import scrub

        return scrub(text, self.url)

    def retrying(self, what: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` until it succeeds, retried on transport errors, 5xx and short bodies."""
        if self.total_timeout and self.deadline is None:
            self.deadline = time.monotonic() + self.total_timeout
        retry = Retry(
            self.retries + 1,
            deadline=self.deadline,
            limit=f"--fetch-timeout {self.total_timeout:g} s" if self.total_timeout else "",
            log=lambda line: self.log(self.scrub(f"{self.name}: {line}")),
        )
        errors = self.transport_errors()
        while True:
            self.check_deadline()
            try:
                return attempt()
            except errors as exc:
                why = self.scrub(reason(exc))

                def give_up(ending: str, why: str = why) -> SourceError:
                    return SourceError(f"{self.name}: {what} failed {ending}: {why}")

                retry.failed(exc, give_up)

    def request(self, headers: dict[str, str] | None = None) -> Any:
        """One GET; a 4xx answer (but 408, 429) is a :class:`SourceError`, a 5xx one :class:`_Again`."""
        read = self.timeout[1]
        if self.deadline is not None:
            read = max(0.1, min(read, self.deadline - time.monotonic()))
        resp = self.session().get(
            self.url,
            headers=headers or {},
            stream=True,
            timeout=(self.timeout[0], read),
            verify=self.verify_tls,
        )
        if resp.status_code < 400:
            return resp
        resp.close()
        status = f"HTTP {resp.status_code} {resp.reason}"
        if resp.status_code < 500 and resp.status_code not in (408, 429):
            raise SourceError(f"{self.name}: {status}")
        raise _Again(status)

    # -- the interface --

    def probe(self) -> None:
        self.retrying("probing", self._probe)

    def _probe(self) -> None:
        resp = self.request({"Range": f"bytes=0-{SNIFF_BYTES - 1}"})
        with resp:
            self.validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
            if resp.status_code == 206:
                self.accepts_ranges = True
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                self.size = int(total) if total.isdigit() else None
            else:
                length = resp.headers.get("Content-Length")
                self.size = int(length) if length and length.isdigit() else None
            self.head = resp.raw.read(SNIFF_BYTES, decode_content=False)
            want = SNIFF_BYTES if self.size is None else min(SNIFF_BYTES, self.size)
            if self.size is not None and len(self.head) < want:
                raise _Again(f"short answer ({len(self.head)} of {want} bytes): body ended")

    def read_range(self, offset: int, length: int) -> bytes:
        if not self.accepts_ranges:
            raise SourceError(f"{self.name}: the server does not take Range requests")

        def attempt() -> bytes:
            resp = self.request({"Range": f"bytes={offset}-{offset + length - 1}"})
            with resp:
                if resp.status_code != 206:
                    raise SourceError(f"{self.name}: Range request answered with HTTP {resp.status_code}")
                data: bytes = resp.raw.read(length, decode_content=False)
            if len(data) != length:
                raise _Again(f"short Range answer ({len(data)} of {length} bytes): body ended")
            return data

        return self.retrying(f"reading bytes {offset}-{offset + length - 1}", attempt)

    def open(self) -> BinaryIO:
        return io.BufferedReader(_ResumingStream(self), buffer_size=1 << 20)


class _ResumingStream(io.RawIOBase):
    """The body of one download, reconnecting with ``Range`` after a cut or a stall."""

    def __init__(self, src: HttpSource) -> None:
        self.src = src
        self.pos = 0
        self.resp: Any = None
        self.resumes = 0

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        headers: dict[str, str] = {}
        if self.pos:
            headers["Range"] = f"bytes={self.pos}-"
            if self.src.validator:
                headers["If-Range"] = self.src.validator
        resp = self.src.request(headers)
        validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if self.src.validator is None:
            self.src.validator = validator
        elif validator and validator != self.src.validator:
            resp.close()
            raise SourceError(f"{self.src.name}: the file changed on the server during the download")
        if self.pos and resp.status_code == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").partition("-")[0]
            if not start.isdigit() or int(start) != self.pos:
                resp.close()
                raise SourceError(f"{self.src.name}: resumed at the wrong offset ({start} != {self.pos})")
        elif self.pos:
            # Range ignored: read from the start again and drop what was seen.
            skip = self.pos
            while skip:
                got = resp.raw.read(min(skip, 1 << 20), decode_content=False)
                if not got:
                    resp.close()
                    raise OSError("body ended while skipping to the resume offset")
                skip -= len(got)
        self.resp = resp

    def _read(self, size: int) -> bytes:
        """One attempt: (re)connect when needed, then what has arrived (read1: a trickle is seen
        arriving, so the deadline is checked between reads)."""
        try:
            if self.resp is None:
                if self.pos:
                    self.resumes += 1
                self._connect()
            raw = self.resp.raw
            if hasattr(raw, "read1"):
                data: bytes = raw.read1(size, decode_content=False)
            else:
                # urllib3 1.26 (Debian 12's python3-urllib3: the installer ISO's Python) has no read1;
                # the http.client response under it has (its read() would wait for the whole chunk,
                # and a trickle would never reach the deadline check). 1.26 is frozen: _fp stays.
                # It also lets the socket's own timeout through, unwrapped: that is a stall too.
                try:
                    data = raw._fp.read1(size)
                except TimeoutError as exc:
                    raise _Again(f"stalled: no data at byte {self.pos}") from exc
            if not data and self.src.size is not None and self.pos < self.src.size:
                raise _Again(f"body ended at byte {self.pos} of {self.src.size}")
            return data
        except BaseException:
            if self.resp is not None:
                self.resp.close()
                self.resp = None
            raise

    def readinto(self, b: Any) -> int:
        data = self.src.retrying(
            f"downloading from byte {self.pos}", lambda: self._read(min(len(b), 1 << 20))
        )
        n = len(data)
        b[:n] = data
        self.pos += n
        return n

    def close(self) -> None:
        if self.resp is not None:
            self.resp.close()
            self.resp = None
        super().close()


def open_source(spec: str, **http_options: Any) -> ImageSource:
    """A source for a path or an ``http(s)://`` URL."""
    lower = spec.lower()
    if lower.startswith(("http://", "https://")):
        return HttpSource(spec, **http_options)
    if "://" in spec:
        from pineinstall.resources import shown_url

        raise SourceError(f"{shown_url(spec)}: unsupported URL scheme (file paths, http:// and https:// are)")
    return FileSource(spec)
