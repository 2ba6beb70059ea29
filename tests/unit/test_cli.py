"""The pineinstall command's dispatch: subcommands, the coreos-installer style short form, usage errors."""

import subprocess
import sys

import pytest

from pineinstall import cli


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pineinstall.cli", *args], input=stdin, capture_output=True, timeout=60
    )


@pytest.mark.real_processes
def test_validate_reads_stdin_and_reports_on_stdout_with_exit_1():
    result = run(
        "validate", "-", stdin=b'{"ignition": {"version": "3.2.0"}, "storage": {"files": [{"path": "x"}]}}'
    )
    assert result.returncode == 1
    assert result.stdout.decode().startswith("error at $.storage.files.0.path, line 1 col ")


@pytest.mark.real_processes
def test_validate_valid_config_exits_0_silently():
    result = run("validate", "-", stdin=b'{"ignition": {"version": "3.6.0"}}')
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


@pytest.mark.real_processes
def test_validate_usage_errors_exit_2():
    assert run("validate").returncode == 2
    assert run("validate", "a", "b").returncode == 2
    assert run("validate", "--bogus").returncode == 2


@pytest.mark.real_processes
def test_validate_unreadable_file_is_an_error_naming_it(tmp_path):
    result = run("validate", str(tmp_path / "missing.ign"))
    assert result.returncode == 1 and b"missing.ign" in result.stderr


@pytest.mark.real_processes
def test_unknown_subcommand_is_a_usage_error():
    result = run("frobnicate")
    assert result.returncode == 2 and b"unknown subcommand 'frobnicate'" in result.stderr


@pytest.mark.parametrize(
    ("arg", "dest"),
    [
        ("/dev/sda", True),
        ("disk.img", True),
        ("./x", True),
        ("images/pine", True),
        ("frobnicate", False),
        ("-y", False),
    ],
)
def test_short_form_recognises_destinations(arg, dest):
    assert cli._looks_like_dest(arg) is dest


@pytest.mark.real_processes
def test_validate_yaml_reports_at_yaml_lines_on_stdout(tmp_path):
    cfg = tmp_path / "node.bu"
    cfg.write_text("variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: etc/motd\n  foo: 1\n")
    result = run("validate", str(cfg))
    assert result.returncode == 1
    assert result.stdout.decode().splitlines() == [
        "warning at $.storage.foo, line 6 col 3: unused key foo",
        "error at $.storage.files.0.path, line 5 col 13: path not absolute",
    ]


@pytest.mark.real_processes
def test_validate_yaml_from_stdin_and_files_dir(tmp_path):
    (tmp_path / "motd.txt").write_text("hi\n")
    yaml = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        local: motd.txt\n"
    assert run("validate", "-", stdin=yaml).returncode == 1  # stdin: no directory to read local files from
    result = run("validate", "--files-dir", str(tmp_path), "-", stdin=yaml)
    assert (result.returncode, result.stdout) == (0, b""), result.stderr


@pytest.mark.real_processes
@pytest.mark.parametrize("data", [b"", b"[]", b"garbage"])
def test_validate_non_yaml_garbage_keeps_its_located_json_error(data):
    result = run("validate", "-", stdin=data)
    assert result.returncode == 1 and result.stdout.startswith((b"error at line 1 col ", b"error at $, line 1 col "))
