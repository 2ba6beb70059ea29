"""The installer ISO and its PXE files, booted under QEMU (TCG), end to end.

- PXE-style: ``-kernel vmlinuz -initrd initrd.img`` with live-boot's ``fetch=`` (the squashfs over
  HTTP from a server on 127.0.0.1, seen as 10.0.2.2), ``pine.inst.*`` naming the disk, the config and
  the image (zstd) on the same server; no CD. The guest installs and powers off.
- CD through SeaBIOS: a copy of the ISO with the config embedded by ``pineinstall iso embed`` (dest,
  image and power-off there too), no kernel arguments: GRUB's default entry after its 10 s timeout.
- UEFI (OVMF) from the CD: up to the live system's shell.
- The ISO as a USB stick (BIOS): GRUB from its MBR, its "Rescue shell" entry picked on the serial
  console: a root shell in systemd's rescue mode.

Both installs write the real Pine image (iso/images/pine.py, zstd) with a ``pine`` config. The CD's
installed disk is then booted with its own bootloader (SeaBIOS) and read back over SSH with the
config's key: hostname, user and key, a file with its mode, an OpenRC service the config added
(running). The PXE install's disk is read back from its mounted root (the same facts, the service
enabled, ``console=`` in its boot entry): a second boot of the same installer's result would prove
nothing the CD's does not, for 1-2 min of CI. The live system itself stays Debian (systemd).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from harness.pineconfig import pine_config  # noqa: E402

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib.disk import overlay  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="building the ISO needs root (mmdebstrap)")

HOSTNAME = "iso-installed"
USER = "pine"
GUEST_HOST = "10.0.2.2"  # the host's 127.0.0.1 as QEMU's user network shows it to the guest
CONSOLE = "console=ttyS0,115200n8"
# TCG on 2 shared cores: the live boot ~1-2 min, the install a few more; generous on purpose.
INSTALL_TIMEOUT = 1500
BOOT_TIMEOUT = 900
SSH_TIMEOUT = 600
LIVE_MEMORY = "2G"  # fetch= keeps the squashfs in RAM
TARGET_SIZE = 1536 * 2**20
# The motd the live system shows after root's autologin (iso/installer/live/rootfs/etc/motd).
LIVE_BANNER = "Pine installer (live system, root shell)"
# live-install's last line after a failure: stop the guest there instead of waiting for the timeout.
FAILED = re.compile(r"pine-live-install: FAILED[^\n]*")


def ignition_config(key: str) -> dict:
    """The ``pine`` config the installer gets, transpiled as a user would: hostname, a user with a key,
    a file with a mode, an OpenRC service enabled."""
    from butane_like import translate

    sections = f"""storage:
  files:
    - path: /etc/provisioned.txt
      mode: 0444
      contents:
        inline: written by the ISO installer
network:
  hostname: {HOSTNAME}
"""
    res = translate(pine_config(key, sections, user=USER).encode())
    assert res.ok and not res.entries and res.output is not None, res.format("iso config")
    return json.loads(res.output)


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(self.path)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client closing early (a probe, wget's retry) is not an error of the test.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FileServer:
    """A real HTTP server on 127.0.0.1 serving a directory, with the paths it was asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[str] = []
        self.image_sha256 = ""
        handler = functools.partial(
            type("H", (_Handler,), {"requests": self.requests}), directory=str(directory)
        )
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def guest_url(self, name: str) -> str:
        return f"http://{GUEST_HOST}:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from harness import keypair

    return keypair(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="module")
def server(
    built_iso, key: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FileServer]:
    """Serves the PXE files, the config and the Pine image (zstd: small over slirp)."""
    www = tmp_path_factory.mktemp("www")
    for name, path in built_iso.pxe.items():
        (www / name).symlink_to(path)  # served as they are: the cached build is never written
    (www / "cfg.ign").write_text(json.dumps(ignition_config(key[1])))
    raw = ensure_pine_image().path
    subprocess.run(["zstd", "-q", "-T0", "-3", "-o", str(www / "pine.raw.zst"), str(raw)], check=True)
    srv = FileServer(www)
    # The installer refuses a remote image it cannot verify: its sha256 as stored (compressed).
    srv.image_sha256 = hashlib.sha256((www / "pine.raw.zst").read_bytes()).hexdigest()
    yield srv
    srv.close()


@pytest.fixture
def boot_disk(boot_disk, tmp_path: Path):
    """The harness's boot_disk, keeping every guest's serial console in tmp_path/serial-N.log."""
    from harness import GuestError

    count = 0

    def boot(*args, **kwargs):
        nonlocal count
        count += 1
        log = tmp_path / f"serial-{count}.log"
        try:
            r = boot_disk(*args, **kwargs)
        except GuestError as e:
            log.write_text(e.serial_log)
            raise
        log.write_text(r.serial)
        return r

    return boot


def _live_install_available() -> None:
    if not (REPO / "pineinstall" / "live.py").exists():
        pytest.fail("pineinstall/live.py (pineinstall live-install) is not in this checkout")


# Read back over SSH as the config's user, one NAME=VALUE a line.
PROBE = r"""
echo "hostname=$(hostname)"
echo "id=$(id -un)"
echo "key=$(grep -v '^#' ~/.ssh/authorized_keys)"
echo "file=$(stat -c '%a' /etc/provisioned.txt) $(cat /etc/provisioned.txt)"
echo "hello=$(test -e /run/openrc/started/hello && test -d /proc/$(cat /run/hello.pid) && echo started)"
echo "ostree_booted=$(test -e /run/ostree-booted && echo yes)"
echo "cmdline=$(cat /proc/cmdline)"
"""


def check_installed(disk: Path, key: tuple[Path, str], label: str) -> dict[str, str]:
    """Boot the installed Pine disk (BIOS) and read the provisioned state back over SSH."""
    from harness import free_port, running_disk, ssh, wait_for_ssh

    private, public = key
    port = free_port()
    with running_disk(disk, snapshot=True, net_forwards={port: 22}) as guest:
        seconds = wait_for_ssh(guest, port, private, USER, SSH_TIMEOUT)
        r = ssh(port, private, USER, f"sh -c {shlex.quote(PROBE)}")
    print(f"{label}: installed Pine answered SSH after {seconds} s")
    assert r.returncode == 0, r.stderr
    got = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert got["hostname"] == HOSTNAME
    assert got["id"] == USER
    assert got["key"] == public
    assert got["file"] == "444 written by the ISO installer"
    assert got["hello"] == "started", got
    assert got["ostree_booted"] == "yes"
    return got


@contextlib.contextmanager
def mounted_root(disk: Path) -> Iterator[Path]:
    """The installed disk's root partition (its last), mounted read-only through an offset loop device."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]  # fmt: skip
    part, sector = table["partitions"][-1], table.get("sectorsize", 512)
    loop = subprocess.run(["losetup", "-f", "--show", "-r", "-o", str(part["start"] * sector), "--sizelimit",
                           str(part["size"] * sector), str(disk)], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    mnt = disk.parent / "root-ro"
    mnt.mkdir()
    try:
        subprocess.run(["mount", "-o", "ro", loop, str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)


def check_installed_offline(disk: Path, key: tuple[Path, str]) -> str:
    """What check_installed reads over SSH, read from the installed disk without booting it (the CD test
    boots its install: the same installer, the same image); returns the deployment's kernel options."""
    from pineinstall.target import open_target

    with mounted_root(disk) as sysroot:
        target = open_target(sysroot)
        assert target.kind == "ostree"
        assert (target.read_text("/etc/hostname") or "").strip() == HOSTNAME
        assert f"\n{USER}:" in "\n" + (target.read_text("/etc/passwd") or "")
        home = next(line.split(":")[5] for line in (target.read_text("/etc/passwd") or "").splitlines()
                    if line.startswith(f"{USER}:"))  # fmt: skip
        assert key[1] in (target.read_text(f"{home}/.ssh/authorized_keys") or "")
        made = target.resolve_all("/etc/provisioned.txt")
        assert (made.stat().st_mode & 0o777, made.read_text()) == (0o444, "written by the ISO installer")
        assert os.readlink(target.resolve("/etc/runlevels/default/hello")) == "/etc/init.d/hello"
        entries = sorted((sysroot / "boot" / "loader" / "entries").glob("*.conf"))
        assert entries, "no boot entry on the installed disk"
        options = [line for line in entries[-1].read_text().splitlines() if line.startswith("options ")]
        return options[0]


def test_pxe_unattended_install(
    built_iso, server: FileServer, key: tuple[Path, str], boot_disk, tmp_path: Path
) -> None:
    _live_install_available()
    disk = tmp_path / "target.img"
    with open(disk, "wb") as fh:
        fh.truncate(TARGET_SIZE)
    append = " ".join([
        "boot=live", "components", "noeject", f"fetch={server.guest_url('rootfs.squashfs')}", "ip=dhcp",
        # the disk by its stable name (the harness gives the booted disk serial "boot")
        "pine.inst.dest=/dev/disk/by-id/virtio-boot", f"pine.inst.config={server.guest_url('cfg.ign')}",
        f"pine.inst.image={server.guest_url('pine.raw.zst')}", f"pine.inst.image_sha256={server.image_sha256}",
        "pine.inst.poweroff", "panic=-1", CONSOLE,
    ])  # fmt: skip
    r = boot_disk(
        disk,
        boot_iso=True,  # no bootindex on the disk: -kernel's option ROM takes bootindex 0
        net=True,
        memory=LIVE_MEMORY,
        timeout=INSTALL_TIMEOUT,
        until=FAILED,
        kernel_args=[
            "-kernel",
            str(built_iso.pxe["vmlinuz"]),
            "-initrd",
            str(built_iso.pxe["initrd.img"]),
            "-append",
            append,
        ],
    )
    print(f"PXE: live boot + unattended install + power-off in {r.seconds} s")
    assert r.powered_off, r.serial[-4000:]
    assert "/rootfs.squashfs" in server.requests  # live-boot fetched the root over HTTP
    assert "/cfg.ign" in server.requests and "/pine.raw.zst" in server.requests
    assert "pine-live-install: done" in r.serial
    assert LIVE_BANNER not in r.serial  # powered off by the installer, not left at a shell
    options = check_installed_offline(disk, key)
    assert CONSOLE in options.split()  # the live system's console= became --console


def test_cd_embedded_config_bios(
    built_iso, server: FileServer, key: tuple[Path, str], boot_disk, tmp_path: Path
) -> None:
    """No kernel argument and no network needed: the config, the target and the image's place are
    embedded; the image is a file on the medium (an ISO remastered with ``--add``)."""
    _live_install_available()
    from iso.installer.build import remaster

    medium = remaster(
        built_iso, tmp_path / "offline.iso", {"/pine/pine.raw.zst": server.directory / "pine.raw.zst"}
    )
    cfg = tmp_path / "cfg.ign"
    cfg.write_text(json.dumps(ignition_config(key[1])))
    copy = tmp_path / "embedded.iso"
    embed = [sys.executable, "-m", "pineinstall.cli", "iso", "embed", str(medium), "--config", str(cfg),
             "--dest", "/dev/vda", "--image", "/pine/pine.raw.zst", "--poweroff", "-o", str(copy)]  # fmt: skip
    done = subprocess.run(embed, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert copy.stat().st_size == medium.stat().st_size  # the area is overwritten in place
    disk = tmp_path / "target.img"
    with open(disk, "wb") as fh:
        fh.truncate(TARGET_SIZE)
    # The CD boots first (bootindex 0), the empty target is the only virtio disk: /dev/vda.
    r = boot_disk(disk, iso=copy, boot_iso=True, memory=LIVE_MEMORY, timeout=INSTALL_TIMEOUT, until=FAILED)
    print(
        f"CD (BIOS, embedded config, image on the medium): menu + live boot + install + power-off in {r.seconds} s"
    )
    assert r.powered_off, r.serial[-4000:]
    assert "Install Pine" in r.serial and "Rescue shell" in r.serial  # GRUB's menu on the serial port
    assert "pine-live-install: done" in r.serial
    check_installed(disk, key, "CD")


def test_uefi_cd_reaches_shell(built_iso, boot_disk, tmp_path: Path) -> None:
    """No dest anywhere: the live system explains how to install and leaves root at a shell."""
    disk = tmp_path / "empty.img"
    with open(disk, "wb") as fh:
        fh.truncate(64 * 2**20)
    r = boot_disk(disk, firmware="uefi", iso=built_iso.iso, boot_iso=True, until=LIVE_BANNER,
                  memory=LIVE_MEMORY, timeout=BOOT_TIMEOUT)  # fmt: skip
    print(f"UEFI CD: live shell after {r.seconds} s")
    assert r.marker_seen
    assert "pineinstall /dev/sdX cfg.ign" in r.serial


def test_embed_area_is_root_only(built_iso) -> None:
    """The ISO's Rock Ridge entry of the embed area: 0400 root:root (the config may hold secrets)."""
    out = subprocess.run(["xorriso", "-indev", str(built_iso.iso), "-lsl", "/pine"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    line = next(line for line in out.splitlines() if "embed.bin" in line)
    mode, _links, uid, gid, size = line.split()[:5]
    assert (mode, uid, gid) == ("-r--------", "0", "0")
    assert int(size) == built_iso.manifest["embed_area"]["bytes"]


def test_usb_stick_bios_rescue_entry(built_iso, boot_disk, tmp_path: Path) -> None:
    """The ISO file written to a disk as it is (a USB stick), booted by SeaBIOS: GRUB from its MBR shows
    the menu of the ISO's grub.cfg on the serial port; its "Rescue shell" entry, picked there, boots the
    live system from the stick into systemd's rescue mode: no installer service, a root shell offered."""
    grub_cfg = subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(built_iso.iso), "-extract",
                               "/boot/grub/grub.cfg", str(tmp_path / "grub.cfg")],
                              capture_output=True, text=True)  # fmt: skip
    assert grub_cfg.returncode == 0, grub_cfg.stderr
    text = (tmp_path / "grub.cfg").read_text()
    assert re.search(r"set timeout=10\b", text) and "set default=0" in text
    entries = re.findall(r"menuentry [\"']([^\"']+)[\"'] \{\s*linux /live/vmlinuz ([^\n]*)", text)
    assert [name for name, _ in entries] == ["Install Pine", "Rescue shell"]
    assert "systemd.unit=rescue.target" in entries[1][1].split()
    stick = overlay(built_iso.iso, tmp_path / "stick.qcow2")  # the ISO file as it is, never written
    # Down to the second entry and Enter, once GRUB has drawn the menu (its 10 s countdown is running).
    r = boot_disk(stick, image_format="qcow2", until="rescue mode", memory=LIVE_MEMORY, timeout=BOOT_TIMEOUT,
                  snapshot=True, keys=[("Rescue shell", b"\x1b[B\r")])  # fmt: skip
    print(f"USB stick (BIOS), rescue entry: shell offered after {r.seconds} s")
    assert r.marker_seen, r.serial[-4000:]
    assert "Install Pine" in r.serial
    # The entry has no "quiet": the kernel prints the command line GRUB gave it.
    cmdline = re.search(r"Kernel command line: ([^\r\n]*)", r.serial)
    assert cmdline and set(entries[1][1].split()) <= set(cmdline.group(1).split()), r.serial[:4000]
    assert "pineinstall[" not in r.serial  # the install service is not part of rescue.target
