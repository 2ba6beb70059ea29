"""The guest's reporter (iso/images/guest/pine-test-report) run in a chroot of the rootfs image, and
iso.images.parse_report on what it prints: awkward characters survive as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from iso import images

pytestmark = pytest.mark.slow

KEY1 = 'ssh-ed25519 AAAAC3Nza from="10.0.0.1" "quoted" back\\slash\ttab'
KEY2 = "ecdsa-sha2-nistp256 AAAAE2V key2"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    built = images.ensure_image("rootfs")
    root = tmp_path_factory.mktemp("rootfs")
    subprocess.run(["tar", "-I", "zstd", "-C", root, "-xf", built.path], check=True)
    return root


def _report(root: Path) -> tuple[str, dict]:
    subprocess.run(["mount", "-t", "proc", "proc", root / "proc"], check=True)
    try:
        out = subprocess.run(
            ["chroot", root, "/usr/libexec/pine-test-report"], capture_output=True, text=True, timeout=120
        )
    finally:
        subprocess.run(["umount", root / "proc"], check=True)
    assert out.returncode == 0, out.stderr
    return out.stdout, images.parse_report(out.stdout)


def test_report_fields_and_escaping(root):
    with open(root / "etc/passwd", "a") as f:
        f.write('core:x:1000:1000:Core "User":/home/core:/bin/sh\n')
    ssh = root / "home/core/.ssh"
    (ssh / "authorized_keys.d").mkdir(parents=True)
    (ssh / "authorized_keys").write_text(KEY1 + "\n\n# a comment\n")
    (ssh / "authorized_keys.d" / "ignition").write_text(KEY2)  # no final newline
    (root / "etc/.pine-result.json").write_text('{"a": "b\\n"}\n')
    (root / "etc/pine-test").mkdir()
    (root / "etc/pine-test/report-files").write_text("/etc/motd.pine\n/etc/nothing\n/etc/pine-test\n")
    (root / "etc/motd.pine").write_text('line1\n"line2"\\\n\x01ctl\n')
    os.chmod(root / "etc/motd.pine", 0o640)

    stdout, report = _report(root)
    assert stdout.count("PINE-REPORT ") == 1  # the journal copy (no serial tty in a chroot)
    assert report["etc_hostname"] == "pine"
    assert report["cmdline"] == Path("/proc/cmdline").read_text().strip()
    assert report["users"][0] == {"name": "root", "uid": 0, "gid": 0, "home": "/root", "shell": "/bin/bash"}
    assert report["users"][-1] == {
        "name": "core",
        "uid": 1000,
        "gid": 1000,
        "home": "/home/core",
        "shell": "/bin/sh",
    }
    assert report["authorized_keys"] == {
        "core": {".ssh/authorized_keys": [KEY1, "# a comment"], ".ssh/authorized_keys.d/ignition": [KEY2]}
    }
    assert report["pine_result"] is True and json.loads(report["pine_result_text"]) == {"a": "b\n"}
    assert report["files"]["/etc/motd.pine"] == {
        "type": "file",
        "mode": "640",
        "owner": "root:root",
        "size": 20,
        "text": 'line1\n"line2"\\\nctl',  # control characters dropped, final newline trimmed
    }
    assert report["files"]["/etc/nothing"] is None
    assert report["files"]["/etc/pine-test"] == {"type": "dir", "mode": "755", "owner": "root:root"}
    assert report["ostree_booted"] is False
    # enabled = symlinks under /etc/systemd/system/*.wants (the image enables the reporter itself)
    assert "pine-test-report.service" in report["enabled_services"]
    assert "getty@tty1.service" in report["enabled_services"]


def test_parse_report_picks_the_last_whole_line():
    serial = (
        'noise\r\nPINE-REPORT {"a": 1}\r\n[  12.3] kernel PINE-REPORT {broken\r\n'
        'login: PINE-REPORT {"hostname": "x"}\r\nPINE-REPORT-END\r\n'
    )
    assert images.parse_report(serial) == {"hostname": "x"}
    with pytest.raises(ValueError, match="1 unreadable"):
        images.parse_report("PINE-REPORT {oops\n")
    with pytest.raises(ValueError, match="no PINE-REPORT line"):
        images.parse_report("nothing here")
