"""The account file layer: colon files (parse, render, atomic replace, backups, locks), login.defs and
/etc/default/useradd parsing, and UID/GID allocation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pineinstall.accounts.dbfile import AccountsError, DbFile, Lock
from pineinstall.accounts.ids import new_id
from pineinstall.accounts.logindefs import LoginDefs, UseraddDefaults

# --- DbFile ------------------------------------------------------------------------------------------


def test_unknown_lines_are_kept_verbatim_and_in_place(tmp_path: Path) -> None:
    text = (
        "# comment\nroot:x:0:0:root:/root:/bin/sh\n\n+nisuser\nbroken:line\nbin:x:1:1::/bin:/sbin/nologin\n"
    )
    (tmp_path / "passwd").write_text(text)
    f = DbFile(tmp_path / "passwd", 7)
    assert [e[0] for e in f.entries()] == ["root", "bin"]
    assert f.render().decode() == text
    assert not f.changed
    f.append(["new", "x", "5", "5", "", "/home/new", "/bin/sh"])
    assert f.render().decode() == text + "new:x:5:5::/home/new:/bin/sh\n"


def test_missing_final_newline_is_added_on_write(tmp_path: Path) -> None:
    (tmp_path / "group").write_text("root:x:0:")
    f = DbFile(tmp_path / "group", 4)
    assert f.render() == b"root:x:0:\n"


def test_fields_with_colon_or_newline_are_refused(tmp_path: Path) -> None:
    f = DbFile(tmp_path / "group", 4)
    with pytest.raises(AccountsError):
        f.append(["a:b", "x", "1", ""])
    with pytest.raises(AccountsError):
        f.append(["ab", "x", "1", "m\nn"])


def test_write_keeps_mode_and_owner_and_makes_a_backup(tmp_path: Path) -> None:
    p = tmp_path / "shadow"
    p.write_text("root:*:1:0:99999:7:::\n")
    os.chmod(p, 0o640)
    f = DbFile(p, 9)
    f.append(["a", "*", "2", "", "", "", "", "", ""])
    assert f.write() is True
    assert p.read_text() == "root:*:1:0:99999:7:::\na:*:2::::::\n"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    backup = tmp_path / "shadow-"
    assert backup.read_text() == "root:*:1:0:99999:7:::\n"
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o640
    assert not (tmp_path / "shadow+").exists()


def test_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    p = tmp_path / "passwd"
    p.write_text("root:x:0:0::/root:/bin/sh\n")
    before = os.stat(p).st_ino
    f = DbFile(p, 7)
    assert f.write() is False
    assert os.stat(p).st_ino == before
    assert not (tmp_path / "passwd-").exists()


def test_new_file_gets_default_mode(tmp_path: Path) -> None:
    f = DbFile(tmp_path / "gshadow", 4, default_mode=0o600)
    f.append(["g", "!", "", ""])
    f.write()
    assert stat.S_IMODE(os.stat(tmp_path / "gshadow").st_mode) == 0o600
    assert not (tmp_path / "gshadow-").exists()


def test_remove_and_get(tmp_path: Path) -> None:
    (tmp_path / "group").write_text("a:x:1:\nb:x:2:u\n")
    f = DbFile(tmp_path / "group", 4)
    assert f.get("b") == ["b", "x", "2", "u"]
    assert f.remove("a") is True
    assert f.remove("a") is False
    assert f.render() == b"b:x:2:u\n"


# --- Lock --------------------------------------------------------------------------------------------


def test_lock_creates_and_removes_per_file_locks(tmp_path: Path) -> None:
    with Lock(tmp_path, ["passwd", "group"]) as lock:
        assert (tmp_path / "passwd.lock").read_text() == str(os.getpid())
        assert (tmp_path / "group.lock").exists()
        lock.wrote = True
    assert not (tmp_path / "passwd.lock").exists()
    assert (tmp_path / ".pwd.lock").exists()
    assert stat.S_IMODE(os.stat(tmp_path / ".pwd.lock").st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("passwd.")] == []


def test_lock_file_we_created_goes_when_nothing_was_written(tmp_path: Path) -> None:
    with Lock(tmp_path, ["passwd"]):
        pass
    assert not (tmp_path / ".pwd.lock").exists()


def test_live_foreign_lock_is_respected_and_stale_one_taken_over(tmp_path: Path) -> None:
    (tmp_path / "passwd.lock").write_text("1")  # pid 1 is alive
    with pytest.raises(AccountsError, match="locked by process 1"), Lock(tmp_path, ["passwd"]):
        pass
    (tmp_path / "passwd.lock").write_text("999999999")  # no such process: stale
    with Lock(tmp_path, ["passwd"]):
        assert (tmp_path / "passwd.lock").read_text() == str(os.getpid())


# --- login.defs / useradd defaults -------------------------------------------------------------------


def test_login_defs_missing_uses_shadow_builtin_defaults() -> None:
    d = LoginDefs.from_text(None)
    assert (d.uid_min, d.uid_max, d.sys_uid_min, d.sys_uid_max) == (1000, 60000, 101, 999)
    assert (d.gid_min, d.gid_max, d.sys_gid_min, d.sys_gid_max) == (1000, 60000, 101, 999)
    assert d.usergroups_enab is False
    assert d.new_home_mode == 0o755
    assert (d.pass_min_days, d.pass_max_days, d.pass_warn_age) == (-1, -1, -1)
    assert d.present is False


def test_login_defs_values_numbers_as_strtol_base_0() -> None:
    d = LoginDefs.from_text(
        "# c\nUID_MIN\t 2000\nUID_MAX 3000\nUSERGROUPS_ENAB yes\nUMASK 027\nHOME_MODE 0700\n"
        'MAIL_DIR "/var/spool/mail"\nSYS_UID_MAX 0x1f4\nPASS_MAX_DAYS 90\n'
    )
    assert (d.uid_min, d.uid_max, d.sys_uid_max) == (2000, 3000, 500)
    assert d.sys_uid_min == 101
    assert d.sys_gid_max == 999  # GID_MIN - 1
    assert d.usergroups_enab is True
    assert d.umask == 0o27
    assert d.new_home_mode == 0o700
    assert d.mail_dir == "/var/spool/mail"
    assert d.pass_max_days == 90


def test_sys_max_follows_min() -> None:
    d = LoginDefs.from_text("UID_MIN 500\nGID_MIN 600\n")
    assert (d.sys_uid_max, d.sys_gid_max) == (499, 599)


def test_umask_gives_home_mode() -> None:
    assert LoginDefs.from_text("UMASK 077\n").new_home_mode == 0o700
    assert LoginDefs.from_text("UMASK 002\n").new_home_mode == 0o775


def test_useradd_defaults() -> None:
    d = UseraddDefaults.from_text(
        "# x\nSHELL=/bin/zsh\nHOME=/srv\nGROUP=10\nCREATE_MAIL_SPOOL=yes\nINACTIVE=7\n"
    )
    assert (d.shell, d.home, d.group, d.create_mail_spool, d.inactive) == ("/bin/zsh", "/srv", "10", True, 7)
    d = UseraddDefaults.from_text(None)
    assert (d.shell, d.home, d.group, d.skel, d.inactive) == (None, "/home", "100", "/etc/skel", -1)


# --- ID allocation -----------------------------------------------------------------------------------


def test_regular_ids_are_one_above_the_highest_in_range() -> None:
    assert new_id([], 1000, 60000, system=False) == 1000
    assert new_id([0, 1, 1000, 1005, 70000], 1000, 60000, system=False) == 1006


def test_regular_ids_fall_back_to_lowest_free_when_top_taken() -> None:
    assert new_id([1000, 1002], 1000, 1002, system=False) == 1001


def test_system_ids_count_down_from_the_lowest_used() -> None:
    assert new_id([0, 1000], 101, 999, system=True) == 999
    assert new_id([998, 500], 101, 999, system=True) == 499


def test_system_ids_fall_back_to_highest_free() -> None:
    assert new_id([101, 999], 101, 999, system=True) == 998


def test_preferred_id_wins_when_free_and_in_range() -> None:
    assert new_id([1000], 1000, 60000, system=False, preferred=1234) == 1234
    assert new_id([1234], 1000, 60000, system=False, preferred=1234) == 1235
    assert new_id([], 1000, 60000, system=False, preferred=70000) == 1000


def test_exhausted_range_is_an_error() -> None:
    with pytest.raises(AccountsError, match="no free UID"):
        new_id([1, 2], 1, 2, system=False)
