"""Stage 2 of the takeover run for real without a host: the payload unpacked as a chroot, a loop
device playing the disk (its node inside the chroot), the busybox script fed a stream. Shared by
tests/integration/test_hijack_payload.py and bench/hijack-stream.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pineinstall.hijack import payload

MiB = 1 << 20


def chroot_root(root: Path) -> Path:
    """The unpacked payload as a chroot (no /proc mounted: its sysrq-trigger is a plain file that records
    the reboot; /dev/zero a real device node)."""
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(payload.build("ssh-ed25519 AAAA k")), mode="r:gz") as tar:
        tar.extractall(root, filter="tar")
    (root / "dev").mkdir(exist_ok=True)
    os.mknod(root / "dev" / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    return root


@contextlib.contextmanager
def loop_disk(root: Path, backing: Path, size: int) -> Iterator[str]:
    """A loop device over a file of non-zero bytes, its node inside the chroot as /dev/disk."""
    with open(backing, "wb") as fh:
        for _ in range(size // MiB):
            fh.write(b"\xa5" * MiB)
    dev = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    try:
        node = root / "dev" / "disk"
        with contextlib.suppress(FileNotFoundError):
            node.unlink()
        os.mknod(node, 0o600 | stat.S_IFBLK, os.stat(dev).st_rdev)
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def stage2_write(
    root: Path, size: int, sha: str, stream: bytes | IO[bytes], timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """``stage2.sh write /dev/disk SIZE SHA256`` with the stream (bytes, or a file) on its stdin."""
    argv = ["chroot", str(root), "/bin/sh", "/stage2.sh", "write", "/dev/disk", str(size), sha]
    if isinstance(stream, bytes):
        return subprocess.run(argv, input=stream, capture_output=True, timeout=timeout)
    return subprocess.run(argv, stdin=stream, capture_output=True, timeout=timeout)


def device_bytes(dev: str) -> bytes:
    with open(dev, "rb") as fh:
        return fh.read()


def has_partition_table(dev: str) -> bool:
    probe = subprocess.run(
        ["blkid", "-p", "-s", "PTTYPE", "-o", "value", dev], capture_output=True, text=True
    )
    return probe.stdout.strip() != ""


def sparse_disk(path: Path, size: int) -> bytes:
    """A GPT disk file with data runs (unaligned, one over a MiB boundary, one near the end) and holes;
    its whole content."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: gpt\n,\n", check=True)
    assert has_partition_table(str(path))
    with open(path, "r+b") as fh:
        for offset, length in ((3 * MiB + 4096, 300_000), (9 * MiB - 8192, 20_000), (40 * MiB, 17 * MiB)):
            fh.seek(offset)
            fh.write(os.urandom(length))
        fh.seek(size - 40_000)  # the backup GPT stays whole
        fh.write(b"end" * 1000)
    return path.read_bytes()
