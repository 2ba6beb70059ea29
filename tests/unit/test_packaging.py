"""The wheel carries the schemas, and the installed package finds them without the source tree."""

import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), ROOT],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pineinstall-*.whl")
    return path


def test_wheel_ships_every_ignition_schema(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for minor in range(7):
        assert f"pineinstall/schemas/ignition/3.{minor}.0.json" in names


@pytest.mark.real_processes
def test_installed_wheel_validates_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    config = tmp_path / "c.ign"
    config.write_text('{"ignition": {"version": "3.6.0"}, "storage": {"files": [{"path": "rel"}]}}')
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from pineinstall.cli import main; sys.exit(main())", "validate", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "error at $.storage.files.0.path, line 1 col " in result.stdout
    # It really ran from the installed copy, not from this checkout.
    probe = subprocess.run(
        [sys.executable, "-c", "import pineinstall; print(pineinstall.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.startswith(str(target))
