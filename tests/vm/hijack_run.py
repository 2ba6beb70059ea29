"""One run of ``pineinstall hijack`` against the small Debian guest (iso/images/hijack_source.py), shared
by tests/vm/test_hijack_takeover.py and bench/hijack: the guest booted with SSH forwarded to 127.0.0.1, a dry run,
a wrong sha256, the takeover, the reboot into Pine on the same disk and port (both boots under one guest
lock), and what SSH reads back from Pine with the config's key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import free_port, keypair, running_disk, ssh, wait_for_ssh
from harness.pineconfig import pine_config
from harness.qemu import guest_lock

from iso.images.hijack_source import ensure_hijack_source
from iso.images.pine import ensure_pine_image
from iso.lib.disk import copy_sparse

REPO = Path(__file__).resolve().parents[2]

SSH_TIMEOUT = 600  # TCG on 2 shared cores
HIJACK_TIMEOUT = 1500
MEMORY = "128M"
# the disk areas a takeover would write first and the running Debian never writes: the protective
# MBR, the GPT, GRUB's core.img (BIOS boot partition), the ESP; and the backup GPT at the end
AREAS = ((0, 65 << 20), (-(1 << 20), 1 << 20))


def config(key: str) -> str:
    return pine_config(
        key,
        """storage:
  files:
    - path: /etc/pine-test.txt
      mode: 0444
      contents:
        inline: written by pineinstall hijack
""",
    )


def areas_sha256(disk: Path) -> str:
    h = hashlib.sha256()
    size = disk.stat().st_size
    with open(disk, "rb") as fh:
        for offset, length in AREAS:
            fh.seek(offset % size)
            h.update(fh.read(length))
    return h.hexdigest()


def hijack(*args: object) -> list[str]:
    return [sys.executable, "-m", "pineinstall", "hijack", *map(str, args)]


PROBE = r"""
PATH=/usr/sbin:/sbin:$PATH  # Dropbear gives a user /usr/bin:/bin; ip lives in /sbin
echo "hostname=$(hostname)"
echo "tester=$(id tester)"
echo "mode=$(stat -c %a /etc/pine-test.txt)"
echo "file=$(cat /etc/pine-test.txt)"
echo "hello=$(test -e /run/openrc/started/hello && test -d /proc/$(cat /run/hello.pid) && echo started)"
echo "addr=$(ip addr show dev ens3 | awk '$1=="inet"{print $2}')"
echo "route=$(ip route | grep '^default')"
echo "static=$(grep -c '^iface ens3 inet static' /etc/network/interfaces)"
echo "dhcp_clients=$(pgrep -x udhcpc; pgrep -x dhcpcd)"
echo "os=$(. /etc/os-release; echo $ID)"
echo "mem_avail_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)"
"""


def playbook(
    tmp: Path, port: int, key: Path, cfg: Path, image: Path, digest: str, hosts: tuple[str, ...] = ("debian-src",)
) -> tuple[list[str], dict]:
    """ansible-playbook of ansible/playbooks/provision.yml with an inventory of this guest under each
    name in hosts (the config as the template: it has no per-host variables), and its environment."""
    import json

    bin_dir = Path(sys.executable).parent
    colls = tmp / "collections" / "ansible_collections" / "pine"
    colls.mkdir(parents=True, exist_ok=True)
    if not (colls / "provision").exists():
        (colls / "provision").symlink_to(REPO / "ansible")
    inventory = tmp / f"inventory-{len(hosts)}.json"
    inventory.write_text(json.dumps({"pine_hosts": {
        "hosts": {name: {"ansible_host": "127.0.0.1", "ansible_port": port} for name in hosts},
        "vars": {
            "ansible_user": "root", "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "pine_template": str(cfg), "pine_image_file": str(image), "pine_image_sha256": digest,
            "pine_build_dir": str(tmp / "build"), "pine_health_timeout": 1200,
            "pine_pineinstall": str(bin_dir / "pineinstall"),
            "pine_takeover": "ram",  # the RAM pivot's test: auto takes the one-shot boot at 128 MiB
        },
    }}))  # fmt: skip
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(tmp / "collections"),
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    argv = [
        str(bin_dir / "ansible-playbook"),
        "-i",
        str(inventory),
        str(REPO / "ansible" / "playbooks" / "provision.yml"),
    ]
    return argv, env


@dataclass(frozen=True)
class Setup:
    """What a takeover run starts from: a fresh copy of the Debian guest's disk, the key that logs in to
    it, the config (with the key Pine will take), the Pine image and its sha256, a free port."""

    image: Path
    disk: Path
    src_key: Path
    key: Path
    cfg: Path
    digest: str
    port: int


def setup(tmp: Path) -> Setup:
    source = ensure_hijack_source()
    image = ensure_pine_image()
    disk = copy_sparse(source.path, tmp / "debian.img")
    src_key = tmp / "source_key"
    shutil.copy(source.directory / "id_ed25519", src_key)
    src_key.chmod(0o600)
    key, public = keypair(tmp)
    cfg = tmp / "node.bu"
    cfg.write_text(config(public))
    digest = hashlib.sha256(image.path.read_bytes()).hexdigest()
    return Setup(image.path, disk, src_key, key, cfg, digest, free_port())


def run_hijack(tmp: Path, memory: str = MEMORY, via_playbook: bool = False) -> dict:
    """The whole run (two boots under one guest lock): what the test and bench/hijack check and print."""
    s = setup(tmp)
    image_path, disk, src_key, key, cfg, digest = s.image, s.disk, s.src_key, s.key, s.cfg, s.digest
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    port = s.port
    common = ("root@127.0.0.1", cfg, "--port", port, "--identity", src_key, "--image-file", image_path)
    out: dict = {"disk": disk, "key": key, "port": port}
    with guest_lock():
        with running_disk(disk, memory=memory, net_forwards={port: 22}, locked=False) as guest:
            out["debian_boot_s"] = wait_for_ssh(guest, port, src_key, "root", SSH_TIMEOUT)
            before = areas_sha256(disk)
            pid = ssh(port, src_key, "root", "systemctl show -p MainPID --value ssh").stdout.strip()
            t0 = time.monotonic()
            dry = subprocess.run(hijack(*common, "--image-sha256", digest, "--dry-run"), capture_output=True,
                                 text=True, timeout=600)  # fmt: skip
            out["dry_run_s"] = round(time.monotonic() - t0, 1)
            out["dry"] = dry
            out["dry_unchanged"] = areas_sha256(disk) == before
            bad = subprocess.run(hijack(*common, "--image-sha256", wrong, "--yes"), capture_output=True,
                                 text=True, timeout=600)  # fmt: skip
            out["bad"] = bad
            out["bad_unchanged"] = areas_sha256(disk) == before
            after = ssh(
                port, src_key, "root", "systemctl show -p MainPID --value ssh; ls -d /run/pine-hijack || true"
            )
            out["sshd_same"] = after.stdout.split() == [pid] and after.returncode == 0
            if via_playbook:  # check mode: one plan per inventory host (two names for this guest)
                argv, env = playbook(tmp, port, src_key, cfg, image_path, digest, hosts=("plan-a", "plan-b"))
                out["check"] = subprocess.run([*argv, "--check"], env=env, cwd=tmp, capture_output=True,
                                              text=True, stdin=subprocess.DEVNULL, timeout=900)  # fmt: skip
                out["check_unchanged"] = areas_sha256(disk) == before
            log = open(tmp / "hijack.log", "w")  # noqa: SIM115 (the command runs across both boots)
            t0 = time.monotonic()
            if via_playbook:  # issue 17: the same takeover through the example playbook
                argv, env = playbook(tmp, port, src_key, cfg, image_path, digest)
                out["playbook"] = (argv, env)
            else:
                argv, env = hijack(*common, "--image-sha256", digest, "--yes", "--reboot-timeout", 1200,
                                   "--takeover", "ram"), None
            run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True, env=env, cwd=tmp)
            while guest.running() and run.poll() is None and time.monotonic() - t0 < HIJACK_TIMEOUT:
                time.sleep(1)
            out["to_reboot_s"] = round(time.monotonic() - t0, 1)
            out["debian_serial"] = guest.serial()[-3000:]
        if run.poll() is None:
            with running_disk(disk, memory=memory, net_forwards={port: 22}, locked=False) as pine:
                try:
                    stdout, _ = run.communicate(timeout=HIJACK_TIMEOUT)
                except subprocess.TimeoutExpired:
                    run.kill()
                    stdout, _ = run.communicate()
                out["pine_serial"] = pine.serial()[-3000:]
                if run.returncode == 0:
                    got = ssh(port, key, "tester", f"sh -c {shlex.quote(PROBE)}")
                    out["probe"] = dict(ln.split("=", 1) for ln in got.stdout.splitlines() if "=" in ln)
                    out["probe"]["record"] = ssh(port, src_key, "root", "cat /etc/.pine-result.json").stdout
                    if via_playbook:  # a second run: the host is Pine already, nothing changes
                        argv, env = out["playbook"]
                        out["second"] = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True,
                                                       stdin=subprocess.DEVNULL, timeout=600)  # fmt: skip
        else:
            stdout, _ = run.communicate()
        out["total_s"] = round(time.monotonic() - t0, 1)
    log.close()
    out["rc"], out["stdout"], out["stderr"] = run.returncode, stdout, (tmp / "hijack.log").read_text()
    print(f"\nhijack at {memory}: Debian boot to SSH {out['debian_boot_s']} s, dry run {out['dry_run_s']} s, "
          f"command to reboot {out['to_reboot_s']} s, command to Pine SSH {out['total_s']} s\n{stdout}")  # fmt: skip
    return out


COMMAND_TIMEOUT = 1800
HOST_STATE = (
    "ls -d /boot/pine-hijack 2>&1; ls /boot/grub/custom.cfg 2>&1; grub-editenv /boot/grub/grubenv list; "
    "cat /proc/sys/kernel/random/boot_id"
)


def cut_the_write_once(proc: subprocess.Popen, state: dict) -> None:
    """Kill the command's write session (its ``ssh ... stage2.sh write``) once, 3 s after it was seen:
    a network cut after the point of no return."""
    if state.get("cut"):
        return
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):  # the command's children (ps is not on every machine)
        with contextlib.suppress(OSError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == proc.pid and b"stage2.sh write" in (stat.parent / "cmdline").read_bytes():
                pids.append(int(stat.parent.name))
    if not pids:
        return
    state.setdefault("seen", time.monotonic())
    if time.monotonic() - state["seen"] >= 3:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        state["cut"] = time.monotonic()


def follow(
    argv: list[str], env: dict, disk: Path, port: int, stack: contextlib.ExitStack, guest: Any, log: Path,
    memory: str = MEMORY, cut_write: bool = False,
) -> tuple[dict, Any]:
    """Run the command; each time the guest reboots (QEMU exits), boot the disk again. Returns the
    command's result, the boots seen (seconds each, serial tail) and the guest still running.
    cut_write: the write session is killed once on the controller (cut_the_write_once)."""
    boots = []
    cut: dict = {}
    t0 = time.monotonic()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        while proc.poll() is None and time.monotonic() - t0 < COMMAND_TIMEOUT:
            if cut_write:
                cut_the_write_once(proc, cut)
            if not guest.running():
                boots.append({"s": round(guest.elapsed(), 1), "serial": guest.serial()[-4000:]})
                stack.close()
                guest = stack.enter_context(
                    running_disk(disk, memory=memory, net_forwards={port: 22}, locked=False)
                )
            time.sleep(1)
        if proc.poll() is None:
            proc.kill()
        stdout, _ = proc.communicate()
    return {"rc": proc.returncode, "stdout": stdout, "stderr": log.read_text(), "boots": boots,
            "s": round(time.monotonic() - t0, 1), "cut": "cut" in cut}, guest  # fmt: skip


def run_boot_once(tmp: Path, memory: str = MEMORY, way_back: bool = True, cut_write: bool = False) -> dict:
    """``--takeover boot-once`` from a fresh Debian guest (QEMU restarted at each reboot, every boot under
    one guest lock): first, with ``way_back``, a run whose installer reboots at once (the host must come
    back unchanged), then the takeover (with ``cut_write``, its write session cut once); what
    tests/vm/test_hijack_oneshot.py and bench/hijack read."""
    s = setup(tmp)
    disk, src_key, key, port = s.disk, s.src_key, s.key, s.port
    argv = hijack("root@127.0.0.1", s.cfg, "--port", port, "--identity", src_key, "--image-file", s.image,
                  "--image-sha256", s.digest, "--takeover", "boot-once", "--yes", "--reboot-timeout", 900)  # fmt: skip
    out: dict = {"key": key, "port": port}
    with guest_lock(), contextlib.ExitStack() as stack:
        guest = stack.enter_context(running_disk(disk, memory=memory, net_forwards={port: 22}, locked=False))
        out["debian_boot_s"] = wait_for_ssh(guest, port, src_key, "root", SSH_TIMEOUT)
        out["before_areas"] = areas_sha256(disk)
        out["before"] = ssh(port, src_key, "root", HOST_STATE).stdout
        out["mem"] = ssh(port, src_key, "root", "grep -E 'MemTotal|MemAvailable' /proc/meminfo").stdout
        if way_back:
            env = {**os.environ, "PINE_HIJACK_TEST_FAIL_INSTALLER": "1"}
            out["fail"], guest = follow(argv, env, disk, port, stack, guest, tmp / "fail.log", memory)
            out["after_areas"] = areas_sha256(disk)
            out["after"] = ssh(port, src_key, "root", HOST_STATE).stdout
        env = {k: v for k, v in os.environ.items() if k != "PINE_HIJACK_TEST_FAIL_INSTALLER"}
        out["take"], guest = follow(argv, env, disk, port, stack, guest, tmp / "take.log", memory, cut_write)
        if out["take"]["rc"] == 0:
            got = ssh(port, key, "tester", f"sh -c {shlex.quote(PROBE)}")
            out["probe"] = dict(ln.split("=", 1) for ln in got.stdout.splitlines() if "=" in ln)
            out["record"] = ssh(port, src_key, "root", "cat /etc/.pine-result.json").stdout
        out["last_serial"] = guest.serial()[-3000:]
    for name in ("fail", "take")[0 if way_back else 1 :]:
        r = out[name]
        print(f"\n{name}: rc {r['rc']} in {r['s']} s, boots {[b['s'] for b in r['boots']]}\n{r['stdout']}\n"
              f"{r['stderr'][-1500:]}")  # fmt: skip
    print(f"Debian boot to SSH {out['debian_boot_s']} s; {out['mem']}")
    return out
