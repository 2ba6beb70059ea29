"""Check mode of the example playbook against two inventory hosts that are real sshd's on 127.0.0.1
(Debian's /usr/sbin/sshd, started here on two ports with their own host keys and one client key):
each host's `pineinstall hijack --dry-run` plan is printed, told apart by its own host key, and
nothing is written. This machine is the target both times (read-only probe)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _fleet_helpers import BIN, COLLECTION, ansible, recap

pytestmark = [pytest.mark.real_processes, pytest.mark.slow]

# Another build of pineinstall can be named here (the controller's is the default).
PINEINSTALL = os.environ.get("PINE_FLEET_PINEINSTALL", str(BIN / "pineinstall"))


def hijack_missing() -> str | None:
    """Why the test cannot run here, or None."""
    if os.geteuid() != 0:
        return "sshd lets root in only when started as root"
    missing = [t for t in ("/usr/sbin/sshd", "ssh", "ssh-keygen") if not shutil.which(t)]
    if missing:
        return f"not installed: {', '.join(missing)}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sshd(d: Path, client_pub: Path) -> tuple[subprocess.Popen[bytes], int]:
    """An sshd on 127.0.0.1 with its own host key that lets root in with the client key only."""
    d.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "host"], check=True)
    (d / "authorized_keys").write_bytes(client_pub.read_bytes())
    (d / "sshd_config").write_text(
        f"HostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"PidFile {d / 'sshd.pid'}\n"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config"), "-p", str(port), "-o", "ListenAddress=127.0.0.1"]
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen(argv, stderr=log)
    deadline = time.monotonic() + 15
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
        time.sleep(0.1)


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[dict[str, tuple[int, str]]]:
    """host -> (port, its host key's SHA256 fingerprint); the client key is tmp_path/id."""
    why = hijack_missing()
    if why:
        pytest.skip(why)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "id"], check=True)
    procs, hosts = [], {}
    try:
        for name in ("pine1", "pine2"):
            proc, port = start_sshd(tmp_path / f"sshd-{name}", tmp_path / "id.pub")
            procs.append(proc)
            fp = subprocess.run(["ssh-keygen", "-l", "-f", tmp_path / f"sshd-{name}" / "host.pub"],
                                capture_output=True, text=True, check=True).stdout.split()[1]
            hosts[name] = (port, fp)
        yield hosts
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_check_mode_prints_a_plan_per_host(two_hosts: dict[str, tuple[int, str]], tmp_path: Path) -> None:
    image = tmp_path / "pine.img"
    image.write_bytes(os.urandom(1 << 20))
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    host_vars = {
        "ansible_host": "127.0.0.1",
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(tmp_path / "id"),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"pine_hosts": {
        "hosts": {name: {**host_vars, "ansible_port": port} for name, (port, _fp) in two_hosts.items()},
        "vars": {
            "pine_admin_keys": [(tmp_path / "id.pub").read_text().strip()],
            "pine_image_file": str(image),
            "pine_image_sha256": digest,
            "pine_build_dir": str(tmp_path / "build"),
            "pine_pineinstall": PINEINSTALL,
        },
    }}))
    proc = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(COLLECTION / "playbooks" / "provision.yml"),
                   "--check", check=False)
    out = proc.stdout
    assert set(recap(out)) == {"pine1", "pine2"}, out + proc.stderr
    for _port, fp in two_hosts.values():  # each host's own plan, told apart by its host key
        assert f"host key: {fp}" in out, out
    assert out.count(f"sha256 {digest} (verified)") == 2, out
    assert not (tmp_path / "build").exists()  # check mode writes no config
    if os.path.exists("/.dockerenv"):  # a container: every plan says REFUSED and the task fails
        assert out.count("REFUSED") >= 2 and proc.returncode == 2
    else:
        assert proc.returncode == 0, out
