"""The only place that starts processes.

Argument lists only (never a shell), a clean environment (``LANG=C``, a fixed ``PATH`` unless the
caller passes one), stdin closed unless input is given, and secrets replaced by ``<redacted>`` in
everything that reaches a log or an exception.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence

from pineinstall.errors import PineError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REDACTED = "<redacted>"


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """LANG=C and a fixed PATH; the caller's own variables do not leak into tools."""
    env = {"LANG": "C", "LC_ALL": "C", "PATH": os.environ.get("PINE_TOOLS_PATH", DEFAULT_PATH)}
    if extra:
        env.update(extra)
    return env


class CommandError(PineError):
    """A process exited non-zero (or could not start). ``argv`` and ``stderr`` are redacted."""

    def __init__(self, argv: Sequence[str], rc: int, stderr: str) -> None:
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
        super().__init__(f"{' '.join(self.argv)} exited with status {rc}: {detail}")


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    check: bool = True,
    cwd: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv``; raise :class:`CommandError` on a non-zero exit when ``check``."""
    if isinstance(argv, str):
        raise TypeError("run() takes an argument list, never a shell string")
    argv = [os.fspath(a) for a in argv]
    secrets = [s for s in secrets if s]
    shown = [redact(a, secrets) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=clean_env(env),
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(shown, 127, f"{argv[0]}: command not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(shown, -1, f"timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        stderr = redact(proc.stderr.decode("utf-8", "replace"), secrets)
        raise CommandError(shown, proc.returncode, stderr)
    return proc


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
