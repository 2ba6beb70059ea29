"""``pineinstall hijack`` against a running Debian 12 guest at 128 MiB (iso/images/hijack_source.py:
sshd, ifupdown static 10.0.2.15/24 via 10.0.2.2 on QEMU's user networking), SSH forwarded to 127.0.0.1.

One Debian boot: ``--dry-run``, a wrong ``--image-sha256`` and the example playbook in check mode
(ansible/playbooks/provision.yml, two inventory names for the guest: two plans) leave its disk's tables
and boot areas as they were and its sshd answering; then the real takeover, through the example
playbook (issue 17: the same guest, not a second one), which ends in a reboot (QEMU exits: it runs
with -no-reboot). One Pine boot on the same disk and port, still at 128 MiB: the playbook (its
hijack task still waiting) sees the result record and its health check passes; SSH with the config's
key reads the hostname (carried), the users, a file with its mode, an OpenRC service started, the
carried static network and the result record; a second playbook run changes nothing. Both boots hold
the guest lock together. CI cost: one Debian boot (~60-120 s to SSH under TCG), the stream (~1-3
min), one Pine boot (~50 s), the playbook's three runs (~1 min): about 6 min, plus the images' first
builds (cached).

A later test boots the hijacked disk again at -m 64 (Pine's own kernel, iso/lib/kernel.py) and logs
in over SSH: one more Pine boot (~60 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness import free_port, running_disk, ssh  # noqa: E402
from hijack_run import MEMORY, SSH_TIMEOUT, run_hijack  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building, provisioning and QEMU need root")


@pytest.fixture(scope="module")
def hijacked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # the takeover through the example playbook (issue 17): the same guest, one takeover for both
    return run_hijack(tmp_path_factory.mktemp("hijack"), via_playbook=True)


def task_result(stdout: str, task: str) -> str:
    """The first line after a task's header in ansible-playbook's output ("changed: [host]")."""
    after = stdout.split(f"TASK [{task}]", 1)[1].splitlines()[1:]
    return next(ln for ln in after if ln.strip())


def recap(stdout: str) -> dict[str, str]:
    """PLAY RECAP lines: host -> its counters ("ok=4 changed=1 ...")."""
    tail = stdout.split("PLAY RECAP", 1)[-1]
    return {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1] for ln in tail.splitlines() if ":" in ln}


def test_dry_run_changes_nothing(hijacked: dict) -> None:
    dry = hijacked["dry"]
    assert dry.returncode == 0, dry.stderr
    assert "takeover steps" in dry.stdout and "POINT OF NO RETURN" in dry.stdout
    assert "10.0.2.15/24" in dry.stdout or "10.0.2.15" in dry.stdout, dry.stdout
    assert hijacked["dry_unchanged"]


def test_wrong_sha256_changes_nothing_and_the_host_answers(hijacked: dict) -> None:
    bad = hijacked["bad"]
    assert bad.returncode == 1
    assert "nothing was sent to the host" in bad.stderr
    assert hijacked["bad_unchanged"]
    assert hijacked["sshd_same"]


def test_hijack_reboots_into_the_provisioned_pine(hijacked: dict) -> None:
    assert hijacked["rc"] == 0, (
        f"{hijacked['stdout'][-3000:]}\n{hijacked['stderr']}\n--- Debian console\n{hijacked['debian_serial']}\n"
        f"--- Pine console\n{hijacked.get('pine_serial', '')}"
    )
    assert "takeover done" in hijacked["stdout"]  # pineinstall hijack's own report, shown by the playbook
    assert task_result(hijacked["stdout"], "Take the host over") == "changed: [debian-src]", hijacked["stdout"]
    got = hijacked["probe"]
    assert got["hostname"] == "debian-src"  # carried: the config sets none
    assert "(tester)" in got["tester"]
    assert (got["mode"], got["file"]) == ("444", "written by pineinstall hijack")
    assert "started" in got["hello"]
    assert got["os"] == "alpine"
    record = json.loads(got["record"])
    assert record["configHash"] and record["userConfigProvided"] is True
    print(f"Pine at {MEMORY}: MemAvailable {int(got['mem_avail_kib']) // 1024} MiB")


def test_check_mode_prints_one_plan_per_host_and_changes_nothing(hijacked: dict) -> None:
    check = hijacked["check"]
    assert check.returncode == 0, check.stdout + check.stderr
    plans = check.stdout.split("TASK [Say per host")[1].split("TASK [")[0]
    for host in ("plan-a", "plan-b"):
        assert f"ok: [{host}]" in plans
        assert " failed=0 " in recap(check.stdout)[host]
    assert plans.count("POINT OF NO RETURN") == 2 and plans.count("10.0.2.15") >= 2, plans
    assert hijacked["check_unchanged"]


def test_a_second_playbook_run_changes_nothing(hijacked: dict) -> None:
    if hijacked["rc"] != 0:
        pytest.skip("the takeover failed (see test_hijack_reboots_into_the_provisioned_pine)")
    second = hijacked["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already Pine: its result record says provisioned" in second.stdout
    assert " changed=0 " in recap(second.stdout)["debian-src"]


def test_hijacked_pine_has_the_carried_static_network(hijacked: dict) -> None:
    got = hijacked["probe"]
    # QEMU's DHCP would hand out the same address: the interfaces file and no DHCP client tell them apart
    assert got["addr"] == "10.0.2.15/24"
    assert got["route"].startswith("default via 10.0.2.2")
    assert got["static"] == "1" and got["dhcp_clients"] == ""


def test_hijacked_disk_boots_at_64_mib(hijacked: dict) -> None:
    """The Pine left behind, booted again at -m 64: SSH with the config's key; fails at once on a
    kernel panic or GRUB running out of memory."""
    if hijacked["rc"] != 0:
        pytest.skip("the takeover failed (see test_hijack_reboots_into_the_provisioned_pine)")
    port = free_port()
    with running_disk(hijacked["disk"], memory="64M", net_forwards={port: 22}) as guest:
        while guest.elapsed() < SSH_TIMEOUT:
            serial = guest.serial()
            if "kernel panic" in serial.lower() or (
                "out of memory" in serial.lower() and "linux version" not in serial.lower()
            ):
                pytest.fail(f"no boot at 64 MiB:\n{serial[-3000:]}")
            try:
                if ssh(port, hijacked["key"], "tester", "true", timeout=30).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"no SSH at 64 MiB within {SSH_TIMEOUT} s:\n{guest.serial()[-3000:]}")
        print(f"hijacked Pine at 64 MiB: SSH after {guest.elapsed():.0f} s")
