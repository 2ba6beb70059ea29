"""Nothing ever escapes the root: links in the root (pre-existing, or made by the config itself)
are followed inside it, ``..`` stops at it, and a hostile ``/home/user/.ssh`` link stays inside.

Every test puts a "host" directory beside the root and checks afterwards that it was not touched,
and that what the config asked for landed at the re-rooted place inside the root.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pineinstall.apply import run_apply
from pineinstall.config import model
from pineinstall.stages import Log, StageError, files
from pineinstall.target import Target, TargetError, open_target

from .ignition_ref import seed_root, snapshot


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A seeded root and a sentinel "host" directory outside it."""
    root = seed_root(tmp_path / "root")
    host = tmp_path / "host"
    host.mkdir()
    (host / "passwd").write_text("host-owned\n")
    return root, host


def apply(root: Path, storage: dict[str, Any], passwd: dict[str, Any] | None = None) -> tuple[int, str]:
    cfg: dict[str, Any] = {"ignition": {"version": "3.6.0"}, "storage": storage}
    if passwd:
        cfg["passwd"] = passwd
    src = root.parent / "cfg.ign"
    src.write_text(json.dumps(cfg))
    err = io.StringIO()
    return run_apply(str(root), str(src), log=Log(err)), err.getvalue()


def host_untouched(host: Path) -> None:
    assert sorted(p.name for p in host.iterdir()) == ["passwd"]
    assert (host / "passwd").read_text() == "host-owned\n"


def test_absolute_link_to_host_dir_is_rerooted(world: tuple[Path, Path]) -> None:
    root, host = world
    os.symlink(str(host), root / "etc2")  # absolute: means <root><host> inside the target
    rc, log = apply(root, {"files": [{"path": "/etc2/x", "contents": {"source": "data:,in"}}]})
    assert rc == 0, log
    host_untouched(host)
    assert (root / str(host).lstrip("/") / "x").read_text() == "in"


def test_relative_link_climbing_above_root_is_clamped(world: tuple[Path, Path]) -> None:
    root, host = world
    (root / "a").mkdir()
    os.symlink("../../../../../../../../" + str(host).lstrip("/"), root / "a" / "up")
    rc, log = apply(root, {"files": [{"path": "/a/up/passwd", "contents": {"source": "data:,x"}}]})
    assert rc == 0, log
    host_untouched(host)
    assert (root / str(host).lstrip("/") / "passwd").read_text() == "x"


def test_link_made_by_the_config_is_followed_inside(world: tuple[Path, Path]) -> None:
    """The config makes /a -> <host> (depth 1), then writes /a/f (depth 2): the write must follow
    the new link inside the root, not through the host's filesystem. (The checker refuses such a
    config -- "file path includes link in config" -- so the engine is driven directly.)"""
    root, host = world
    cfg = model.from_dict(
        {
            "storage": {
                "links": [{"path": "/a", "target": str(host)}],
                "files": [{"path": "/a/f", "contents": {"source": "data:,f"}}],
                "directories": [{"path": "/a/d", "mode": 0o700}],
            }
        }
    )
    files.run(cfg, open_target(root), Log(io.StringIO()))
    host_untouched(host)
    inside = root / str(host).lstrip("/")
    assert (inside / "f").read_text() == "f"
    assert (inside / "d").is_dir()
    assert os.readlink(root / "a") == str(host)


def test_overwrite_through_link_removes_inside_only(world: tuple[Path, Path]) -> None:
    root, host = world
    (host / "victim").mkdir()
    (host / "victim" / "keep").write_text("k")
    os.symlink(str(host), root / "v")
    rc, log = apply(root, {"directories": [{"path": "/v/victim", "overwrite": True}]})
    assert rc == 0, log
    assert (host / "victim" / "keep").read_text() == "k"
    assert (root / str(host).lstrip("/") / "victim").is_dir()


def test_hard_link_target_through_link_stays_inside(world: tuple[Path, Path]) -> None:
    root, host = world
    os.symlink(str(host), root / "h")
    (root / str(host).lstrip("/")).mkdir(parents=True)
    (root / str(host).lstrip("/") / "passwd").write_text("inner\n")
    rc, log = apply(root, {"links": [{"path": "/hl", "target": "/h/passwd", "hard": True}]})
    assert rc == 0, log
    assert (root / "hl").read_text() == "inner\n"
    assert os.stat(root / "hl").st_ino != os.stat(host / "passwd").st_ino
    host_untouched(host)


def test_hard_link_to_host_only_file_fails(world: tuple[Path, Path]) -> None:
    """The host's file is not visible inside the root: there is nothing to link to."""
    root, host = world
    os.symlink(str(host), root / "h")
    rc, log = apply(root, {"links": [{"path": "/hl", "target": "/h/passwd", "hard": True}]})
    assert rc == 1
    assert "does not exist" in log
    assert not (root / "hl").exists()
    host_untouched(host)


def test_ssh_dir_linked_to_etc_stays_in_root(world: tuple[Path, Path]) -> None:
    """A pre-existing /home/core/.ssh -> /etc: keys are written inside the root, never the host's /etc."""
    root, _host = world
    (root / "home" / "core").mkdir(parents=True)
    os.symlink("/etc", root / "home" / "core" / ".ssh")
    host_etc = snapshot(Path("/etc"), exclude=())  # compare the host's /etc before and after
    rc, log = apply(
        root,
        {
            "files": [
                {
                    "path": "/home/core/.ssh/authorized_keys",
                    "contents": {"source": "data:,ssh-ed25519%20AAAA%20k"},
                }
            ]
        },
    )
    assert rc == 0, log
    assert (root / "etc" / "authorized_keys").read_text() == "ssh-ed25519 AAAA k"
    assert snapshot(Path("/etc"), exclude=()) == host_etc


def test_ssh_dir_linked_to_etc_with_user_keys(world: tuple[Path, Path]) -> None:
    """The same through the accounts stage: a user's SSH keys with a hostile .ssh link."""
    root, _host = world
    (root / "home" / "core").mkdir(parents=True)
    os.symlink("/etc", root / "home" / "core" / ".ssh")
    host_etc = snapshot(Path("/etc"), exclude=())
    rc, log = apply(
        root, {}, passwd={"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA k"]}]}
    )
    # refusing is fine, writing inside the root is fine; touching the host is not
    assert snapshot(Path("/etc"), exclude=()) == host_etc
    if rc == 1:
        assert ".ssh is a symlink" in log, log
    else:
        assert rc == 0, log
        assert list((root / "etc").glob("authorized_keys*")), "the keys must be inside the root"


def test_dotdot_in_paths_is_clamped(world: tuple[Path, Path]) -> None:
    """The checker refuses unsimplified paths; the engine, given one anyway, stops at the root."""
    root, host = world
    cfg = model.from_dict(
        {
            "storage": {
                "files": [
                    {
                        "path": "/../../../../" + str(host).lstrip("/") + "/passwd",
                        "overwrite": True,
                        "contents": {"source": "data:,clamped"},
                    }
                ],
                "directories": [{"path": "/x/../../../y"}],
            }
        }
    )
    files.run(cfg, open_target(root), Log(io.StringIO()))
    host_untouched(host)
    assert (root / str(host).lstrip("/") / "passwd").read_text() == "clamped"
    assert (root / "y").is_dir()


def test_link_loop_is_an_error_not_a_hang(world: tuple[Path, Path]) -> None:
    root, _ = world
    os.symlink("/loop2", root / "loop1")
    os.symlink("/loop1", root / "loop2")
    before = snapshot(root)
    rc, log = apply(root, {"files": [{"path": "/loop1/f", "contents": {"source": "data:,x"}}]})
    assert rc == 1
    assert "too many levels of symbolic links" in log
    assert snapshot(root) == before


def test_target_resolve_never_leaves_root(world: tuple[Path, Path]) -> None:
    root, host = world
    os.symlink("/", root / "slash")
    os.symlink("..", root / "dotdot")
    os.symlink(str(host), root / "abs")
    t = Target(root)
    for path in ("/slash/slash/etc/passwd", "/dotdot/dotdot/x", "/abs/passwd", "/../..", "/abs/../../.."):
        resolved = t.resolve(path)
        assert resolved == root or root in resolved.parents, (path, resolved)
    with pytest.raises(TargetError):
        t.resolve("relative/path")


def test_stage_error_names_the_path(world: tuple[Path, Path]) -> None:
    root, _ = world
    (root / "f").write_text("x")
    cfg = model.from_dict({"storage": {"directories": [{"path": "/f"}]}})
    with pytest.raises(StageError, match=r"/f: A non-directory already exists and overwrite is false"):
        files.run(cfg, open_target(root), Log(io.StringIO()))
