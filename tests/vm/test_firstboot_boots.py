"""First boot in a real guest: a Pine-shaped disk (``iso.agent``: the raw test image plus Python) with
this checkout's ``pineinstall`` and the first-boot unit installed and enabled by the product's own
code, booted by SeaBIOS + GRUB with the config on QEMU's fw_cfg, as a user would run it:

    qemu-system-x86_64 ... -fw_cfg name=opt/com.coreos/config,file=node.ign

The guest reports its state on the serial console (``PINE-REPORT``, iso/images/guest) and powers off
(``pine.test.poweroff`` on the GRUB entry's kernel command line).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.agent import ensure_agent_image, prepare_firstboot_disk  # noqa: E402
from iso.images import parse_report  # noqa: E402

BOOT_TIMEOUT = 900  # TCG on 2 shared cores: 1-3 minutes alone, several under load
FWCFG = "opt/com.coreos/config"
MARKER = "/etc/.pine-firstboot-done"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPineFirstbootTest pine@firstboot"
REPORTED = [MARKER, "/etc/provisioned.txt", "/var/lib/hello/ran", "/etc/.pine-result.json"]

CONFIG = {
    "ignition": {"version": "3.4.0"},
    "passwd": {"users": [{"name": "pine", "sshAuthorizedKeys": [KEY], "groups": ["adm"]}]},
    "storage": {
        "files": [
            {
                "path": "/etc/hostname",
                "overwrite": True,
                "mode": 420,
                "contents": {"source": "data:,fw-node%0A"},
            },
            {"path": "/etc/provisioned.txt", "mode": 416, "contents": {"source": "data:,from%20fw_cfg"}},
        ]
    },
    "systemd": {
        "units": [
            {
                "name": "hello.service",
                "enabled": True,
                "contents": "[Unit]\nDescription=proof that a unit enabled by first boot runs\n"
                "Before=pine-test-report.service\n[Service]\nType=oneshot\n"
                "ExecStart=/bin/sh -c 'mkdir -p /var/lib/hello && echo ran > /var/lib/hello/ran'\n"
                "[Install]\nWantedBy=multi-user.target\n",
            }
        ]
    },
}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="preparing the disk needs root (loop mount)")


@pytest.fixture(scope="module")
def agent_image():
    return ensure_agent_image()


def firstboot_disk(tmp: Path, agent_image) -> Path:
    return prepare_firstboot_disk(
        tmp / "disk.img",
        base=agent_image,
        kargs=["pine.test.poweroff", "pine.test.files=" + ",".join(REPORTED)],
    )


def boot(boot_disk, disk: Path, config: Path, what: str) -> tuple[dict, str]:
    r = boot_disk(disk, fw_cfg={FWCFG: config}, until="PINE-REPORT-END", timeout=BOOT_TIMEOUT)
    print(f"{what}: report after {r.seconds} s")
    assert r.marker_seen, r.serial[-6000:]
    return parse_report(r.serial), r.serial


def test_fwcfg_config_is_applied_on_first_boot_only(tmp_path: Path, agent_image, boot_disk) -> None:
    disk = firstboot_disk(tmp_path, agent_image)
    cfg = tmp_path / "node.ign"
    cfg.write_text(json.dumps(CONFIG))

    report, serial = boot(boot_disk, disk, cfg, "first boot")
    assert "firstboot: config from fwcfg: fw_cfg opt/com.coreos/config" in serial, serial[-6000:]
    assert report["hostname"] == "fw-node"  # set on the running system, not only in /etc/hostname
    assert report["etc_hostname"] == "fw-node"
    pine = next(u for u in report["users"] if u["name"] == "pine")
    assert pine["home"] == "/home/pine"
    assert KEY in report["authorized_keys"]["pine"][".ssh/authorized_keys"]
    assert "adm:pine" in report["groups"]
    files = report["files"]
    assert files["/etc/provisioned.txt"]["text"] == "from fw_cfg"
    assert files["/etc/provisioned.txt"]["mode"] == "640"
    assert files["/var/lib/hello/ran"]["text"] == "ran"  # enabled by the config AND started this boot
    assert "hello.service" in report["enabled_services"]
    assert "pine-firstboot.service" in report["enabled_services"]
    assert files[MARKER] is not None and files[MARKER]["text"].endswith(" fwcfg")
    result = json.loads(report["pine_result_text"])["firstboot"]
    assert result["ok"] is True and result["provider"] == "fwcfg"
    assert result["users"] == ["pine"] and result["hostname"] == "fw-node"
    assert result["started"] == ["hello.service"]
    assert files["/etc/.pine-result.json"]["mode"] == "600"
    assert not report["failed_units"], report["failed_units"]

    # The same disk, the same fw_cfg: the unit is skipped (its condition), nothing is rewritten.
    again, serial2 = boot(boot_disk, disk, cfg, "second boot")
    assert "firstboot: config from" not in serial2
    assert again["files"][MARKER] == files[MARKER]
    assert again["pine_result_text"] == report["pine_result_text"]  # its "time" would have changed
    assert again["files"]["/etc/provisioned.txt"] == files["/etc/provisioned.txt"]
    assert again["users"] == report["users"] and again["authorized_keys"] == report["authorized_keys"]
    assert again["hostname"] == "fw-node"
    assert not again["failed_units"], again["failed_units"]


def test_broken_fwcfg_config_fails_on_the_console_and_is_not_marked(
    tmp_path: Path, agent_image, boot_disk
) -> None:
    disk = firstboot_disk(tmp_path, agent_image)
    broken = {
        "ignition": {"version": "3.4.0"},
        "storage": {"files": [{"path": "/etc/ok.txt"}, {"path": "relative/path"}]},
    }
    cfg = tmp_path / "broken.ign"
    cfg.write_text(json.dumps(broken, indent=2))
    report, serial = boot(boot_disk, disk, cfg, "broken config")
    # the checker's line, with its place in the fw_cfg file (line 11 of the indented JSON)
    assert "error at $.storage.files.1.path, line 11 col 17: path not absolute" in serial, serial[-6000:]
    assert "first boot failed" in serial
    assert f"NOT provisioned ({MARKER} not written)" in serial
    assert report["files"][MARKER] is None
    assert report["files"]["/etc/provisioned.txt"] is None
    assert "pine-firstboot.service" in report["failed_units"]
    result = json.loads(report["pine_result_text"])["firstboot"]
    assert result["ok"] is False and result["provider"] == "fwcfg"
    assert "not a valid config" in result["error"]


def test_changed_kernel_arguments_reboot_into_them(tmp_path: Path, agent_image, boot_disk) -> None:
    disk = firstboot_disk(tmp_path, agent_image)
    cfg = tmp_path / "kargs.ign"
    cfg.write_text(
        json.dumps(
            {"ignition": {"version": "3.4.0"}, "kernelArguments": {"shouldExist": ["pine.karg=firstboot"]}}
        )
    )
    # -no-reboot: the guest's reboot ends QEMU (the report, after multi-user.target, never comes)
    r = boot_disk(disk, fw_cfg={FWCFG: cfg}, until="PINE-REPORT-END", timeout=BOOT_TIMEOUT)
    print(f"kargs, first boot: QEMU ended after {r.seconds} s")
    assert "kernel arguments changed: rebooting" in r.serial, r.serial[-6000:]
    assert not r.marker_seen and r.powered_off
    report, _ = boot(boot_disk, disk, cfg, "kargs, second boot")
    assert "pine.karg=firstboot" in report["cmdline"].split()
    result = json.loads(report["pine_result_text"])["firstboot"]
    assert result["kargs"]["changed"] is True and result["kargs"]["after"][-1] == "pine.karg=firstboot"
    assert report["files"][MARKER] is not None
