"""Issue 12, item 3: what is refused before the first byte. The rules that need no target
(``pineinstall validate``, ``pine-transpile``) and the checks against a target's own accounts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _rules_helpers import err, findings, warn

from pineinstall.config import model
from pineinstall.config.rules.passwd import WARN_UID_0
from pineinstall.config.rules.systemd import ERR_NOT_A_FILE_NAME
from pineinstall.target import open_target
from pineinstall.target.preflight import TargetCheckError, check, needs_target, problems

REPO = Path(__file__).resolve().parents[2]
COLON = "user name contains ':' or a newline (it would be read as several passwd fields or lines)"
GECOS = "gecos contains ':' or a newline (it would be read as several passwd fields or lines)"


def users(*items: dict) -> dict:
    return {"passwd": {"users": list(items)}}


# --- rules that need no target ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a:b", "evil\n", "x\rroot", "pwn:x:0:0::/root:/bin/sh"])
def test_user_names_that_break_passwd_lines_are_errors(name: str) -> None:
    assert findings(users({"name": name})) == {err("$.passwd.users.0.name", COLON)}


@pytest.mark.parametrize("gecos", ["a:b", "Bob\nroot::0:0::/root:/bin/sh"])
def test_gecos_with_a_colon_or_newline_is_an_error(gecos: str) -> None:
    assert findings(users({"name": "bob", "gecos": gecos})) == {err("$.passwd.users.0.gecos", GECOS)}


def test_other_account_fields_and_group_names_are_checked_too() -> None:
    cfg = {
        "passwd": {
            "users": [
                {
                    "name": "bob",
                    "homeDir": "/h:x",
                    "shell": "/bin/sh\n",
                    "groups": ["ok", "a,b"],
                    "primaryGroup": "p:",
                }
            ],
            "groups": [{"name": "g\n"}, {"name": "h", "passwordHash": "$6$x:y"}],
        }
    }
    got = {(kind, path) for kind, path, _ in findings(cfg)}
    assert got == {
        ("error", "$.passwd.users.0.homeDir"),
        ("error", "$.passwd.users.0.shell"),
        ("error", "$.passwd.users.0.groups.1"),
        ("error", "$.passwd.users.0.primaryGroup"),
        ("error", "$.passwd.groups.0.name"),
        ("error", "$.passwd.groups.1.passwordHash"),
    }


@pytest.mark.parametrize("name", ["..", ".", "-x", "a/b", "a b", "x" * 33])
def test_names_useradd_refuses_are_errors(name: str) -> None:
    (entry,) = findings(users({"name": name}))
    assert entry[:2] == ("error", "$.passwd.users.0.name")


def test_ordinary_accounts_pass() -> None:
    cfg = users(
        {
            "name": "core",
            "gecos": "Core User, room 1",
            "uid": 1000,
            "groups": ["wheel"],
            "homeDir": "/var/home/core",
        },
        {"name": "root", "uid": 0, "passwordHash": "$6$salt$hash"},
    )
    assert findings(cfg) == set()


def test_uid_0_for_another_user_is_a_warning() -> None:
    assert findings(users({"name": "toor", "uid": 0})) == {warn("$.passwd.users.0.uid", WARN_UID_0)}


@pytest.mark.parametrize("name", ["../../etc/passwd.service", "sub/x.service", "/etc/x.service"])
def test_unit_names_with_a_slash_are_errors(name: str) -> None:
    cfg = {"systemd": {"units": [{"name": name}]}}
    assert err("$.systemd.units.0.name", ERR_NOT_A_FILE_NAME) in findings(cfg)


@pytest.mark.parametrize("name", ["../x.conf", "a/b.conf", "../../../etc/x.conf"])
def test_dropin_names_with_a_slash_or_dots_are_errors(name: str) -> None:
    cfg = {"systemd": {"units": [{"name": "a.service", "dropins": [{"name": name}]}]}}
    assert err("$.systemd.units.0.dropins.0.name", ERR_NOT_A_FILE_NAME) in findings(cfg)


def test_unit_names_with_dots_inside_pass() -> None:
    cfg = {"systemd": {"units": [{"name": "a..b.service", "dropins": [{"name": "10-x.y.conf"}]}]}}
    assert findings(cfg) == set()


def _run(module: str, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


YAML = b"""variant: fcos
version: 1.5.0
passwd:
  users:
    - name: "pwn:x:0:0::/root:/bin/sh"
systemd:
  units:
    - name: ../../x.service
"""


@pytest.mark.real_processes
def test_validate_reports_with_json_path_and_yaml_line(tmp_path: Path) -> None:
    (tmp_path / "c.bu").write_bytes(YAML)
    p = _run("pineinstall.cli", "validate", str(tmp_path / "c.bu"))
    assert p.returncode == 1
    assert f"error at $.passwd.users.0.name, line 5 col 13: {COLON}" in p.stdout.splitlines()
    assert f"error at $.systemd.units.0.name, line 8 col 13: {ERR_NOT_A_FILE_NAME}" in p.stdout.splitlines()
    ign = {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "bob", "gecos": "a:b"}]}}
    p = _run("pineinstall.cli", "validate", "-", stdin=json.dumps(ign).encode())
    assert p.returncode == 1 and p.stdout.startswith("error at $.passwd.users.0.gecos, line 1 col ")


@pytest.mark.real_processes
def test_pine_transpile_reports_at_the_yaml_place() -> None:
    # The pine variant has the rules; Butane's variants answer as Butane unless pineinstall asks.
    p = _run(
        "butane_like.cli",
        "--raw-errors",
        stdin=YAML.replace(b"fcos\nversion: 1.5.0", b"pine\nversion: 1.0.0"),
    )
    assert p.returncode == 1 and p.stdout == ""
    assert f"error at $.passwd.users.0.name, line 5 col 13: {COLON}" in p.stderr.splitlines()
    assert f"error at $.systemd.units.0.name, line 8 col 13: {ERR_NOT_A_FILE_NAME}" in p.stderr.splitlines()
    p = _run("butane_like.cli", "--raw-errors", stdin=YAML)
    assert COLON not in p.stderr and ERR_NOT_A_FILE_NAME not in p.stderr


# --- checks against the target's own accounts -------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\nwheel:x:10:\ncore:x:1000:\n")
    (etc / "login.defs").write_text("USERGROUPS_ENAB yes\n")
    return tmp_path / "root"


def cfg(**parts: object) -> model.Config:
    return model.from_dict({"ignition": {"version": "3.6.0"}, **parts})


def test_names_of_the_target_and_of_the_config_resolve(root: Path) -> None:
    c = cfg(
        passwd={
            "users": [
                {"name": "core", "groups": ["wheel", "ops"]},
                {"name": "app", "primaryGroup": "ops"},
                {"name": "web"},
            ],
            "groups": [{"name": "ops"}],
        },
        storage={
            "files": [{"path": "/a", "user": {"name": "app"}, "group": {"name": "web"}}],  # web's own group
            "directories": [{"path": "/d", "user": {"name": "core"}, "group": {"name": "wheel"}}],
            "links": [{"path": "/l", "target": "/a", "user": {"name": "root"}}],
        },
    )
    assert needs_target(c)
    check(c, open_target(root))


def test_every_unknown_name_is_refused_with_its_place(root: Path) -> None:
    c = cfg(
        passwd={"users": [{"name": "core", "groups": ["docker"], "primaryGroup": "nope"}]},
        storage={
            "files": [{"path": "/a", "user": {"name": "www-data"}}],
            "directories": [{"path": "/d", "group": {"name": "adm"}}],
            "links": [{"path": "/l", "target": "/a", "user": {"id": 7}, "group": {"name": "x"}}],
        },
    )
    got = problems(c, open_target(root))
    assert [p.split(":")[0] for p in got] == [
        "error at $.passwd.users.0.primaryGroup",
        "error at $.passwd.users.0.groups.0",
        "error at $.storage.directories.0.group.name",
        "error at $.storage.files.0.user.name",
        "error at $.storage.links.0.group.name",
    ]
    with pytest.raises(TargetCheckError, match="no such user 'www-data'"):
        check(c, open_target(root))


def test_uid_0_only_for_a_user_that_has_it(root: Path) -> None:
    ok = cfg(passwd={"users": [{"name": "root", "uid": 0, "sshAuthorizedKeys": ["ssh-ed25519 AAAA k"]}]})
    check(ok, open_target(root))
    for name in ("toor", "core"):
        bad = cfg(passwd={"users": [{"name": name, "uid": 0}]})
        (problem,) = problems(bad, open_target(root))
        assert problem.startswith("error at $.passwd.users.0.uid: uid 0 for user")


def test_a_config_without_names_needs_no_target() -> None:
    c = cfg(
        passwd={"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA k"]}]},
        storage={"files": [{"path": "/a", "user": {"id": 5}}]},
    )
    assert not needs_target(c)


def test_a_config_that_writes_passwd_leaves_owner_names_to_the_files_stage(root: Path) -> None:
    c = cfg(
        storage={
            "files": [
                {"path": "/etc/passwd", "append": [{"source": "data:,www:x:33:33::/:/bin/sh%0A"}]},
                {"path": "/srv", "user": {"name": "www"}},
            ]
        }
    )
    check(c, open_target(root))
