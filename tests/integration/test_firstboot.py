"""``pineinstall firstboot`` as a command, with real neighbours: the config URL on the (fake) kernel
command line served by a real HTTP server on 127.0.0.1 (retries on 5xx, a 404 fails the boot), the
shipped unit checked by Debian's ``systemd-analyze verify`` and enabled like ``systemctl --root
enable``, and the wheel carrying the unit files."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pineinstall.firstboot import service
from pineinstall.stages import Log
from pineinstall.target import open_target

from .httpserver import Answer, serve
from .ignition_ref import seed_root

REPO = Path(__file__).resolve().parents[2]
CONFIG = {
    "ignition": {"version": "3.4.0"},
    "storage": {
        "files": [{"path": "/etc/motd", "mode": 420, "contents": {"source": "data:,from%20http%0A"}}]
    },
}


def firstboot(tmp: Path, cmdline: str, *args: str) -> subprocess.CompletedProcess[str]:
    line = tmp / "cmdline"
    line.write_text(cmdline + "\n")
    return subprocess.run(
        [sys.executable, "-m", "pineinstall.cli", "firstboot", "--root", str(tmp / "root"), *args],
        env={
            **os.environ,
            "PINE_FIRSTBOOT_CMDLINE": str(line),
            "PINE_FIRSTBOOT_FW_CFG": str(tmp / "no-fw-cfg"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_config_url_is_fetched_with_retries(tmp_path: Path) -> None:
    seed_root(tmp_path / "root")
    with serve() as http:
        # (the server routes on the whole path, query included)
        http.route("/node.ign?token=s3cret", Answer(503), Answer(200, json.dumps(CONFIG).encode()))
        url = http.url("/node.ign")
        proc = firstboot(tmp_path, f"root=/dev/vda3 pine.config.url={url}?token=s3cret rw")
        assert proc.returncode == 0, proc.stderr
        assert len(http.hits("/node.ign?token=s3cret")) == 2
    assert (tmp_path / "root/etc/motd").read_text() == "from http\n"
    assert f"config from cmdline: pine.config.url={url} " in proc.stderr
    record = (tmp_path / "root/etc/.pine-result.json").read_text()
    assert "s3cret" not in proc.stderr and "s3cret" not in record
    assert json.loads(record)["firstboot"]["source"] == f"pine.config.url={url}"


def test_ignition_config_url_is_understood(tmp_path: Path) -> None:
    seed_root(tmp_path / "root")
    with serve() as http:
        url = http.route("/i.ign", Answer(200, json.dumps(CONFIG).encode()))
        proc = firstboot(tmp_path, f"ignition.config.url={url}")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "root/etc/motd").is_file()


def test_config_url_that_is_not_there_fails_and_is_not_marked(tmp_path: Path) -> None:
    seed_root(tmp_path / "root")
    with serve() as http:
        url = http.url("/missing.ign")
        proc = firstboot(tmp_path, f"pine.config.url={url}")
    assert proc.returncode == 1
    assert f"first boot failed: pine.config.url: cannot fetch {url}" in proc.stderr
    assert "404" in proc.stderr
    assert not (tmp_path / "root/etc/.pine-firstboot-done").exists()


def test_file_that_a_config_fetches_but_cannot_get_fails_before_writing(tmp_path: Path) -> None:
    seed_root(tmp_path / "root")
    with serve() as http:
        cfg = {
            "ignition": {"version": "3.4.0"},
            "storage": {
                "files": [
                    {"path": "/etc/a", "contents": {"source": "data:,a"}},
                    {"path": "/etc/b", "contents": {"source": http.url("/gone")}},
                ]
            },
        }
        url = http.route("/c.ign", Answer(200, json.dumps(cfg).encode()))
        proc = firstboot(tmp_path, f"pine.config.url={url}")
    assert proc.returncode == 1
    assert "first boot failed" in proc.stderr and "/gone" in proc.stderr
    assert not (tmp_path / "root/etc/a").exists()  # everything fetched before the first write
    assert not (tmp_path / "root/etc/.pine-firstboot-done").exists()


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.needs("systemd-analyze")
def test_shipped_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "pine-firstboot.service"
    # verify needs the ExecStart binary to exist: point it at one that does
    unit.write_text(service.render("systemd", "/bin/true"))
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "pine-firstboot.service" not in proc.stderr, proc.stderr


@pytest.mark.needs("systemctl")
def test_unit_enabled_like_systemctl_root_enable(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for root in (ours, theirs):
        (root / "usr/lib/systemd").mkdir(parents=True)
        (root / "usr/lib/systemd/systemd").write_text("")
    service.install_unit(open_target(ours), Log(io.StringIO()))
    unit = theirs / "etc/systemd/system/pine-firstboot.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(service.render("systemd"))
    subprocess.run(["systemctl", f"--root={theirs}", "enable", "pine-firstboot.service"], check=True,
                   capture_output=True)  # fmt: skip

    def links(root: Path) -> set[tuple[str, str]]:
        return {
            (str(p.relative_to(root)), os.readlink(p))
            for p in (root / "etc/systemd").rglob("*")
            if p.is_symlink()
        }

    assert links(ours) == links(theirs) and links(ours)
    assert (ours / "etc/systemd/system/pine-firstboot.service").read_text() == unit.read_text()


def test_wheel_ships_the_unit_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("pineinstall-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pineinstall/firstboot/units/pine-firstboot.service" in names
    assert "pineinstall/firstboot/units/pine-firstboot.openrc" in names
    assert "pineinstall/providers/fwcfg.py" in names


def test_install_stash_config_then_first_boot_from_the_stash(tmp_path: Path) -> None:
    """The installer stashes the config and enables the unit; first boot on that root takes the stash,
    finds everything already in place, records it, removes the stash and marks itself done."""
    from .image_helpers import installed_root, loop, mounted, seed_tree, tools_missing
    from .test_install_image import install_tree

    if tools_missing("sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck"):
        pytest.skip("needs sgdisk, sfdisk, partx, losetup, e2fsprogs")
    tree = seed_tree(tmp_path / "tree")
    exe = tree / "usr/bin/pineinstall"
    exe.write_text('#!/bin/sh\nexec python3 -m pineinstall.cli "$@"\n')
    exe.chmod(0o755)
    disk, summary, err = install_tree(tree, tmp_path)
    assert summary["firstboot"] == {
        "init": "systemd",
        "exec": "/usr/bin/pineinstall",
        "service": "/etc/systemd/system/pine-firstboot.service",
        "links": ["/etc/systemd/system/multi-user.target.wants/pine-firstboot.service"],
    }
    assert "the target has no pineinstall" not in err
    with installed_root(disk, tmp_path) as ro:
        assert (
            "ExecStart=/usr/bin/pineinstall firstboot"
            in (ro / "etc/systemd/system/pine-firstboot.service").read_text()
        )
        link = ro / "etc/systemd/system/multi-user.target.wants/pine-firstboot.service"
        assert os.readlink(link) == "/etc/systemd/system/pine-firstboot.service"
        assert (ro / "boot/ignition/config.ign").is_file()

    with loop(disk) as dev:
        subprocess.run(["partx", "-a", dev], check=True, capture_output=True)
        try:
            with mounted(f"{dev}p2", tmp_path / "rw") as root:
                line = tmp_path / "cmdline"
                line.write_text("root=UUID=x rw\n")
                proc = subprocess.run(
                    [sys.executable, "-m", "pineinstall.cli", "firstboot", "--root", str(root), "--cmdline",
                     str(line), "--fw-cfg", str(tmp_path / "none")],
                    capture_output=True, text=True, timeout=120, check=False,
                )  # fmt: skip
                assert proc.returncode == 0, proc.stderr
                assert f"config from stash: {root}/boot/ignition/config.ign" in proc.stderr
                assert "reboot" not in proc.stderr  # the installer already set the kernel arguments
                fb = json.loads((root / "etc/.pine-result.json").read_text())["firstboot"]
                assert fb["ok"] is True and fb["provider"] == "stash"
                assert fb["created"] == {} and fb["kargs"]["changed"] is False  # all in place already
                assert not (root / "boot/ignition").exists()
                assert (root / "etc/.pine-firstboot-done").is_file()
        finally:
            subprocess.run(["partx", "-d", dev], capture_output=True)
