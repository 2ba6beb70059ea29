"""Kill safety of ``--rootfs`` with the config's own layout (DEST named in ``storage.disks``,
docs/safety.md): ``pineinstall DEST CONFIG --rootfs TARBALL`` killed with SIGKILL at every checkpoint
of the path and after seeded random delays from the process start leaves DEST untouched, wiped or
complete; the same command run again without cleanup succeeds and leaves no loop device, mount or
run directory.

The config's storage names DEST by its kernel node, so DEST is a loop device (a disk-image file
cannot be named in ``storage.disks``): once over a backing file that holds an old system
(12 checkpoints + 4 random moments), once with the partitions named by label and an earlier
install of the same config on it (3 + 2). Cost: 21 killed runs and 21 reruns of a 256 MiB rootfs
install (4-9 s each).

Every assertion message names the seed and the moment; ``PINE_KILL_SEED`` picks the seeds' base."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .image_helpers import loop, make_rootfs_tarball
from .test_kill_safety import BASE_SEED, CONFIG, PINEINSTALL, old_disk
from .test_kill_safety_rootfs import CHECKPOINTS, kills

pytestmark = pytest.mark.needs(
    "sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "mkfs.vfat", "wipefs", "grub-install",
    "grub-mkimage", "mmd", "mcopy", "zstd", "tar",
)  # fmt: skip

SIZE_MIB = 256
ROOT = 3  # bios, esp, root, var
BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip("needs GRUB for i386-pc and x86_64-efi (grub-pc-bin, grub-efi-amd64-bin)")
    d = tmp_path_factory.mktemp("kill-rootfs-layout")
    make_rootfs_tarball(d)
    return d


def layout_config(dev: str, *, by_label: bool = False) -> dict[str, Any]:
    """The kill tests' config (a file, a user with a key) laying out ``dev``: BIOS boot, ESP, / and
    /var (the files stage writes under both)."""
    cfg = copy.deepcopy(CONFIG)
    parts = [
        {"number": 1, "label": "bios", "sizeMiB": 1, "typeGuid": BIOS_BOOT},
        {"number": 2, "label": "esp", "sizeMiB": 40, "typeGuid": ESP},
        {"number": 3, "label": "root", "sizeMiB": 160},
        {"number": 4, "label": "var", "sizeMiB": 0},
    ]
    cfg["storage"]["disks"] = [{"device": dev, "wipeTable": True, "partitions": parts}]

    def name(n: int) -> str:
        return f"/dev/disk/by-partlabel/{parts[n - 1]['label']}" if by_label else f"{dev}p{n}"

    cfg["storage"]["filesystems"] = [
        {"device": name(2), "format": "vfat", "label": "ESP", "wipeFilesystem": True},
        {"device": name(3), "format": "ext4", "path": "/", "label": "root", "wipeFilesystem": True},
        {"device": name(4), "format": "ext4", "path": "/var", "label": "var", "wipeFilesystem": True},
    ]
    cfg["storage"]["files"].append({"path": "/var/lib/pine/hello", "contents": {"source": "data:,hi"}})
    return cfg


def argv_for(dest: str, cfg: Path, work: Path) -> list[str]:
    return [PINEINSTALL, "install", dest, os.fspath(cfg), "--rootfs", os.fspath(work / "rootfs.tar.zst"),
            "--yes", "--stash-config"]  # fmt: skip


def test_config_layout_kills_on_a_loop_device(work: Path, tmp_path: Path) -> None:
    """12 checkpoints and 4 random moments onto a loop device holding an old system."""
    seed = BASE_SEED + 20
    backing = tmp_path / "dev.img"
    old_disk(backing, SIZE_MIB)
    with loop(backing) as dev:
        cfg = tmp_path / "cfg.ign"
        cfg.write_text(json.dumps(layout_config(dev)))
        argv = argv_for(dev, cfg, work)
        plan = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True)
        assert "tables held until provisioned" in plan.stdout, (seed, plan.stdout, plan.stderr)
        states = kills(
            argv, dev, seed, CHECKPOINTS, 4, f"config layout, loop DEST {dev}", tmp_path, root=ROOT
        )
        for moment in ("partitioned", "filesystems-made", "grub-installed", "files-done", "unmounted"):
            assert states[moment] == "wiped", (seed, moment, states)
        assert states["committed"] == "complete", (seed, states)
        # The var partition holds what the config wrote under /var (mounted as the config says).
        subprocess.run(["partx", "-u", dev], check=False, capture_output=True)
        var = subprocess.run(["blkid", "-p", "-s", "LABEL", "-o", "value", f"{dev}p4"], capture_output=True,
                             text=True)  # fmt: skip
        assert var.stdout.strip() == "var", (seed, var.stdout, var.stderr)


def test_config_layout_kills_over_an_earlier_install(work: Path, tmp_path: Path) -> None:
    """Partitions named by label; DEST already holds a complete install of the same config (the
    reinstall case): 3 checkpoints and 2 random moments."""
    seed = BASE_SEED + 21
    backing = tmp_path / "dev.img"
    old_disk(backing, SIZE_MIB)
    with loop(backing) as dev:
        cfg = tmp_path / "cfg.ign"
        cfg.write_text(json.dumps(layout_config(dev, by_label=True)))
        argv = argv_for(dev, cfg, work)
        first = subprocess.run(argv, capture_output=True, text=True)
        assert first.returncode == 0, f"seed {seed}: the first install failed:\n{first.stderr[-3000:]}"
        picked = ("partitioned", "grub-installed", "committed")
        states = kills(argv, dev, seed, picked, 2, f"config layout by label, loop DEST {dev}", tmp_path,
                       root=ROOT)  # fmt: skip
        assert states["grub-installed"] == "wiped" and states["committed"] == "complete", (seed, states)
