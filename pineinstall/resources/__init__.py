"""Fetching a resource named inside a config.

Schemes: ``data:`` (RFC 2397), ``http``/``https`` (requests; retries on transport errors and 5xx
with a backoff from 200 ms doubling to 5 s, ``ignition.timeouts``, ``httpHeaders`` sent on the
first request only, never across redirects, extra CAs from ``ignition.security.tls``,
``ignition.proxy``) and ``tftp`` (RFC 1350, octet mode). ``s3``, ``gs`` and ``arn`` are refused by
:func:`check_source` with "not supported by this build", before anything is fetched.

Every fetch streams: raw bytes -> gzip decompression (when ``compression`` is ``gzip``) -> the
``verification.hash`` digest over the *decompressed* data -> the output. A wrong hash is an error
and the output must then be discarded (callers write into temporary storage, never the target).

``requests`` is imported only when an http(s) resource is actually fetched.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urlsplit

from pineinstall.config import model
from pineinstall.errors import PineError
from pineinstall.resources.retry import Retry

UNSUPPORTED_SCHEMES = ("s3", "gs", "arn")
SUPPORTED_SCHEMES = ("data", "http", "https", "tftp")
CHUNK = 1 << 16

DEFAULT_RESPONSE_HEADERS_TIMEOUT = 10
# Ignition retries forever when httpTotal is 0; an installer should not hang forever, so without a
# total limit we stop after this many attempts (~40 s of backoff).
DEFAULT_MAX_ATTEMPTS = 12
MAX_REDIRECTS = 10


class ResourceError(PineError):
    """A resource could not be fetched or did not verify."""


class RetryableError(ResourceError):
    """A transport error or 5xx answer: worth another attempt."""


def scheme_of(source: str) -> str:
    return source.split(":", 1)[0].lower() if ":" in source else ""


def shown_url(source: str) -> str:
    """A URL as it may appear in logs and errors: no credentials, query or fragment (they may
    carry tokens), and no data: payload (it may be a secret, and it may be megabytes)."""
    if source.lower().startswith("data:"):
        return f"data: URL ({len(source)} characters)"
    try:
        parts = urlsplit(source)
    except ValueError:
        return source.split("?", 1)[0][:200]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else source.split("?", 1)[0][:200]


def scrub(text: str, url: str) -> str:
    """An exception's text without the URL's secrets (requests and urllib3 repeat the URL, or its
    path and query, in their messages): the URL is replaced by :func:`shown_url`, its query by
    ``?…``, its password by ``…``."""
    text = text.replace(url, shown_url(url))
    _, _, query = url.partition("?")
    query = query.split("#", 1)[0]
    if query:
        text = text.replace("?" + query, "?…")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "…") if password else text


def check_source(source: str) -> None:
    """Refuse what this build cannot fetch, before anything is written."""
    scheme = scheme_of(source)
    if scheme in UNSUPPORTED_SCHEMES:
        raise ResourceError(f"{scheme} sources are not supported by this build: {shown_url(source)}")
    if scheme not in SUPPORTED_SCHEMES:
        raise ResourceError(f"unsupported source scheme {scheme!r}: {shown_url(source)}")


def check_resource(res: model.Resource) -> None:
    if res.source is not None:
        check_source(res.source)
    if res.verification.hash:
        func, _, digest = res.verification.hash.partition("-")
        if func not in ("sha256", "sha512"):
            raise ResourceError(f"unsupported hash function {func!r}")
        try:
            bytes.fromhex(digest)
        except ValueError as exc:
            raise ResourceError(f"hash {res.verification.hash!r} is not hexadecimal") from exc


# --- data: -----------------------------------------------------------------------------------------


def decode_data_url(source: str) -> bytes:
    """RFC 2397: ``data:[<mediatype>][;base64],<data>``; the data is percent-decoded."""
    if not source.lower().startswith("data:"):
        raise ResourceError(f"not a data URL: {source[:40]}")
    header, sep, payload = source[5:].partition(",")
    if not sep:
        raise ResourceError("invalid data URL: no comma")
    raw = unquote_to_bytes(payload)
    params = [p.strip().lower() for p in header.split(";")]
    if "base64" in params[1:] or (len(params) == 1 and params[0] == "base64"):
        try:
            return base64.b64decode(raw + b"=" * (-len(raw.rstrip(b"=")) % 4), validate=False)
        except ValueError as exc:
            raise ResourceError(f"invalid base64 in data URL: {exc}") from exc
    return raw


# --- the streaming pipeline ------------------------------------------------------------------------


class _Sink:
    """Decompress (optionally), hash, and write."""

    def __init__(self, out: IO[bytes], res: model.Resource) -> None:
        self.out = out
        self.gzip = res.compression == model.Compression.GZIP
        self._dec = zlib.decompressobj(wbits=31) if self.gzip else None
        self.hasher = None
        self.expected = None
        if res.verification.hash:
            func, _, digest = res.verification.hash.partition("-")
            self.hasher = hashlib.new(func)
            self.expected = (func, digest.lower())
        self.size = 0
        self._members = 0
        self._in_member = False

    def _emit(self, data: bytes) -> None:
        if data:
            if self.hasher is not None:
                self.hasher.update(data)
            self.out.write(data)
            self.size += len(data)

    def write(self, chunk: bytes) -> None:
        if self._dec is None:
            self._emit(chunk)
            return
        try:
            while chunk:
                self._in_member = True
                self._emit(self._dec.decompress(chunk))
                if self._dec.eof:
                    # gzip allows several members back to back (as Go's reader does)
                    self._members += 1
                    self._in_member = False
                    chunk = self._dec.unused_data
                    self._dec = zlib.decompressobj(wbits=31)
                else:
                    chunk = b""
        except zlib.error as exc:
            raise ResourceError(f"gzip decompression failed: {exc}") from exc

    def finish(self) -> None:
        if self.gzip and (self._in_member or self._members == 0):
            raise ResourceError("gzip decompression failed: unexpected end of stream")
        if self.hasher is not None and self.expected is not None:
            got = self.hasher.hexdigest()
            if got != self.expected[1]:
                raise ResourceError(
                    f"{self.expected[0]} hash mismatch: expected {self.expected[1]}, calculated {got}"
                )


# --- the fetcher -----------------------------------------------------------------------------------


class Fetcher:
    """Fetches resources with one set of network options (those of one config level)."""

    def __init__(
        self,
        *,
        response_headers_timeout: float | None = DEFAULT_RESPONSE_HEADERS_TIMEOUT,
        total_timeout: float | None = None,
        ca_bundle: bytes = b"",
        proxy: model.Proxy | None = None,
        max_attempts: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.response_headers_timeout = response_headers_timeout or None  # 0 means no limit
        self.total_timeout = total_timeout or None
        self.ca_bundle = ca_bundle
        self.proxy = proxy or model.Proxy()
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.clock = clock
        self.log = log or (lambda _msg: None)
        self._session: Any = None
        self._ca_file: str | None = None
        self._lock = threading.Lock()  # the session is made once, even with fetches in threads

    @classmethod
    def for_config(cls, ign: model.Ignition, base: Fetcher | None = None, **kwargs: Any) -> Fetcher:
        """A fetcher with a config's ``ignition.timeouts``, ``proxy`` and extra CAs.

        The CA bundles are themselves resources, fetched with ``base`` (or plain defaults)."""
        t = ign.timeouts
        plain = base or cls(**kwargs)
        cas = []
        for ca in ign.security.tls.certificate_authorities:
            check_resource(ca)
            cas.append(plain.fetch(ca))
        return cls(
            response_headers_timeout=(
                t.http_response_headers
                if t.http_response_headers is not None
                else DEFAULT_RESPONSE_HEADERS_TIMEOUT
            ),
            total_timeout=t.http_total,
            ca_bundle=b"\n".join(cas),
            proxy=ign.proxy,
            **kwargs,
        )

    # --- public ---

    def fetch(self, res: model.Resource | str) -> bytes:
        """The resource's (decompressed, verified) bytes."""
        buf = io.BytesIO()
        self.fetch_to(res, buf)
        return buf.getvalue()

    def fetch_to(self, res: model.Resource | str, out: IO[bytes]) -> int:
        """Stream the resource into ``out`` (seekable: a retry starts it over); returns the size."""
        if isinstance(res, str):
            res = model.Resource(source=res)
        if res.source is None:
            return 0
        check_resource(res)
        scheme = scheme_of(res.source)
        start = out.tell()

        def attempt() -> int:
            out.seek(start)
            out.truncate()
            sink = _Sink(out, res)
            for chunk in self._raw(res, scheme):
                sink.write(chunk)
            sink.finish()
            return sink.size

        if scheme in ("http", "https", "tftp"):
            return self._with_retries(attempt, shown_url(res.source))
        return attempt()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._ca_file:
            os.unlink(self._ca_file)
            self._ca_file = None

    # --- retries ---

    def _with_retries(self, attempt: Callable[[], int], source: str) -> int:
        deadline = self.clock() + self.total_timeout if self.total_timeout else None
        retry = Retry(
            self.max_attempts or (None if deadline else DEFAULT_MAX_ATTEMPTS),
            deadline=deadline,
            limit=f"total timeout of {self.total_timeout} s",
            log=lambda line: self.log(f"GET {source}: {line}"),
            sleep=self.sleep,
            clock=self.clock,
        )
        while True:
            try:
                return attempt()
            except RetryableError as exc:

                def give_up(ending: str, exc: BaseException = exc) -> ResourceError:
                    return ResourceError(f"fetching {source} failed {ending}: {exc}")

                retry.failed(exc, give_up)

    # --- raw byte streams per scheme ---

    def _raw(self, res: model.Resource, scheme: str) -> Iterator[bytes]:
        assert res.source is not None
        if scheme == "data":
            yield decode_data_url(res.source)
        elif scheme in ("http", "https"):
            yield from self._http(res)
        elif scheme == "tftp":
            yield from tftp_get(res.source, timeout=self.response_headers_timeout or 10)
        else:  # pragma: no cover - check_resource refused it already
            raise ResourceError(f"unsupported scheme {scheme!r}")

    def _get_session(self) -> Any:
        with self._lock:
            return self._make_session()

    def _make_session(self) -> Any:
        if self._session is None:
            import requests

            s = requests.Session()
            if self.ca_bundle:
                system = _system_ca_bundle()
                fd, name = tempfile.mkstemp(prefix="pine-ca-", suffix=".pem")
                with os.fdopen(fd, "wb") as f:
                    f.write(system + b"\n" + self.ca_bundle + b"\n")
                self._ca_file = name
            p = self.proxy
            if p.http_proxy or p.https_proxy:
                s.trust_env = False  # the config's proxy settings replace the environment's
            self._session = s
        return self._session

    def _request_options(self, url: str) -> dict[str, Any]:
        """verify and proxies for one request, passed explicitly: requests lets the environment
        (REQUESTS_CA_BUNDLE, *_proxy) win over session attributes otherwise."""
        opts: dict[str, Any] = {"verify": self._ca_file or True}
        p = self.proxy
        if p.http_proxy or p.https_proxy:
            parts = urlsplit(url)
            if _bypass_proxy(parts.hostname or "", parts.port, p.no_proxy):
                opts["proxies"] = {"http": None, "https": None}
            else:
                opts["proxies"] = {
                    "http": p.http_proxy,
                    "https": p.https_proxy or p.http_proxy,
                }
        return opts

    def _http(self, res: model.Resource) -> Iterator[bytes]:
        import requests

        session = self._get_session()
        url = res.source
        assert url is not None  # _raw passes only resources with a source
        shown = shown_url(url)
        # identity: ask for the bytes as stored; the config's own headers may say otherwise
        headers = {"Accept-Encoding": "identity"}
        headers.update({h.name: h.value or "" for h in res.http_headers if h.name})
        timeout = self.response_headers_timeout
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                resp = session.get(
                    url,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(timeout, timeout),
                    **self._request_options(url),
                )
            except requests.exceptions.SSLError as exc:
                raise ResourceError(f"GET {shown}: TLS error: {scrub(str(exc), url)}") from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise RetryableError(
                    f"GET {shown}: {exc.__class__.__name__}: {scrub(str(exc), url)}"
                ) from exc
            with resp:
                if resp.is_redirect:
                    url = requests.compat.urljoin(url, resp.headers["location"])
                    shown = shown_url(url)
                    headers = {"Accept-Encoding": "identity"}  # the config's are for the first URL only
                    continue
                if resp.status_code >= 500:
                    raise RetryableError(f"GET {shown}: server answered {resp.status_code}")
                if resp.status_code != 200:
                    raise ResourceError(f"GET {shown}: server answered {resp.status_code} {resp.reason}")
                try:
                    # a transport Content-Encoding is undone here; `compression` is about the data
                    yield from resp.raw.stream(CHUNK, decode_content=True)
                except (requests.exceptions.RequestException, OSError) as exc:
                    raise RetryableError(f"GET {shown}: reading the body: {scrub(str(exc), url)}") from exc
                except Exception as exc:  # urllib3's ProtocolError / ReadTimeoutError
                    raise RetryableError(f"GET {shown}: reading the body: {scrub(str(exc), url)}") from exc
                return
        raise ResourceError(f"GET {shown_url(res.source or '')}: more than {MAX_REDIRECTS} redirects")


def _bypass_proxy(host: str, port: int | None, no_proxy: tuple[str, ...]) -> bool:
    """Ignition's ``noProxy``: ``*``; an IP or CIDR prefix; a domain and its subdomains; a
    leading ``.`` for subdomains only; any of these with ``:port``."""
    import ipaddress

    host = host.lower().strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy:
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        want_port = None
        if entry.count(":") == 1 and "/" not in entry:
            entry, _, port_text = entry.partition(":")
            want_port = int(port_text) if port_text.isdigit() else None
        if want_port is not None and port is not None and want_port != port:
            continue
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if ip is not None:
            try:
                if ip == ipaddress.ip_address(entry.strip("[]")):
                    return True
            except ValueError:
                pass
            continue
        if entry.startswith("."):
            if host.endswith(entry):
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def _system_ca_bundle() -> bytes:
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            continue
    try:
        import certifi

        with open(certifi.where(), "rb") as f:
            return f.read()
    except (ImportError, OSError):
        return b""


# --- tftp (RFC 1350, octet mode) -------------------------------------------------------------------


def tftp_get(source: str, *, timeout: float = 10, retries: int = 5) -> Iterator[bytes]:
    """Read a file over TFTP; transport problems are :class:`RetryableError`."""
    parts = urlsplit(source)
    host = parts.hostname
    if not host:
        raise ResourceError(f"tftp URL without a host: {source}")
    port = parts.port or 69
    filename = parts.path.lstrip("/")
    request = struct.pack("!H", 1) + filename.encode() + b"\0octet\0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        server: tuple[Any, ...] | None = None
        expected = 1
        last_sent = (request, (host, port))
        sock.sendto(*last_sent)
        tries = 0
        while True:
            try:
                data, addr = sock.recvfrom(4 + 512 + 64)
            except TimeoutError as exc:
                tries += 1
                if tries > retries:
                    raise RetryableError(f"tftp {source}: no answer from {host}:{port}") from exc
                sock.sendto(*last_sent)
                continue
            if server is None:
                server = addr  # the server answers from a new port (its transfer id)
            elif addr != server:
                continue
            opcode = struct.unpack("!H", data[:2])[0]
            if opcode == 5:
                code = struct.unpack("!H", data[2:4])[0]
                msg = data[4:].split(b"\0", 1)[0].decode("utf-8", "replace")
                raise ResourceError(f"tftp {source}: error {code}: {msg}")
            if opcode != 3:
                continue
            block = struct.unpack("!H", data[2:4])[0]
            ack = struct.pack("!HH", 4, block)
            last_sent = (ack, server)
            sock.sendto(ack, server)
            if block == expected:
                tries = 0
                payload = data[4:]
                if payload:
                    yield payload
                expected = (expected + 1) & 0xFFFF
                if len(payload) < 512:
                    return
