"""The takeover's pieces that run without a host: the payload (a real tar read back, its stage 2 run by
busybox in a chroot on a file playing the disk), the partition-table ids as on disk (read back from
real sgdisk/sfdisk tables), the gzip members of a sparse file, the refusal of the controller itself,
and the first session's command line as the remote login shell parses it.

The whole takeover runs against a real Debian guest in tests/vm/test_hijack.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pineinstall.hijack import facts, payload, provision, refusals
from pineinstall.hijack.facts import Facts

BUSYBOX = "/bin/busybox"
needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static")


@pytest.fixture
def fake_dropbear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any static binary stands in for Dropbear where only the tar's layout is checked."""
    monkeypatch.setenv("PINE_HIJACK_DROPBEAR", BUSYBOX)


@needs_busybox
def test_payload_is_a_root_owned_mini_root(fake_dropbear: None) -> None:
    data = payload.build("ssh-ed25519 AAAAtest run-key")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        keys = tar.extractfile("root/.ssh/authorized_keys")
        assert keys is not None and keys.read() == b"ssh-ed25519 AAAAtest run-key\n"
        stage2 = tar.extractfile("stage2.sh")
        assert stage2 is not None and b"SERVICES='cron.service" in stage2.read()
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert members["root"].mode == 0o700 and members["root/.ssh"].mode == 0o700
    assert members["root/.ssh/authorized_keys"].mode == 0o600
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["sbin/dropbear"].linkname == "../bin/dropbearmulti"
    assert members["bin/busybox"].mode == 0o755
    assert len(data) < 4 << 20


def test_a_dynamic_busybox_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINE_HIJACK_BUSYBOX", "/bin/ls")
    with pytest.raises(payload.PayloadError, match="no static busybox"):
        payload.build("ssh-ed25519 AAAA k")


@pytest.mark.parametrize(
    ("label", "script", "offset", "length"),
    [
        ("gpt", "label: gpt\n", 512 + 56, 16),
        ("dos", "label: dos\nlabel-id: 0x1a2b3c4d\n", 440, 4),
    ],
)
def test_partition_table_ids_as_on_disk(
    tmp_path: Path, label: str, script: str, offset: int, length: int
) -> None:
    """lsblk's PTUUID turned into the bytes stage 2 reads back with od."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(4 << 20))
    subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True)
    ptuuid = subprocess.run(
        ["blkid", "-p", "-s", "PTUUID", "-o", "value", str(disk)], capture_output=True, text=True, check=True
    ).stdout.strip()
    with open(disk, "rb") as fh:
        fh.seek(offset)
        on_disk = fh.read(length).hex()
    assert payload.ptid_hex(label, ptuuid) == on_disk
    assert payload.ptid_hex(label, None) == ""


def test_gzip_members_of_a_sparse_file_decompress_to_it(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    with open(path, "wb") as fh:
        fh.truncate(9 << 20)
        fh.seek(3 << 20)
        fh.write(os.urandom(300_000))
        fh.seek((9 << 20) - 5000)
        fh.write(b"end" * 1000)
    whole = path.read_bytes()
    stream = b"".join(provision.gzip_members(str(path)))
    assert gzip.decompress(stream) == whole
    assert provision.file_sha256(str(path)) == hashlib.sha256(whole).hexdigest()
    assert b"".join(provision.data_chunks(str(path))) == whole
    assert len(stream) < 400_000  # the holes cost ~1 KiB per MiB


def test_the_controller_itself_is_refused() -> None:
    base = facts.parse({"probe": 1, "files": {"/proc/sys/kernel/random/boot_id": "abc-123\n"}})
    assert isinstance(base, Facts) and base.boot_id == "abc-123"
    assert any("this machine itself" in r for r in refusals.refusals(base, "abc-123"))
    assert not any("this machine itself" in r for r in refusals.refusals(base, "other"))


def test_first_session_command_survives_the_login_shell(tmp_path: Path) -> None:
    """sh -n parses it, and the port comes from SSH_CONNECTION (the session's own server port)."""
    cmd = payload.remote_command(True, 90)
    subprocess.run(["sh", "-n", "-c", cmd], check=True)
    shown = cmd.replace("exec sudo -n sh -c", "echo")
    out = subprocess.run(
        ["sh", "-c", shown], env={"SSH_CONNECTION": "10.0.2.2 40000 10.0.2.15 2222", "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.rstrip().endswith("sh 2222 90")


@needs_busybox
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chroot") is None, reason="chroot needs root")
def test_stage2_write_checks_the_stream_and_writes_the_first_mib_last(
    tmp_path: Path, fake_dropbear: None
) -> None:
    """Stage 2 in a chroot of the unpacked payload, a file playing the disk (no /proc mounted: its
    sysrq-trigger is a plain file that records the reboot)."""
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(payload.build("ssh-ed25519 AAAA k")), mode="r:gz") as tar:
        tar.extractall(root, filter="tar")
    (root / "dev").mkdir(exist_ok=True)
    (root / "dev" / "zero").symlink_to("/zero")  # /dev/zero without device nodes: a file of zeros
    (root / "zero").write_bytes(bytes(1 << 20))
    image = os.urandom(3 << 20)
    stream = gzip.compress(image, 1)

    def write(sha: str) -> subprocess.CompletedProcess[bytes]:
        (root / "disk").write_bytes(b"\xff" * (3 << 20))
        return subprocess.run(["chroot", str(root), "/bin/sh", "/stage2.sh", "write", "/disk", sha],
                              input=stream, capture_output=True, timeout=60)  # fmt: skip

    bad = write("0" * 64)
    assert bad.returncode == 1 and b"PINE-FAILED the stream's sha256" in bad.stdout
    assert (root / "disk").read_bytes()[: 1 << 20] == bytes(1 << 20)  # no partition table left
    good = write(hashlib.sha256(image).hexdigest())
    assert good.returncode == 0, good.stdout + good.stderr
    assert b"PINE-WRITTEN" in good.stdout and b"PINE-REBOOTING" in good.stdout
    assert (root / "disk").read_bytes() == image
