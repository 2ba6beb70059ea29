"""``pineinstall apply --root SYSROOT`` on an OSTree sysroot: /etc into the newest deployment's etc,
/var into the stateroot's var, /home and /root through the deployment's links, users in the
deployment's /etc/passwd; nothing outside the sysroot, nothing in the older deployment."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from pineinstall.apply import run_apply
from pineinstall.stages import Log

from .ignition_ref import GROUP, PASSWD, snapshot


def make_sysroot(base: Path) -> tuple[Path, Path, Path, Path]:
    sysroot = base / "sysroot"
    deploys = sysroot / "ostree" / "deploy" / "pine" / "deploy"
    var = sysroot / "ostree" / "deploy" / "pine" / "var"
    deps = []
    for i, name in enumerate(["1111.0", "2222.0"]):
        d = deploys / name
        (d / "etc").mkdir(parents=True)
        (d / "var").mkdir()
        (d / "usr" / "bin").mkdir(parents=True)
        os.symlink("var/home", d / "home")
        os.symlink("var/roothome", d / "root")
        (d / "etc" / "passwd").write_text(PASSWD)
        (d / "etc" / "group").write_text(GROUP)
        (d / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
        (d / "etc" / "gshadow").write_text("root:*::\n")
        os.utime(d, (1_000_000_000 + i, 1_000_000_000 + i))
        deps.append(d)
    (var / "home").mkdir(parents=True)
    (var / "roothome").mkdir()
    return sysroot, deps[0], deps[1], var


def test_apply_to_ostree_sysroot(tmp_path: Path) -> None:
    sysroot, old, new, var = make_sysroot(tmp_path)
    old_before = snapshot(old)
    cfg = {
        "ignition": {"version": "3.6.0"},
        "storage": {
            "files": [
                {"path": "/etc/hostname", "contents": {"source": "data:,pine%0A"}},
                {"path": "/etc/NetworkManager/system-connections/eth0.nmconnection", "mode": 0o600,
                 "contents": {"source": "data:,%5Bconnection%5D%0A"}},
                {"path": "/var/lib/pine/state", "contents": {"source": "data:,s"}},
                {"path": "/root/.profile", "contents": {"source": "data:,p"}},
            ],
            "directories": [{"path": "/home/shared", "mode": 0o1777}],
        },
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA core"]}]},
    }  # fmt: skip
    src = tmp_path / "cfg.ign"
    src.write_text(json.dumps(cfg))
    err = io.StringIO()
    rc = run_apply(str(sysroot), str(src), log=Log(err))
    assert rc == 0, err.getvalue()

    assert (new / "etc" / "hostname").read_text() == "pine\n"
    nm = new / "etc" / "NetworkManager" / "system-connections" / "eth0.nmconnection"
    assert nm.read_text() == "[connection]\n" and (nm.stat().st_mode & 0o777) == 0o600
    assert (var / "lib" / "pine" / "state").read_text() == "s"
    assert (var / "roothome" / ".profile").read_text() == "p"
    assert (var / "home" / "shared").is_dir() and (var / "home" / "shared").stat().st_mode & 0o7777 == 0o1777
    assert "core:" in (new / "etc" / "passwd").read_text()
    assert (var / "home" / "core").is_dir()
    keys = list((var / "home" / "core" / ".ssh").glob("authorized_keys*"))
    assert keys and "ssh-ed25519 AAAA core" in keys[0].read_text()
    assert (new / "etc" / ".pine-result.json").stat().st_mode & 0o777 == 0o600
    # the deployment's own /var and the other deployment are untouched
    assert list((new / "var").iterdir()) == []
    assert snapshot(old) == old_before
    assert not (sysroot / "etc").exists() and not (sysroot / "home").exists()
