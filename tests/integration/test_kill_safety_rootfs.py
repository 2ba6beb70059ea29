"""Kill safety of ``--rootfs`` mode (docs/safety.md): ``pineinstall DEST CONFIG --rootfs TARBALL``
killed with SIGKILL at every checkpoint of the rootfs path and after seeded random delays from the
process start (preflight, partitioning, mkfs, unpack, GRUB, files, commit) leaves DEST untouched,
wiped or complete; the same command run again without cleanup succeeds, and leaves no loop device,
mount or run directory. Onto a disk-image file (12 checkpoints + 4 random moments) and a loop
device (2 + 3). Cost: 21 killed runs and 21 reruns of a 256 MiB rootfs install (4-9 s each).

Every assertion message names the seed and the moment; ``PINE_KILL_SEED`` picks the seeds' base.
All moments are run before the test fails, so its message lists every bad one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .image_helpers import loop, make_rootfs_tarball
from .test_kill_safety import (
    BASE_SEED,
    CONFIG,
    PINEINSTALL,
    kill_then_rerun,
    moments,
    old_disk,
    report,
    timed_run,
)

pytestmark = pytest.mark.needs(
    "sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "mkfs.vfat", "wipefs", "grub-install",
    "grub-mkimage", "mmd", "mcopy", "zstd", "tar",
)  # fmt: skip

# Every checkpoint of the rootfs path, in order (pineinstall.install.checkpoint).
CHECKPOINTS = (
    "start",
    "preflight-done",
    "partitioned",
    "filesystems-made",
    "root-mounted",
    "unpacked",
    "grub-installed",
    "files-done",
    "provisioned",
    "unmounted",
    "committed",
    "synced",
)
ROOT = 3  # BIOS-BOOT, EFI-SYSTEM, root (--swap-size 0)
SIZE_MIB = 256


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip("needs GRUB for i386-pc and x86_64-efi (grub-pc-bin, grub-efi-amd64-bin)")
    d = tmp_path_factory.mktemp("kill-rootfs")
    make_rootfs_tarball(d)
    (d / "cfg.ign").write_text(json.dumps(CONFIG))
    return d


def kills(argv: list[str], dest: str, seed: int, picked: tuple[str, ...], randoms: int, name: str,
          tmp: Path, root: int = ROOT) -> dict[str, str]:  # fmt: skip
    """Every moment killed and rerun (``root``: the root's partition number); fails at the end with
    every moment that went wrong."""
    span = timed_run(argv, from_start=True)
    states, problems = {}, []
    for moment in moments(seed, picked, randoms, span):
        what = f"{name}, seed {seed}, kill at {moment!r} (install took {span:.2f} s)"
        try:
            states[str(moment)] = kill_then_rerun(argv, dest, moment, what, tmp, root_number=root,
                                                  from_start=True)  # fmt: skip
        except AssertionError as exc:
            states[str(moment)] = "FAILED"
            problems.append(str(exc).splitlines()[0])
    report(name, seed, span, states)
    assert not problems, f"{name} (seed {seed}): {len(problems)} of {len(states)} kills went wrong:\n" + "\n".join(
        problems
    )
    return states


def argv_for(dest: str, work: Path) -> list[str]:
    return [PINEINSTALL, "install", dest, os.fspath(work / "cfg.ign"), "--rootfs",
            os.fspath(work / "rootfs.tar.zst"), "--swap-size", "0", "--yes", "--stash-config"]  # fmt: skip


def test_rootfs_kills_on_a_file_dest(work: Path, tmp_path: Path) -> None:
    """12 checkpoints and 4 random moments, --rootfs onto a disk-image file holding an old system."""
    seed = BASE_SEED + 10
    dest = tmp_path / "disk.img"
    old_disk(dest, SIZE_MIB)
    states = kills(argv_for(os.fspath(dest), work), os.fspath(dest), seed, CHECKPOINTS, 4, "rootfs file DEST",
                   tmp_path)  # fmt: skip
    for moment in ("partitioned", "grub-installed", "provisioned", "unmounted"):
        assert states[moment] == "wiped", (seed, moment, states)
    assert states["committed"] == "complete", (seed, states)


def test_rootfs_kills_on_a_loop_device(work: Path, tmp_path: Path) -> None:
    """2 checkpoints and 3 random moments, --rootfs onto a loop device holding an old system."""
    seed = BASE_SEED + 11
    backing = tmp_path / "dev.img"
    old_disk(backing, SIZE_MIB)
    with loop(backing) as dev:
        picked = ("grub-installed", "committed")
        states = kills(argv_for(dev, work), dev, seed, picked, 3, f"rootfs loop DEST {dev}", tmp_path)
        assert states["grub-installed"] == "wiped" and states["committed"] == "complete", (seed, states)
