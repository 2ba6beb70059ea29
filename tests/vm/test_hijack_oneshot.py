"""``pineinstall hijack --takeover boot-once`` against the 128 MiB Debian 12 guest (iso/images/hijack_source.py,
GRUB set up as Debian's grub-mkconfig does: grubenv's next_entry, custom.cfg), SSH forwarded to 127.0.0.1.

First the way back, for real: with PINE_HIJACK_TEST_FAIL_INSTALLER the installer's /init reboots at once;
GRUB's one-shot entry being spent, Debian boots again; the command waits for it, removes
/boot/pine-hijack and the entry, and fails saying the host is back and unchanged: SSH works, the disk's
tables and boot areas are as they were, no custom.cfg, no next_entry. Then, from that Debian, the real
one-shot takeover: Debian reboots into the installer, the installer writes the disk and reboots, and Pine
answers SSH with the config's key and its result record. Its write session is killed once on the
controller a few seconds in (a network cut after the point of no return): the command writes again
from the start, in a new session to the same installer.

QEMU runs with -no-reboot: every reboot ends it, and the test starts it again on the same disk and port
while the command runs (Debian, installer, Debian, installer, Pine: five boots under one guest lock).
CI cost: two Debian boots (~60-120 s each under TCG), two installer boots (~5-30 s: GRUB, then Pine's
kernel with a 2 MiB initramfs), the stream, one Pine boot (~50 s): measured 36-48 s to Debian's SSH, 86-148 s
for the way back, 117-158 s for the takeover, about 6 min of guest time (docs/hijack.md, "Measured").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from hijack_run import run_boot_once  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building, provisioning and QEMU need root")

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_boot_once(tmp_path_factory.mktemp("bootonce"), cut_write=True)


def test_failed_installer_boot_falls_back_to_the_old_system(runs: dict) -> None:
    fail = runs["fail"]
    assert fail["rc"] == 1, fail["stderr"]
    assert "back on its old system, unchanged" in fail["stderr"], fail["stderr"]
    # Debian, then the installer (which rebooted at once), then Debian again (still running)
    assert len(fail["boots"]) == 2, [b["serial"][-800:] for b in fail["boots"]]
    assert "pine_hijack.fail: rebooting at once" in fail["boots"][1]["serial"]
    assert runs["after_areas"] == runs["before_areas"]  # tables, GRUB's core, the ESP, the backup GPT
    before, after = runs["before"].splitlines(), runs["after"].splitlines()
    assert "No such file" in after[0] and "No such file" in after[1], after  # no /boot/pine-hijack, no custom.cfg
    assert not any(ln.startswith("next_entry") for ln in after), after  # GRUB's empty one unset too
    assert before[:-1] == after[:-1] and before[-1] != after[-1]  # the same state, a new boot


def test_boot_once_takeover_gives_pine(runs: dict) -> None:
    take = runs["take"]
    assert take["rc"] == 0, take["stderr"] + "".join(b["serial"][-1500:] for b in take["boots"])
    assert len(take["boots"]) == 2  # Debian rebooted into the installer, the installer into Pine
    assert "SSH server on port 22" in take["boots"][1]["serial"]
    assert "takeover done" in take["stdout"] and "reboot to installer" in take["stdout"]
    # the write session was cut once on the controller, after the point of no return: written again
    assert take["cut"] and "writing again from the start in 10 s (try 2 of 3)" in take["stderr"], take["stderr"]
    probe = runs["probe"]
    assert probe["hostname"] == "debian-src"
    assert probe["file"] == "written by pineinstall hijack"
    assert probe["addr"] == "10.0.2.15/24" and "via 10.0.2.2" in probe["route"]
    assert probe["os"] == "alpine"
    assert '"configHash"' in runs["record"]
