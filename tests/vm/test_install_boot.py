"""Install, then BOOT the installed disk with its own bootloader (SeaBIOS and OVMF) and read the
provisioned state from the guest's ``PINE-REPORT`` line on the serial console: hostname, the user and
their SSH key, a file, a systemd unit the config enabled (it ran), and kernel arguments in /proc/cmdline.

The subject here is a systemd target with a Fedora CoreOS-style config (``variant: fcos``, a unit
enabled offline): the Debian/systemd root of ``iso.images`` (``rootfs``), installed in rootfs mode
(``pineinstall`` partitions, unpacks the tree and installs GRUB itself), booted under both firmwares
from the same installed disk (QEMU ``snapshot``). Its GRUB kernel arguments are edited once more after
the install with ``pineinstall.boot.apply_kargs`` (added, removed, console), and the boots show the
edit too. Installing and booting the real Pine image (OpenRC, OSTree, BLS entries) is
test_pine_install.py.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.images import ensure_image, parse_report  # noqa: E402
from iso.lib.disk import loop_device, mounted  # noqa: E402
from pineinstall.boot import Change, apply_kargs  # noqa: E402
from pineinstall.install import main  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPineInstallBootTest pine@test"
CONFIG = f"""variant: fcos
version: 1.4.0
passwd:
  users:
    - name: pine
      ssh_authorized_keys:
        - {KEY}
storage:
  files:
    - path: /etc/hostname
      overwrite: true
      mode: 0644
      contents:
        inline: installed-node
    - path: /etc/pine-test/report-files
      contents:
        inline: |
          /etc/provisioned.txt
          /var/lib/hello/ran
          /etc/missing
    - path: /etc/provisioned.txt
      mode: 0640
      contents:
        inline: written by pineinstall
systemd:
  units:
    - name: hello.service
      enabled: true
      contents: |
        [Unit]
        Description=proof that an enabled unit runs
        Before=pine-test-report.service
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'mkdir -p /var/lib/hello && echo ran > /var/lib/hello/ran'
        [Install]
        WantedBy=multi-user.target
kernel_arguments:
  should_exist:
    - pine.test.poweroff
    - pine.karg=from-config
"""
BOOT_TIMEOUT = 900  # TCG on 2 shared cores: 1-6 minutes seen

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root (loop devices)")


def install(tmp: Path, *args: str | os.PathLike[str]) -> tuple[Path, dict]:
    cfg = tmp / "node.bu"
    cfg.write_text(CONFIG)
    disk = tmp / "installed.img"
    out, err = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    rc = main([os.fspath(disk), os.fspath(cfg), "--json", "--yes", "--append-karg", "pine.append=1", *map(os.fspath, args)],
              stdout=out, stderr=err)  # fmt: skip
    assert rc == 0, err.getvalue()
    result = json.loads(out.getvalue().splitlines()[-1])
    result["install_seconds"] = round(time.monotonic() - t0, 1)
    print(f"install {args[0]}: {result['install_seconds']} s")
    return disk, result


# Added after the install by apply_kargs, which also drops the install's --append-karg and sets the console.
EDITED = "pine.test.edited=1"


# --rootfs's default layout: BIOS boot, ESP, swap, then root (pineinstall/install/rootfs.py).
ROOT_PARTITION = 4


def edit_kargs(disk: Path, edit: Callable[[Path], Change]) -> Change:
    """Apply edit to the installed disk's root filesystem, as a later karg change would."""
    with loop_device(disk) as dev, mounted(f"{dev}p{ROOT_PARTITION}", disk.parent / "root") as root:
        return edit(root)


@pytest.fixture(scope="module")
def rootfs_disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    disk, result = install(tmp_path_factory.mktemp("rootfs"), "--rootfs", ensure_image("rootfs").path,
                           "--size", "2G", "--console", "ttyS0,115200n8")  # fmt: skip
    change = edit_kargs(disk, lambda root: apply_kargs(
        root, should_exist=[EDITED], should_not_exist=["pine.append=1"], console=["ttyS0,115200n8"]
    ))  # fmt: skip
    result["karg_edit"] = change.bootloader
    return disk, result


def boot_and_report(boot_disk, disk: Path, firmware: str) -> dict:
    r = boot_disk(disk, firmware=firmware, until="PINE-REPORT-END", timeout=BOOT_TIMEOUT, snapshot=True)
    print(f"{disk.parent.name} {firmware}: report after {r.seconds} s")
    assert r.marker_seen, r.serial[-4000:]
    return parse_report(r.serial)


def check_report(report: dict) -> None:
    assert report["hostname"] == "installed-node"
    assert report["etc_hostname"] == "installed-node"
    cmdline = report["cmdline"].split()
    assert "pine.karg=from-config" in cmdline and "pine.test.poweroff" in cmdline
    pine = next(u for u in report["users"] if u["name"] == "pine")
    assert pine["home"] == "/home/pine" and pine["uid"] >= 1000 and pine["gid"] >= 1000
    assert KEY in report["authorized_keys"]["pine"][".ssh/authorized_keys"]
    f = report["files"]["/etc/provisioned.txt"]
    assert f["text"] == "written by pineinstall" and f["mode"] == "640"
    assert report["files"]["/var/lib/hello/ran"]["text"] == "ran"  # the enabled unit ran at boot
    assert report["files"]["/etc/missing"] is None
    assert "hello.service" in report["enabled_services"]
    assert "pine-test-report.service" in report["enabled_services"]
    assert report["pine_result"] is True and isinstance(json.loads(report["pine_result_text"]), dict)
    assert report["ostree_booted"] is False
    assert not report["failed_units"], report["failed_units"]


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_rootfs_mode_boots(firmware: str, rootfs_disk: tuple[Path, dict], boot_disk) -> None:
    disk, result = rootfs_disk
    assert result["karg_edit"] == "grub"
    report = boot_and_report(boot_disk, disk, firmware)
    check_report(report)
    cmdline = report["cmdline"].split()
    assert EDITED in cmdline and "console=ttyS0,115200n8" in cmdline and "pine.append=1" not in cmdline
