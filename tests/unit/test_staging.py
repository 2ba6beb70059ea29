"""pineinstall.staging: staged files are named with their run's pid and locked while it lives; a
sweep removes what a dead run left, never what a live run holds (its pid alive, or its lock held),
never a name that is not ours, a symlink or another user's file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pineinstall import staging

pytestmark = pytest.mark.real_processes  # dead and live pids, flock holders


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_names_carry_the_pid_and_are_locked(tmp_path: Path) -> None:
    fd, item = staging.new_file(os.fspath(tmp_path), "image", suffix=".raw")
    os.close(fd)
    name = os.path.basename(item.path)
    assert name.startswith(f"pine-image.{os.getpid()}.") and name.endswith(".raw")
    # Another process cannot take the lock while this one holds it.
    taken = subprocess.run(["flock", "-n", "-x", item.path, "true"])
    assert taken.returncode != 0
    item.remove()
    assert not os.path.exists(item.path)
    d = staging.new_dir(os.fspath(tmp_path), "qcow2out", prefix=".disk.qcow2.")
    assert os.path.basename(d.path).startswith(f".disk.qcow2.pine-qcow2out.{os.getpid()}.")
    assert os.stat(d.path).st_mode & 0o777 == 0o700
    d.remove()
    assert list(tmp_path.iterdir()) == []


def test_sweep_removes_only_what_dead_runs_left(tmp_path: Path) -> None:
    dead = dead_pid()
    live = subprocess.Popen(["sleep", "600"])
    try:
        gone_file = tmp_path / f"pine-image.{dead}.abcdefgh"
        gone_file.write_bytes(b"x" * 4096)
        gone_dir = tmp_path / f"pine-gpg.{dead}.ijklmnop"
        (gone_dir / "home").mkdir(parents=True)
        kept = {
            "live pid": tmp_path / f"pine-image.{live.pid}.abcdefgh",
            "own pid": tmp_path / f"pine-image.{os.getpid()}.abcdefgh",
            "not ours": tmp_path / f"other-image.{dead}.abcdefgh",
            "old name": tmp_path / "pine-image-abcdefgh",
            "other prefix": tmp_path / f".x.qcow2.pine-qcow2out.{dead}.abcdefgh",
        }
        for p in kept.values():
            p.write_text("keep")
        link = tmp_path / f"pine-image.{dead}.symlink1"
        link.symlink_to(gone_file)
        # A dead pid whose file is still locked: a live run in another pid namespace.
        locked = tmp_path / f"pine-image.{dead}.locked12"
        locked.write_text("held")
        holder = subprocess.Popen(["flock", "-x", os.fspath(locked), "sleep", "600"])
        try:
            for _ in range(100):  # until flock holds it
                if subprocess.run(["flock", "-n", "-x", os.fspath(locked), "true"]).returncode != 0:
                    break
                subprocess.run(["sleep", "0.05"])
            removed = staging.sweep(os.fspath(tmp_path))
        finally:
            holder.kill()
            holder.wait()
        assert sorted(removed) == sorted([os.fspath(gone_file), os.fspath(gone_dir)])
        assert not gone_file.exists() and not gone_dir.exists()
        for why, p in kept.items():
            assert p.exists(), why
        assert locked.exists() and link.is_symlink()
        # With the prefix of a qcow2 DEST's work directories, only those are looked at.
        assert staging.sweep(os.fspath(tmp_path), ".x.qcow2.") == [os.fspath(kept["other prefix"])]
    finally:
        live.kill()
        live.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's file")
def test_sweep_leaves_other_users_files(tmp_path: Path) -> None:
    p = tmp_path / f"pine-image.{dead_pid()}.abcdefgh"
    p.write_text("theirs")
    os.chown(p, 65534, 65534)
    assert staging.sweep(os.fspath(tmp_path)) == []
    assert p.exists()
