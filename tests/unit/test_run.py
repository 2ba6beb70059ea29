"""pineinstall.run: argv only, clean environment, stdin closed, secrets redacted, CommandError."""

from __future__ import annotations

import os

import pytest

from pineinstall.run import CommandError, redact, run


def test_argv_only() -> None:
    with pytest.raises(TypeError):
        run("echo hi")  # type: ignore[arg-type]


@pytest.mark.real_processes
def test_clean_environment_and_closed_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINE_SECRET_LEAK", "x")
    out = run(["sh", "-c", 'echo "$LANG|${PINE_SECRET_LEAK-unset}"; cat; echo "rc=$?"']).stdout.decode()
    assert out.splitlines() == ["C|unset", "rc=0"]  # cat read EOF at once: stdin is /dev/null


@pytest.mark.real_processes
def test_input_is_passed() -> None:
    assert run(["cat"], input=b"data").stdout == b"data"


@pytest.mark.real_processes
def test_command_error_is_redacted() -> None:
    with pytest.raises(CommandError) as exc:
        run(["sh", "-c", "echo bad hunter2 >&2; exit 3", "hunter2"], secrets=["hunter2"])
    err = exc.value
    assert err.rc == 3
    assert "hunter2" not in str(err) and "hunter2" not in err.stderr and "hunter2" not in " ".join(err.argv)
    assert "<redacted>" in err.stderr


@pytest.mark.real_processes
def test_missing_tool_is_a_command_error() -> None:
    with pytest.raises(CommandError) as exc:
        run(["/nonexistent/tool-" + str(os.getpid())])
    assert exc.value.rc == 127


@pytest.mark.real_processes
def test_check_false_returns_the_status() -> None:
    assert run(["sh", "-c", "exit 4"], check=False).returncode == 4


def test_redact() -> None:
    assert redact("a s3cret b s3cret", ["s3cret", ""]) == "a <redacted> b <redacted>"
