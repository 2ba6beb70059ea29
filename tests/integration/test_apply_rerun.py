"""Re-running is safe: applying the same config twice succeeds and the second run changes nothing
(not a byte, mode, owner, inode or mtime), so an interrupted install can simply be run again."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

from pineinstall.apply import run_apply
from pineinstall.stages import Log

from .ignition_ref import seed_root

CONFIG: dict[str, Any] = {
    "ignition": {"version": "3.6.0"},
    "storage": {
        "directories": [
            {"path": "/var/lib/app", "mode": 0o750, "user": {"name": "app"}},
            {"path": "/srv", "overwrite": False},
        ],
        "files": [
            {"path": "/etc/hostname", "contents": {"source": "data:,pine%0A"}, "mode": 0o644},
            {"path": "/etc/motd", "append": [{"source": "data:,welcome%0A"}]},
            {"path": "/etc/issue", "contents": {"source": "data:,A"}, "append": [{"source": "data:,B"}]},
            {"path": "/etc/ow", "overwrite": True, "contents": {"source": "data:,ow"}},
            {"path": "/var/lib/app/state", "contents": {"source": "data:,%7B%7D"}, "user": {"name": "app"}},
            {"path": "/empty"},
        ],
        "links": [
            {"path": "/etc/localtime", "target": "/usr/share/zoneinfo/UTC"},
            {"path": "/etc/ow-link", "target": "/etc/ow", "overwrite": True},
            {"path": "/hard", "target": "/etc/hostname", "hard": True},
        ],
    },
    "passwd": {
        "groups": [{"name": "ops", "gid": 3000}],
        "users": [
            {"name": "app", "system": True, "noCreateHome": True},
            {"name": "core", "groups": ["ops"], "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3 core@pine"]},
        ],
    },
}


def strict_snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            body = (
                os.readlink(p)
                if stat.S_ISLNK(st.st_mode)
                else (p.read_bytes() if stat.S_ISREG(st.st_mode) else b"")
            )
            out[str(p.relative_to(root))] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_ino,
                st.st_mtime_ns,
                body,
            )
    return out


def apply(root: Path, config: dict[str, Any]) -> tuple[int, str]:
    src = root.parent / "cfg.ign"
    src.write_text(json.dumps(config))
    err = io.StringIO()
    return run_apply(str(root), str(src), log=Log(err)), err.getvalue()


def test_second_apply_changes_nothing(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    (root / "etc" / "motd").write_text("existing motd\n")
    rc, log = apply(root, CONFIG)
    assert rc == 0, log
    assert (root / "etc" / "motd").read_text() == "existing motd\nwelcome\n"
    first = strict_snapshot(root)
    rc, log = apply(root, CONFIG)
    assert rc == 0, log
    second = strict_snapshot(root)
    # Known: the accounts stage takes its lock files in /etc even when it then writes nothing,
    # which moves /etc's mtime (and only that); everything else must be identical.
    first["etc"] = first["etc"][:4] + first["etc"][5:]
    second["etc"] = second["etc"][:4] + second["etc"][5:]
    changed = sorted(k for k in set(first) | set(second) if first.get(k) != second.get(k))
    assert changed == []
    # and a third time, for good measure: still the same append, not appended twice
    rc, log = apply(root, CONFIG)
    assert rc == 0, log
    assert (root / "etc" / "motd").read_text() == "existing motd\nwelcome\n"


def test_rerun_after_interruption_completes(tmp_path: Path) -> None:
    """A first run that stopped half-way (here: some files already written by it) is finished by a
    second run, ending exactly where an uninterrupted run ends."""
    whole = seed_root(tmp_path / "whole")
    rc, log = apply(whole, CONFIG)
    assert rc == 0, log
    partial = seed_root(tmp_path / "partial")
    (partial / "etc" / "hostname").write_text("pine\n")  # as the first run left it
    rc, log = apply(partial, CONFIG)
    assert rc == 0, log

    def shape(root: Path) -> dict[str, tuple[Any, ...]]:
        return {
            k: (v[0], v[1], v[2], v[5])
            for k, v in strict_snapshot(root).items()
            if not k.startswith("etc/.pine-result") and not k.endswith("-")  # account backups differ
        }

    a, b = shape(whole), shape(partial)
    assert sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and "shadow" not in k) == []


def test_changed_config_is_still_refused(tmp_path: Path) -> None:
    """Re-running is not a licence to overwrite: a file that differs from the config is a conflict."""
    root = seed_root(tmp_path / "root")
    rc, _ = apply(root, CONFIG)
    assert rc == 0
    changed = json.loads(json.dumps(CONFIG))
    changed["storage"]["files"][0]["contents"]["source"] = "data:,other%0A"
    rc, log = apply(root, changed)
    assert rc == 1
    assert "A file exists there already and overwrite is false" in log
    assert (root / "etc" / "hostname").read_text() == "pine\n"
