"""`pineinstall apply` with storage: disks -> mount -> files -> umount on a real loop device.
The files under a filesystem's path land inside that filesystem, which is unmounted again."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from pineinstall.apply import run_apply
from pineinstall.stages import Log

from .ignition_ref import seed_root, snapshot
from .test_disks_support import Loops

pytestmark = pytest.mark.needs("mkfs.ext4")


@pytest.fixture
def loopdev(loops: Loops) -> str:
    """A 64 MiB loop device; whatever the test mounted on it is unmounted at the end."""
    return loops.make(64)[0]


def apply(root: Path, cfg: dict, *extra: str) -> tuple[int, str, str]:
    src = root.parent / "cfg.ign"
    src.write_text(json.dumps(cfg))
    err, out = io.StringIO(), io.StringIO()
    rc = run_apply(str(root), str(src), log=Log(err), stdout=out, dry_run="--dry-run" in extra)
    return rc, err.getvalue(), out.getvalue()


def config(dev: str) -> dict:
    return {
        "ignition": {"version": "3.6.0"},
        "storage": {
            "filesystems": [
                {"device": dev, "format": "ext4", "path": "/var", "label": "PINEVAR", "wipeFilesystem": True}
            ],
            "files": [
                {
                    "path": "/var/lib/app/state",
                    "contents": {"source": "data:,on%20the%20var%20fs"},
                    "mode": 0o600,
                },
                {"path": "/etc/hostname", "contents": {"source": "data:,pine"}},
            ],
        },
    }


def test_files_land_in_the_mounted_filesystem(tmp_path: Path, loopdev: str) -> None:
    root = seed_root(tmp_path / "root")
    rc, log, _ = apply(root, config(loopdev))
    assert rc == 0, log
    assert (root / "etc" / "hostname").read_text() == "pine"
    assert not os.path.ismount(root / "var")  # unmounted again
    assert not (root / "var" / "lib").exists()  # nothing went to the root's own /var
    blkid = subprocess.run(
        ["blkid", "-p", "-o", "value", "-s", "LABEL", loopdev], capture_output=True, text=True
    )
    assert blkid.stdout.strip() == "PINEVAR"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", loopdev, str(mnt)], check=True)
    try:
        state = mnt / "lib" / "app" / "state"
        assert state.read_text() == "on the var fs"
        assert state.stat().st_mode & 0o777 == 0o600
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_bad_resource_means_the_disk_is_not_touched(tmp_path: Path, loopdev: str) -> None:
    root = seed_root(tmp_path / "root")
    cfg = config(loopdev)
    cfg["storage"]["files"].append(
        {"path": "/etc/x", "contents": {"source": "data:,x", "verification": {"hash": "sha256-" + "0" * 64}}}
    )
    before = snapshot(root)
    rc, log, _ = apply(root, cfg)
    assert rc == 1
    assert "hash mismatch" in log
    blkid = subprocess.run(["blkid", "-p", loopdev], capture_output=True, text=True)
    assert blkid.stdout.strip() == ""  # no filesystem was made
    assert snapshot(root) == before


def test_dry_run_shows_the_storage_plan_and_touches_nothing(tmp_path: Path, loopdev: str) -> None:
    root = seed_root(tmp_path / "root")
    rc, log, out = apply(root, config(loopdev), "--dry-run")
    assert rc == 0, log
    assert loopdev in out and "ext4" in out
    assert "file: /var/lib/app/state" in out
    assert subprocess.run(["blkid", "-p", loopdev], capture_output=True, text=True).stdout.strip() == ""
