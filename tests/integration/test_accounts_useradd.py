"""Differential tests against Debian's shadow-utils directly: random sequences of ``groupadd`` /
``useradd`` / ``usermod`` / ``userdel`` (fixed seeds) run with ``--root`` on one root and through
``pineinstall.accounts`` on another, under several ``login.defs``; after every sequence the
passwd, shadow, group and gshadow entries and the home directories (modes, owners, skeleton copies)
must be the same. This exercises ID allocation (regular counting up, system counting down, user
groups preferring the UID, range exhaustion) far beyond what single configs reach.
"""

from __future__ import annotations

import os
import random
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pineinstall.accounts import homes
from pineinstall.accounts.database import Accounts
from pineinstall.accounts.dbfile import AccountsError

from .image_helpers import proc_mounted, twin_roots

pytestmark = [pytest.mark.conformance, pytest.mark.needs("useradd")]

LOGIN_DEFS = {
    "none": None,
    "debian": "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nUSERGROUPS_ENAB yes\nUMASK 022\n"
    "PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nPASS_WARN_AGE 7\n",
    "narrow": "UID_MIN 1000\nUID_MAX 1006\nGID_MIN 1000\nGID_MAX 1004\nSYS_UID_MIN 100\nSYS_UID_MAX 104\n"
    "SYS_GID_MIN 100\nSYS_GID_MAX 103\nUSERGROUPS_ENAB yes\nHOME_MODE 0750\n",
    "private": "USERGROUPS_ENAB yes\nUMASK 077\nUID_MIN 500\nGID_MIN 700\n",
}

PASSWD = "root:x:0:0:root:/root:/bin/sh\nbin:x:1:1::/bin:/sbin/nologin\n"
GROUP = "root:x:0:\nbin:x:1:\nusers:x:100:\nwheel:x:10:\n"


def seed(root: Path, defs: str | None) -> None:
    etc = root / "etc"
    (etc / "skel/sub").mkdir(parents=True)
    (etc / "skel/.profile").write_text("profile\n")
    (etc / "skel/sub/f").write_text("f\n")
    os.chmod(etc / "skel/sub", 0o750)
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("".join(f"{g.split(':')[0]}:*::\n" for g in GROUP.splitlines()))
    if defs is not None:
        (etc / "login.defs").write_text(defs)


def random_ops(rng: random.Random, n: int) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    users: list[str] = []
    groups = ["users", "wheel"]
    for i in range(n):
        kind = rng.choice(["groupadd", "useradd", "useradd", "useradd", "usermod", "userdel"])
        if kind == "groupadd":
            g = f"g{i}"
            op: dict[str, Any] = {"op": kind, "name": g, "system": rng.random() < 0.4}
            if rng.random() < 0.2:
                op["gid"] = rng.choice([1001, 1003, 150, 2000, 102])
            groups.append(g)
        elif kind == "useradd" or not users:
            u = f"u{i}"
            op = {
                "op": "useradd",
                "name": u,
                "system": rng.random() < 0.3,
                "no_user_group": rng.random() < 0.2,
                "create_home": rng.random() < 0.7,
            }
            if rng.random() < 0.2:
                op["uid"] = rng.choice([1002, 1005, 101, 3000, 103])
            if rng.random() < 0.2:
                op["primary_group"] = rng.choice(groups)
            if rng.random() < 0.3:
                op["groups"] = rng.sample(groups, k=min(len(groups), rng.randint(1, 2)))
            users.append(u)
        elif kind == "usermod":
            op = {"op": kind, "name": rng.choice(users)}
            if rng.random() < 0.5:
                op["groups"] = rng.sample(groups, k=min(len(groups), rng.randint(1, 2)))
            if rng.random() < 0.3:
                op["shell"] = rng.choice(["/bin/sh", "/bin/zsh"])
            if rng.random() < 0.3:
                op["gecos"] = rng.choice(["A B", "x,y,z"])
        else:
            u = rng.choice(users)
            users.remove(u)
            op = {"op": kind, "name": u}
        ops.append(op)
    return ops


def run_shadow(root: Path, op: dict[str, Any]) -> bool:
    r = ["--root", str(root)]
    if op["op"] == "groupadd":
        argv = ["groupadd", *r, "-p", "*"] + (["-r"] if op["system"] else [])
        argv += ["-g", str(op["gid"])] if "gid" in op else []
    elif op["op"] == "useradd":
        argv = ["useradd", *r, "-p", "*", "-m" if op["create_home"] else "-M"]
        argv += ["-r"] if op["system"] else []
        argv += ["-N"] if op["no_user_group"] else []
        argv += ["-u", str(op["uid"])] if "uid" in op else []
        argv += ["-g", op["primary_group"]] if "primary_group" in op else []
        argv += ["-G", ",".join(op["groups"])] if "groups" in op else []
    elif op["op"] == "usermod":
        argv = ["usermod", *r]
        argv += ["-G", ",".join(op["groups"])] if "groups" in op else []
        argv += ["-s", op["shell"]] if "shell" in op else []
        argv += ["-c", op["gecos"]] if "gecos" in op else []
    else:
        argv = ["userdel", *r, "-r"]
    argv.append(op["name"])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})  # fmt: skip
    # userdel's 12 is "home directory not removed" (none was created): the entries went all the same
    return proc.returncode == 0 or (op["op"] == "userdel" and proc.returncode == 12)


def run_ours(root: Path, op: dict[str, Any]) -> bool:
    etc = root / "etc"
    try:
        with Accounts(etc) as db:
            if op["op"] == "groupadd":
                db.add_group(op["name"], gid=op.get("gid"), password="*", system=op["system"])
                db.commit()
            elif op["op"] == "useradd":
                info = db.add_user(
                    op["name"],
                    uid=op.get("uid"),
                    primary_group=op.get("primary_group"),
                    groups=tuple(op.get("groups", ())),
                    no_user_group=op["no_user_group"],
                    system=op["system"],
                    shell="/bin/bash",
                    password="*",
                )
                db.commit()
                if op["create_home"]:
                    homes.create_home(root / info.home.lstrip("/"), info.uid, info.gid, db.defs.new_home_mode,
                                      etc / "skel")  # fmt: skip
            elif op["op"] == "usermod":
                db.modify_user(op["name"], groups=tuple(op.get("groups", ())), shell=op.get("shell"),
                               gecos=op.get("gecos"))  # fmt: skip
                db.commit()
            else:
                info = db.del_user(op["name"])
                db.commit()
                homes.remove_home(root / info.home.lstrip("/"), info.uid)
    except AccountsError:
        return False
    return True


def state(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("passwd", "shadow", "group", "gshadow"):
        out[name] = (root / "etc" / name).read_text().splitlines()
    tree = {}
    home = root / "home"
    if home.exists():
        for dirpath, dirnames, filenames in os.walk(home):
            for n in dirnames + filenames:
                p = Path(dirpath) / n
                st = os.lstat(p)
                tree[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    out["homes"] = tree
    return out


@pytest.mark.parametrize("defs", sorted(LOGIN_DEFS))
@pytest.mark.slow
@pytest.mark.parametrize("seed_no", range(6))
def test_random_sequences_match_shadow_utils(defs: str, seed_no: int, tmp_path: Path) -> None:
    rng = random.Random(f"{defs}-{seed_no}")
    ops = random_ops(rng, 14)
    ref, ours = twin_roots(tmp_path, lambda root: seed(root, LOGIN_DEFS[defs]))
    with proc_mounted(ref):
        for op in ops:
            ok_ref = run_shadow(ref, op)
            ok_ours = run_ours(ours, op)
            assert ok_ours == ok_ref, f"{op}: shadow-utils {'succeeded' if ok_ref else 'failed'}"
    a, b = state(ref), state(ours)
    for key in ("passwd", "shadow", "group", "gshadow", "homes"):
        assert b[key] == a[key], f"{key} after {ops}"
