"""The files stage, one semantic per test (on real scratch roots; chown needs root)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from _root_helpers import scratch_root

from pineinstall.config import model
from pineinstall.stages import Log, StageError, files
from pineinstall.target import open_target

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")

PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/sbin/nologin\nsvc:x:1234:1234::/:/sbin/nologin\n"
GROUP = "root:x:0:\ndaemon:x:1:\nsvc:x:1234:\nwheel:x:10:\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return scratch_root(
        tmp_path / "root", passwd=PASSWD, group=GROUP, shadow="root:*:1::::::\n", gshadow="root:*::\n"
    )


def run(root: Path, cfg: dict[str, Any]) -> tuple[files.Result, Log]:
    log = Log(io.StringIO())
    return files.run(model.from_dict(cfg), open_target(root), log), log


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def d(text: str) -> dict[str, str]:
    return {"source": "data:," + text}


def test_order_by_depth_then_hard_links_last(root: Path) -> None:
    _, log = run(
        root,
        {
            "storage": {
                "links": [
                    {"path": "/h", "target": "/a/b/c/f", "hard": True},
                    {"path": "/a/b/l", "target": "x"},
                ],
                "files": [{"path": "/a/b/c/f", "contents": d("f")}, {"path": "/top", "contents": d("t")}],
                "directories": [{"path": "/a/b/c/d/e"}, {"path": "/a"}],
            }
        },
    )
    done = [text.split(" ", 2)[2].split(" ->")[0].strip("'") for _n, text, _s, ok in log.records if ok]
    assert done[:6] == ["/a", "/top", "/a/b/l", "/a/b/c/f", "/a/b/c/d/e", "/h"]
    assert os.stat(root / "h").st_ino == os.stat(root / "a/b/c/f").st_ino


def test_default_modes_and_parents_ignore_the_umask(root: Path) -> None:
    old = os.umask(0o077)
    try:
        run(root, {"storage": {"files": [{"path": "/p/q/f"}], "directories": [{"path": "/x/y"}]}})
    finally:
        os.umask(old)
    assert mode(root / "p") == mode(root / "p/q") == mode(root / "x") == mode(root / "x/y") == 0o755
    assert mode(root / "p/q/f") == 0o644
    assert (root / "p/q/f").read_bytes() == b""
    assert os.stat(root / "p").st_uid == 0 and os.stat(root / "p").st_gid == 0


def test_ownership_before_mode_keeps_special_bits(root: Path) -> None:
    run(
        root,
        {
            "storage": {
                "files": [{"path": "/bin/su2", "contents": d("x"), "mode": 0o4755, "user": {"id": 1234}}],
                "directories": [{"path": "/shared", "mode": 0o2775, "group": {"name": "wheel"}}],
            }
        },
    )
    st = os.stat(root / "bin/su2")
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o4755, 1234)
    st = os.stat(root / "shared")
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o2775, 10)


def test_names_come_from_the_target_not_the_host(root: Path) -> None:
    run(root, {"storage": {"files": [{"path": "/f", "user": {"name": "svc"}, "group": {"name": "svc"}}]}})
    st = os.stat(root / "f")
    assert (st.st_uid, st.st_gid) == (1234, 1234)


def test_unknown_owner_is_refused_before_any_write(root: Path) -> None:
    with pytest.raises(StageError, match="no such user 'ghost'"):
        run(
            root,
            {
                "storage": {
                    "files": [{"path": "/a", "contents": d("a")}, {"path": "/b", "user": {"name": "ghost"}}]
                }
            },
        )
    assert not (root / "a").exists()


def test_users_created_by_the_same_config_own_nodes(root: Path) -> None:
    (root / "etc" / "login.defs").write_text("USERGROUPS_ENAB yes\n")
    run(
        root,
        {
            "passwd": {"users": [{"name": "newbie", "uid": 4321, "noCreateHome": True}]},
            "storage": {
                "directories": [{"path": "/srv/n", "user": {"name": "newbie"}, "group": {"name": "newbie"}}]
            },
        },
    )
    st = os.stat(root / "srv/n")
    assert st.st_uid == 4321
    group = next(line for line in (root / "etc/group").read_text().splitlines() if line.startswith("newbie:"))
    assert group.split(":")[2] == str(st.st_gid)


def test_owner_group_the_config_does_not_create_is_refused_early(root: Path) -> None:
    """Without USERGROUPS_ENAB a new user gets no group of its own: naming it fails before writes."""
    with pytest.raises(StageError, match="no such group 'newbie'"):
        run(
            root,
            {
                "passwd": {"users": [{"name": "newbie", "noCreateHome": True}]},
                "storage": {"files": [{"path": "/a"}, {"path": "/b", "group": {"name": "newbie"}}]},
            },
        )
    assert not (root / "a").exists()
    assert "newbie" not in (root / "etc/passwd").read_text()


def test_contents_kept_without_source_and_existing_mode_kept(root: Path) -> None:
    (root / "keep").write_text("mine")
    os.chmod(root / "keep", 0o604)
    run(root, {"storage": {"files": [{"path": "/keep"}]}})
    assert (root / "keep").read_text() == "mine" and mode(root / "keep") == 0o604


def test_append_fragments_in_order(root: Path) -> None:
    (root / "log").write_text("0")
    run(root, {"storage": {"files": [{"path": "/log", "append": [d("1"), d("2"), d("3")]}]}})
    assert (root / "log").read_text() == "0123"


def test_file_written_by_rename(root: Path) -> None:
    """Readers never see a half-written file: the new contents arrive as a new inode renamed into
    place; a second name of the old inode still sees the old contents."""
    (root / "f").write_text("old")
    os.link(root / "f", root / "oldref")
    run(root, {"storage": {"files": [{"path": "/f", "overwrite": True, "contents": d("new")}]}})
    assert (root / "f").read_text() == "new"
    assert (root / "oldref").read_text() == "old"
    assert [p.name for p in root.iterdir() if p.name.startswith(".pine-")] == []


def test_duplicate_resolved_paths(root: Path) -> None:
    (root / "real").mkdir()
    os.symlink("real", root / "alias")
    with pytest.raises(StageError, match="File at /alias/x resolved to /real/x after symlink chasing"):
        run(root, {"storage": {"directories": [{"path": "/real/x"}], "files": [{"path": "/alias/x"}]}})


@pytest.mark.parametrize(
    ("setup", "storage", "message"),
    [
        (
            "file",
            {"directories": [{"path": "/n"}]},
            "error creating directory /n: A non-directory already exists",
        ),
        (
            "dir",
            {"files": [{"path": "/n"}]},
            'error creating file "/n": A non regular file exists there already',
        ),
        (
            "file",
            {"files": [{"path": "/n", "contents": d("y")}]},
            "A file exists there already and overwrite is false",
        ),
        ("file", {"links": [{"path": "/n", "target": "/y"}]}, "a non-symlink already exists at that path"),
        (
            "link",
            {"links": [{"path": "/n", "target": "/y"}]},
            "points to /elsewhere, not /y and overwrite is false",
        ),
    ],
)
def test_refusals_are_found_before_writing(
    root: Path, setup: str, storage: dict[str, Any], message: str
) -> None:
    n = root / "n"
    {"file": lambda: n.write_text("x"), "dir": n.mkdir, "link": lambda: os.symlink("/elsewhere", n)}[setup]()
    storage = {**storage, "files": [*storage.get("files", []), {"path": "/other", "contents": d("o")}]}
    with pytest.raises(StageError, match=message):
        run(root, {"storage": storage})
    assert not (root / "other").exists()


def test_result_record(root: Path) -> None:
    result, _ = run(root, {"storage": {"files": [{"path": "/etc/motd", "contents": d("hi")}]}})
    rec = root / "etc" / ".pine-result.json"
    assert result.result_path == rec
    assert mode(rec) == 0o600
    data = json.loads(rec.read_text())
    assert data["userConfigProvided"] is True and data["provisioningDate"].endswith("Z")
    assert data["files"]["/etc/motd"] == "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"


def test_units_on_openrc_refused_before_any_write(root: Path) -> None:
    (root / "sbin").mkdir()
    (root / "sbin" / "openrc").write_text("")
    with pytest.raises(StageError, match="OpenRC"):
        run(
            root,
            {
                "storage": {"files": [{"path": "/a"}]},
                "systemd": {"units": [{"name": "x.service", "enabled": True}]},
            },
        )
    assert not (root / "a").exists()


def test_units_are_written_through_the_services_stage(root: Path) -> None:
    unit = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    run(root, {"systemd": {"units": [{"name": "hello.service", "enabled": True, "contents": unit}]}})
    assert (root / "etc/systemd/system/hello.service").read_text() == unit
    wants = root / "etc/systemd/system/multi-user.target.wants/hello.service"
    assert os.path.islink(wants)
