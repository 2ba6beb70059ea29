"""Remote resources through ``pineinstall apply`` against a real HTTP(S) server on 127.0.0.1:
retries (503 then 200) with backoff, timeouts, wrong hashes, gzip, headers not carried over
redirects, referenced configs (merge/replace), extra CAs, a proxy, unsupported schemes -- and in
every failure case the root is left exactly as it was (all fetched before the first write)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pineinstall.apply import run_apply
from pineinstall.stages import Log

from .httpserver import Answer, serve
from .ignition_ref import seed_root, snapshot


def sha512(b: bytes) -> str:
    return "sha512-" + hashlib.sha512(b).hexdigest()


def apply(root: Path, cfg: dict[str, Any]) -> tuple[int, str]:
    cfg = {"ignition": {"version": "3.6.0"}, **cfg} if "ignition" not in cfg else cfg
    src = root.parent / "cfg.ign"
    src.write_text(json.dumps(cfg))
    err = io.StringIO()
    return run_apply(str(root), str(src), log=Log(err)), err.getvalue()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return seed_root(tmp_path / "root")


def test_http_file_with_hash(root: Path) -> None:
    body = b"served over http\n"
    with serve() as srv:
        url = srv.route("/f", Answer(200, body))
        rc, log = apply(
            root,
            {
                "storage": {
                    "files": [
                        {"path": "/f", "contents": {"source": url, "verification": {"hash": sha512(body)}}}
                    ]
                }
            },
        )
    assert rc == 0, log
    assert (root / "f").read_bytes() == body


def test_503_then_200_is_retried_with_backoff(root: Path) -> None:
    body = b"eventually\n"
    with serve() as srv:
        url = srv.route("/flaky", Answer(503), Answer(503), Answer(200, body))
        start = time.monotonic()
        rc, log = apply(root, {"storage": {"files": [{"path": "/flaky", "contents": {"source": url}}]}})
        took = time.monotonic() - start
        hits = len(srv.hits("/flaky"))
    assert rc == 0, log
    assert hits == 3
    assert took >= 0.2 + 0.4  # two waits: 200 ms, then 400 ms
    assert (root / "flaky").read_bytes() == body


def test_404_is_not_retried_and_nothing_is_written(root: Path) -> None:
    before = snapshot(root)
    with serve() as srv:
        url = srv.route("/missing", Answer(404))
        rc, log = apply(
            root,
            {
                "storage": {
                    "files": [
                        {"path": "/first", "contents": {"source": "data:,would%20be%20first"}},
                        {"path": "/missing", "contents": {"source": url}},
                    ],
                    "directories": [{"path": "/dir"}],
                }
            },
        )
        hits = len(srv.hits("/missing"))
    assert rc == 1
    assert "404" in log
    assert hits == 1
    assert snapshot(root) == before


def test_wrong_hash_fails_before_any_write(root: Path) -> None:
    before = snapshot(root)
    with serve() as srv:
        url = srv.route("/tampered", Answer(200, b"evil"))
        rc, log = apply(
            root,
            {
                "storage": {
                    "files": [
                        {"path": "/a", "contents": {"source": "data:,a"}},
                        {
                            "path": "/tampered",
                            "contents": {"source": url, "verification": {"hash": sha512(b"good")}},
                        },
                    ]
                }
            },
        )
    assert rc == 1
    assert "hash mismatch" in log
    assert snapshot(root) == before


def test_gzip_hash_is_of_decompressed_data(root: Path) -> None:
    plain = b"compressed on the wire\n" * 100
    with serve() as srv:
        url = srv.route("/gz", Answer(200, gzip.compress(plain)))
        rc, log = apply(
            root,
            {
                "storage": {
                    "files": [
                        {
                            "path": "/gz",
                            "contents": {
                                "source": url,
                                "compression": "gzip",
                                "verification": {"hash": sha512(plain)},
                            },
                        }
                    ]
                }
            },
        )
    assert rc == 0, log
    assert (root / "gz").read_bytes() == plain


def test_response_header_timeout_then_total_timeout(root: Path) -> None:
    before = snapshot(root)
    with serve() as srv:
        url = srv.route("/slow", Answer(200, b"late", delay=3))
        start = time.monotonic()
        rc, log = apply(
            root,
            {
                "ignition": {"version": "3.6.0", "timeouts": {"httpResponseHeaders": 1, "httpTotal": 3}},
                "storage": {"files": [{"path": "/slow", "contents": {"source": url}}]},
            },
        )
        took = time.monotonic() - start
    assert rc == 1
    assert "timeout" in log.lower()
    assert took < 8
    assert snapshot(root) == before


def test_slow_but_within_timeout_succeeds(root: Path) -> None:
    with serve() as srv:
        url = srv.route("/slowish", Answer(200, b"ok", delay=0.5))
        rc, log = apply(
            root,
            {
                "ignition": {"version": "3.6.0", "timeouts": {"httpResponseHeaders": 2}},
                "storage": {"files": [{"path": "/slowish", "contents": {"source": url}}]},
            },
        )
    assert rc == 0, log


def test_headers_sent_but_not_across_redirects(root: Path) -> None:
    with serve() as srv:
        final = srv.route("/final", Answer(200, b"moved"))
        url = srv.route("/start", Answer(302, headers={"Location": final}))
        rc, log = apply(
            root,
            {
                "storage": {
                    "files": [
                        {
                            "path": "/r",
                            "contents": {
                                "source": url,
                                "httpHeaders": [{"name": "X-Token", "value": "s3cret"}],
                            },
                        }
                    ]
                }
            },
        )
        first, second = srv.hits("/start")[0], srv.hits("/final")[0]
    assert rc == 0, log
    assert first.headers.get("x-token") == "s3cret"
    assert "x-token" not in second.headers
    assert (root / "r").read_bytes() == b"moved"


def test_merge_and_replace_configs_are_fetched_verified_and_applied(root: Path) -> None:
    child = json.dumps(
        {
            "ignition": {"version": "3.2.0"},
            "storage": {"files": [{"path": "/from-merge", "contents": {"source": "data:,m"}}]},
        }
    ).encode()
    replacement = json.dumps(
        {
            "ignition": {"version": "3.6.0"},
            "storage": {"files": [{"path": "/from-replace", "contents": {"source": "data:,r"}}]},
        }
    ).encode()
    with serve() as srv:
        murl = srv.route("/child.ign", Answer(200, child))
        rurl = srv.route("/replace.ign", Answer(200, replacement))
        rc, log = apply(
            root,
            {
                "ignition": {
                    "version": "3.6.0",
                    "config": {"merge": [{"source": murl, "verification": {"hash": sha512(child)}}]},
                },
                "storage": {"files": [{"path": "/from-parent", "contents": {"source": "data:,p"}}]},
            },
        )
        assert rc == 0, log
        assert (root / "from-parent").read_text() == "p"
        assert (root / "from-merge").read_text() == "m"

        other = seed_root(root.parent / "other")
        rc, log = apply(
            other,
            {
                "ignition": {"version": "3.6.0", "config": {"replace": {"source": rurl}}},
                "storage": {"files": [{"path": "/from-parent", "contents": {"source": "data:,p"}}]},
            },
        )
        assert rc == 0, log
        assert (other / "from-replace").read_text() == "r"
        assert not (other / "from-parent").exists()


def test_bad_merged_config_stops_everything(root: Path) -> None:
    before = snapshot(root)
    with serve() as srv:
        murl = srv.route(
            "/child.ign",
            Answer(200, b'{"ignition": {"version": "3.6.0"}, "storage": {"files": [{"path": "rel"}]}}'),
        )
        rc, log = apply(
            root,
            {
                "ignition": {"version": "3.6.0", "config": {"merge": [{"source": murl}]}},
                "storage": {"files": [{"path": "/p", "contents": {"source": "data:,p"}}]},
            },
        )
    assert rc == 1
    assert "merged config 0" in log
    assert snapshot(root) == before


@pytest.mark.parametrize("source", ["s3://bucket/key", "gs://bucket/obj", "arn:aws:s3:::bucket/key"])
def test_unsupported_schemes_are_refused_up_front(root: Path, source: str) -> None:
    before = snapshot(root)
    rc, log = apply(
        root,
        {
            "storage": {
                "files": [
                    {"path": "/a", "contents": {"source": "data:,a"}},
                    {"path": "/b", "contents": {"source": source}},
                ]
            }
        },
    )
    assert rc == 1
    assert "not supported by this build" in log
    assert snapshot(root) == before


def test_proxy_is_used(root: Path) -> None:
    with serve() as proxy:
        proxy.route("http://pine.invalid/via-proxy", Answer(200, b"proxied"))
        rc, log = apply(
            root,
            {
                "ignition": {"version": "3.6.0", "proxy": {"httpProxy": proxy.url("")}},
                "storage": {
                    "files": [{"path": "/p", "contents": {"source": "http://pine.invalid/via-proxy"}}]
                },
            },
        )
        hits = len(proxy.hits("http://pine.invalid/via-proxy"))
    assert rc == 0, log
    assert hits == 1
    assert (root / "p").read_bytes() == b"proxied"


def test_no_proxy_bypasses_the_proxy(root: Path) -> None:
    with serve() as proxy, serve() as direct:
        url = direct.route("/direct", Answer(200, b"direct"))
        rc, log = apply(
            root,
            {
                "ignition": {
                    "version": "3.6.0",
                    "proxy": {"httpProxy": proxy.url(""), "noProxy": ["127.0.0.1"]},
                },
                "storage": {"files": [{"path": "/d", "contents": {"source": url}}]},
            },
        )
        assert proxy.requests == []
    assert rc == 0, log


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx, cert.read_bytes()


def test_https_needs_the_extra_ca(root: Path, tls: tuple[ssl.SSLContext, bytes]) -> None:
    ctx, pem = tls
    with serve(ctx) as srv:
        url = srv.route("/secure", Answer(200, b"over tls"))
        files = {"files": [{"path": "/s", "contents": {"source": url}}]}
        rc, log = apply(root, {"storage": files})
        assert rc == 1, "a self-signed server must not be trusted by default"
        ca = {"source": "data:;base64," + base64.b64encode(pem).decode()}
        rc, log = apply(
            root,
            {
                "ignition": {"version": "3.6.0", "security": {"tls": {"certificateAuthorities": [ca]}}},
                "storage": files,
            },
        )
    assert rc == 0, log
    assert (root / "s").read_bytes() == b"over tls"


def test_fetch_ahead_then_apply_offline(root: Path) -> None:
    """The installer's order: fetch and verify everything first (before a disk is written), then
    apply later with the server already gone."""
    from pineinstall.config import model
    from pineinstall.resources import Fetcher
    from pineinstall.stages import files
    from pineinstall.target import open_target

    body = b"fetched ahead\n"
    with serve() as srv:
        url = srv.route("/ahead", Answer(200, body))
        config = model.from_dict(
            {
                "storage": {
                    "files": [
                        {
                            "path": "/ahead",
                            "contents": {"source": url, "verification": {"hash": sha512(body)}},
                        }
                    ]
                }
            }
        )
        fetcher = Fetcher.for_config(config.ignition)
        fetched = files.fetch_all(config, fetcher, Log(io.StringIO()))
    # the server is gone now
    files.run(config, open_target(root), Log(io.StringIO()), fetcher=fetcher, fetched=fetched)
    assert (root / "ahead").read_bytes() == body


def test_remote_files_are_fetched_concurrently(root: Path) -> None:
    with serve() as srv:
        files = [
            {
                "path": f"/many/{i}",
                "contents": {"source": srv.route(f"/slow{i}", Answer(200, b"%d" % i, delay=0.6))},
            }
            for i in range(8)
        ]
        start = time.monotonic()
        rc, log = apply(root, {"storage": {"files": files}})
        took = time.monotonic() - start
    assert rc == 0, log
    assert [(root / "many" / str(i)).read_bytes() for i in range(8)] == [b"%d" % i for i in range(8)]
    assert took < 8 * 0.6  # four at a time: about 1.2 s of waiting, not 4.8 s


def test_first_failure_in_config_order_is_reported(root: Path) -> None:
    before = snapshot(root)
    with serve() as srv:
        files = [
            {"path": "/ok", "contents": {"source": srv.route("/ok", Answer(200, b"ok", delay=0.3))}},
            {"path": "/bad1", "contents": {"source": srv.route("/bad1", Answer(404, delay=0.3))}},
            {"path": "/bad2", "contents": {"source": srv.route("/bad2", Answer(403))}},
        ]
        rc, log = apply(root, {"storage": {"files": files}})
    assert rc == 1
    assert "apply failed: failed to fetch contents of /bad1" in log
    assert snapshot(root) == before
