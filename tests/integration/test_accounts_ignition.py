"""Differential tests: users and groups by Debian's reference Ignition files stage (which runs
shadow-utils' useradd/usermod/userdel/groupadd) and by ``pineinstall.stages.accounts`` on the same
seeded root.

Compared: every passwd, shadow, group and gshadow entry (all fields), every node of the two trees
(homes, skeleton copies, ``.ssh``: kinds, modes, owners, contents), and the set of SSH keys of each
user — the reference's ``~/.ssh/authorized_keys.d/ignition`` against our ``~/.ssh/authorized_keys``
(Pine's deliberate difference). Not compared: the ``-`` backups (the reference runs one tool per
entry and keeps the state before the last one; we write once and keep the state before the apply).
When the reference refuses a config, ours must refuse it too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pineinstall.accounts import sshkeys
from pineinstall.config import model
from pineinstall.stages import Log, StageError
from pineinstall.stages.accounts import apply_groups, apply_users
from pineinstall.target import Target

from .ignition_ref import IGNITION, REF_VERSION, diff, reference_error, run_reference, seed_root, snapshot
from .image_helpers import proc_mounted, twin_roots

pytestmark = [pytest.mark.conformance, pytest.mark.needs(IGNITION)]

KEY1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1Key1Key1Key1Key1Key1Key1Key1Key1Key1 one@example"
KEY2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCkey2key2key2 two@example"
KEY3 = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBkey3 three"
HASH = "$6$rounds=4096$saltsalt$5Bl0g2TAcDWWDdXWvjw6ev7k2Xm5X2g1zOv6u1xK2mQ4.N0zv8p9k5vJpJ3nD3eGZp1tY2k7s7R5qZ1bF1r0."

LOGIN_DEFS_UG = "UID_MIN 2000\nUID_MAX 3000\nGID_MIN 2000\nGID_MAX 3000\nUSERGROUPS_ENAB yes\nUMASK 022\n"

Setup = Callable[[Path], None]


def write(rel: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Setup:
    def f(root: Path) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    return f


def mkdir(rel: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Setup:
    def f(root: Path) -> None:
        p = root / rel
        p.mkdir(parents=True, exist_ok=True)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    return f


def append(rel: str, text: str) -> Setup:
    def f(root: Path) -> None:
        with open(root / rel, "a") as fh:
            fh.write(text)

    return f


def user_line(name: str, uid: int, gid: int, home: str, shell: str = "/bin/sh") -> list[Setup]:
    return [
        append("etc/passwd", f"{name}:x:{uid}:{gid}::{home}:{shell}\n"),
        append("etc/shadow", f"{name}:*:19000:0:99999:7:::\n"),
    ]


def group_line(name: str, gid: int, members: str = "") -> list[Setup]:
    return [
        append("etc/group", f"{name}:x:{gid}:{members}\n"),
        append("etc/gshadow", f"{name}:*::{members}\n"),
    ]


SKEL = [
    mkdir("etc/skel"),
    write("etc/skel/.profile", "export PS1='$ '\n"),
    write("etc/skel/.private", "secret\n", 0o600),
    mkdir("etc/skel/bin", 0o750),
    write("etc/skel/bin/tool", "#!/bin/sh\n", 0o755),
    mkdir("etc/skel/.config", 0o700),
]

# name -> (passwd section, setup steps)
CASES: dict[str, tuple[dict[str, Any], list[Setup]]] = {
    # --- groups
    "group": ({"groups": [{"name": "devs"}]}, []),
    "group-gid": ({"groups": [{"name": "devs", "gid": 4242}]}, []),
    "group-system": ({"groups": [{"name": "svc", "system": True}]}, []),
    "group-hash": ({"groups": [{"name": "devs", "passwordHash": HASH}]}, []),
    "groups-mixed": (
        {"groups": [{"name": "a", "system": True}, {"name": "b"}, {"name": "c", "gid": 1500}, {"name": "d"}]},
        [],
    ),
    "group-delete": ({"groups": [{"name": "adm", "shouldExist": False}]}, []),
    "group-delete-absent": ({"groups": [{"name": "nothere", "shouldExist": False}]}, []),
    "group-gid-taken": ({"groups": [{"name": "devs", "gid": 100}]}, []),
    "group-login-defs-ranges": (
        {"groups": [{"name": "a"}, {"name": "b", "system": True}]},
        [write("etc/login.defs", "GID_MIN 5000\nGID_MAX 6000\nSYS_GID_MIN 300\nSYS_GID_MAX 400\n")],
    ),
    # --- new users
    "user": ({"users": [{"name": "alice"}]}, []),
    "user-uid": ({"users": [{"name": "alice", "uid": 4321}]}, []),
    "user-gecos": ({"users": [{"name": "alice", "gecos": "Alice Liddell,Room 1,,"}]}, []),
    "user-homedir": ({"users": [{"name": "alice", "homeDir": "/srv/alice"}]}, []),
    "user-no-create-home": ({"users": [{"name": "alice", "noCreateHome": True}]}, []),
    "user-primary-group": ({"users": [{"name": "alice", "primaryGroup": "wheel"}]}, []),
    "user-primary-group-number": ({"users": [{"name": "alice", "primaryGroup": "10"}]}, []),
    "user-primary-group-missing": ({"users": [{"name": "alice", "primaryGroup": "nope"}]}, []),
    "user-groups": ({"users": [{"name": "alice", "groups": ["wheel", "adm"]}]}, []),
    "user-groups-missing": ({"users": [{"name": "alice", "groups": ["wheel", "nope"]}]}, []),
    "user-no-user-group": ({"users": [{"name": "alice", "noUserGroup": True}]}, []),
    "user-system": ({"users": [{"name": "svc", "system": True}]}, []),
    "user-system-no-home": ({"users": [{"name": "svc", "system": True, "noCreateHome": True}]}, []),
    "user-shell": ({"users": [{"name": "alice", "shell": "/usr/bin/zsh"}]}, []),
    "user-hash": ({"users": [{"name": "alice", "passwordHash": HASH}]}, []),
    "user-hash-empty": ({"users": [{"name": "alice", "passwordHash": ""}]}, []),
    "user-key": ({"users": [{"name": "alice", "sshAuthorizedKeys": [KEY1]}]}, []),
    "user-keys": ({"users": [{"name": "alice", "sshAuthorizedKeys": [KEY1, KEY2, KEY3]}]}, []),
    "user-keys-no-home": (
        {"users": [{"name": "alice", "noCreateHome": True, "sshAuthorizedKeys": [KEY1]}]},
        [],
    ),
    "user-uid-taken": ({"users": [{"name": "alice", "uid": 2}]}, []),
    "users-three": ({"users": [{"name": "a"}, {"name": "b", "uid": 1500}, {"name": "c"}]}, []),
    "user-uid-out-of-range": ({"users": [{"name": "a", "uid": 70000}, {"name": "b"}]}, []),
    "user-everything": (
        {
            "users": [
                {
                    "name": "alice",
                    "uid": 1234,
                    "gecos": "Alice",
                    "homeDir": "/home/al",
                    "primaryGroup": "users",
                    "groups": ["wheel"],
                    "shell": "/bin/sh",
                    "passwordHash": HASH,
                    "sshAuthorizedKeys": [KEY2],
                }
            ]
        },
        [],
    ),
    "group-then-user": (
        {
            "groups": [{"name": "devs", "gid": 3000}],
            "users": [{"name": "alice", "primaryGroup": "devs", "groups": ["devs", "wheel"]}],
        },
        [],
    ),
    # --- login.defs, /etc/default/useradd, skel
    "login-defs-user-groups": (
        {"users": [{"name": "a"}, {"name": "b", "uid": 2500}, {"name": "c"}]},
        [write("etc/login.defs", LOGIN_DEFS_UG)],
    ),
    "login-defs-user-group-exists": (
        {"users": [{"name": "devs"}]},
        [write("etc/login.defs", LOGIN_DEFS_UG), *group_line("devs", 2100)],
    ),
    "login-defs-preferred-gid-taken": (
        {"users": [{"name": "a"}]},
        [write("etc/login.defs", LOGIN_DEFS_UG), *group_line("x", 2000)],
    ),
    "login-defs-system-user-group": (
        {"users": [{"name": "s1", "system": True}, {"name": "s2", "system": True, "noUserGroup": True}]},
        [
            write(
                "etc/login.defs",
                LOGIN_DEFS_UG + "SYS_UID_MIN 200\nSYS_UID_MAX 300\nSYS_GID_MIN 200\nSYS_GID_MAX 250\n",
            )
        ],
    ),
    "login-defs-ageing": (
        {"users": [{"name": "a"}, {"name": "s", "system": True}]},
        [write("etc/login.defs", "PASS_MAX_DAYS 90\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 14\n")],
    ),
    "login-defs-home-mode": ({"users": [{"name": "a"}]}, [write("etc/login.defs", "HOME_MODE 0700\n")]),
    "login-defs-umask": ({"users": [{"name": "a"}]}, [write("etc/login.defs", "UMASK 027\n")]),
    "skel": ({"users": [{"name": "a"}, {"name": "b", "noCreateHome": True}]}, SKEL),
    "skel-and-keys": ({"users": [{"name": "a", "sshAuthorizedKeys": [KEY1]}]}, SKEL),
    "home-exists": (
        {"users": [{"name": "a", "sshAuthorizedKeys": [KEY1]}]},
        [*SKEL, mkdir("home/a", 0o711), write("home/a/keep", "mine\n")],
    ),
    "useradd-defaults": (
        {"users": [{"name": "a"}, {"name": "b", "noUserGroup": True}]},
        [write("etc/default/useradd", "SHELL=/bin/sh\nHOME=/srv/home\nGROUP=10\n"), mkdir("srv/home")],
    ),
    "subuid": (
        {"users": [{"name": "a"}, {"name": "b"}, {"name": "s", "system": True}]},
        [write("etc/subuid", "old:100000:65536\n"), write("etc/subgid", "")],
    ),
    "uid-range-full-falls-back": (
        {"users": [{"name": "c"}]},
        [
            write("etc/login.defs", "UID_MIN 1000\nUID_MAX 1002\n"),
            *user_line("a", 1000, 100, "/home/a"),
            *user_line("b", 1002, 100, "/home/b"),
        ],
    ),
    "system-uid-below-lowest": (
        {"users": [{"name": "s", "system": True}]},
        [*user_line("x", 998, 100, "/x"), *user_line("y", 500, 100, "/y")],
    ),
    "system-uid-range-falls-back": (
        {"users": [{"name": "s", "system": True}]},
        [
            write("etc/login.defs", "SYS_UID_MIN 200\nSYS_UID_MAX 210\n"),
            *user_line("lo", 200, 100, "/x"),
            *user_line("hi", 210, 100, "/y"),
        ],
    ),
    "home-through-symlink": (
        {"users": [{"name": "core", "sshAuthorizedKeys": [KEY1, KEY2]}]},
        [mkdir("var/home"), lambda r: os.symlink("var/home", r / "home")],
    ),
    "mail-spool": (
        {"users": [{"name": "a"}]},
        [
            write("etc/default/useradd", "CREATE_MAIL_SPOOL=yes\n"),
            mkdir("var/mail", 0o2775),
            *group_line("mail", 8),
        ],
    ),
    "no-gshadow": (
        {
            "groups": [{"name": "g", "passwordHash": HASH}, {"name": "h"}],
            "users": [{"name": "a", "groups": ["g"]}],
        },
        [lambda r: (r / "etc/gshadow").unlink()],
    ),
    "no-shadow": (
        {"users": [{"name": "a", "passwordHash": HASH}, {"name": "b"}]},
        [lambda r: (r / "etc/shadow").unlink()],
    ),
    "gecos-unicode": ({"users": [{"name": "a", "gecos": "Zoë Ångström"}]}, []),
    "user-group-and-primary-group": (
        {
            "users": [
                {"name": "a", "primaryGroup": "wheel"},
                {"name": "b", "noUserGroup": True},
                {"name": "c"},
            ]
        },
        [write("etc/login.defs", LOGIN_DEFS_UG)],
    ),
    "existing-user-existing-ssh-dir": (
        {"users": [{"name": "bob", "sshAuthorizedKeys": [KEY3]}]},
        [
            *user_line("bob", 1000, 100, "/home/bob"),
            mkdir("home/bob", 0o750, 1000, 100),
            mkdir("home/bob/.ssh", 0o755, 1000, 100),
        ],
    ),
    "existing-ssh-dir-not-the-users": (
        {"users": [{"name": "bob", "sshAuthorizedKeys": [KEY3]}]},
        [
            *user_line("bob", 1000, 100, "/home/bob"),
            mkdir("home/bob", 0o750, 1000, 100),
            mkdir("home/bob/.ssh", 0o755, 0, 0),
        ],
    ),
    "many-users": (
        {"users": [{"name": f"u{i}", "system": i % 3 == 0, "noCreateHome": i % 4 == 0} for i in range(12)]},
        [write("etc/login.defs", LOGIN_DEFS_UG)],
    ),
    "name-variants": ({"users": [{"name": n} for n in ("Alice", "a.b", "_x", "a$", "x" * 32)]}, []),
    "name-too-long": ({"users": [{"name": "x" * 33}]}, []),
    "name-leading-plus": ({"users": [{"name": "+x"}]}, []),
    "group-name-too-long": ({"groups": [{"name": "g" * 33}]}, []),
    # --- existing users are modified
    "modify-root-keys-hash": (
        {"users": [{"name": "root", "passwordHash": HASH, "sshAuthorizedKeys": [KEY1, KEY2]}]},
        [mkdir("root", 0o700)],
    ),
    "modify-shell-gecos": (
        {"users": [{"name": "daemon", "shell": "/bin/false", "gecos": "the daemon"}]},
        [mkdir("usr/sbin")],
    ),
    "modify-nothing": ({"users": [{"name": "bin"}]}, [mkdir("bin")]),
    "modify-groups-replace": (
        {"users": [{"name": "bob", "groups": ["adm", "users"]}]},
        [
            *user_line("bob", 1000, 100, "/home/bob"),
            mkdir("home/bob", 0o700, 1000, 100),
            *group_line("staff", 50, "bob"),
        ],
    ),
    "modify-uid-rechowns-home": (
        {"users": [{"name": "bob", "uid": 1777}]},
        [
            *user_line("bob", 1000, 100, "/home/bob"),
            mkdir("home/bob", 0o750, 1000, 100),
            write("home/bob/f", "x\n", 0o640, 1000, 100),
            write("home/bob/root-owned", "x\n", 0o644, 0, 0),
        ],
    ),
    "modify-primary-group": (
        {"users": [{"name": "bob", "primaryGroup": "wheel"}]},
        [*user_line("bob", 1000, 100, "/home/bob"), mkdir("home/bob", 0o700, 1000, 100)],
    ),
    "modify-move-home": (
        {"users": [{"name": "bob", "homeDir": "/home/robert"}]},
        [
            *user_line("bob", 1000, 100, "/home/bob"),
            mkdir("home/bob", 0o700, 1000, 100),
            write("home/bob/f", "x\n", 0o600, 1000, 100),
        ],
    ),
    "modify-hash-empty": ({"users": [{"name": "daemon", "passwordHash": ""}]}, [mkdir("usr/sbin")]),
    # --- deletion
    "delete-user": (
        {"users": [{"name": "bob", "shouldExist": False}]},
        [
            *user_line("bob", 1000, 1000, "/home/bob"),
            *group_line("bob", 1000),
            *group_line("team", 1001, "bob"),
            write("etc/login.defs", "USERGROUPS_ENAB yes\n"),
            mkdir("home/bob", 0o700, 1000, 1000),
            write("home/bob/f", "x\n", 0o600, 1000, 1000),
        ],
    ),
    "delete-user-absent": ({"users": [{"name": "nobody-here", "shouldExist": False}]}, []),
    "delete-user-keeps-shared-group": (
        {"users": [{"name": "bob", "shouldExist": False}]},
        [
            *user_line("bob", 1000, 1000, "/home/bob"),
            *user_line("carl", 1001, 1000, "/home/carl"),
            *group_line("bob", 1000),
            write("etc/login.defs", "USERGROUPS_ENAB yes\n"),
        ],
    ),
}


def build(root: Path, steps: list[Setup]) -> None:
    seed_root(root)
    for step in steps:
        step(root)


def to_model(passwd: dict[str, Any]) -> model.Config:
    return model.from_dict({"ignition": {"version": "3.6.0"}, "passwd": passwd})


def keys_of(root: Path, home: str, ours: bool) -> set[str]:
    ssh = root / home.lstrip("/") / ".ssh"
    f = ssh / ("authorized_keys" if ours else "authorized_keys.d/ignition")
    if not f.exists():
        return set()
    return {x for x in f.read_text().splitlines() if x and not x.startswith("#")}


def entries(root: Path, name: str) -> list[list[str]]:
    p = root / "etc" / name
    return [line.split(":") for line in p.read_text().splitlines()] if p.exists() else []


def comparable(root: Path) -> dict[str, Any]:
    skip_names = {"passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-"}
    snap = snapshot(root)
    out = {}
    for path, node in snap.items():
        parts = path.split("/")
        if parts[0] == "etc" and len(parts) == 2 and parts[1] in skip_names:
            continue
        if ".ssh" in parts and parts[-1] in ("authorized_keys", "authorized_keys.d", "ignition"):
            continue  # compared as key sets
        out[path] = node
    return out


def run_ours(root: Path, passwd: dict[str, Any]) -> str | None:
    cfg = to_model(passwd)
    target = Target(root)
    log = Log(quiet=True)
    try:
        apply_groups(cfg.passwd.groups, target, log)
        apply_users(cfg.passwd.users, target, log)
    except StageError as exc:
        return str(exc)
    return None


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A scratch directory others can traverse: the reference writes keys as the user (setfsuid),
    and pytest's own tmp_path sits under a 0700 directory."""
    d = Path(tempfile.mkdtemp(prefix="pine-accounts-"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_accounts_match_reference(case: str, scratch: Path) -> None:
    tmp_path = scratch
    passwd, steps = CASES[case]
    ref, ours = twin_roots(tmp_path, lambda root: build(root, steps))
    config = {"ignition": {"version": REF_VERSION}, "passwd": passwd}
    with proc_mounted(ref):
        proc = run_reference(ref, config, scratch=tmp_path)
    ref_err = reference_error(proc) if proc.returncode != 0 else ""
    our_err = run_ours(ours, passwd)
    if proc.returncode != 0:
        assert our_err is not None, f"the reference refused ({ref_err}) but we applied"
        return
    assert our_err is None, f"we refused: {our_err}\nreference log:\n{proc.stdout[-2000:]}"
    for name in ("passwd", "shadow", "group", "gshadow", "subuid", "subgid"):
        assert entries(ours, name) == entries(ref, name), name
    assert diff(comparable(ref), comparable(ours)) == []
    for e in entries(ours, "passwd"):
        assert keys_of(ours, e[5], True) == keys_of(ref, e[5], False), f"keys of {e[0]}"


def test_every_configured_key_lands_in_ours(tmp_path: Path) -> None:
    """The key comparison above is not vacuous: the configured keys are there, in our block."""
    build(tmp_path, [])
    assert run_ours(tmp_path, CASES["user-keys"][0]) is None
    text = (tmp_path / "home/alice/.ssh/authorized_keys").read_text()
    assert sshkeys.managed_keys(text) == [KEY1, KEY2, KEY3]


def test_second_apply_changes_nothing(tmp_path: Path) -> None:
    for case in ("user-everything", "login-defs-user-groups", "skel-and-keys", "group-then-user", "subuid"):
        root = tmp_path / case
        build(root, CASES[case][1])
        assert run_ours(root, CASES[case][0]) is None
        before = snapshot(root)
        assert run_ours(root, CASES[case][0]) is None
        assert diff(before, snapshot(root)) == [], case


def test_corpus_size() -> None:
    assert len(CASES) >= 30
