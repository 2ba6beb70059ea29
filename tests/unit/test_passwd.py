"""``pineinstall passwd``: the hashes verify with the system's libxcrypt, on a terminal and from stdin;
``validate`` and ``pine-transpile`` warn about a passwordHash that is not a crypt(3) hash."""

from __future__ import annotations

import ctypes
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _rules_helpers import findings, warn

from pineinstall.config.rules.passwd import WARN_NOT_CRYPT, is_crypt_hash

# These tests start real processes: the command is run as a user runs it, on a pipe and on a real terminal.
pytestmark = pytest.mark.real_processes

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
CMD = [sys.executable, "-m", "pineinstall", "passwd"]


def system_crypt(password: str, setting: str) -> str | None:
    """crypt(3) of the system's libxcrypt, the function login and su verify with."""
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    return None if out is None else out.decode()


def verifies(password: str, hashed: str) -> bool:
    return system_crypt(password, hashed) == hashed


def run_stdin(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CMD, "--stdin", *args], input=text, capture_output=True, text=True, env=ENV, timeout=60
    )


def run_on_terminal(*answers: str, args: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """Run the command with a pseudo-terminal as its controlling terminal; answer each prompt.
    Returns (exit status, stdout, what the terminal showed)."""
    out_r, out_w = os.pipe()
    pid, tty = pty.fork()
    if pid == 0:  # the child: stdout to the pipe, the prompts to the terminal
        os.dup2(out_w, 1)
        os.execve(sys.executable, [*CMD, *args], ENV)
    os.close(out_w)
    screen = b""

    def read_until(marker: bytes | None) -> None:
        """Read until the terminal shows ``marker`` anew (None: until it closes)."""
        nonlocal screen
        start = len(screen)
        deadline = time.monotonic() + 30
        while marker is None or not screen[start:].endswith(marker):
            if not select.select([tty], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise AssertionError(f"no {marker!r} on the terminal: {screen!r}")
            try:
                chunk = os.read(tty, 1024)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                if marker is None:
                    return
                raise AssertionError(f"terminal closed before {marker!r}: {screen!r}")
            screen += chunk

    for answer in answers:
        read_until(b"assword: ")
        os.write(tty, answer.encode() + b"\n")
    read_until(None)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(out_r) as f:
        stdout = f.read()
    os.close(tty)
    return os.waitstatus_to_exitcode(status), stdout, screen.decode(errors="replace")


def test_stdin_gives_a_yescrypt_hash_that_libxcrypt_verifies():
    p = run_stdin("correct horse battery staple\n")
    assert p.returncode == 0, p.stderr
    hashed = p.stdout.strip()
    assert p.stdout == hashed + "\n"
    assert hashed.startswith("$y$j9T$")
    assert verifies("correct horse battery staple", hashed)
    assert not verifies("correct horse battery stapler", hashed)
    assert is_crypt_hash(hashed)


def test_each_hash_has_its_own_salt():
    first, second = run_stdin("pw\n").stdout, run_stdin("pw\n").stdout
    assert first != second
    assert verifies("pw", first.strip()) and verifies("pw", second.strip())


def test_sha512crypt_verifies_with_libxcrypt_and_passlib():
    p = run_stdin("s3cret\n", "--method", "sha512crypt")
    assert p.returncode == 0, p.stderr
    hashed = p.stdout.strip()
    assert hashed.startswith("$6$")
    assert verifies("s3cret", hashed)
    assert not verifies("s3creT", hashed)
    # A second, independent implementation: passlib's pure-Python sha512_crypt.
    from passlib.hash import sha512_crypt  # type: ignore[import-untyped]

    assert sha512_crypt.using(rounds=5000).verify("s3cret", hashed)


def test_only_the_line_ending_is_stripped():
    hashed = run_stdin(" spaced pass \r\n").stdout.strip()
    assert verifies(" spaced pass ", hashed)
    assert not verifies("spaced pass", hashed)


def test_empty_password_is_refused():
    p = run_stdin("\n")
    assert p.returncode == 1
    assert p.stdout == ""
    assert "empty password" in p.stderr


def test_unknown_method_is_a_usage_error():
    p = run_stdin("pw\n", "--method", "md5crypt")
    assert p.returncode == 2
    assert "invalid choice" in p.stderr


def test_terminal_asks_twice_and_prints_only_the_hash():
    rc, stdout, screen = run_on_terminal("tty-secret", "tty-secret")
    assert rc == 0, screen
    assert "Password: " in screen and "Retype password: " in screen
    assert "tty-secret" not in screen  # no echo
    assert verifies("tty-secret", stdout.strip())


def test_terminal_mismatch_asks_again():
    rc, stdout, screen = run_on_terminal("one", "two", "three", "three", args=("--method", "sha512crypt"))
    assert rc == 0, screen
    assert "do not match; try again" in screen
    assert verifies("three", stdout.strip())


def test_terminal_three_mismatches_exit_1():
    answers = [f"pw-{n}" for n in range(6)]
    rc, stdout, screen = run_on_terminal(*answers)
    assert rc == 1
    assert stdout == ""
    assert "did not match (3 tries)" in screen
    assert not any(answer in screen for answer in answers)


# --- the warning in validate and pine-transpile ----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "$y$j9T$aUmgEDoFIDPhGxEe2FUjc/$x",
        "$6$rounds=4096$saltsalt$hash",
        "$6$x",  # a prefix is enough: the rule looks for plain text, it does not parse hashes
        "$2b$12$abc",
        "$gy$j9T$a$b",
        "$md5,rounds=5000$salt$hash",
        "$superSecretPasswordHash.",  # a placeholder in a real config; ignition-validate is silent too
        "$9$x$y",  # a method libxcrypt may not know is still no plain text
        "abcdefghij./0",  # DES crypt
        "!$6$salt$hash",  # locked
        "!",
        "!!",
        "*",
        "*LK*",
        "",
    ],
)
def test_crypt_hashes_and_lock_forms_pass(value):
    assert is_crypt_hash(value)
    assert findings({"passwd": {"users": [{"name": "u", "passwordHash": value}]}}) == set()


@pytest.mark.parametrize("value", ["hunter2", "y$j9T$a$b", "x", "correct horse battery", "abcdefghij./"])
def test_plain_text_is_a_warning_with_its_place(value):
    cfg = {
        "passwd": {
            "users": [{"name": "ok", "passwordHash": "$6$a$b"}, {"name": "u", "passwordHash": value}],
            "groups": [{"name": "g", "passwordHash": value}],
        }
    }
    assert findings(cfg) == {
        warn("$.passwd.users.1.passwordHash", WARN_NOT_CRYPT),
        warn("$.passwd.groups.0.passwordHash", WARN_NOT_CRYPT),
    }


def test_validate_prints_the_warning_with_line_and_column_and_no_secret(tmp_path):
    config = tmp_path / "c.ign"
    config.write_text(
        '{"ignition": {"version": "3.4.0"},\n"passwd": {"users": [{"name": "u", "passwordHash": "hunter2"}]}}'
    )
    p = subprocess.run(
        [sys.executable, "-m", "pineinstall", "validate", str(config)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert p.returncode == 0  # a warning, not an error
    assert p.stdout == f"warning at $.passwd.users.0.passwordHash, line 2 col 52: {WARN_NOT_CRYPT}\n"


def test_pine_transpile_warns_too_and_strict_fails():
    bu = "variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: core\n      password_hash: hunter2\n"
    cmd = [sys.executable, "-m", "butane_like"]
    p = subprocess.run(
        cmd, input=bu, capture_output=True, text=True, env={**ENV, "NO_COLOR": "1"}, timeout=60
    )
    assert p.returncode == 0
    assert "warning[$.passwd.users.0.password_hash]" in p.stderr
    assert "<stdin>:6:22" in p.stderr
    assert WARN_NOT_CRYPT in p.stderr
    strict = subprocess.run([*cmd, "--strict"], input=bu, capture_output=True, text=True, env=ENV, timeout=60)
    assert strict.returncode == 1
