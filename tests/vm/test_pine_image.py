"""The real Pine image (iso/images/pine.py, scripts/pine-image): a second OSTree commit deployed and
rolled back (host-side, ``ostree admin --sysroot`` on the image: the boot entries and the default
follow). Installing the image and booting it (BIOS and UEFI, onto a file and a loop device, read back
over SSH) is test_pine_install.py; the installer ISO's unattended install of it is test_iso.py; first
boot on Pine and the 64 MiB boot are test_pine_firstboot.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib.disk import copy_sparse, loop_device, mounted  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building the image needs root")


def default_deployment(sysroot: Path) -> tuple[str, str]:
    """(ostree= of the default (newest) boot entry, the commit it boots: the link followed)."""
    from pineinstall.boot import bls

    entry = bls.read_entries(sysroot / "boot" / "loader" / "entries")[0]
    (arg,) = [a for a in (entry.get("options") or "").split() if a.startswith("ostree=")]
    return arg, (sysroot / arg[len("ostree=") :].lstrip("/")).resolve().name.split(".")[0]


def test_atomic_update_deploy_and_roll_back(tmp_path: Path) -> None:
    """Host-side on the image: a second commit deployed becomes the default boot entry (and grub.cfg's
    first entry), the first stays as the fallback; undeploying the new one rolls back."""
    from pineinstall.boot import bls

    image = ensure_pine_image()
    disk = copy_sparse(image.path, tmp_path / "disk.img")
    first, ref = image.manifest["ostree_commit"], image.manifest["ostree_ref"]
    with loop_device(disk) as dev, mounted(f"{dev}p3", tmp_path / "mnt") as mnt:
        repo, entries = mnt / "ostree" / "repo", mnt / "boot" / "loader" / "entries"
        tree = tmp_path / "update"
        (tree / "usr" / "share" / "pine").mkdir(parents=True)
        (tree / "usr" / "share" / "pine" / "release").write_text("2\n")
        second = subprocess.run(
            ["ostree", f"--repo={repo}", "commit", f"--branch={ref}", f"--tree=ref={first}",
             f"--tree=dir={tree}", "--subject=Pine update", "--no-xattrs"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        subprocess.run(
            ["ostree", "admin", "deploy", f"--sysroot={mnt}", "--os=pine", "--retain", ref], check=True
        )
        assert len(list(entries.glob("*.conf"))) == 2
        arg, booted = default_deployment(mnt)
        assert booted == second
        grub_cfg = mnt / "boot" / "grub" / "grub.cfg"
        bls.write_grub_cfg(mnt, grub_cfg)
        menu = grub_cfg.read_text().split("menuentry ")[1:]
        assert len(menu) == 2 and arg in menu[0]  # GRUB's default (entry 0) boots the update
        # the rollback: the new deployment undeployed, the first is the default again
        subprocess.run(["ostree", "admin", "undeploy", f"--sysroot={mnt}", "0"], check=True)
        assert len(list(entries.glob("*.conf"))) == 1
        assert default_deployment(mnt)[1] == first
