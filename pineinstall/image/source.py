"""Where an image comes from: a local file or an http(s) URL.

An :class:`ImageSource` is probed first (reachability, length, the first bytes for sniffing) and can
read byte ranges (the xz index and the gzip trailer sit at the end), then opened as one stream of
the image's bytes as stored (compressed or not).

HTTP is streamed with ``requests`` (imported only when a URL is used): ``Accept-Encoding:
identity`` so that the bytes are exactly the file's; a transport error, a 5xx answer or a body cut
short is retried with a capped backoff and the download *resumes* where it stopped with a ``Range``
request, guarded by ``If-Range`` (the ETag or Last-Modified of the first answer) so that a file
replaced on the server is noticed instead of being spliced. A server that ignores ``Range`` is read
again from the start and the already-seen bytes are skipped.
"""

from __future__ import annotations

import io
import os
import stat
import time
from typing import Any, BinaryIO

from pineinstall.image.errors import SourceError
from pineinstall.image.formats import SNIFF_BYTES

DEFAULT_RETRIES = 5
INITIAL_BACKOFF = 0.2
MAX_BACKOFF = 5.0
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


class HttpSource(ImageSource):
    is_remote = True

    def __init__(
        self,
        url: str,
        *,
        retries: int = DEFAULT_RETRIES,
        headers: dict[str, str] | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
        verify_tls: bool | str = True,
    ) -> None:
        super().__init__()
        self.name = url
        self.url = url
        self.retries = retries
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.verify_tls = verify_tls
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

    def _transport_errors(self) -> tuple[type[BaseException], ...]:
        import requests
        import urllib3

        return (requests.RequestException, urllib3.exceptions.HTTPError, OSError)

    def request(self, headers: dict[str, str] | None = None) -> Any:
        """GET with retries on transport errors and 5xx; 4xx is final."""
        errors = self._transport_errors()
        delay = INITIAL_BACKOFF
        last = ""
        for attempt in range(self.retries + 1):
            try:
                resp = self.session().get(
                    self.url, headers=headers or {}, stream=True, timeout=self.timeout, verify=self.verify_tls
                )
            except errors as exc:
                last = str(exc)
            else:
                if resp.status_code < 400:
                    return resp
                resp.close()
                last = f"HTTP {resp.status_code} {resp.reason}"
                if resp.status_code < 500 and resp.status_code not in (408, 429):
                    raise SourceError(f"{self.url}: {last}")
            if attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
        raise SourceError(f"{self.url}: {last} (after {self.retries + 1} attempts)")

    # -- the interface --

    def probe(self) -> None:
        resp = self.request({"Range": f"bytes=0-{SNIFF_BYTES - 1}"})
        try:
            self.validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
            if resp.status_code == 206:
                self.accepts_ranges = True
                total = resp.headers.get("Content-Range", "").rpartition("/")[2]
                self.size = int(total) if total.isdigit() else None
            else:
                length = resp.headers.get("Content-Length")
                self.size = int(length) if length and length.isdigit() else None
            self.head = resp.raw.read(SNIFF_BYTES, decode_content=False)
        except self._transport_errors() as exc:
            raise SourceError(f"{self.url}: {exc}") from exc
        finally:
            resp.close()

    def read_range(self, offset: int, length: int) -> bytes:
        if not self.accepts_ranges:
            raise SourceError(f"{self.url}: the server does not take Range requests")
        resp = self.request({"Range": f"bytes={offset}-{offset + length - 1}"})
        try:
            if resp.status_code != 206:
                raise SourceError(f"{self.url}: Range request answered with HTTP {resp.status_code}")
            data = resp.raw.read(length, decode_content=False)
        finally:
            resp.close()
        if len(data) != length:
            raise SourceError(f"{self.url}: short Range answer ({len(data)} of {length} bytes)")
        return data

    def open(self) -> BinaryIO:
        return io.BufferedReader(_ResumingStream(self), buffer_size=1 << 20)


class _ResumingStream(io.RawIOBase):
    """The body of one download, reconnecting with ``Range`` after a cut."""

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
            raise SourceError(f"{self.src.url}: the file changed on the server during the download")
        if self.pos and resp.status_code == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").partition("-")[0]
            if not start.isdigit() or int(start) != self.pos:
                resp.close()
                raise SourceError(f"{self.src.url}: resumed at the wrong offset ({start} != {self.pos})")
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

    def readinto(self, b: Any) -> int:
        errors = self.src._transport_errors()
        failures = 0
        delay = INITIAL_BACKOFF
        while True:
            try:
                if self.resp is None:
                    self._connect()
                data = self.resp.raw.read(len(b), decode_content=False)
                if not data and self.src.size is not None and self.pos < self.src.size:
                    raise OSError(f"body ended at byte {self.pos} of {self.src.size}")
            except SourceError:
                raise
            except errors as exc:
                if self.resp is not None:
                    self.resp.close()
                    self.resp = None
                failures += 1
                if failures > self.src.retries:
                    raise SourceError(
                        f"{self.src.url}: download failed at byte {self.pos}: {exc} "
                        f"(after {failures} attempts)"
                    ) from exc
                self.resumes += 1
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
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
        raise SourceError(f"{spec}: unsupported URL scheme (file paths, http:// and https:// are)")
    return FileSource(spec)
