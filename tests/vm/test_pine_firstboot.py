"""First boot on the real Pine (iso/images/pine.py): the baked ``/usr/bin/pineinstall`` (the
self-contained executable) run by the OpenRC service ``pine-firstboot`` in the boot runlevel.

- fw_cfg: the bare image booted with a pine config in ``opt/com.coreos/config``; read back over SSH with
  the config's key (user, key, file with its mode, an OpenRC service started, hostname, the static
  network in effect on that same boot); then the same disk booted again: nothing changes (marker,
  result record, the file's mtime).
- 64 MiB: an installed Pine booted with ``-m 64``, its first boot fetching a second config from the
  kernel command line's ``pine.config.url=`` (a temporary DHCP lease, then the network starts; a
  temporary swap file for the agent on a box this small), to SSH.

Guest boots: 3 (BIOS; ~50-70 s each under TCG: the fw_cfg test took 120 s for its two). 64 MiB fits
since Pine boots its own kernel (iso/lib/kernel.py: ~43 MiB left by the kernel, where Alpine's
linux-virt left 18 MiB and panicked). Figures (boot-to-SSH, the time first boot takes, memory in use)
are printed (pytest -s).
"""

from __future__ import annotations

import functools
import io
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness import free_port, keypair, running_disk, ssh, wait_for_ssh  # noqa: E402
from harness.pineconfig import pine_config  # noqa: E402

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib.disk import copy_sparse  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building the image needs root")

SSH_TIMEOUT = 600  # TCG on 2 shared cores
FW_CFG = "opt/com.coreos/config"
GUEST_HOST = "10.0.2.2"  # the host's 127.0.0.1 as QEMU's user network shows it to the guest


def transpile(butane: str, tmp: Path) -> bytes:
    """The Ignition JSON of a pine config (pine-transpile), as a machine's fw_cfg or URL carries it."""
    src = tmp / "config.bu"
    src.write_text(butane)
    r = subprocess.run(
        [sys.executable, "-m", "butane_like", "--strict", str(src)],
        capture_output=True,
        cwd=REPO,
        check=False,
    )
    assert r.returncode == 0, r.stderr.decode()
    json.loads(r.stdout)
    return r.stdout


def fw_cfg_config(key: str) -> str:
    passwd = f"""    - name: root
      ssh_authorized_keys: [{key}]
"""
    sections = """storage:
  files:
    - path: /etc/pine-firstboot.txt
      mode: 0640
      contents:
        inline: written on the first boot
network:
  hostname: pine-fwcfg
  interfaces:
    - name: eth0
      address: 10.0.2.15/24
      gateway: 10.0.2.2
  dns: [10.0.2.3]
"""
    return pine_config(key, sections, passwd=passwd)


# Everything read back, one NAME=VALUE line each (run as root).
PROBE = r"""
echo "hostname=$(hostname)"
echo "id=$(id tester)"
echo "key=$(grep -v '^#' /home/tester/.ssh/authorized_keys)"
echo "mode=$(stat -c %a /etc/pine-firstboot.txt)"
echo "file=$(cat /etc/pine-firstboot.txt)"
echo "file_mtime=$(stat -c %Y /etc/pine-firstboot.txt)"
echo "hello=$(test -e /run/openrc/started/hello && test -d /proc/$(cat /run/hello.pid) && echo started)"
echo "sshd=$(test -e /run/openrc/started/sshd && echo started)"
echo "firstboot=$(test -e /run/openrc/started/pine-firstboot && echo started)"
echo "addr=$(ip -4 -o addr show dev eth0 | awk '{print $4}')"
echo "route=$(ip route | awk '/^default/{print $3}')"
echo "dhcp_clients=$(pgrep -x udhcpc; pgrep -x dhcpcd)"
echo "interfaces=$(grep -c 'address 10.0.2.15' /etc/network/interfaces)"
echo "marker=$(cat /etc/.pine-firstboot-done)"
echo "result_sha=$(sha256sum /etc/.pine-result.json | cut -d' ' -f1)"
echo "result=$(tr -d '\n' < /etc/.pine-result.json)"
echo "fw_cfg_builtin=$(grep -c '/qemu_fw_cfg.ko$' /lib/modules/$(uname -r)/modules.builtin)"
echo "fw_cfg_entry=$(test -e /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw && echo present)"
echo "kernel=$(uname -r)"
echo "var_tmp_left=$(ls -A /var/tmp | grep -c .)"
echo "mem_total_kib=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)"
echo "mem_used_kib=$(free | awk '/^Mem:/{print $3}')"
echo "mem_available_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)"
"""


def probe(port: int, key: Path) -> dict[str, str]:
    r = ssh(port, key, "root", f"sh -c {shlex.quote(PROBE)}")
    assert r.returncode == 0, r.stderr
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def firstboot_seconds(result: str) -> float:
    return float(json.loads(result)["firstboot"]["seconds"])


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keypair(tmp_path_factory.mktemp("key"))


def test_fw_cfg_first_boot_then_a_second_boot_changes_nothing(tmp_path: Path, key: tuple[Path, str]) -> None:
    private, public = key
    image = ensure_pine_image()
    disk = copy_sparse(image.path, tmp_path / "disk.img")
    cfg = tmp_path / "config.ign"
    cfg.write_bytes(transpile(fw_cfg_config(public), tmp_path))
    port = free_port()
    boots = []
    for _ in range(2):
        with running_disk(disk, memory="512M", net_forwards={port: 22}, fw_cfg={FW_CFG: cfg}) as guest:
            try:
                seconds = wait_for_ssh(guest, port, private, "tester", SSH_TIMEOUT)
                got = probe(port, private)
                assert ssh(port, private, "root", "sync").returncode == 0  # then killed: the disk is clean
            finally:
                console = guest.serial()  # read while the guest runs: it is gone after the block
                (tmp_path / f"serial-{len(boots) + 1}.log").write_text(console)
        boots.append((seconds, got, console))
    (s1, first, console1), (s2, second, console2) = boots
    print(
        f"fw_cfg first boot: to SSH {s1} s (first boot itself {firstboot_seconds(first['result'])} s), "
        f"second boot {s2} s; memory in use {int(first['mem_used_kib']) // 1024} MiB of "
        f"{int(first['mem_total_kib']) // 1024} MiB"
    )
    assert first["hostname"] == "pine-fwcfg"
    assert "(tester)" in first["id"]
    assert first["key"] == public
    assert (first["mode"], first["file"]) == ("640", "written on the first boot")
    assert first["hello"] == "started", first["hello"]
    assert first["sshd"] == "started" and first["firstboot"] == "started"
    # the config's static network is what the networking service brought up on this same boot
    assert (first["addr"], first["route"], first["interfaces"]) == ("10.0.2.15/24", "10.0.2.2", "1")
    assert first["dhcp_clients"] == "", "a DHCP client runs: the image's DHCP config was used"
    record = json.loads(first["result"])["firstboot"]
    assert record["ok"] is True and record["provider"] == "fwcfg"
    assert record["hostname"] == "pine-fwcfg" and record["left_to_openrc"] == ["hello"]
    assert first["marker"].endswith(" fwcfg")
    # Pine's own kernel (iso/lib/kernel.py): fw_cfg built in, no module to load
    assert first["kernel"].endswith("-pine") and first["fw_cfg_builtin"] == "1", first["kernel"]
    assert first["fw_cfg_entry"] == "present"
    assert first["var_tmp_left"] == "0", "the executable left its unpacked files in /var/tmp"
    assert "Pine first boot: provisioning" in console1
    # the second boot: the service sees its marker and changes nothing
    assert "Pine first boot already done" in console2
    for name in ("marker", "result_sha", "file_mtime", "hostname", "addr", "key", "hello"):
        assert second[name] == first[name], name


def installed_config(key: str) -> str:
    return f"""variant: pine
version: 1.0.0
passwd:
  users:
    - name: root
      ssh_authorized_keys: [{key}]
"""


URL_CONFIG = """variant: pine
version: 1.0.0
storage:
  files:
    - path: /etc/pine-from-url.txt
      mode: 0600
      contents:
        inline: fetched at first boot
network:
  hostname: pine-small
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def config_server(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, www
    httpd.shutdown()
    httpd.server_close()


def test_installed_pine_boots_to_ssh_in_64_mib_first_boot_included(
    tmp_path: Path, key: tuple[Path, str], config_server: tuple[ThreadingHTTPServer, Path]
) -> None:
    from pineinstall.install import main

    private, public = key
    httpd, www = config_server
    (www / "small.ign").write_bytes(transpile(URL_CONFIG, tmp_path))
    url = f"http://{GUEST_HOST}:{httpd.server_address[1]}/small.ign"
    image = ensure_pine_image()
    cfg = tmp_path / "node.bu"
    cfg.write_text(installed_config(public))
    disk = tmp_path / "installed.img"
    argv = [os.fspath(disk), os.fspath(cfg), "--yes", "--image-file", os.fspath(image.path), "--size", "512M"]
    argv += ["--append-karg", f"pine.config.url={url}"]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 0, err.getvalue()
    port = free_port()
    with running_disk(disk, memory="64M", net_forwards={port: 22}) as guest:
        try:
            seconds = wait_for_ssh(guest, port, private, "root", SSH_TIMEOUT)
            r = ssh(port, private, "root", f"sh -c {shlex.quote(PROBE_SMALL)}")
        finally:
            (tmp_path / "serial.log").write_text(guest.serial())
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    record = json.loads(got["result"])["firstboot"]
    print(
        f"64 MiB: boot to SSH {seconds} s (first boot itself {record['seconds']} s); MemTotal "
        f"{int(got['mem_total_kib']) // 1024} MiB, in use {int(got['mem_used_kib']) // 1024} MiB, "
        f"available {int(got['mem_available_kib']) // 1024} MiB"
    )
    assert record["ok"] is True and record["provider"] == "cmdline"
    assert (got["file"], got["mode"], got["hostname"]) == ("fetched at first boot", "600", "pine-small")
    assert got["sshd"] == "started"
    # the agent's unpacked files and its temporary swap file are gone, the swap is off
    assert (got["var_tmp_left"], got["swap_kib"]) == ("0", "0")


PROBE_SMALL = r"""
echo "hostname=$(hostname)"
echo "file=$(cat /etc/pine-from-url.txt)"
echo "mode=$(stat -c %a /etc/pine-from-url.txt)"
echo "sshd=$(test -e /run/openrc/started/sshd && echo started)"
echo "result=$(tr -d '\n' < /etc/.pine-result.json)"
echo "var_tmp_left=$(ls -A /var/tmp | grep -c .)"
echo "swap_kib=$(awk '/^SwapTotal:/{print $2}' /proc/meminfo)"
echo "mem_total_kib=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)"
echo "mem_used_kib=$(free | awk '/^Mem:/{print $3}')"
echo "mem_available_kib=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)"
"""
