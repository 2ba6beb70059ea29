"""What "the root" is: confined path resolution, OSTree sysroots, init system detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pineinstall.target import Target, TargetError, open_target


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "usr" / "etc").mkdir(parents=True)
    (r / "real").mkdir()
    os.symlink("/real", r / "abs")
    os.symlink("real", r / "rel")
    os.symlink("usr/etc", r / "etc")
    os.symlink("../../..", r / "real" / "up")
    os.symlink("/abs/../rel", r / "mixed")
    os.symlink("nowhere/deeper", r / "dangling")
    return r


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b", "a/b"),
        ("/abs/f", "real/f"),  # absolute link re-rooted
        ("/rel/f", "real/f"),
        ("/etc/passwd", "usr/etc/passwd"),
        ("/abs", "abs"),  # the last component is never followed
        ("/etc", "etc"),
        ("/real/up/x", "x"),  # ../../.. from /real stops at the root
        ("/mixed/f", "real/f"),  # /abs/.. is / (after following /abs to /real), then rel -> real
        ("/dangling/f", "nowhere/deeper/f"),  # a link to a missing place still resolves inside
        ("/a/../b", "b"),
        ("/../../../etc/x", "usr/etc/x"),
        ("//double//slash/", "double/slash"),
        ("/abs/.", "real"),
        ("/a/..", ""),
    ],
)
def test_resolve(root: Path, path: str, expected: str) -> None:
    assert Target(root).resolve(path) == (root / expected if expected else root)


def test_resolve_all_follows_the_last_component(root: Path) -> None:
    t = Target(root)
    assert t.resolve_all("/abs") == root / "real"
    assert t.resolve_all("/etc") == root / "usr" / "etc"


def test_loops_and_relative_paths_are_errors(root: Path) -> None:
    os.symlink("/l2", root / "l1")
    os.symlink("/l1/x", root / "l2")
    with pytest.raises(TargetError, match="too many levels"):
        Target(root).resolve("/l1/f")
    with pytest.raises(TargetError, match="not absolute"):
        Target(root).resolve("etc/passwd")


def test_file_in_the_middle_is_not_followed(root: Path) -> None:
    (root / "plain").write_text("x")
    assert Target(root).resolve("/plain/child") == root / "plain" / "child"


def test_config_path_round_trip(root: Path) -> None:
    t = Target(root)
    assert t.config_path(t.resolve("/etc/passwd")) == "/usr/etc/passwd"
    assert t.config_path(root) == "/"


def test_ids_come_from_the_target(root: Path) -> None:
    (root / "usr" / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n"
    )
    (root / "usr" / "etc" / "group").write_text("root:x:0:\nwheel:x:10:core\n")
    t = Target(root)
    assert t.uid_of("core") == 1000  # read through the /etc -> usr/etc link, inside the root
    assert t.gid_of("wheel") == 10
    assert t.uid_of("nosuch") is None
    assert Target(root / "real").uid_of("core") is None  # no passwd there: never the host's


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], None),
        (["usr/lib/systemd/systemd"], "systemd"),
        (["lib/systemd/systemd"], "systemd"),
        (["sbin/openrc"], "openrc"),
        (["sbin/openrc", "usr/lib/systemd/systemd"], "systemd"),
        (["etc/systemd/system/"], "systemd"),
    ],
)
def test_init_system(tmp_path: Path, paths: list[str], expected: str | None) -> None:
    for p in paths:
        full = tmp_path / p
        if p.endswith("/"):
            full.mkdir(parents=True)
        else:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text("")
    assert Target(tmp_path).init_system == expected


# --- OSTree ----------------------------------------------------------------------------------------


def make_sysroot(base: Path, deployments: list[str], osname: str = "pine") -> Path:
    sysroot = base / "sysroot"
    for dep in deployments:
        d = sysroot / "ostree" / "deploy" / osname / "deploy" / dep
        (d / "etc").mkdir(parents=True)
        (d / "var").mkdir()
        (d / "usr").mkdir()
        os.symlink("var/home", d / "home")
        os.symlink("var/roothome", d / "root")
        (d / "etc" / "passwd").write_text(f"root:x:0:0::/root:/bin/sh\n# {dep}\n")
        (sysroot / "ostree" / "deploy" / osname / "deploy" / f"{dep}.origin").write_text("[origin]\n")
    var = sysroot / "ostree" / "deploy" / osname / "var"
    (var / "home").mkdir(parents=True)
    (var / "roothome").mkdir()
    return sysroot


def test_plain_root_is_plain(tmp_path: Path) -> None:
    t = open_target(tmp_path)
    assert t.kind == "plain" and t.root == tmp_path
    with pytest.raises(TargetError, match="not a directory"):
        open_target(tmp_path / "missing")


def test_ostree_paths_land_where_the_booted_system_sees_them(tmp_path: Path) -> None:
    sysroot = make_sysroot(tmp_path, ["abc123.0"])
    dep = sysroot / "ostree/deploy/pine/deploy/abc123.0"
    var = sysroot / "ostree/deploy/pine/var"
    t = open_target(sysroot)
    assert t.kind == "ostree" and t.root == dep
    assert t.resolve("/etc/hostname") == dep / "etc" / "hostname"
    assert t.resolve("/var/lib/x") == var / "lib" / "x"
    assert t.resolve("/var") == var
    assert t.resolve("/home/core/.ssh/authorized_keys") == var / "home" / "core" / ".ssh" / "authorized_keys"
    assert t.resolve("/root/.bashrc") == var / "roothome" / ".bashrc"
    assert t.resolve("/usr/bin/x") == dep / "usr" / "bin" / "x"
    assert "abc123.0" in (t.read_text("/etc/passwd") or "")
    assert t.config_path(var / "home" / "core") == "/var/home/core"


def test_ostree_absolute_link_in_var_is_rerooted_in_the_deployment(tmp_path: Path) -> None:
    sysroot = make_sysroot(tmp_path, ["abc.0"])
    var = sysroot / "ostree/deploy/pine/var"
    os.symlink("/etc", var / "home" / "evil")
    t = open_target(sysroot)
    assert t.resolve("/home/evil/shadow") == sysroot / "ostree/deploy/pine/deploy/abc.0/etc/shadow"


def test_ostree_newest_deployment_by_boot_entries(tmp_path: Path) -> None:
    sysroot = make_sysroot(tmp_path, ["old.0", "new.0"])
    boot = sysroot / "ostree" / "boot.1" / "pine" / "bootcsum"
    boot.mkdir(parents=True)
    os.symlink("../../../deploy/pine/deploy/old.0", boot / "0")
    os.symlink("../../../deploy/pine/deploy/new.0", boot / "1")
    entries = sysroot / "boot" / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / "ostree-1.conf").write_text(
        "title a\nversion 1\noptions ostree=/ostree/boot.1/pine/bootcsum/0\n"
    )
    (entries / "ostree-2.conf").write_text(
        "title b\nversion 2\noptions rw ostree=/ostree/boot.1/pine/bootcsum/1\n"
    )
    assert open_target(sysroot).root.name == "new.0"
    (entries / "ostree-1.conf").write_text(
        "title a\nversion 3\noptions ostree=/ostree/boot.1/pine/bootcsum/0\n"
    )
    assert open_target(sysroot).root.name == "old.0"


def test_ostree_newest_deployment_by_mtime_without_boot_entries(tmp_path: Path) -> None:
    sysroot = make_sysroot(tmp_path, ["b.0", "a.0"])
    base = sysroot / "ostree/deploy/pine/deploy"
    os.utime(base / "a.0", (2_000_000_000, 2_000_000_000))
    os.utime(base / "b.0", (1_000_000_000, 1_000_000_000))
    assert open_target(sysroot).root.name == "a.0"
