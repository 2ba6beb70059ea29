"""Smoke tests of the VM harness itself: each proves one thing later VM tests rely on.

The checks that need a running harness guest share ONE boot (the `smoke` fixture): each runs as a
section of the guest's command with its output and rc in the shared directory, and the command ends
with the failing-command check (its rc and output are the run's own). Each test below asserts its
section, as it did with a guest of its own; a boot costs 30-60 s under TCG.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import harness
import pytest
from harness import DiskSpec, GuestError, GuestResult, GuestTimeout

# Boots take 15-40 s under TCG on a busy 2-core machine; the limits leave room for a slow run.
T = 180

SECTIONS = {
    "tools": """
        python3 -c 'import pineinstall, butane_like; print(pineinstall.__file__)'
        python3 -c 'import yaml, requests, pyudev, passlib, zstandard, tqdm; print("libs-ok")'
        python3 -c 'import sys; print(sys.executable)'
        for t in mdadm cryptsetup mkfs.vfat mcopy sgdisk sfdisk mkfs.ext4 mkfs.xfs mkfs.btrfs \\
            blkid udevadm modprobe; do command -v $t; done
        id -u
        """,
    "raid1": """
        readlink -f /dev/disk/by-id/virtio-alpha /dev/disk/by-id/virtio-beta
        blockdev --getsize64 /dev/disk/by-id/virtio-alpha
        mdadm --create /dev/md/pinetest --run --level=1 --raid-devices=2 --metadata=1.2 \\
            /dev/disk/by-id/virtio-alpha /dev/disk/by-id/virtio-beta
        mkfs.ext4 -q -L raidroot /dev/md/pinetest
        mkdir /mnt/r && mount /dev/md/pinetest /mnt/r
        echo hello > /mnt/r/file && sync
        cat /mnt/r/file
        cat /proc/mdstat
        mdadm --detail /dev/md/pinetest | grep -E 'Raid Level|Active Devices'
        umount /mnt/r && mdadm --stop /dev/md/pinetest
        """,
    "luks": """
        dev=/dev/disk/by-id/virtio-secret
        printf 'pass-phrase' > /tmp/key
        cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \\
            --label pinecrypt --key-file /tmp/key $dev
        cryptsetup open --key-file /tmp/key $dev plain
        mkfs.ext4 -q /dev/mapper/plain
        mkdir /mnt/c && mount /dev/mapper/plain /mnt/c
        echo inside > /mnt/c/f && cat /mnt/c/f
        umount /mnt/c && cryptsetup close plain
        cryptsetup open --key-file /tmp/key $dev again && mount /dev/mapper/again /mnt/c && cat /mnt/c/f
        blkid -o value -s TYPE $dev
        """,
    "vfat": """
        mkfs.vfat -F 32 -n PINEESP /dev/disk/by-id/virtio-esp
        mkdir /mnt/e && mount -t vfat /dev/disk/by-id/virtio-esp /mnt/e
        echo fat > /mnt/e/HELLO.TXT && cat /mnt/e/HELLO.TXT
        grep ' /mnt/e ' /proc/mounts | cut -d' ' -f3
        umount /mnt/e
        """,
    # {http_port}: the host's server, filled in by the fixture
    "network": """
        cat /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw; echo
        python3 -c 'import requests; print(requests.get("http://10.0.2.2:{http_port}/x").text)'
        echo from-guest > /mnt/share/result.txt
        mkdir /tmp/www && echo served-by-guest > /tmp/www/served.txt
        python3 -m http.server -d /tmp/www 8080 > /dev/null 2>&1 &
        for i in $(seq 150); do [ -e /mnt/share/host-done ] && break; sleep 1; done
        echo waited
        """,
}
# The last command of the run: its rc and output are what run_in_guest returns.
FAILING = "echo before-failure; exit 7"


@dataclass(frozen=True)
class Smoke:
    result: GuestResult  # the whole run (the failing command's rc and output)
    share: Path  # the guest's /mnt/share: NAME.out and NAME.rc of every section
    esp: Path  # the "esp" disk, kept after the run
    seen: list[str]  # what the host fetched through the forwarded port

    def section(self, name: str) -> str:
        """The section's output; fails unless it exited 0 (what .check() did for a guest of its own)."""
        out = (self.share / f"{name}.out").read_text()
        rc = (self.share / f"{name}.rc").read_text().strip()
        assert rc == "0", f"section {name} failed with rc {rc}:\n{out}"
        return out


def _script(http_port: int) -> str:
    parts = []
    for name, body in SECTIONS.items():
        body = body.replace("{http_port}", str(http_port))
        parts.append(f"( set -e\n{body}\n) > /mnt/share/{name}.out 2>&1; echo $? > /mnt/share/{name}.rc")
    return "\n".join([*parts, FAILING]) + "\n"


@pytest.fixture(scope="module")
def smoke(vm_image, tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    tmp = tmp_path_factory.mktemp("smoke")
    config = tmp / "config.ign"
    config.write_text('{"ignition": {"version": "3.4.0"}}')
    share = tmp / "share"
    share.mkdir()
    esp = tmp / "esp.img"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forwarded = _free_port()
    seen: list[str] = []
    stop = threading.Event()
    fetcher = threading.Thread(target=_fetch_forwarded, args=(forwarded, share, seen, stop), daemon=True)
    fetcher.start()
    try:
        r = harness.run_in_guest(
            _script(server.server_port),
            disks=[
                DiskSpec("alpha", "128M"),
                DiskSpec("beta", "128M"),
                DiskSpec("secret", "64M"),
                DiskSpec("esp", "64M", path=esp),
            ],
            fw_cfg={"opt/com.coreos/config": config},
            share=share,
            net_forwards={forwarded: 8080},
            timeout=T + 120,  # five checks in one guest
        )
    finally:
        stop.set()
        server.shutdown()
    fetcher.join(timeout=10)
    return Smoke(r, share, esp, seen)


def test_repository_is_importable_with_debian_python_and_tools(smoke: Smoke):
    lines = smoke.section("tools").splitlines()
    assert lines[0] == "/repo/pineinstall/__init__.py"
    assert "libs-ok" in lines
    assert "/usr/bin/python3" in lines
    assert len([line for line in lines if line.startswith("/")]) >= 14
    assert lines[-1] == "0"  # root


def test_disks_by_id_and_mdadm_raid1_with_ext4(smoke: Smoke):
    output = smoke.section("raid1")
    out = output.splitlines()
    assert out[0].startswith("/dev/vd") and out[1].startswith("/dev/vd") and out[0] != out[1]
    assert out[2] == str(128 * 2**20)
    assert "hello" in out
    assert "Raid Level : raid1" in output
    assert "Active Devices : 2" in output


def test_luks_format_open_mount(smoke: Smoke):
    assert smoke.section("luks").splitlines()[-3:] == ["inside", "inside", "crypto_LUKS"]


def test_vfat_mount_and_disk_kept_for_the_host(smoke: Smoke):
    assert smoke.section("vfat").splitlines()[-2:] == ["fat", "vfat"]
    # The disk given by path outlives the guest: the host reads what the guest wrote.
    esp = smoke.esp
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(esp)], capture_output=True, text=True)
    assert label.stdout.strip() == "PINEESP"
    listing = subprocess.run(["mdir", "-b", "-i", str(esp), "::"], capture_output=True, text=True)
    assert "HELLO.TXT" in listing.stdout


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"served": "by the host"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fetch_forwarded(port: int, share: Path, seen: list[str], stop: threading.Event) -> None:
    """Poll the guest's server through the forwarded port, then tell the guest it may stop.

    No deadline of its own: the guest may wait for the harness's lock first; `stop` ends it."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/served.txt", timeout=5) as resp:
                seen.append(resp.read().decode())
            (share / "host-done").write_text("")
            return
        except (OSError, http.client.HTTPException):  # slirp accepts before the guest listens
            stop.wait(1)


def test_fw_cfg_share_network_and_port_forward(smoke: Smoke):
    assert smoke.section("network").splitlines() == [
        '{"ignition": {"version": "3.4.0"}}',
        '{"served": "by the host"}',
        "waited",
    ]
    assert (smoke.share / "result.txt").read_text() == "from-guest\n"
    assert smoke.seen == ["served-by-guest\n"]


def test_failing_command_returns_its_rc(smoke: Smoke):
    r = smoke.result
    assert r.rc == 7
    assert r.output == "before-failure\n"
    with pytest.raises(GuestError, match="rc 7"):
        r.check()


def test_hung_command_hits_the_timeout(run_in_guest):
    # The command's own limit, counted from its start: the boot's time under load does not matter.
    with pytest.raises(GuestTimeout, match="command did not finish within 5 s") as info:
        run_in_guest("echo started; sleep 3600", timeout=300, command_timeout=5)
    assert "PINE-GUEST-START" in info.value.serial_log  # it was the command that hung, not the boot
    assert info.value.output == "started\n"


# A 512-byte MBR boot sector: writes PINE-MBR-OK to COM1 (port 0x3f8) and halts.
_MBR_CODE = bytes.fromhex("31c08ed8fcbe167cbaf803ac84c07403eeebf8f4ebfd") + b"PINE-MBR-OK\r\n\0"


def test_boot_disk_bios_runs_the_boot_sector(boot_disk, tmp_path: Path):
    disk = tmp_path / "mbr.img"
    sector = _MBR_CODE.ljust(510, b"\0") + b"\x55\xaa"
    disk.write_bytes(sector + bytes(2**20 - 512))
    r = boot_disk(disk, firmware="bios", until="PINE-MBR-OK", timeout=120, disks=[DiskSpec("empty", "16M")])
    assert r.marker_seen and not r.powered_off


def test_boot_disk_uefi_runs_the_shell_startup_script(boot_disk, tmp_path: Path):
    # No boot loader on the disk: OVMF falls back to its built-in shell, which runs startup.nsh from
    # the FAT filesystem and then powers the machine off (reset -s).
    disk = tmp_path / "esp.img"
    with open(disk, "wb") as fh:
        fh.truncate(64 * 2**20)
    subprocess.run(["mkfs.vfat", "-F", "32", str(disk)], check=True, capture_output=True)
    nsh = tmp_path / "startup.nsh"
    nsh.write_text("echo PINE-UEFI-OK\r\nreset -s\r\n")
    subprocess.run(["mcopy", "-i", str(disk), str(nsh), "::startup.nsh"], check=True)
    r = boot_disk(disk, firmware="uefi", timeout=240)
    assert r.powered_off
    assert "PINE-UEFI-OK" in r.serial
