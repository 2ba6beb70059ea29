"""Reruns need no cleanup (docs/safety.md): what a killed install left -- its root still mounted, loop
devices over DEST and over its scratch table, kernel partitions on them -- is recognised and
released by the next run; the run directory of a live process is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pineinstall.install import rundir

from .image_helpers import installed_root, make_pine_image

pytestmark = pytest.mark.needs("sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck")

PINEINSTALL = os.fspath(Path(sys.executable).parent / "pineinstall")


def test_a_rerun_releases_what_a_killed_run_left(tmp_path: Path) -> None:
    image = make_pine_image(tmp_path / "pine.raw", size_mib=32)
    cfg = tmp_path / "cfg.ign"
    cfg.write_text(json.dumps({
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": "/etc/provisioned", "contents": {"source": "data:,yes"}}]},
    }))  # fmt: skip
    dest = tmp_path / "disk.img"
    argv = [PINEINSTALL, "install", os.fspath(dest), os.fspath(cfg), "--image-file", os.fspath(image),
            "--size", "64M", "--yes"]  # fmt: skip
    # Runs kept in a directory of this test's own: other installs on the machine (a concurrent test
    # session) would otherwise release the killed run's leftovers before the rerun gets to them.
    runs = os.fspath(tmp_path / "runs")
    env = {**os.environ, "PINE_RUN_DIR": runs}
    killed = subprocess.run(argv, env={**env, "PINE_TEST_KILL_AT": "files-done"}, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # What it left: a run directory, its root mounted there, loop devices over DEST and the scratch table.
    dirs = os.listdir(runs)
    assert len(dirs) == 1, f"the killed run left {dirs} in {runs}, not one run directory"
    left_dir = os.path.join(runs, dirs[0])
    assert rundir.mounts_under(left_dir), "the killed run's root is not mounted"
    assert rundir.loops_over({os.path.realpath(dest)}, under=left_dir)

    # A live process's run directory (another install at work) with a mount in it.
    live = subprocess.Popen(["sleep", "600"])
    live_dir = os.path.join(runs, str(live.pid))
    os.makedirs(os.path.join(live_dir, "root"))
    subprocess.run(["mount", "-t", "tmpfs", "none", os.path.join(live_dir, "root")], check=True)
    try:
        again = subprocess.run(argv, capture_output=True, text=True, env=env)
        assert again.returncode == 0, again.stderr
        assert "left by an earlier run" in again.stderr
        assert not os.path.exists(left_dir)
        assert not rundir.loops_over({os.path.realpath(dest)}, under=left_dir)
        assert rundir.mounts_under(live_dir) == [os.path.join(live_dir, "root")], (
            "a live run's mount was touched"
        )
        with installed_root(dest, tmp_path) as root:
            assert (root / "etc" / "provisioned").read_text() == "yes"
    finally:
        subprocess.run(["umount", os.path.join(live_dir, "root")], capture_output=True)
        live.kill()
        live.wait()
        subprocess.run(["rm", "-rf", live_dir])
