"""``pineinstall hijack --dry-run`` against a real sshd on 127.0.0.1: this Debian 12 host is the target;
and the takeover's stream through a real SSH session into stage 2 on a loop device.

The sshd is Debian's (openssh-server), started by the test with its own host key, its own authorized
key and its own config, killed after. The plan must show the host's real facts, and the files the
probe reads hash the same before and after. A wrong --image-sha256 stops before any connection.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pineinstall.hijack import probe

from .httpserver import Answer, serve

pytestmark = pytest.mark.needs("/usr/sbin/sshd", "ssh", "ssh-keygen", "ip", "lsblk")

CONFIG = {
    "ignition": {"version": "3.4.0"},
    "storage": {
        "files": [{"path": "/etc/hostname", "overwrite": True, "contents": {"source": "data:,pine1%0A"}}]
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_sshd(d: Path, extra: str = "") -> Iterator[tuple[int, Path]]:
    """(port, client key) of an sshd that lets root in with that key only; extra: more sshd_config."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "host"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "id"], check=True)
    (d / "authorized_keys").write_bytes((d / "id.pub").read_bytes())
    (d / "sshd_config").write_text(
        f"HostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\nStrictModes no\nUsePAM no\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"PidFile {d / 'sshd.pid'}\n{extra}"
    )
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    port = free_port()
    argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config"), "-p", str(port),
            "-o", "ListenAddress=127.0.0.1"]  # fmt: skip
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen(argv, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, (d / "sshd.log").read_text()
            time.sleep(0.1)
        yield port, d / "id"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as found:
        yield found


def pine(*args: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pineinstall", "hijack", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def probed_files() -> dict[str, str]:
    """sha256 of every file the probe may read (its path list, globs expanded), plus the by-id links."""
    paths = [
        p
        for line in probe.SCRIPT.splitlines()
        for p in line.split()
        if p.startswith(("/etc/", "/var/", "/run/"))
    ]
    paths += [os.path.expanduser("~/.ssh/authorized_keys"), os.path.expanduser("~/.ssh/authorized_keys2")]
    out = {}
    for pattern in paths:
        for path in glob.glob(pattern.rstrip(";\\")):
            if os.path.isfile(path):
                out[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    out["by-id"] = str(sorted(glob.glob("/dev/disk/by-id/*")))
    return out


def inputs(tmp_path: Path) -> tuple[Path, Path, str]:
    image = tmp_path / "pine.img"
    image.write_bytes(os.urandom(1 << 20))
    config = tmp_path / "config.ign"
    config.write_text(json.dumps(CONFIG))
    return image, config, hashlib.sha256(image.read_bytes()).hexdigest()


def test_dry_run_prints_the_hosts_real_facts_and_changes_nothing(
    sshd: tuple[int, Path], tmp_path: Path
) -> None:
    port, key = sshd
    image, config, digest = inputs(tmp_path)
    before = probed_files()
    t0 = time.monotonic()
    r = pine("root@127.0.0.1", config, "--image-file", image, "--image-sha256", digest, "--port", port,
             "--identity", key, "--dry-run")  # fmt: skip
    elapsed = time.monotonic() - t0
    assert probed_files() == before
    out = r.stdout
    os_release = Path("/etc/os-release").read_text().splitlines()
    pretty = next(line.split("=", 1)[1].strip('"') for line in os_release if line.startswith("PRETTY_NAME="))
    assert f"system: {pretty}" in out, r.stderr
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total = next(int(line.split()[1]) // 1024 for line in meminfo if line.startswith("MemTotal:"))
    assert f"RAM: {total} MiB total" in out
    assert f"sha256 {digest} (verified)" in out
    assert "host key: SHA256:" in out and "(ED25519)" in out
    assert "login user: root" in out
    assert "overridden: /etc/hostname: the config's own wins" in out
    root = json.loads(
        subprocess.run(["lsblk", "-J", "-o", "PATH,MOUNTPOINT,TYPE"], capture_output=True, text=True).stdout
    )
    gateway = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, text=True).stdout)
    for route in gateway:
        if route.get("dst") == "default":
            assert f"via {route['gateway']}" in out
    disks = [d["path"] for d in root["blockdevices"] if d["type"] == "disk" and "/" in json.dumps(d)]
    assert any(f"boot disk: {p}," in out for p in disks) or "boot disk: not found" in out
    if "boot disk: /dev/vda," in out and os.path.exists("/sys/block/vda/device/driver"):  # virtio-blk here
        assert "    drivers: virtio_blk on virtio, virtio-pci" in out
    assert "its kernel's drivers: read after the provisioning" in out  # random bytes: no partitions
    if os.path.exists("/.dockerenv"):  # this machine is a container: the probe must say so and refuse
        assert "container: docker" in out
    # the sshd runs on this machine: refused as the controller itself (its boot id), whatever else
    assert r.returncode == 1, r.stderr
    assert "REFUSED" in out and "the host is this machine itself (the same boot id)" in out
    assert elapsed < 60


def run_against_silent_port(config: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """``hijack --dry-run`` aimed at a port that records any connection attempt: the test fails if the
    command connected."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        r = pine("root@127.0.0.1", config, *args, "--port", listener.getsockname()[1], "--dry-run")
        with pytest.raises(socket.timeout):
            listener.accept()
    return r


def test_wrong_sha256_is_refused_before_any_connection(tmp_path: Path) -> None:
    image, config, digest = inputs(tmp_path)
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    r = run_against_silent_port(config, "--image-file", image, "--image-sha256", wrong)
    assert r.returncode == 1
    assert f"sha256 is {digest}, expected {wrong}; nothing was sent to the host" in r.stderr
    assert r.stdout == ""


def test_the_controller_itself_is_refused(sshd: tuple[int, Path], tmp_path: Path) -> None:
    """The sshd runs on this machine: the same boot id, so the takeover refuses before touching anything
    (run as root, so the controller check passes and only the refusal stops it)."""
    port, key = sshd
    image, config, _digest = inputs(tmp_path)
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    r = pine("root@127.0.0.1", config, "--image-file", image, "--port", port, "--identity", key, "--yes")
    assert "computed; pass --image-sha256 to pin it" in r.stdout
    assert r.returncode == 1, r.stderr
    assert "the host is this machine itself (the same boot id)" in r.stdout
    assert not Path("/run/pine-hijack").exists()
    assert Path("/proc/sys/kernel/random/boot_id").read_text().strip() == boot_id


def test_an_image_url_is_streamed_and_checked_before_any_connection(tmp_path: Path) -> None:
    image, config, digest = inputs(tmp_path)
    with serve() as http:
        # credentials and a token in the URL: never printed
        url = http.route("/pine.img?token=t0ken-xyz", Answer(body=image.read_bytes()))
        url = url.replace("http://", "http://user:s3cret-pw@")
        wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
        r = run_against_silent_port(config, "--image-url", url, "--image-sha256", wrong)
        assert len(http.hits("/pine.img?token=t0ken-xyz")) >= 1
    assert r.returncode == 1
    assert f"sha256 is {digest}, expected {wrong}; nothing was sent to the host" in r.stderr
    assert "s3cret-pw" not in r.stdout + r.stderr and "t0ken-xyz" not in r.stdout + r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/bin/busybox"), reason="chroot, loop devices")
def test_the_stream_goes_through_ssh_onto_a_loop_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Takeover.stream as the takeover runs it: the frames fed to a real ssh session while its markers are
    read; the session lands (ForceCommand) in a chroot of the payload, as the RAM Dropbear runs chrooted in
    its tmpfs, and stage 2 writes a loop device pre-filled with non-zero bytes."""
    from pineinstall.hijack import provision, ssh, takeover
    from pineinstall.hijack.facts import Disk, Facts

    from .hijack_chroot import MiB, chroot_root, device_bytes, loop_disk, sparse_disk

    monkeypatch.setenv("PINE_HIJACK_DROPBEAR", "/bin/busybox")  # stage 2 does not run Dropbear
    root = chroot_root(tmp_path / "root")
    size = 64 * MiB
    whole = sparse_disk(tmp_path / "disk.img", size)
    disk = provision.Provisioned(str(tmp_path / "disk.img"), size, hashlib.sha256(whole).hexdigest(), 0.0)
    (tmp_path / "sshd").mkdir()
    force = f'ForceCommand chroot {root} /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n'
    with (
        running_sshd(tmp_path / "sshd", force) as (port, key),
        loop_disk(root, tmp_path / "backing", size) as dev,
    ):
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / "run_key").write_bytes(key.read_bytes())
        (run_dir / "run_key").chmod(0o600)
        host_key = (tmp_path / "sshd" / "host.pub").read_text().split()
        (run_dir / "known_hosts.ram").write_text(f"{takeover.RAM_ALIAS} {host_key[0]} {host_key[1]}\n")
        facts = Facts(user="root", hostname="h", os=None, container=None, efi=False, secure_boot=None,
                      disk=Disk("/dev/disk", size, None, "gpt", None, ()), mem_total=None, mem_available=None,
                      interfaces=(), dns=(), authorized_keys=())  # fmt: skip
        take = takeover.Takeover(ssh.Target("root", "127.0.0.1", port, str(key)), str(run_dir), facts, 60)
        take.stream(disk)
        assert device_bytes(dev) == whole
        assert 17 * MiB < take.report.bytes_sent < 18 * MiB  # the data only; 40 MiB of holes named
