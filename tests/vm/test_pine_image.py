"""The real Pine image (iso/images/pine.py, scripts/pine-image): installed with a config, booted,
logged into over SSH with the config's key and read back, in one boot; a second OSTree commit
deployed and rolled back (host-side, ``ostree admin --sysroot`` on the image: the boot entries and
the default follow). First boot on Pine and the 64 MiB boot: test_pine_firstboot.py.

Measured figures (install, boot-to-SSH, memory in use) are printed (pytest -s shows them).
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness import free_port, keypair, running_disk, ssh, wait_for_ssh  # noqa: E402

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib.disk import copy_sparse, loop_device, mounted  # noqa: E402
from pineinstall.install import main  # noqa: E402

SSH_TIMEOUT = 600  # TCG on 2 shared cores
USER = "tester"
HELLO = """#!/sbin/openrc-run
description="proof that an enabled service runs"
command="/bin/sleep"
command_args="86400"
command_background=yes
pidfile=/run/hello.pid
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building and installing need root")


def config(key: str) -> str:
    service = "\n".join("          " + line for line in HELLO.splitlines())
    return f"""variant: pine
version: 1.0.0
passwd:
  users:
    - name: tester
      ssh_authorized_keys:
        - {key}
storage:
  files:
    - path: /etc/pine-test.txt
      mode: 0444
      contents:
        inline: written by pineinstall
openrc:
  services:
    - name: hello
      contents: |
{service}
network:
  hostname: pine-test
"""


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keypair(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, key: tuple[Path, str]) -> Path:
    t0 = time.monotonic()
    image = ensure_pine_image()
    print(f"pine image: {image.path} ({image.manifest['build_seconds']} s to build, "
          f"{image.path.stat().st_size // 2**20} MiB raw, {image.path.stat().st_blocks * 512 // 2**20} MiB used)")  # fmt: skip
    tmp = tmp_path_factory.mktemp("pine")
    cfg = tmp / "node.bu"
    cfg.write_text(config(key[1]))
    disk = tmp / "installed.img"
    out, err = io.StringIO(), io.StringIO()
    argv = [
        os.fspath(disk),
        os.fspath(cfg),
        "--json",
        "--yes",
        "--image-file",
        os.fspath(image.path),
        "--size",
        "512M",
    ]
    rc = main(argv, stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    print(f"image + install: {time.monotonic() - t0:.1f} s")
    return disk


# One shell script, one NAME=VALUE line each: everything the test reads back from the running system.
PROBE = r"""
dep=$(ls -d /sysroot/ostree/deploy/pine/deploy/*.0 | head -n1)
echo "hostname=$(hostname)"
echo "id=$(id)"
echo "key=$(grep -v "^#" ~/.ssh/authorized_keys)"
echo "mode=$(stat -c %a /etc/pine-test.txt)"
echo "file=$(cat /etc/pine-test.txt)"
echo "hello=$(test -e /run/openrc/started/hello && test -d /proc/$(cat /run/hello.pid) && echo started)"
echo "sshd=$(test -e /run/openrc/started/sshd && pgrep dropbear >/dev/null && echo started)"
echo "usr_ro=$(awk '$2=="/usr"{print $4}' /proc/mounts | cut -d, -f1)"
echo "etc=$(stat -c %d:%i /etc) $(stat -c %d:%i $dep/etc)"
echo "var=$(stat -c %d:%i /var) $(stat -c %d:%i /sysroot/ostree/deploy/pine/var)"
echo "ostree_booted=$(test -e /run/ostree-booted && echo yes)"
echo "cmdline=$(cat /proc/cmdline)"
echo "mem_used_kib=$(free | awk '/^Mem:/{print $3}')"
"""


def probe(port: int, key: Path) -> dict[str, str]:
    r = ssh(port, key, USER, f"sh -c {shlex.quote(PROBE)}")
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def test_install_boot_read_back_over_ssh(installed: Path, key: tuple[Path, str]) -> None:
    private, public = key
    port = free_port()
    with running_disk(installed, memory="512M", net_forwards={port: 22}) as guest:
        seconds = wait_for_ssh(guest, port, private, USER, SSH_TIMEOUT)
        got = probe(port, private)
    print(
        f"boot to SSH (BIOS, 512 MiB, TCG): {seconds} s; memory in use: {int(got['mem_used_kib']) // 1024} MiB"
    )
    assert got["hostname"] == "pine-test"
    assert "uid=" in got["id"] and "(tester)" in got["id"]
    assert got["key"] == public
    assert (got["mode"], got["file"]) == ("444", "written by pineinstall")
    assert "started" in got["hello"], got["hello"]
    assert "started" in got["sshd"], got["sshd"]
    assert got["usr_ro"] == "ro"
    etc, deployment_etc = got["etc"].split()
    assert etc == deployment_etc  # /etc is the deployment's
    var, stateroot_var = got["var"].split()
    assert var == stateroot_var  # /var is the stateroot's
    assert got["ostree_booted"] == "yes" and "ostree=/ostree/boot." in got["cmdline"]


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
