"""The VM tier on Pine: the real Pine image (iso/images/pine.py) installed by ``pineinstall install``
with a ``pine`` config, then booted with its own bootloader and read back over SSH with the config's
key. One boot per install, every fact read in that boot by one shell script:

- onto a disk-image file, booted by SeaBIOS;
- onto a loop device (``losetup -f``; the backing file is booted afterwards), booted by OVMF.

Read back: hostname, users and groups, the key, files and a directory with modes and owners, a link,
an OpenRC service the config added (running) and the SSH server (running), the static network in
effect (QEMU's user network moved to the example's 192.0.2.0/24: SSH reaches the guest only at its
static address), the kernel arguments (from the config, ``--append-karg`` and a BLS edit made after
the install with ``pineinstall.boot.apply_kargs``), ``/etc`` in the deployment, ``/var`` in the
stateroot, ``/usr`` read-only, the root grown to the disk. Figures (install, boot to SSH, memory in
use) are printed (``pytest -s``).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness import free_port, keypair, qemu_binary, running_disk, ssh, wait_for_ssh  # noqa: E402
from harness.pineconfig import pine_config  # noqa: E402

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib.disk import loop_device, mounted  # noqa: E402
from pineinstall.boot import apply_kargs  # noqa: E402
from pineinstall.install import main  # noqa: E402

SSH_TIMEOUT = 600  # TCG on 2 shared cores: 30-90 s seen, several minutes under load
USER = "tester"
DISK_BYTES = 1024 * 2**20
# QEMU's user network on the example's documentation prefix: the guest's static address is the only
# way in (a DHCP lease would be 192.0.2.15, where nothing is forwarded).
ADDRESS, GATEWAY, DNS = "192.0.2.10", "192.0.2.1", "192.0.2.53"
USER_NET = f"net=192.0.2.0/24,host={GATEWAY},dns={DNS}"
EDITED = "pine.test.edited=1"  # added by apply_kargs after the install (a BLS edit)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root (loop devices)")


def config(key: str) -> str:
    passwd = """      groups: [wheel, ops]
    - name: deploy
      uid: 1500
      shell: /bin/sh
  groups:
    - name: ops
"""
    return pine_config(key, SECTIONS, passwd=passwd)


SECTIONS = f"""storage:
  directories:
    - path: /var/lib/pine-test
      mode: 0750
      group:
        name: ops
  files:
    - path: /etc/pine-test.txt
      mode: 0444
      contents:
        inline: written by pineinstall
    - path: /etc/pine-test/secret
      mode: 0600
      user:
        name: tester
      contents:
        inline: for tester only
    - path: /var/lib/pine-test/data
      mode: 0640
      group:
        name: ops
      contents:
        inline: in the stateroot
  links:
    - path: /etc/pine-test/link
      target: /etc/pine-test.txt
network:
  hostname: pine-tier
  interfaces:
    - name: eth0
      address: {ADDRESS}/24
      gateway: {GATEWAY}
  dns:
    - {DNS}
kernel_arguments:
  should_exist:
    - pine.karg=from-config
"""


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keypair(tmp_path_factory.mktemp("key"))


@contextmanager
def detached_loop(backing: Path) -> Iterator[str]:
    """A loop device over backing with no partition nodes yet (as a fresh disk has none)."""
    dev = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    )
    name = dev.stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["partx", "-d", name], capture_output=True)
        subprocess.run(["losetup", "-d", name], check=True)


def install(tmp: Path, key: str, onto: str) -> tuple[Path, dict]:
    """pineinstall install onto a file or a loop device over one; returns (the disk file, result)."""
    image = ensure_pine_image()
    cfg = tmp / "node.bu"
    cfg.write_text(config(key))
    disk = tmp / "disk.img"
    with open(disk, "wb") as fh:
        fh.truncate(DISK_BYTES)
    args = [str(cfg), "--json", "--yes", "--image-file", str(image.path), "--append-karg", "pine.append=1"]
    out, err = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    if onto == "file":
        rc = main([str(disk), *args], stdout=out, stderr=err)
    else:
        with detached_loop(disk) as dev:
            rc = main([dev, *args], stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    result = json.loads(out.getvalue().splitlines()[-1])
    print(f"install onto a {onto}: {time.monotonic() - t0:.1f} s")
    with loop_device(disk) as dev, mounted(f"{dev}p3", tmp / "root") as root:
        result["karg_edit"] = apply_kargs(root, should_exist=[EDITED]).bootloader
    return disk, result


# One shell script, one NAME=VALUE line each: everything read back from the running system (as tester).
PROBE = r"""
PATH=/usr/sbin:/sbin:$PATH  # Dropbear gives a user /usr/bin:/bin; ip lives in /sbin
dep=$(ls -d /sysroot/ostree/deploy/pine/deploy/*.0 | head -n1)
stateroot=/sysroot/ostree/deploy/pine/var
echo "hostname=$(hostname)"
echo "id=$(id)"
echo "deploy=$(grep '^deploy:' /etc/passwd)"
echo "key=$(grep -v '^#' ~/.ssh/authorized_keys)"
echo "home=$(stat -c '%a %U' ~ ~/.ssh ~/.ssh/authorized_keys | tr '\n' ' ')"
echo "etc_file=$(stat -c '%a %U:%G' /etc/pine-test.txt) $(cat /etc/pine-test.txt)"
echo "secret=$(stat -c '%a %U:%G' /etc/pine-test/secret) $(cat /etc/pine-test/secret)"
echo "var_dir=$(stat -c '%a %U:%G' /var/lib/pine-test)"
echo "var_file=$(stat -c '%a %U:%G' /var/lib/pine-test/data) $(cat /var/lib/pine-test/data)"
echo "link=$(readlink /etc/pine-test/link)"
echo "hello=$(test -e /run/openrc/started/hello && test -d /proc/$(cat /run/hello.pid) && echo started)"
echo "sshd=$(test -e /run/openrc/started/sshd && pgrep dropbear >/dev/null && echo started)"
echo "addr=$(ip addr show dev eth0 | awk '$1=="inet"{print $2}')"
echo "route=$(ip route | awk '$1=="default"{print $3}')"
echo "dns=$(awk '$1=="nameserver"{print $2}' /etc/resolv.conf | tr '\n' ' ')"
echo "dhcp_client=$(pgrep -l 'udhcpc|dhcpcd' || echo none)"
echo "usr_ro=$(awk '$2=="/usr"{print $4}' /proc/mounts | cut -d, -f1)"
echo "etc_in_deployment=$(stat -c %d:%i /etc/pine-test.txt) $(stat -c %d:%i $dep/etc/pine-test.txt)"
echo "var_in_stateroot=$(stat -c %d:%i /var/lib/pine-test/data) $(stat -c %d:%i $stateroot/lib/pine-test/data)"
echo "ostree_booted=$(test -e /run/ostree-booted && echo yes)"
echo "cmdline=$(cat /proc/cmdline)"
echo "root_mib=$(df -m /sysroot | awk 'NR==2{print $2}')"
echo "mem_used_kib=$(free | awk '/^Mem:/{print $3}')"
"""


def boot_and_probe(disk: Path, private: Path, firmware: str) -> tuple[dict[str, str], float]:
    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    port = free_port()
    forwards: dict[int, int | str] = {port: f"{ADDRESS}:22"}
    with running_disk(
        disk, firmware=firmware, memory="512M", user_net=USER_NET, net_forwards=forwards
    ) as guest:
        seconds = wait_for_ssh(guest, port, private, USER, SSH_TIMEOUT)
        r = ssh(port, private, USER, f"sh -c {shlex.quote(PROBE)}")
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    print(f"boot to SSH ({firmware}, 512 MiB, TCG): {seconds} s; memory in use: "
          f"{int(got['mem_used_kib']) // 1024} MiB")  # fmt: skip
    return got, seconds


def check(got: dict[str, str], public: str) -> None:
    assert got["hostname"] == "pine-tier"
    assert "(tester)" in got["id"] and "(wheel)" in got["id"] and "(ops)" in got["id"], got["id"]
    # Alpine's login.defs has no USERGROUPS_ENAB: a new user's primary group is users (100)
    assert got["deploy"] == "deploy:x:1500:100::/home/deploy:/bin/sh", got["deploy"]
    assert got["key"] == public
    home = got["home"].split()
    assert home[1::2] == ["tester"] * 3 and home[2:6:2] == ["700", "600"], got["home"]
    assert got["etc_file"] == "444 root:root written by pineinstall"
    assert got["secret"] == "600 tester:root for tester only"
    assert got["var_dir"] == "750 root:ops"
    assert got["var_file"] == "640 root:ops in the stateroot"
    assert got["link"] == "/etc/pine-test.txt"
    assert got["hello"] == "started" and got["sshd"] == "started", (got["hello"], got["sshd"])
    # the static network, in effect (SSH came in through it) and nothing else configuring eth0
    assert (got["addr"], got["route"], got["dns"].split()) == (f"{ADDRESS}/24", GATEWAY, [DNS])
    assert got["dhcp_client"] == "none", got["dhcp_client"]
    assert got["usr_ro"] == "ro"
    etc, deployment_etc = got["etc_in_deployment"].split()
    assert etc == deployment_etc  # /etc is the booted deployment's
    var, stateroot_var = got["var_in_stateroot"].split()
    assert var == stateroot_var  # /var is the stateroot's
    assert got["ostree_booted"] == "yes"
    cmdline = got["cmdline"].split()
    assert any(a.startswith("ostree=/ostree/boot.") for a in cmdline)
    assert {"pine.karg=from-config", "pine.append=1", EDITED} <= set(cmdline), cmdline
    assert int(got["root_mib"]) > 800  # the 320 MiB image's root grown to the 1 GiB disk


@pytest.mark.parametrize(("onto", "firmware"), [("file", "bios"), ("loop", "uefi")])
def test_install_boot_read_back_over_ssh(
    onto: str, firmware: str, key: tuple[Path, str], tmp_path: Path
) -> None:
    private, public = key
    disk, result = install(tmp_path, public, onto)
    assert result["target"]["kind"] == "ostree"
    assert result["karg_edit"] == "bls"
    got, _seconds = boot_and_probe(disk, private, firmware)
    check(got, public)
