"""``pineinstall firstboot`` on a scratch root: a FAKE fw_cfg sysfs directory and a fake kernel command
line file (this host's kernel has neither fw_cfg nor our arguments); everything else is real (the
engine writes real files; the result record, the marker and the stash are real files). No process
may start: the guard fails the test (a scratch root is never the live system: no hostname, no
systemctl, no reboot)."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from pineinstall.cli import main
from pineinstall.firstboot import service
from pineinstall.install import stash as install_stash
from pineinstall.stages import Log
from pineinstall.target import open_target

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from integration.ignition_ref import seed_root, snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the engine chowns: needs root")

MARKER = "etc/.pine-firstboot-done"
RESULT = "etc/.pine-result.json"


def config(hostname: str = "fw-node", **extra) -> dict:
    return {
        "ignition": {"version": "3.4.0"},
        "passwd": {"users": [{"name": "pine", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3Nza pine@test"]}]},
        "storage": {
            "files": [
                {
                    "path": "/etc/hostname",
                    "overwrite": True,
                    "mode": 420,
                    "contents": {"source": f"data:,{hostname}%0A"},
                },
            ]
        },
        **extra,
    }


class Machine:
    """A scratch root plus the fake kernel command line and fw_cfg directory of its machine."""

    def __init__(self, tmp: Path) -> None:
        self.root = seed_root(tmp / "root")
        (self.root / "etc" / "hostname").write_text("pine\n")
        self.cmdline = tmp / "cmdline"
        self.cmdline.write_text("BOOT_IMAGE=/boot/vmlinuz root=UUID=1234 rw console=ttyS0,115200n8\n")
        self.fwcfg = tmp / "qemu_fw_cfg"
        (self.fwcfg / "by_name" / "etc").mkdir(parents=True)  # a machine with fw_cfg, no config yet

    def fw_cfg(self, data: bytes | dict) -> None:
        entry = self.fwcfg / "by_name" / "opt" / "com.coreos" / "config"
        entry.mkdir(parents=True, exist_ok=True)
        (entry / "raw").write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())

    def stash(self, data: dict) -> Path:
        return install_stash.stash_config(self.root, json.dumps(data).encode(), Log(open(os.devnull, "w")))

    def firstboot(self, capsys, *args: str) -> tuple[int, str, str]:
        rc = main(
            ["firstboot", "--root", str(self.root), "--cmdline", str(self.cmdline), "--fw-cfg", str(self.fwcfg),
             *args]
        )  # fmt: skip
        out = capsys.readouterr()
        return rc, out.out, out.err

    def result(self) -> dict:
        return json.loads((self.root / RESULT).read_text())


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_fwcfg_config_is_applied_recorded_and_marked(machine: Machine, capsys) -> None:
    machine.fw_cfg(config())
    rc, out, err = machine.firstboot(capsys)
    assert rc == 0, err
    assert out == ""  # people read stderr
    assert "config from fwcfg: fw_cfg opt/com.coreos/config" in err
    root = machine.root
    assert (root / "etc" / "hostname").read_text() == "fw-node\n"
    assert "pine:x:1000:" in (root / "etc" / "passwd").read_text()
    assert (
        "ssh-ed25519 AAAAC3Nza pine@test"
        in (root / "home/pine/.ssh/authorized_keys").read_text().splitlines()
    )
    record = machine.result()
    fb = record["firstboot"]
    assert fb["ok"] is True and fb["provider"] == "fwcfg" and fb["source"] == "fw_cfg opt/com.coreos/config"
    assert fb["users"] == ["pine"] and fb["hostname"] == "fw-node" and fb["files"] == ["/etc/hostname"]
    assert fb["kargs"] is None
    assert "/etc/hostname" in record["files"]  # the files stage's own record is kept
    assert stat.S_IMODE((root / RESULT).stat().st_mode) == 0o600
    assert (root / MARKER).read_text().endswith(" fwcfg\n")


def test_second_run_changes_nothing(machine: Machine, capsys) -> None:
    machine.fw_cfg(config())
    assert machine.firstboot(capsys)[0] == 0
    before = snapshot(machine.root, exclude=())
    machine.fw_cfg(config(hostname="other"))  # even with another config waiting
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0
    assert "first boot already done" in err
    assert snapshot(machine.root, exclude=()) == before


def test_force_runs_again(machine: Machine, capsys) -> None:
    machine.fw_cfg(config())
    assert machine.firstboot(capsys)[0] == 0
    machine.fw_cfg(config(hostname="other"))
    rc, _, err = machine.firstboot(capsys, "--force")
    assert rc == 0, err
    assert (machine.root / "etc" / "hostname").read_text() == "other\n"


def test_kernel_command_line_wins_over_fwcfg_and_stash(machine: Machine, capsys) -> None:
    url = "data:;base64," + base64.b64encode(json.dumps(config(hostname="from-cmdline")).encode()).decode()
    machine.cmdline.write_text(f"root=/dev/vda3 ignition.config.url=data:,broken pine.config.url={url} rw\n")
    machine.fw_cfg(config(hostname="from-fwcfg"))
    stashed = machine.stash(config(hostname="from-stash"))
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0, err
    assert "config from cmdline: pine.config.url=data: URL" in err
    assert (machine.root / "etc" / "hostname").read_text() == "from-cmdline\n"
    assert machine.result()["firstboot"]["provider"] == "cmdline"
    assert not stashed.exists() and not stashed.parent.exists()  # the stash goes after success


def test_fwcfg_wins_over_the_stash(machine: Machine, capsys) -> None:
    machine.fw_cfg(config(hostname="from-fwcfg"))
    machine.stash(config(hostname="from-stash"))
    assert machine.firstboot(capsys)[0] == 0
    assert (machine.root / "etc" / "hostname").read_text() == "from-fwcfg\n"


def test_stash_alone_is_used_then_removed(machine: Machine, capsys) -> None:
    stashed = machine.stash(config(hostname="from-stash"))
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0, err
    assert f"config from stash: {stashed}" in err
    assert f"removed the stashed config {stashed}" in err
    assert (machine.root / "etc" / "hostname").read_text() == "from-stash\n"
    assert not stashed.exists()
    assert (machine.root / "boot").is_dir()


def test_no_config_marks_done(machine: Machine, capsys) -> None:
    before = snapshot(machine.root, exclude=())
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0
    assert "no config: nothing to provision" in err
    after = snapshot(machine.root, exclude=())
    assert set(after) - set(before) == {MARKER, RESULT}
    assert machine.result() == {"firstboot": {"ok": True, "provider": None, "time": machine.result()["firstboot"]["time"], "message": "no config"}}  # fmt: skip


def test_broken_config_fails_with_its_place_and_is_not_marked(machine: Machine, capsys) -> None:
    bad = b'{"ignition": {"version": "3.4.0"},\n "storage": {"files": [{"path": "etc/motd"}]}}'
    machine.fw_cfg(bad)
    stashed = machine.stash(config())
    before = snapshot(machine.root, exclude=(RESULT,))
    rc, out, err = machine.firstboot(capsys)
    assert rc == 1
    assert out == ""
    assert "error at $.storage.files.0.path, line 2 col 33: path not absolute" in err
    assert "first boot failed: config is not a valid config" in err
    assert "NOT provisioned (/etc/.pine-firstboot-done not written); the next boot tries again" in err
    assert snapshot(machine.root, exclude=(RESULT,)) == before  # nothing applied, no marker
    assert stashed.exists()
    fb = machine.result()["firstboot"]
    assert fb["ok"] is False and fb["provider"] == "fwcfg" and fb["error"] == "config is not a valid config"
    # ... and the next boot, with the config fixed, provisions.
    machine.fw_cfg(config())
    assert machine.firstboot(capsys)[0] == 0
    assert machine.result()["firstboot"]["ok"] is True


def test_unusable_url_on_the_command_line_fails(machine: Machine, capsys) -> None:
    machine.cmdline.write_text("pine.config.url=s3://bucket/node.ign\n")
    machine.fw_cfg(config())  # not used: the command line named a config
    rc, _, err = machine.firstboot(capsys)
    assert rc == 1
    assert "first boot failed: pine.config.url: s3 sources are not supported by this build" in err
    assert not (machine.root / MARKER).exists()
    assert (machine.root / "etc" / "hostname").read_text() == "pine\n"


GRUB_CFG = """set default=0
menuentry 'Pine' {
	linux /boot/vmlinuz root=UUID=1234 rw console=ttyS0,115200n8
	initrd /boot/initrd.img
}
"""


def test_kernel_arguments_go_to_the_bootloader(machine: Machine, capsys) -> None:
    grub = machine.root / "boot" / "grub" / "grub.cfg"
    grub.parent.mkdir(parents=True)
    grub.write_text(GRUB_CFG)
    machine.fw_cfg(config(kernelArguments={"shouldExist": ["pine.karg=1"], "shouldNotExist": ["rw"]}))
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0, err
    assert "linux /boot/vmlinuz root=UUID=1234 console=ttyS0,115200n8 pine.karg=1\n" in grub.read_text()
    kargs = machine.result()["firstboot"]["kargs"]
    assert kargs["changed"] is True and kargs["after"][-1] == "pine.karg=1"
    assert "kernel arguments changed: a reboot is needed" in err  # a scratch root never reboots


def test_kernel_arguments_already_there_need_no_reboot(machine: Machine, capsys) -> None:
    grub = machine.root / "boot" / "grub" / "grub.cfg"
    grub.parent.mkdir(parents=True)
    grub.write_text(GRUB_CFG)
    machine.fw_cfg(config(kernelArguments={"shouldExist": ["rw"]}))
    rc, _, err = machine.firstboot(capsys)
    assert rc == 0, err
    assert grub.read_text() == GRUB_CFG
    assert machine.result()["firstboot"]["kargs"]["changed"] is False
    assert "reboot" not in err


def test_kernel_arguments_without_a_bootloader_fail_before_marking(machine: Machine, capsys) -> None:
    machine.fw_cfg(config(kernelArguments={"shouldExist": ["pine.karg=1"]}))
    rc, _, err = machine.firstboot(capsys)
    assert rc == 1
    assert "kernel arguments are configured but no bootloader configuration was found" in err
    assert not (machine.root / MARKER).exists()


def test_dry_run_names_the_config_and_plan_and_touches_nothing(machine: Machine, capsys) -> None:
    machine.fw_cfg(config(kernelArguments={"shouldExist": ["pine.karg=1"]}))
    before = snapshot(machine.root, exclude=())
    rc, out, err = machine.firstboot(capsys, "--dry-run")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("config: fwcfg (fw_cfg opt/com.coreos/config), ")
    assert "user: pine" in lines
    assert f"file: /etc/hostname -> {machine.root}/etc/hostname" in lines
    assert "karg: +pine.karg=1" in lines
    assert snapshot(machine.root, exclude=()) == before


# --- the service in a target ----------------------------------------------------------------------------


def quiet_log() -> Log:
    return Log(open(os.devnull, "w"))


def test_systemd_unit_installed_and_enabled_with_the_targets_pineinstall(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd").write_text("")
    exe = root / "usr/local/bin/pineinstall"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    log = quiet_log()
    info = install_stash.enable_firstboot(open_target(root), log)
    unit = root / "etc/systemd/system/pine-firstboot.service"
    text = unit.read_text()
    assert "ExecStart=/usr/local/bin/pineinstall firstboot\n" in text
    assert "ConditionPathExists=!/etc/.pine-firstboot-done\n" in text
    assert "StandardError=journal+console\n" in text
    link = root / "etc/systemd/system/multi-user.target.wants/pine-firstboot.service"
    assert os.readlink(link) == "/etc/systemd/system/pine-firstboot.service"
    assert info == {
        "init": "systemd",
        "exec": "/usr/local/bin/pineinstall",
        "service": "/etc/systemd/system/pine-firstboot.service",
        "links": ["/etc/systemd/system/multi-user.target.wants/pine-firstboot.service"],
    }
    assert log.warnings == []
    # again: nothing new, nothing broken
    again = install_stash.enable_firstboot(open_target(root), log)
    assert again["links"] == [] and unit.read_text() == text


def test_openrc_script_installed_into_the_boot_runlevel(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sbin").mkdir(parents=True)
    (root / "sbin/openrc").write_text("")
    log = quiet_log()
    info = install_stash.enable_firstboot(open_target(root), log)
    script = root / "etc/init.d/pine-firstboot"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    text = script.read_text()
    assert text.startswith("#!/sbin/openrc-run\n")
    assert "\t/usr/bin/pineinstall firstboot\n" in text and "marker=/etc/.pine-firstboot-done" in text
    # boot, not default: it runs before the network (boot) and the SSH server (default) start
    assert os.readlink(root / "etc/runlevels/boot/pine-firstboot") == "/etc/init.d/pine-firstboot"
    assert not os.path.lexists(root / "etc/runlevels/default/pine-firstboot")
    assert "before net networking hostname sshd dropbear" in text and "export TMPDIR=/var/tmp" in text
    assert info["init"] == "openrc"
    # no pineinstall in that target: said, not fatal
    assert len(log.warnings) == 1 and "the target has no pineinstall" in log.warnings[0]


def test_shipped_unit_files_are_the_rendered_defaults() -> None:
    assert service.render("systemd") == (service.UNITS_DIR / "pine-firstboot.service").read_text()
    assert "ExecStart=/usr/bin/pineinstall firstboot" in service.render("systemd")
    assert "ExecStart=/opt/p/pineinstall firstboot" in service.render("systemd", "/opt/p/pineinstall")


def test_openrc_services_of_a_later_runlevel_are_left_to_openrc() -> None:
    from pineinstall.firstboot import openrc_split

    links = [("default", "hello"), ("boot", "early"), ("sysinit", "first")]
    # first boot runs in the boot runlevel: default's services start when OpenRC enters default
    assert openrc_split(links, "boot") == (["early", "first"], ["hello"])
    assert openrc_split(links, "sysinit") == (["first"], ["hello", "early"])
    # run by hand later (default runlevel, or no OpenRC state): everything is started now
    assert openrc_split(links, "default") == (["hello", "early", "first"], [])
    assert openrc_split(links, None) == (["hello", "early", "first"], [])
