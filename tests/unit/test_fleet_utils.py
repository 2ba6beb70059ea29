"""The Ansible collection's shared logic (ansible/plugins/module_utils/fleet.py): the config check on
the controller with the real transpiler, the result record that says a host is Pine already, the
``pineinstall hijack`` command line. Plain Python: these run without ansible-core."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

FLEET = Path(__file__).resolve().parents[2] / "ansible" / "plugins" / "module_utils" / "fleet.py"


def _load():
    spec = importlib.util.spec_from_file_location("pine_fleet_utils", FLEET)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fleet = _load()

BUTANE = """variant: fcos
version: 1.5.0
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      contents:
        inline: web1
"""


def test_butane_becomes_checked_ignition() -> None:
    data, warnings = fleet.to_ignition(BUTANE)
    config = json.loads(data)
    assert config["ignition"]["version"] == "3.4.0"
    assert config["storage"]["files"][0]["path"] == "/etc/hostname"
    assert warnings == []


def test_an_error_names_its_yaml_line_and_column() -> None:
    with pytest.raises(fleet.FleetError) as err:
        fleet.to_ignition(BUTANE.replace("/etc/hostname", "etc/hostname"))
    assert str(err.value) == "error at $.storage.files.0.path, line 5 col 13: path not absolute"


def test_a_yaml_syntax_error_shows_the_place() -> None:
    with pytest.raises(fleet.FleetError) as err:
        fleet.to_ignition("variant: fcos\nversion: 1.5.0\npasswd: [\n")
    assert "line 3" in str(err.value)
    assert "the problem is at line 4, column 1" in str(err.value)


def test_warnings_are_returned_with_their_place() -> None:
    data, warnings = fleet.to_ignition(BUTANE.replace("      mode: 0644\n", "      mode: 0644\n      colour: red\n"))
    assert json.loads(data)["storage"]["files"][0]["mode"] == 0o644
    assert warnings == ["warning at $.storage.files.0.colour, line 7 col 7: unused key colour"]


def test_ignition_json_is_checked_as_it_is() -> None:
    text = '{"ignition": {"version": "3.3.0"}}'
    assert fleet.to_ignition(text) == (text.encode(), [])
    with pytest.raises(fleet.FleetError) as err:
        fleet.to_ignition('{"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": "x"}]}}')
    assert "error at $.storage.files.0.path, line 1 col " in str(err.value)


def test_local_files_are_read_from_files_dir(tmp_path: Path) -> None:
    (tmp_path / "motd").write_text("hello\n")
    text = BUTANE.replace("inline: web1", "local: motd")
    data, _ = fleet.to_ignition(text, files_dir=str(tmp_path))
    assert "data:" in json.loads(data)["storage"]["files"][0]["contents"]["source"]
    with pytest.raises(fleet.FleetError):
        fleet.to_ignition(text)  # no files_dir: local files are refused


def test_the_record_of_a_provisioned_host(tmp_path: Path) -> None:
    record = {"provisioningDate": "2026-12-01T10:00:00Z", "userConfigProvided": True, "configHash": "ab"}
    assert fleet.is_provisioned(fleet.parse_record(json.dumps(record)))
    assert not fleet.is_provisioned(fleet.parse_record(json.dumps({**record, "userConfigProvided": False})))
    for text in (None, "", "not json", "[1]", "{}"):
        assert not fleet.is_provisioned(fleet.parse_record(text))


def test_hijack_command_line() -> None:
    argv = fleet.hijack_argv(
        "root@203.0.113.7", "/tmp/c.ign", image_url="https://x/p.raw.xz", image_sha256="ab" * 32,
        port=2222, identity="/k", dry_run=True, executable="pineinstall",
    )
    assert argv == [
        "pineinstall", "hijack", "root@203.0.113.7", "/tmp/c.ign", "--image-url", "https://x/p.raw.xz",
        "--image-sha256", "ab" * 32, "--port", "2222", "--identity", "/k", "--dry-run",
    ]
    argv = fleet.hijack_argv("h", "c", image_file="/p.raw", executable="pi")
    assert argv == ["pi", "hijack", "h", "c", "--image-file", "/p.raw", "--yes"]
    for images in ({}, {"image_file": "a", "image_url": "b"}):
        with pytest.raises(fleet.FleetError):
            fleet.hijack_argv("h", "c", **images)


def test_pineinstall_of_the_controller_defaults_to_the_one_beside_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert fleet.controller_pineinstall() == os.path.join(os.path.dirname(sys.executable), "pineinstall")
