"""Boot the iso.images test disks with their own GRUB under SeaBIOS and OVMF after editing their kernel
arguments with pineinstall.boot, and read the guest's PINE-REPORT line back from the serial console.

Each boot takes 1-3 minutes under TCG; the images are built (and cached) on first use.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from iso import images
from iso.lib.disk import loop_device, mounted
from pineinstall.boot import apply_kargs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (image builds, loop devices, mount)"),
]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPineTestKeyPineTestKeyPineTestKey000 tester@pine"
BOOT_TIMEOUT = 600


@contextmanager
def root_of(img: Path, where: Path):
    """The disk's root filesystem (partition 3) mounted at where."""
    with loop_device(img) as dev, mounted(f"{dev}p3", where) as m:
        yield m


def _provision(etc: Path, home: Path) -> None:
    """What an install would leave: a user with a key, the result file, an enabled unit, a hostname."""
    with open(etc / "passwd", "a") as f:
        f.write("core:x:1000:1000:Core:/home/core:/bin/sh\n")
    with open(etc / "group", "a") as f:
        f.write("core:x:1000:\n")
    ssh = home / "core" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text(KEY + "\n")
    os.chown(home / "core", 1000, 1000)
    (etc / ".pine-result.json").write_text(json.dumps({"result": "ok"}))
    (etc / "hostname").write_text("provisioned\n")
    (etc / "systemd/system/hello.service").write_text(
        "[Unit]\nDescription=hello\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    )
    (etc / "systemd/system/multi-user.target.wants/hello.service").symlink_to(
        "/etc/systemd/system/hello.service"
    )
    (etc / "pine-test").mkdir()
    (etc / "pine-test/report-files").write_text("/etc/hostname\n/etc/missing\n")


def _boot(img: Path, firmware: str, boot_disk) -> dict:
    r = boot_disk(img, firmware=firmware, timeout=BOOT_TIMEOUT)
    assert r.powered_off, r.serial[-3000:]  # pine.test.poweroff: the guest powered itself off
    print(f"{img.name} {firmware}: {r.seconds} s to power-off")
    return images.parse_report(r.serial)


def _check(report: dict, cmdline_has: list[str], cmdline_lacks: list[str]) -> None:
    args = report["cmdline"].split()
    for a in cmdline_has:
        assert a in args, (a, report["cmdline"])
    for a in cmdline_lacks:
        assert a not in args, (a, report["cmdline"])
    assert report["hostname"] == "provisioned"
    assert {"name": "core", "uid": 1000, "gid": 1000, "home": "/home/core", "shell": "/bin/sh"} in report[
        "users"
    ]
    assert report["authorized_keys"] == {"core": {".ssh/authorized_keys": [KEY]}}
    assert report["pine_result"] is True and json.loads(report["pine_result_text"]) == {"result": "ok"}
    assert "hello.service" in report["enabled_services"]
    assert "pine-test-report.service" in report["enabled_services"]
    assert report["files"]["/etc/hostname"]["text"] == "provisioned"
    assert report["files"]["/etc/missing"] is None
    assert report["failed_units"] == [], report["failed_units"]


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_raw_image_boots_with_edited_kargs(firmware, boot_disk, tmp_path):
    img = images.copy_out(images.ensure_image("raw"), tmp_path / "disk.img")
    with root_of(img, tmp_path / "m") as m:
        change = apply_kargs(
            m,
            should_exist=["pine.test.poweroff", f"pine.test.fw={firmware}"],
            should_not_exist=["console=tty0"],
            console=["ttyS0,115200n8"],
        )
        assert change.bootloader == "grub"
        _provision(m / "etc", m / "home")
    report = _boot(img, firmware, boot_disk)
    _check(
        report, ["pine.test.poweroff", f"pine.test.fw={firmware}", "console=ttyS0,115200n8"], ["console=tty0"]
    )
    assert report["ostree_booted"] is False


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_ostree_image_boots_with_edited_kargs(firmware, boot_disk, tmp_path):
    built = images.ensure_image("ostree")
    img = images.copy_out(built, tmp_path / "disk.img")
    with root_of(img, tmp_path / "m") as m:
        change = apply_kargs(m, should_exist=["pine.test.poweroff", f"pine.test.fw={firmware}"])
        assert change.bootloader == "bls"
        (deploy,) = built.manifest["deployments"]
        droot = m / "ostree/deploy/pine/deploy" / deploy
        # /etc is the deployment's, /home is the stateroot's var/home
        var = m / "ostree/deploy/pine/var"
        (var / "home").mkdir(exist_ok=True)
        _provision(droot / "etc", var / "home")
    report = _boot(img, firmware, boot_disk)
    _check(report, ["pine.test.poweroff", f"pine.test.fw={firmware}", "console=tty0"], [])
    assert report["ostree_booted"] is True
    assert any(a.startswith("ostree=/ostree/boot.") for a in report["cmdline"].split())
