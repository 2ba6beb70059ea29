"""The takeover's pieces that run without a host: the payload (a real tar read back, its stage 2 run by
busybox in a chroot on a file playing the disk), the partition-table ids as on disk (read back from
real sgdisk/sfdisk tables), the framed stream of a sparse file (and stage 2 writing it onto a loop
device), the refusal of the controller itself,
and the first session's command line as the remote login shell parses it.

The whole takeover runs against a real Debian guest in tests/vm/test_hijack_takeover.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from pineinstall.hijack import facts, payload, provision, refusals
from pineinstall.hijack.facts import Facts
from pineinstall.hijack.stream import FRAME_MAX, MiB, frames

from .hijack_chroot import (
    chroot_root,
    device_bytes,
    has_partition_table,
    loop_disk,
    sparse_disk,
    stage2_write,
)

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


def parse_frames(data: bytes) -> list[tuple[str, int, int, bytes]]:
    """The stream read back by the documented format (docs/hijack.md)."""
    out = []
    pos = 0
    while pos < len(data):
        line_end = data.index(b"\n", pos)
        head = data[pos:line_end].decode().split()
        pos = line_end + 1
        if head[0] == "E":
            out.append(("E", 0, 0, head[1].encode()))
            continue
        if head[0] == "Z":
            out.append(("Z", int(head[1]), int(head[2]), b""))
            continue
        clen = int(head[3])
        out.append(("D", int(head[1]), int(head[2]), data[pos : pos + clen]))
        pos += clen
    return out


def test_frames_carry_data_and_name_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse.img"
    whole = sparse_disk(path, 64 * MiB)
    sha = hashlib.sha256(whole).hexdigest()
    stream = b"".join(frames(str(path), 64 * MiB, sha))
    parsed = parse_frames(stream)
    rebuilt = bytearray(64 * MiB)
    for kind, offset, length, member in parsed[:-1]:
        assert offset % MiB == 0 and length % MiB == 0
        if kind == "D":
            assert length <= FRAME_MAX
            rebuilt[offset : offset + length] = gzip.decompress(member)
    assert bytes(rebuilt) == whole
    assert parsed[-1] == ("E", 0, 0, sha.encode()) and parsed[-2][:3] == ("D", 0, MiB)
    places = [(offset, length) for _, offset, length, _ in parsed[:-2]]
    assert places[0][0] == MiB and sum(length for _, length in places) == 63 * MiB
    assert all(a + la == b for (a, la), (b, _) in itertools.pairwise(places))
    assert sum(length for kind, _, length, _ in parsed if kind == "Z") >= 40 * MiB  # holes never travel
    assert len(stream) < 17 * MiB + 400_000  # the random 17 MiB + 300 kB, the rest ~nothing
    assert provision.file_sha256(str(path)) == sha
    assert b"".join(provision.data_chunks(str(path))) == whole


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


@pytest.fixture
def stage2_root(tmp_path: Path, fake_dropbear: None) -> Path:
    return chroot_root(tmp_path / "root")


needs_root_loop = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("chroot") is None or shutil.which("losetup") is None,
    reason="chroot and loop devices need root",
)


@needs_busybox
@needs_root_loop
def test_stage2_writes_the_stream_byte_for_byte_holes_included(tmp_path: Path, stage2_root: Path) -> None:
    """The real busybox script on a loop device pre-filled with 0xa5: the device ends up identical to the
    provisioned file, its holes zero, the reboot requested."""
    size = 64 * MiB
    whole = sparse_disk(tmp_path / "provisioned.img", size)
    sha = hashlib.sha256(whole).hexdigest()
    stream = b"".join(frames(str(tmp_path / "provisioned.img"), size, sha))
    with loop_disk(stage2_root, tmp_path / "backing.img", size) as dev:
        done = stage2_write(stage2_root, size, sha, stream)
        assert done.returncode == 0, done.stdout + done.stderr
        assert b"PINE-WRITTEN " + sha.encode() in done.stdout and b"PINE-REBOOTING" in done.stdout
        assert device_bytes(dev) == whole
        assert has_partition_table(dev)


@needs_busybox
@needs_root_loop
def test_stage2_a_broken_stream_leaves_no_partition_table(tmp_path: Path, stage2_root: Path) -> None:
    """Truncated inside a data frame, at a frame boundary, before its end frame, a flipped byte in a gzip
    member, a stream of another disk, a bad header, a missing frame: each fails, names what broke, and
    leaves the first MiB zero."""
    size = 64 * MiB
    whole = sparse_disk(tmp_path / "provisioned.img", size)
    sha = hashlib.sha256(whole).hexdigest()
    parts = list(frames(str(tmp_path / "provisioned.img"), size, sha))
    stream = b"".join(parts)
    big = max(range(len(parts)), key=lambda i: len(parts[i]))
    at_big = len(b"".join(parts[:big]))
    flipped = bytearray(stream)
    flipped[at_big + len(parts[big]) // 2] ^= 0x40
    cases = {
        "inside a frame": (stream[: at_big + 1000], sha, b"did not arrive whole"),
        "at a frame boundary": (b"".join(parts[:big]), sha, b"the stream ended at byte"),
        "a flipped byte": (bytes(flipped), sha, b"did not arrive whole"),
        "another disk": (stream, "0" * 64, b"not " + b"0" * 64),
        "no end": (b"".join(parts[:-1]), sha, b"the stream ended at byte"),
        "a bad header": (b"D 1048576 1048576 12x\n" + stream, sha, b"bad frame header"),
        "a frame out of place": (b"".join(parts[1:]), sha, b"where 1048576 was next"),
    }
    with loop_disk(stage2_root, tmp_path / "backing.img", size) as dev:
        for name, (data, expect_sha, message) in cases.items():
            failed = stage2_write(stage2_root, size, expect_sha, data)
            assert failed.returncode == 1, name
            assert b"PINE-FAILED" in failed.stdout and message in failed.stdout, (name, failed.stdout)
            assert b"PINE-REBOOTING" not in failed.stdout
            with open(dev, "rb") as fh:
                assert fh.read(MiB) == bytes(MiB), name
            assert not has_partition_table(dev), name


def _disk_with_roots(tmp: Path, roots: list[Path]) -> Path:
    """A GPT disk file: a swap partition (no filesystem to mount), then one ext4 partition per root,
    filled by mkfs.ext4 -d (no mount needed to make it)."""
    disk = tmp / "disk.img"
    with open(disk, "wb") as fh:
        fh.truncate((2 + 8 * len(roots)) * MiB + MiB)
    script = "label: gpt\n,1MiB,S\n" + "".join(",8MiB,L\n" for _ in roots)
    subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True)
    for number, root in enumerate(roots, start=2):
        part = tmp / f"p{number}.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(part), "8M"], check=True)
        with open(disk, "r+b") as out, open(part, "rb") as src:
            out.seek((2 + 8 * (number - 2)) * MiB)
            shutil.copyfileobj(src, out)
    return disk


@needs_root_loop
def test_own_dropbear_is_read_from_the_new_disks_deployment(tmp_path: Path) -> None:
    """The RAM server's Dropbear comes from the provisioned disk itself: found in the OSTree deployment
    on its second filesystem, copied byte for byte, executable; nothing stays mounted or attached."""
    empty, pine = tmp_path / "empty", tmp_path / "pine"
    empty.mkdir()
    binary = pine / "ostree/deploy/pine/deploy/0123abcd.0/usr/sbin/dropbearmulti"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF" + os.urandom(5000))
    disk = _disk_with_roots(tmp_path, [empty, pine])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    copy = provision.own_dropbear(str(disk), str(run_dir))
    assert copy is not None and Path(copy).read_bytes() == binary.read_bytes()
    assert os.access(copy, os.X_OK)
    assert os.fspath(run_dir) not in Path("/proc/mounts").read_text()
    attached = subprocess.run(["losetup", "-j", str(disk)], capture_output=True, text=True).stdout
    assert attached == ""


@needs_root_loop
def test_a_disk_without_dropbear_gives_none(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert provision.own_dropbear(str(_disk_with_roots(tmp_path, [root])), str(run_dir)) is None
