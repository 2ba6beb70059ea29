"""The SSH session to the host, through OpenSSH's ``ssh``.

Never interactive (``BatchMode``: a key or an agent, no password prompt), and never touching the
user's ``~/.ssh/known_hosts``: the host key is learnt on first contact into a ``known_hosts`` of the
run's own directory (printed in the plan, with its fingerprint), and every later session of the run
checks against it. The user's ``~/.ssh/config`` still applies (ProxyJump, User...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pineinstall.errors import PineError

PROBE_TIMEOUT = 300.0  # seconds: a slow VPS (a 128 MiB guest under TCG took 70 s), still far from a hang


class SshError(PineError):
    """The host cannot be reached, or refused the login, or the remote command failed."""


@dataclass(frozen=True)
class Target:
    user: str | None
    host: str
    port: int | None
    identity: str | None

    @classmethod
    def parse(cls, text: str, port: int | None, identity: str | None) -> Target:
        user, sep, host = text.rpartition("@")
        if not host or (sep and not user):
            raise SshError(f"{text!r}: expected [USER@]HOST")
        return cls(user or None, host.strip("[]"), port, identity)

    def __str__(self) -> str:
        where = f"{self.user}@{self.host}" if self.user else self.host
        return f"{where}:{self.port}" if self.port else where


def known_hosts(run_dir: str) -> str:
    return os.path.join(run_dir, "known_hosts")


def argv(
    target: Target,
    run_dir: str,
    command: list[str],
    *,
    hosts: str = "known_hosts",
    alias: str | None = None,
    strict: str = "accept-new",
) -> list[str]:
    """ssh's argv for one session. hosts: the run directory's known_hosts file to use; alias: the
    name the host key is stored under (the RAM server and the new Pine each get their own)."""
    out = [
        "ssh",
        "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={os.path.join(run_dir, hosts)}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"StrictHostKeyChecking={strict}",
        "-o", "ConnectTimeout=30",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=8",  # 2 min of silence: a VPS (or a TCG guest) may freeze that long
    ]  # fmt: skip
    if alias:
        out += ["-o", f"HostKeyAlias={alias}"]
    if target.port:
        out += ["-p", str(target.port)]
    if target.identity:
        out += ["-o", "IdentitiesOnly=yes", "-i", target.identity]
    if target.user:
        out += ["-l", target.user]
    return [*out, "--", target.host, *command]


def run_script(target: Target, run_dir: str, script: str, timeout: float = PROBE_TIMEOUT) -> str:
    """``script`` run by the remote ``sh`` (sent on stdin: one session, no quoting); its stdout."""
    from pineinstall.run import CommandError, run

    try:
        proc = run(argv(target, run_dir, ["sh", "-s"]), input=script.encode(), timeout=timeout, env=env())
    except CommandError as exc:
        raise SshError(f"ssh {target}: {exc.stderr.strip() or exc}") from exc
    return proc.stdout.decode("utf-8", "replace")


def env() -> dict[str, str]:
    """ssh needs HOME (its config and keys) and the agent's socket; run() passes nothing else."""
    return {k: v for k, v in os.environ.items() if k in ("HOME", "USER", "SSH_AUTH_SOCK")}


def fingerprints(run_dir: str) -> list[str]:
    """The host keys learnt in this run: ``SHA256:... (ED25519)``."""
    from pineinstall.run import run

    path = known_hosts(run_dir)
    if not os.path.exists(path):
        return []
    proc = run(["ssh-keygen", "-l", "-f", path], check=False)
    out = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()  # BITS FINGERPRINT HOST (TYPE); HOST may be hashed: left out
        if len(parts) >= 4:
            out.append(f"{parts[1]} {parts[-1]}")
    return out
