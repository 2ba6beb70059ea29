"""apply_groups / apply_users on scratch roots: every user and group field, SSH keys, deletion,
idempotence and the symlink refusals. Owners are set, so these run as root."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from _root_helpers import scratch_root

from pineinstall.accounts import sshkeys
from pineinstall.config import model
from pineinstall.stages import Log, StageError
from pineinstall.stages.accounts import apply_groups, apply_users
from pineinstall.target import Target

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets file owners: needs root")

K1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one"
K2 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQTwo two"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return scratch_root(
        tmp_path,
        passwd="root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/sbin/nologin\n",
        shadow="root:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n",
        group="root:x:0:\nbin:x:1:\nwheel:x:10:\nusers:x:100:\n",
        gshadow="root:*::\nbin:*::\nwheel:*::\nusers:*::\n",
    )


def apply(root: Path, passwd: dict[str, Any]) -> Log:
    cfg = model.from_dict({"ignition": {"version": "3.6.0"}, "passwd": passwd})
    log = Log(quiet=True)
    apply_groups(cfg.passwd.groups, Target(root), log)
    apply_users(cfg.passwd.users, Target(root), log)
    return log


def line(root: Path, name: str, file: str = "passwd") -> list[str] | None:
    for entry in (root / "etc" / file).read_text().splitlines():
        if entry.split(":")[0] == name:
            return entry.split(":")
    return None


def tree(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            data = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            out[str(p.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, data)
    return out


# --- groups


def test_group_created_with_star_password_in_gshadow(root: Path) -> None:
    apply(root, {"groups": [{"name": "devs"}]})
    assert line(root, "devs", "group") == ["devs", "x", "1000", ""]
    assert line(root, "devs", "gshadow") == ["devs", "*", "", ""]


def test_group_gid_hash_system(root: Path) -> None:
    apply(
        root, {"groups": [{"name": "a", "gid": 4000, "passwordHash": "$6$h"}, {"name": "s", "system": True}]}
    )
    assert line(root, "a", "group")[2] == "4000"
    assert line(root, "a", "gshadow")[1] == "$6$h"
    assert line(root, "s", "group")[2] == "999"


def test_existing_group_is_updated_not_an_error(root: Path) -> None:
    apply(root, {"groups": [{"name": "wheel", "gid": 11}]})
    assert line(root, "wheel", "group")[2] == "11"


def test_group_gid_taken_is_an_error(root: Path) -> None:
    with pytest.raises(StageError, match="failed to create group 'x': GID '100' already exists"):
        apply(root, {"groups": [{"name": "x", "gid": 100}]})
    assert line(root, "x", "group") is None


def test_group_delete(root: Path) -> None:
    apply(
        root, {"groups": [{"name": "wheel", "shouldExist": False}, {"name": "ghost", "shouldExist": False}]}
    )
    assert line(root, "wheel", "group") is None
    assert line(root, "wheel", "gshadow") is None


def test_primary_group_cannot_be_deleted(root: Path) -> None:
    with pytest.raises(StageError, match="primary group of user 'bin'"):
        apply(root, {"groups": [{"name": "bin", "shouldExist": False}]})


# --- new users


def test_new_user_defaults(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    assert line(root, "alice") == ["alice", "x", "1000", "100", "", "/home/alice", "/bin/bash"]
    sh = line(root, "alice", "shadow")
    assert sh[1] == "*" and sh[2].isdigit() and sh[3:] == ["", "", "", "", "", ""]
    home = root / "home/alice"
    st = os.stat(home)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 1000, 100)


def test_shell_is_sh_on_busybox_target(root: Path) -> None:
    (root / "bin").mkdir()
    (root / "bin/sh").symlink_to("/bin/busybox")
    apply(root, {"users": [{"name": "alice"}]})
    assert line(root, "alice")[6] == "/bin/sh"


def test_every_user_field(root: Path) -> None:
    apply(
        root,
        {
            "users": [
                {
                    "name": "alice",
                    "uid": 1500,
                    "gecos": "Alice A",
                    "homeDir": "/srv/alice",
                    "primaryGroup": "wheel",
                    "groups": ["users", "bin"],
                    "shell": "/bin/ash",
                    "passwordHash": "$6$x$y",
                }
            ]
        },
    )
    assert line(root, "alice") == ["alice", "x", "1500", "10", "Alice A", "/srv/alice", "/bin/ash"]
    assert line(root, "alice", "shadow")[1] == "$6$x$y"
    assert line(root, "users", "group")[3] == "alice"
    assert line(root, "bin", "gshadow")[3] == "alice"
    assert os.stat(root / "srv/alice").st_uid == 1500


def test_user_groups_with_login_defs(root: Path) -> None:
    (root / "etc/login.defs").write_text("USERGROUPS_ENAB yes\nUID_MIN 2000\nGID_MIN 2000\nHOME_MODE 0700\n")
    apply(root, {"users": [{"name": "a"}, {"name": "b", "noUserGroup": True}, {"name": "s", "system": True}]})
    assert line(root, "a")[2:4] == ["2000", "2000"]
    assert line(root, "a", "group") == ["a", "x", "2000", ""]
    assert line(root, "a", "gshadow") == ["a", "!", "", ""]
    assert line(root, "b")[3] == "100"
    assert line(root, "s")[2:4] == ["1999", "1999"]
    assert stat.S_IMODE(os.stat(root / "home/a").st_mode) == 0o700


def test_no_create_home_and_system(root: Path) -> None:
    apply(root, {"users": [{"name": "svc", "system": True, "noCreateHome": True}]})
    assert line(root, "svc")[2] == "999"
    assert not (root / "home/svc").exists()


def test_skel_is_copied_with_modes_owned_by_user(root: Path) -> None:
    skel = root / "etc/skel"
    (skel / "d").mkdir(parents=True)
    (skel / ".profile").write_text("p\n")
    (skel / "d/x").write_text("x\n")
    os.chmod(skel / "d/x", 0o600)
    (skel / "ln").symlink_to(".profile")
    apply(root, {"users": [{"name": "a", "uid": 1234}]})
    home = root / "home/a"
    assert (home / ".profile").read_text() == "p\n"
    assert stat.S_IMODE(os.stat(home / "d/x").st_mode) == 0o600
    assert os.readlink(home / "ln") == ".profile"
    assert {os.lstat(p).st_uid for p in [home, home / "d", home / "d/x", home / "ln"]} == {1234}


def test_existing_home_is_not_touched(root: Path) -> None:
    (root / "home/a").mkdir(parents=True)
    (root / "etc/skel").mkdir()
    (root / "etc/skel/.profile").write_text("p\n")
    log = apply(root, {"users": [{"name": "a"}]})
    assert os.stat(root / "home/a").st_uid == 0
    assert not (root / "home/a/.profile").exists()
    assert any("already exists" in w for w in log.warnings)


@pytest.mark.parametrize(
    "user, message",
    [
        ({"name": "a", "uid": 1}, "UID 1 is not unique"),
        ({"name": "a", "primaryGroup": "nope"}, "group 'nope' does not exist"),
        ({"name": "a", "groups": ["wheel", "nope"]}, "group 'nope' does not exist"),
        ({"name": "a:b"}, "invalid user name"),
        ({"name": "a", "gecos": "x:y"}, "invalid comment"),
    ],
)
def test_refusals_change_nothing(root: Path, user: dict[str, Any], message: str) -> None:
    before = tree(root)
    with pytest.raises(StageError, match=message):
        apply(root, {"users": [{"name": "ok"}, user]})
    assert tree(root) == before


# --- existing users


def test_existing_user_modified_like_usermod(root: Path) -> None:
    apply(root, {"users": [{"name": "alice", "groups": ["wheel"]}]})
    apply(root, {"users": [{"name": "alice", "groups": ["users"], "shell": "/bin/zsh", "gecos": "A"}]})
    assert line(root, "alice")[4:] == ["A", "/home/alice", "/bin/zsh"]
    assert line(root, "wheel", "group")[3] == ""
    assert line(root, "users", "group")[3] == "alice"


def test_uid_change_rechowns_home(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    (root / "home/alice/f").write_text("x")
    os.chown(root / "home/alice/f", 1000, 100)
    (root / "home/alice/g").write_text("x")
    apply(root, {"users": [{"name": "alice", "uid": 3000}]})
    assert os.stat(root / "home/alice").st_uid == 3000
    assert os.stat(root / "home/alice/f").st_uid == 3000
    assert os.stat(root / "home/alice/g").st_uid == 0


def test_home_move(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    (root / "home/alice/f").write_text("x")
    apply(root, {"users": [{"name": "alice", "homeDir": "/home/al"}]})
    assert (root / "home/al/f").read_text() == "x"
    assert not (root / "home/alice").exists()
    assert line(root, "alice")[5] == "/home/al"


def test_password_absent_keeps_existing_hash(root: Path) -> None:
    apply(root, {"users": [{"name": "alice", "passwordHash": "$6$a"}]})
    apply(root, {"users": [{"name": "alice", "gecos": "x"}]})
    assert line(root, "alice", "shadow")[1] == "$6$a"
    apply(root, {"users": [{"name": "alice", "passwordHash": ""}]})
    assert line(root, "alice", "shadow")[1] == "*"


def test_delete_user_removes_entries_memberships_home_and_own_group(root: Path) -> None:
    (root / "etc/login.defs").write_text("USERGROUPS_ENAB yes\n")
    apply(root, {"users": [{"name": "alice", "groups": ["wheel"]}]})
    assert line(root, "alice", "group") is not None
    apply(root, {"users": [{"name": "alice", "shouldExist": False}]})
    for f in ("passwd", "shadow", "group", "gshadow"):
        assert line(root, "alice", f) is None
    assert line(root, "wheel", "group")[3] == ""
    assert not (root / "home/alice").exists()


def test_delete_keeps_home_not_owned_by_user(root: Path) -> None:
    apply(root, {"users": [{"name": "alice", "noCreateHome": True}]})
    (root / "home/alice").mkdir(parents=True)
    log = apply(root, {"users": [{"name": "alice", "shouldExist": False}]})
    assert (root / "home/alice").is_dir()
    assert any("not owned" in w for w in log.warnings)


# --- keys


def test_keys_dir_and_file_modes(root: Path) -> None:
    apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1, K2]}]})
    ssh = root / "home/alice/.ssh"
    assert (stat.S_IMODE(os.stat(ssh).st_mode), os.stat(ssh).st_uid) == (0o700, 1000)
    f = ssh / "authorized_keys"
    assert (stat.S_IMODE(os.stat(f).st_mode), os.stat(f).st_uid, os.stat(f).st_gid) == (0o600, 1000, 100)
    assert sshkeys.managed_keys(f.read_text()) == [K1, K2]


def test_foreign_keys_are_kept_and_ours_replaced(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    f = root / "home/alice/.ssh/authorized_keys"
    f.parent.mkdir(mode=0o700)
    os.chown(f.parent, 1000, 100)
    f.write_text("ssh-ed25519 AAAAmine mine\n")
    apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1]}]})
    apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K2]}]})
    text = f.read_text()
    assert text.startswith("ssh-ed25519 AAAAmine mine\n")
    assert sshkeys.managed_keys(text) == [K2]
    assert K1 not in text


def test_root_keys(root: Path) -> None:
    (root / "root").mkdir(mode=0o700)
    apply(root, {"users": [{"name": "root", "sshAuthorizedKeys": [K1]}]})
    assert sshkeys.managed_keys((root / "root/.ssh/authorized_keys").read_text()) == [K1]


def test_ssh_symlink_to_etc_is_refused(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    (root / "home/alice/.ssh").symlink_to("/etc")
    before = tree(root / "etc")
    with pytest.raises(StageError, match="symlink"):
        apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1]}]})
    assert tree(root / "etc") == before
    assert os.stat(root / "etc").st_uid == 0


def test_authorized_keys_symlink_is_refused(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    ssh = root / "home/alice/.ssh"
    ssh.mkdir()
    os.chown(ssh, 1000, 100)
    (ssh / "authorized_keys").symlink_to("/etc/shadow")
    with pytest.raises(StageError, match="not a regular file"):
        apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1]}]})
    assert "ssh-ed25519" not in (root / "etc/shadow").read_text()


def test_keys_into_home_the_user_cannot_write_are_refused(root: Path) -> None:
    (root / "home/alice").mkdir(parents=True, mode=0o755)
    with pytest.raises(StageError, match="permission denied"):
        apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1]}]})


def test_keys_into_ssh_dir_the_user_cannot_write_are_refused(root: Path) -> None:
    apply(root, {"users": [{"name": "alice"}]})
    (root / "home/alice/.ssh").mkdir(mode=0o755)  # root's, inside the user's home
    with pytest.raises(StageError, match=r"permission denied \(the user cannot write to .*/\.ssh\)"):
        apply(root, {"users": [{"name": "alice", "sshAuthorizedKeys": [K1]}]})


# --- re-running


def test_second_apply_is_byte_identical(root: Path) -> None:
    (root / "etc/login.defs").write_text("USERGROUPS_ENAB yes\n")
    cfg = {
        "groups": [{"name": "devs", "gid": 3000}, {"name": "old", "shouldExist": False}],
        "users": [
            {
                "name": "alice",
                "groups": ["devs", "wheel"],
                "sshAuthorizedKeys": [K1, K2],
                "passwordHash": "$6$q",
            },
            {"name": "svc", "system": True, "noCreateHome": True},
            {"name": "gone", "shouldExist": False},
        ],
    }
    apply(root, cfg)
    before = tree(root)
    apply(root, cfg)
    assert tree(root) == before


# --- OSTree sysroot


def test_ostree_sysroot_users_land_in_deployment_and_stateroot(tmp_path: Path) -> None:
    from pineinstall.target import open_target

    dep = tmp_path / "ostree/deploy/pine/deploy/abc123.0"
    var = tmp_path / "ostree/deploy/pine/var"
    (dep / "etc").mkdir(parents=True)
    (var / "home").mkdir(parents=True)
    (dep / "home").symlink_to("var/home")
    (dep / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dep / "etc/group").write_text("root:x:0:\nusers:x:100:\n")
    (dep / "etc/shadow").write_text("root:*:1::::::\n")
    (dep / "etc/gshadow").write_text("root:*::\nusers:*::\n")
    cfg = model.from_dict(
        {"ignition": {"version": "3.6.0"}, "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [K1]}]}}
    )
    target = open_target(tmp_path)
    apply_users(cfg.passwd.users, target, Log(quiet=True))
    assert line(dep, "core") == ["core", "x", "1000", "100", "", "/home/core", "/bin/bash"]
    keys = var / "home/core/.ssh/authorized_keys"
    assert sshkeys.managed_keys(keys.read_text()) == [K1]
    assert os.stat(var / "home/core").st_uid == 1000
    assert not (tmp_path / "etc").exists() and not (tmp_path / "home").exists()
