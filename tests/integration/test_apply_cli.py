"""`pineinstall apply` as a command: stdin, --dry-run, --json, exit statuses, stderr vs stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .ignition_ref import seed_root, snapshot

PINEINSTALL = [sys.executable, "-m", "pineinstall.cli"]
CONFIG = {
    "ignition": {"version": "3.4.0"},
    "storage": {
        "files": [{"path": "/etc/hostname", "contents": {"source": "data:,pine%0A"}, "mode": 420}],
        "links": [{"path": "/etc/localtime", "target": "/usr/share/zoneinfo/UTC"}],
    },
}


def pine(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PINEINSTALL, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_apply_from_stdin_logs_numbered_timed_ops(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    proc = pine("apply", "--root", str(root), "-", stdin=json.dumps(CONFIG).encode())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # humans read stderr
    assert (root / "etc" / "hostname").read_text() == "pine\n"
    assert "op(1): [started]" in proc.stderr and " ms)" in proc.stderr


def test_json_result_on_stdout(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    cfg = tmp_path / "c.ign"
    cfg.write_text(json.dumps(CONFIG))
    proc = pine("apply", "--json", "--root", str(root), str(cfg))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["created"] == {"file": 1, "link": 1}
    assert out["result"].endswith("etc/.pine-result.json")


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    before = snapshot(root, exclude=())
    cfg = tmp_path / "c.ign"
    cfg.write_text(json.dumps(CONFIG))
    proc = pine("apply", "--dry-run", "--root", str(root), str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "file: /etc/hostname -> " in proc.stdout
    assert snapshot(root, exclude=()) == before


def test_invalid_config_exits_1_with_the_place(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    before = snapshot(root, exclude=())
    bad = {"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "relative"}]}}
    proc = pine("apply", "--root", str(root), "-", stdin=json.dumps(bad).encode())
    assert proc.returncode == 1
    assert "error at $.storage.files.0.path, line 1 col" in proc.stderr
    assert snapshot(root, exclude=()) == before


def test_refusal_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    (root / "etc" / "hostname").write_text("other\n")
    proc = pine("apply", "--root", str(root), "-", stdin=json.dumps(CONFIG).encode())
    assert proc.returncode == 1
    assert 'apply failed: error creating file "/etc/hostname": A file exists there already' in proc.stderr


def test_usage_errors(tmp_path: Path) -> None:
    assert pine("apply").returncode == 2
    assert pine("apply", "--root", str(tmp_path / "missing"), "-", stdin=b"{}").returncode == 1
    proc = pine("apply", "--root", str(tmp_path), str(tmp_path / "no-such.ign"))
    assert proc.returncode == 1 and "cannot read" in proc.stderr


def test_quiet_keeps_errors(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    ok = pine("apply", "--quiet", "--root", str(root), "-", stdin=json.dumps(CONFIG).encode())
    assert ok.returncode == 0 and ok.stderr == ""
    again = json.loads(json.dumps(CONFIG))
    again["storage"]["files"][0]["contents"]["source"] = "data:,changed"
    bad = pine("apply", "--quiet", "--root", str(root), "-", stdin=json.dumps(again).encode())
    assert bad.returncode == 1
    assert bad.stderr.startswith("ERROR") and "A file exists there already" in bad.stderr


def test_yaml_config_is_transpiled_first_with_its_directory_for_local_files(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    (tmp_path / "motd.txt").write_text("welcome\n")
    cfg = tmp_path / "node.bu"
    cfg.write_text(
        "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
        "    - path: /etc/motd\n      contents:\n        local: motd.txt\n"
    )
    proc = pine("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert (root / "etc" / "motd").read_text() == "welcome\n"
    assert "YAML transpiled with pine-transpile" in proc.stderr


def test_yaml_error_names_its_line_and_touches_nothing(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    before = snapshot(root, exclude=())
    cfg = tmp_path / "node.bu"
    cfg.write_text("variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: etc/motd\n")
    proc = pine("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1
    assert "node.bu:5:13" in proc.stderr and "path not absolute" in proc.stderr, proc.stderr
    assert snapshot(root, exclude=()) == before


def test_files_dir_names_where_local_files_are(tmp_path: Path) -> None:
    root = seed_root(tmp_path / "root")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "motd.txt").write_text("from files-dir\n")
    cfg = tmp_path / "node.bu"
    cfg.write_text(
        "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
        "    - path: /etc/motd\n      contents:\n        local: motd.txt\n"
    )
    proc = pine("apply", "--root", str(root), str(cfg))
    assert proc.returncode == 1 and "motd.txt" in proc.stderr  # not in the config's own directory
    proc = pine("apply", "--root", str(root), "--files-dir", str(tmp_path / "files"), str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert (root / "etc" / "motd").read_text() == "from files-dir\n"
