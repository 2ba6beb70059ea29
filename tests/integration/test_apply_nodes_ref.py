"""Differential tests: Debian's reference Ignition files stage and ``pineinstall apply`` on the same
seeded root, for many configs of files, directories, links, appends, overwrites, modes, owners and
hard links; the resulting trees must be the same (paths, kinds, modes, owners, contents, link
targets, hard-link groups). When the reference refuses a config, ours must refuse it too — and,
unlike the reference, leave the root untouched (everything is checked before the first write).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pineinstall.apply import run_apply
from pineinstall.stages import Log

from .ignition_ref import (
    IGNITION,
    REF_VERSION,
    diff,
    inode_groups,
    reference_error,
    run_reference,
    seed_root,
    snapshot,
)
from .image_helpers import twin_roots

pytestmark = [pytest.mark.conformance, pytest.mark.needs(IGNITION)]


def data(text: str) -> dict[str, str]:
    from urllib.parse import quote

    return {"source": "data:," + quote(text)}


# --- pre-existing state: a list of (op, path, ...) applied to both roots ---------------------------


def build(root: Path, ops: list[tuple[Any, ...]]) -> None:
    for op in ops:
        kind, rel = op[0], op[1].lstrip("/")
        p = root / rel
        if kind == "file":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(op[2])
            os.chmod(p, op[3] if len(op) > 3 else 0o644)
            if len(op) > 4:
                os.chown(p, op[4], op[5])
        elif kind == "dir":
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, op[2] if len(op) > 2 else 0o755)
            if len(op) > 3:
                os.chown(p, op[3], op[4])
        elif kind == "symlink":
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(op[2], p)
        elif kind == "hardlink":
            os.link(root / op[2].lstrip("/"), p)
        else:
            raise ValueError(kind)


BASE = [("dir", "/ex"), ("file", "/ex/f", "old\n"), ("symlink", "/ex/sl", "/ex/f"), ("dir", "/ex/dir")]

# name -> (pre-existing state, storage section, expected error phrase or None)
# (an error may be a pair: the reference's phrase, ours)
CASES: dict[str, tuple[list[tuple[Any, ...]], dict[str, Any], str | tuple[str, str] | None]] = {
    # --- files ---
    "file-new-default-mode": ([], {"files": [{"path": "/a/b/c", "contents": data("hi")}]}, None),
    "file-new-no-contents": ([], {"files": [{"path": "/empty"}]}, None),
    "file-mode-0600": ([], {"files": [{"path": "/m", "contents": data("x"), "mode": 0o600}]}, None),
    "file-mode-0755": (
        [],
        {"files": [{"path": "/bin2/tool", "contents": data("#!/bin/sh\n"), "mode": 493}]},
        None,
    ),
    "file-mode-0000": ([], {"files": [{"path": "/z", "contents": data("z"), "mode": 0}]}, None),
    "file-deep-parents": ([], {"files": [{"path": "/1/2/3/4/5/6/f", "contents": data("deep")}]}, None),
    "file-base64": (
        [],
        {"files": [{"path": "/b64", "contents": {"source": "data:;base64,aGVsbG8gd29ybGQK"}}]},
        None,
    ),
    "file-percent-encoded": ([], {"files": [{"path": "/pct", "contents": data("a b\n%c\t\u00e9")}]}, None),
    "file-gzip": (
        [],
        {
            "files": [
                {
                    "path": "/gz",
                    "contents": {
                        "source": "data:;base64,H4sIAAAAAAAC/8tIzcnJBwCGphA2BQAAAA==",
                        "compression": "gzip",
                    },
                }
            ]
        },
        None,
    ),
    "file-hash-sha512": (
        [],
        {
            "files": [
                {
                    "path": "/h",
                    "contents": {
                        "source": "data:,hello",
                        "verification": {
                            "hash": "sha512-9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"
                            "2323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
                        },
                    },
                }
            ]
        },
        None,
    ),
    "file-hash-sha256": (
        [],
        {
            "files": [
                {
                    "path": "/h256",
                    "contents": {
                        "source": "data:,hello",
                        "verification": {
                            "hash": "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
                        },
                    },
                }
            ]
        },
        None,
    ),
    "file-owner-ids": (
        [],
        {"files": [{"path": "/own", "contents": data("o"), "user": {"id": 1}, "group": {"id": 2}}]},
        None,
    ),
    "file-owner-names": (
        [],
        {
            "files": [
                {"path": "/own2", "contents": data("o"), "user": {"name": "daemon"}, "group": {"name": "adm"}}
            ]
        },
        None,
    ),
    "file-owner-unknown-ids": (
        [],
        {"files": [{"path": "/own3", "contents": data("o"), "user": {"id": 4242}, "group": {"id": 4343}}]},
        None,
    ),
    "file-owner-name-only-user": (
        [],
        {"files": [{"path": "/own4", "user": {"name": "nobody"}}]},
        None,
    ),
    "file-existing-no-source-kept": (
        [("file", "/keep", "old\n", 0o600, 1, 1)],
        {"files": [{"path": "/keep"}]},
        None,
    ),
    "file-existing-no-source-new-mode": (
        [("file", "/keep", "old\n", 0o600)],
        {"files": [{"path": "/keep", "mode": 0o640}]},
        None,
    ),
    "file-existing-no-source-new-owner": (
        [("file", "/keep", "old\n", 0o600)],
        {"files": [{"path": "/keep", "user": {"id": 1}}]},
        None,
    ),
    "file-existing-with-source-refused": (
        BASE,
        {"files": [{"path": "/ex/f", "contents": data("x")}]},
        "A file exists there already and overwrite is false",
    ),
    "file-existing-overwrite": (
        BASE,
        {"files": [{"path": "/ex/f", "contents": data("x"), "overwrite": True}]},
        None,
    ),
    "file-overwrite-keeps-nothing": (
        [("file", "/ow", "old", 0o600, 1, 1)],
        {"files": [{"path": "/ow", "contents": data("new"), "overwrite": True}]},
        None,
    ),
    "file-overwrite-dir": (
        BASE,
        {"files": [{"path": "/ex/dir", "contents": data("x"), "overwrite": True}]},
        None,
    ),
    "file-overwrite-symlink": (
        BASE,
        {"files": [{"path": "/ex/sl", "contents": data("x"), "overwrite": True}]},
        None,
    ),
    "file-over-dir-refused": (
        BASE,
        {"files": [{"path": "/ex/dir", "contents": data("x")}]},
        "A non regular file exists there already and overwrite is false",
    ),
    "file-over-symlink-refused": (
        BASE,
        {"files": [{"path": "/ex/sl"}]},
        "A non regular file exists there already and overwrite is false",
    ),
    "file-overwrite-false-new": (
        [],
        {"files": [{"path": "/n", "contents": data("x"), "overwrite": False}]},
        None,
    ),
    # --- append ---
    "append-existing": (
        [("file", "/app", "old\n", 0o640, 1, 1)],
        {"files": [{"path": "/app", "append": [data("more\n")]}]},
        None,
    ),
    "append-existing-with-mode": (
        [("file", "/app", "old\n", 0o640)],
        {"files": [{"path": "/app", "append": [data("more\n")], "mode": 0o600}]},
        None,
    ),
    "append-new": ([], {"files": [{"path": "/new/app", "append": [data("a"), data("b")]}]}, None),
    "append-after-contents": (
        [],
        {"files": [{"path": "/ca", "contents": data("A"), "append": [data("B"), data("C"), data("D")]}]},
        None,
    ),
    "append-overwrite-contents": (
        [("file", "/cao", "old")],
        {"files": [{"path": "/cao", "overwrite": True, "contents": data("A"), "append": [data("B")]}]},
        None,
    ),
    "append-gzip-fragment": (
        [("file", "/agz", "head\n")],
        {
            "files": [
                {
                    "path": "/agz",
                    "append": [
                        {
                            "source": "data:;base64,H4sIAAAAAAAC/8tIzcnJBwCGphA2BQAAAA==",
                            "compression": "gzip",
                        }
                    ],
                }
            ]
        },
        None,
    ),
    # --- directories ---
    "dir-new": ([], {"directories": [{"path": "/d"}]}, None),
    "dir-new-mode": ([], {"directories": [{"path": "/d/e/f", "mode": 0o700}]}, None),
    "dir-existing-keeps-mode": ([("dir", "/d", 0o700)], {"directories": [{"path": "/d"}]}, None),
    "dir-existing-new-mode": ([("dir", "/d", 0o700)], {"directories": [{"path": "/d", "mode": 0o750}]}, None),
    "dir-existing-new-owner": (
        [("dir", "/d", 0o700)],
        {"directories": [{"path": "/d", "user": {"id": 1}, "group": {"name": "wheel"}}]},
        None,
    ),
    "dir-over-file-refused": (
        BASE,
        {"directories": [{"path": "/ex/f"}]},
        "A non-directory already exists and overwrite is false",
    ),
    "dir-overwrite-file": (BASE, {"directories": [{"path": "/ex/f", "overwrite": True}]}, None),
    "dir-overwrite-dir-with-contents": (
        [("dir", "/full"), ("file", "/full/x", "x")],
        {"directories": [{"path": "/full", "overwrite": True, "mode": 0o750}]},
        None,
    ),
    "dir-and-children-order": (
        [],
        {
            "directories": [{"path": "/p/q/r", "mode": 0o700}, {"path": "/p", "mode": 0o711}],
            "files": [{"path": "/p/q/file", "contents": data("f")}],
        },
        None,
    ),
    "dir-owner-name": (
        [],
        {"directories": [{"path": "/srv/x", "user": {"name": "bin"}, "group": {"name": "bin"}}]},
        None,
    ),
    # --- symlinks ---
    "symlink-absolute": ([], {"links": [{"path": "/l", "target": "/etc/passwd"}]}, None),
    "symlink-relative": ([], {"links": [{"path": "/a/l", "target": "../etc/passwd"}]}, None),
    "symlink-dangling": ([], {"links": [{"path": "/dang", "target": "/does/not/exist"}]}, None),
    "symlink-owner": (
        [],
        {"links": [{"path": "/lo", "target": "/x", "user": {"id": 1}, "group": {"id": 2}}]},
        None,
    ),
    "symlink-existing-same": (BASE, {"links": [{"path": "/ex/sl", "target": "/ex/f"}]}, None),
    "symlink-existing-same-unclean": (BASE, {"links": [{"path": "/ex/sl", "target": "/ex//f"}]}, None),
    "symlink-existing-other-refused": (
        BASE,
        {"links": [{"path": "/ex/sl", "target": "/x"}]},
        "a symlink exists at that path but points to /ex/f, not /x and overwrite is false",
    ),
    "symlink-over-file-refused": (
        BASE,
        {"links": [{"path": "/ex/f", "target": "/x"}]},
        "a non-symlink already exists at that path and overwrite is false",
    ),
    "symlink-overwrite-file": (BASE, {"links": [{"path": "/ex/f", "target": "/x", "overwrite": True}]}, None),
    "symlink-overwrite-link": (
        BASE,
        {"links": [{"path": "/ex/sl", "target": "/y", "overwrite": True}]},
        None,
    ),
    "symlink-parents-created": ([], {"links": [{"path": "/deep/er/link", "target": "x"}]}, None),
    # --- paths through existing links (followed inside the root) ---
    "through-dir-symlink-abs": (
        [("dir", "/real"), ("symlink", "/alias", "/real")],
        {"files": [{"path": "/alias/f", "contents": data("via link")}]},
        None,
    ),
    "through-dir-symlink-rel": (
        [("dir", "/usr/etc2"), ("symlink", "/etc2", "usr/etc2")],
        {"files": [{"path": "/etc2/conf", "contents": data("c")}], "directories": [{"path": "/etc2/sub"}]},
        None,
    ),
    "through-chain-of-links": (
        [("dir", "/r1"), ("symlink", "/l1", "/l2"), ("symlink", "/l2", "r1")],
        {"files": [{"path": "/l1/f", "contents": data("chain")}]},
        None,
    ),
    "through-link-to-missing-dir": (
        [("symlink", "/later", "/made/here")],
        {"files": [{"path": "/later/f", "contents": data("m")}]},
        None,
    ),
    "duplicate-through-link-refused": (
        [("dir", "/real"), ("symlink", "/alias", "/real")],
        {"files": [{"path": "/alias/f", "contents": data("1")}, {"path": "/real/f", "contents": data("2")}]},
        "after symlink chasing, but another entry with path",
    ),
    "duplicate-dotdot-refused": (
        [],
        {"files": [{"path": "/q/f", "contents": data("1")}], "directories": [{"path": "/q/x/../f"}]},
        # ours refuses such a path already when checking the config
        ("after symlink chasing, but another entry with path", "path is not fully simplified"),
    ),
    # --- hard links ---
    "hardlink-to-config-file": (
        [],
        {
            "files": [{"path": "/deep/deeper/target", "contents": data("t"), "mode": 0o600}],
            "links": [{"path": "/hl", "target": "/deep/deeper/target", "hard": True}],
        },
        None,
    ),
    "hardlink-to-existing": (BASE, {"links": [{"path": "/ex/hl", "target": "/ex/f", "hard": True}]}, None),
    "hardlink-existing-same": (
        [*BASE, ("hardlink", "/ex/hl", "/ex/f")],
        {"links": [{"path": "/ex/hl", "target": "/ex/f", "hard": True}]},
        None,
    ),
    "hardlink-existing-other-refused": (
        [*BASE, ("file", "/ex/other", "o")],
        {"links": [{"path": "/ex/other", "target": "/ex/f", "hard": True}]},
        "a file already exists at that path but is not the target and overwrite is false",
    ),
    "hardlink-to-symlink-itself": (
        BASE,
        {"links": [{"path": "/ex/hsl", "target": "/ex/sl", "hard": True}]},
        None,
    ),
    "hardlink-overwrite": (
        [*BASE, ("file", "/ex/other", "o")],
        {"links": [{"path": "/ex/other", "target": "/ex/f", "hard": True, "overwrite": True}]},
        None,
    ),
    # --- owners by default ---
    "symlink-default-owner-of-target": (
        [("file", "/owned", "o", 0o644, 1, 2)],
        {"links": [{"path": "/to-owned", "target": "/owned"}]},
        None,
    ),
    "symlink-relative-default-owner": (
        [("dir", "/sub"), ("file", "/sub/owned", "o", 0o644, 2, 1)],
        {"links": [{"path": "/sub/rel", "target": "owned"}]},
        None,
    ),
    "append-new-with-owner": (
        [],
        {"files": [{"path": "/an", "append": [data("x")], "user": {"id": 2}}]},
        None,
    ),
    "file-kept-group-only": (
        [("file", "/k", "k", 0o640, 1, 1)],
        {"files": [{"path": "/k", "group": {"id": 2}}]},
        None,
    ),
    "dir-existing-owner-kept": (
        [("dir", "/od", 0o700, 1, 1)],
        {"directories": [{"path": "/od", "mode": 0o755}]},
        None,
    ),
    "symlink-existing-same-owner-untouched": (
        [*BASE],
        {"links": [{"path": "/ex/sl", "target": "/ex/f", "user": {"id": 1}}]},
        None,
    ),
    "hardlink-new-parents": (BASE, {"links": [{"path": "/n1/n2/hl", "target": "/ex/f", "hard": True}]}, None),
    "through-link-to-root-dotdot": (
        [("symlink", "/x", "../../..")],
        {"files": [{"path": "/x/f", "contents": data("top")}]},
        None,
    ),
    "file-in-existing-dir-with-owner": (
        [("dir", "/opt/app", 0o750, 1, 1)],
        {"files": [{"path": "/opt/app/conf", "contents": data("c"), "mode": 0o640, "group": {"id": 1}}]},
        None,
    ),
    # --- mixtures ---
    "mixed-tree": (
        [("dir", "/etc/ssh", 0o755)],
        {
            "directories": [{"path": "/var/lib/app", "mode": 0o750, "user": {"id": 2}, "group": {"id": 2}}],
            "files": [
                {"path": "/etc/hostname", "contents": data("pine\n"), "mode": 0o644},
                {"path": "/etc/ssh/sshd_config.d/10.conf", "contents": data("PermitRootLogin no\n")},
                {"path": "/var/lib/app/state", "contents": data("{}"), "user": {"id": 2}, "mode": 0o600},
            ],
            "links": [
                {"path": "/etc/localtime", "target": "/usr/share/zoneinfo/UTC"},
                {"path": "/var/lib/app/current", "target": "state"},
            ],
        },
        None,
    ),
    "same-depth-many": (
        [],
        {
            "files": [
                {"path": f"/many/f{i:02}", "contents": data(str(i)), "mode": 0o600 + i % 8} for i in range(30)
            ]
        },
        None,
    ),
}


@dataclass
class Runs:
    """One config applied to the same pre-existing tree by the reference and by ``pineinstall apply``."""

    config: dict[str, Any]
    config_file: Path
    ref_root: Path
    our_root: Path
    before: dict[str, Any]  # our root's snapshot before the apply
    proc: subprocess.CompletedProcess[str]  # the reference's run
    rc: int  # ours
    log: str  # ours


def run_both(pre: list[tuple[Any, ...]], storage: dict[str, Any], tmp_path: Path) -> Runs:
    config = {"ignition": {"version": REF_VERSION}, "storage": storage}
    ref_root, our_root = twin_roots(tmp_path, lambda root: build(seed_root(root), pre))
    before = snapshot(our_root)
    proc = run_reference(ref_root, config, scratch=tmp_path)
    config_file = tmp_path / "ours.ign"
    config_file.write_text(json.dumps(config))
    err = io.StringIO()
    rc = run_apply(str(our_root), str(config_file), log=Log(err))
    return Runs(config, config_file, ref_root, our_root, before, proc, rc, err.getvalue())


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_tree_as_reference(name: str, tmp_path: Path) -> None:
    pre, storage, error = CASES[name]
    r = run_both(pre, storage, tmp_path)
    if error is None:
        assert r.proc.returncode == 0, f"reference failed: {reference_error(r.proc) or r.proc.stdout}"
        assert r.rc == 0, f"ours failed:\n{r.log}"
        assert diff(snapshot(r.ref_root), snapshot(r.our_root)) == []
        assert inode_groups(r.ref_root) == inode_groups(r.our_root)
    else:
        ref_error, our_error = error if isinstance(error, tuple) else (error, error)
        assert r.proc.returncode != 0, "the reference accepted it"
        assert ref_error in reference_error(r.proc), reference_error(r.proc)
        assert r.rc == 1
        assert our_error in r.log, r.log
        # the reference may have written part of the config; ours wrote nothing at all
        assert diff(r.before, snapshot(r.our_root)) == []


def test_case_count() -> None:
    assert len(CASES) >= 60
