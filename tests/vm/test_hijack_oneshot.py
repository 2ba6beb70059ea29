"""``pineinstall hijack --takeover boot-once`` against the 128 MiB Debian 12 guest (iso/images/hijack_source.py,
GRUB set up as Debian's grub-mkconfig does: grubenv's next_entry, custom.cfg), SSH forwarded to 127.0.0.1.

First the way back, for real: with PINE_HIJACK_TEST_FAIL_INSTALLER the installer's /init reboots at once;
GRUB's one-shot entry being spent, Debian boots again; the command waits for it, removes
/boot/pine-hijack and the entry, and fails saying the host is back and unchanged: SSH works, the disk's
tables and boot areas are as they were, no custom.cfg, no next_entry. Then, from that Debian, the real
one-shot takeover: Debian reboots into the installer, the installer writes the disk and reboots, and Pine
answers SSH with the config's key and its result record.

QEMU runs with -no-reboot: every reboot ends it, and the test starts it again on the same disk and port
while the command runs (Debian, installer, Debian, installer, Pine: five boots under one guest lock).
CI cost: two Debian boots (~60-120 s each under TCG), two installer boots (~5-30 s: GRUB, then Pine's
kernel with a 2 MiB initramfs), the stream, one Pine boot (~50 s): measured 36-48 s to Debian's SSH, 86-148 s
for the way back, 117-158 s for the takeover, about 6 min of guest time (docs/hijack.md, "Measured").
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness import running_disk, ssh, wait_for_ssh  # noqa: E402
from harness.qemu import guest_lock  # noqa: E402
from hijack_run import MEMORY, PROBE, SSH_TIMEOUT, areas_sha256, hijack, setup  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building, provisioning and QEMU need root")

COMMAND_TIMEOUT = 1800
HOST_STATE = (
    "ls -d /boot/pine-hijack 2>&1; ls /boot/grub/custom.cfg 2>&1; grub-editenv /boot/grub/grubenv list; "
    "cat /proc/sys/kernel/random/boot_id"
)


def follow(argv: list[str], env: dict, disk: Path, port: int, stack: contextlib.ExitStack, guest, log: Path):  # type: ignore[no-untyped-def]
    """Run the command; each time the guest reboots (QEMU exits), boot the disk again. Returns the
    command's result, the boots seen (seconds each, serial tail) and the guest still running."""
    boots = []
    t0 = time.monotonic()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        while proc.poll() is None and time.monotonic() - t0 < COMMAND_TIMEOUT:
            if not guest.running():
                boots.append({"s": round(guest.elapsed(), 1), "serial": guest.serial()[-4000:]})
                stack.close()
                guest = stack.enter_context(
                    running_disk(disk, memory=MEMORY, net_forwards={port: 22}, locked=False)
                )
            time.sleep(1)
        if proc.poll() is None:
            proc.kill()
        stdout, _ = proc.communicate()
    return {"rc": proc.returncode, "stdout": stdout, "stderr": log.read_text(), "boots": boots,
            "s": round(time.monotonic() - t0, 1)}, guest  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("bootonce")
    s = setup(tmp)
    disk, src_key, key, port = s.disk, s.src_key, s.key, s.port
    argv = hijack("root@127.0.0.1", s.cfg, "--port", port, "--identity", src_key, "--image-file", s.image,
                  "--image-sha256", s.digest, "--takeover", "boot-once", "--yes", "--reboot-timeout", 900)  # fmt: skip
    out: dict = {"key": key, "port": port}
    with guest_lock(), contextlib.ExitStack() as stack:
        guest = stack.enter_context(running_disk(disk, memory=MEMORY, net_forwards={port: 22}, locked=False))
        out["debian_boot_s"] = wait_for_ssh(guest, port, src_key, "root", SSH_TIMEOUT)
        out["before_areas"] = areas_sha256(disk)
        out["before"] = ssh(port, src_key, "root", HOST_STATE).stdout
        out["mem"] = ssh(port, src_key, "root", "grep -E 'MemTotal|MemAvailable' /proc/meminfo").stdout
        env = {**os.environ, "PINE_HIJACK_TEST_FAIL_INSTALLER": "1"}
        out["fail"], guest = follow(argv, env, disk, port, stack, guest, tmp / "fail.log")
        out["after_areas"] = areas_sha256(disk)
        out["after"] = ssh(port, src_key, "root", HOST_STATE).stdout
        env = {k: v for k, v in os.environ.items() if k != "PINE_HIJACK_TEST_FAIL_INSTALLER"}
        out["take"], guest = follow(argv, env, disk, port, stack, guest, tmp / "take.log")
        if out["take"]["rc"] == 0:
            got = ssh(port, key, "tester", f"sh -c {shlex.quote(PROBE)}")
            out["probe"] = dict(ln.split("=", 1) for ln in got.stdout.splitlines() if "=" in ln)
            out["record"] = ssh(port, src_key, "root", "cat /etc/.pine-result.json").stdout
        out["last_serial"] = guest.serial()[-3000:]
    for name in ("fail", "take"):
        r = out[name]
        print(f"\n{name}: rc {r['rc']} in {r['s']} s, boots {[b['s'] for b in r['boots']]}\n{r['stdout']}\n"
              f"{r['stderr'][-1500:]}")  # fmt: skip
    print(f"Debian boot to SSH {out['debian_boot_s']} s; {out['mem']}")
    return out


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
    probe = runs["probe"]
    assert probe["hostname"] == "debian-src"
    assert probe["file"] == "written by pineinstall hijack"
    assert probe["addr"] == "10.0.2.15/24" and "via 10.0.2.2" in probe["route"]
    assert probe["os"] == "alpine"
    assert '"configHash"' in runs["record"]
