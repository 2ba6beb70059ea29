"""Talking to a running guest (harness.running_disk) over SSH with a key: a free 127.0.0.1 port to
forward, a command run, and the wait until SSH really answers (slirp accepts TCP before the server
listens, so only a command that ran counts)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from .qemu import GuestError, GuestTimeout, RunningGuest

OPTIONS = (
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keypair(directory: Path) -> tuple[Path, str]:
    """A fresh ed25519 key in directory: (private key path, public key line)."""
    key = directory / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tester@pine", "-f", str(key)], check=True
    )
    return key, key.with_suffix(".pub").read_text().strip()


def ssh(port: int, key: Path, user: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    argv = ["ssh", "-i", str(key), "-p", str(port), *OPTIONS, f"{user}@127.0.0.1", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def wait_for_ssh(guest: RunningGuest, port: int, key: Path, user: str, timeout: float) -> float:
    """Seconds from QEMU's start until a command runs over SSH; GuestTimeout (with the serial
    console) after timeout seconds, or at once when QEMU has exited."""
    while guest.elapsed() < timeout:
        if guest.exited():
            raise GuestError(f"QEMU exited before SSH answered on 127.0.0.1:{port}", guest.serial())
        try:
            if ssh(port, key, user, "true", timeout=30).returncode == 0:
                return round(guest.elapsed(), 1)
        except subprocess.TimeoutExpired:
            pass
        time.sleep(2)
    raise GuestTimeout(f"no SSH on 127.0.0.1:{port} within {timeout:g} s", guest.serial())
