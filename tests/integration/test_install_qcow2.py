"""``pineinstall disk.qcow2 CONFIG …``: a qcow2 DEST (by extension or ``--format qcow2``), read back
with qemu-img; and the root password offer, answered on a real pseudo-terminal."""

from __future__ import annotations

import ctypes
import io
import json
import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

from pineinstall.install import main

from .image_helpers import MiB, installed_root, make_pine_image, seed_tree, sh

NEEDED = ("sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck", "blkid", "qemu-img")
pytestmark = pytest.mark.needs(*NEEDED)

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "c0rrect horse"


def config(**passwd: object) -> dict:
    return {
        "ignition": {"version": "3.4.0"},
        "passwd": passwd or {"users": [{"name": "pine"}]},
        "storage": {
            "files": [
                {
                    "path": "/etc/hostname",
                    "overwrite": True,
                    "contents": {"source": "data:,q-node"},
                    "mode": 420,
                }
            ]
        },
    }


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("qcow2-image")
    return make_pine_image(d / "pine.raw", tree=seed_tree(d / "tree"))


def write_cfg(tmp: Path, cfg: dict) -> Path:
    p = tmp / "cfg.ign"
    p.write_text(json.dumps(cfg))
    return p


def run(*argv: str | os.PathLike[str]) -> tuple[int, str]:
    err = io.StringIO()
    rc = main([os.fspath(a) for a in argv], stdin=io.BytesIO(b""), stdout=io.StringIO(), stderr=err)
    return rc, err.getvalue()


def qemu_info(path: Path) -> dict:
    return json.loads(sh("qemu-img", "info", "--output=json", path).stdout)


def back_to_raw(path: Path, tmp: Path) -> Path:
    raw = tmp / "back.raw"
    sh("qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw)
    return raw


@pytest.mark.parametrize("how", ["extension", "--format"])
def test_writes_a_qcow2(image: Path, tmp_path: Path, how: str) -> None:
    dest = tmp_path / ("disk.qcow2" if how == "extension" else "disk.img")
    extra = ["--format", "qcow2"] if how == "--format" else []
    rc, err = run(dest, write_cfg(tmp_path, config()), "--image-file", image, "--size", "128M", *extra)
    assert rc == 0, err
    info = qemu_info(dest)
    assert info["format"] == "qcow2" and info["virtual-size"] == 128 * MiB
    assert os.path.getsize(dest) < 64 * MiB  # sparse raw -> qcow2 keeps only the data
    assert f"wrote {dest} (qcow2, " in err
    assert {p.name for p in tmp_path.iterdir()} == {dest.name, "cfg.ign"}  # no work directory left
    raw = back_to_raw(dest, tmp_path)
    table = sh("sfdisk", "--json", raw).stdout
    parts = json.loads(table)["partitiontable"]["partitions"]
    assert [p.get("name") for p in parts] == ["BIOS-BOOT", "root"]
    assert parts[1]["start"] + parts[1]["size"] > 120 * MiB // 512  # grown to the 128 MiB disk
    with installed_root(raw, tmp_path) as root:
        assert (root / "etc" / "hostname").read_text() == "q-node"
        assert "pine:x:1000:" in (root / "etc" / "passwd").read_text()


def test_a_failed_run_leaves_the_old_file_and_no_half_qcow2(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "disk.qcow2"
    dest.write_bytes(b"the old disk")
    bad = config()
    bad["storage"]["files"].append({"path": "/etc/x", "contents": {"source": "http://127.0.0.1:9/x"}})
    rc, err = run(dest, write_cfg(tmp_path, bad), "--image-file", image, "--yes", "--fetch-retries", "0")
    assert rc == 1, err
    assert dest.read_bytes() == b"the old disk"
    assert {p.name for p in tmp_path.iterdir()} == {"disk.qcow2", "cfg.ign"}
    # Without --yes and no terminal to ask, an existing qcow2 is not replaced.
    rc, err = run(dest, write_cfg(tmp_path, config()), "--image-file", image)
    assert rc == 1 and "not replaced (pass --yes to replace it)" in err
    assert dest.read_bytes() == b"the old disk"


def test_format_raw_keeps_a_qcow2_name_raw(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "disk.qcow2"
    rc, err = run(dest, write_cfg(tmp_path, config()), "--image-file", image, "--format", "raw")
    assert rc == 0, err
    assert qemu_info(dest)["format"] == "raw"


# --- the root password offer, on a real terminal --------------------------------------------------------


def on_terminal(argv: list[str], answers: list[tuple[bytes, str]]) -> tuple[int, str]:
    """Run ``pineinstall install argv`` on a pseudo-terminal; for each (prompt, answer) wait for the
    prompt, then type the answer. (exit status, what the terminal showed)."""
    pid, tty = pty.fork()
    if pid == 0:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        os.execve(sys.executable, [sys.executable, "-m", "pineinstall.cli", "install", *argv], env)
    screen = b""

    def read_until(marker: bytes | None) -> None:
        nonlocal screen
        start = len(screen)
        deadline = time.monotonic() + 300
        while marker is None or marker not in screen[start:]:
            if not select.select([tty], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise AssertionError(f"no {marker!r} on the terminal: {screen!r}")
            try:
                chunk = os.read(tty, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                if marker is None:
                    return
                raise AssertionError(f"terminal closed before {marker!r}: {screen!r}")
            screen += chunk

    for prompt, answer in answers:
        read_until(prompt)
        os.write(tty, answer.encode() + b"\n")
    read_until(None)
    _, status = os.waitpid(pid, 0)
    os.close(tty)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def system_crypt(password: str, setting: str) -> str | None:
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    return out.decode() if out else None


def root_hash(disk: Path, tmp: Path) -> str:
    with installed_root(disk, tmp) as root:
        line = next(ln for ln in (root / "etc" / "shadow").read_text().splitlines() if ln.startswith("root:"))
    return line.split(":")[1]


@pytest.mark.real_processes
def test_the_root_password_is_offered_on_a_terminal(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "disk.img"
    argv = [str(dest), str(write_cfg(tmp_path, config())), "--image-file", str(image), "--size", "96M"]
    rc, screen = on_terminal(
        argv, [(b"Set one now? [y/N] ", "y"), (b"Password: ", PASSWORD), (b"Retype password: ", PASSWORD)]
    )
    assert rc == 0, screen
    assert "root password: set from the prompt (yescrypt)" in screen and PASSWORD not in screen
    hashed = root_hash(dest, tmp_path)
    assert hashed.startswith("$y$") and system_crypt(PASSWORD, hashed) == hashed


@pytest.mark.real_processes
def test_no_offer_with_a_root_password_or_no_root_password(image: Path, tmp_path: Path) -> None:
    hashed = "$6$salt$" + "x" * 86
    cfg = config(users=[{"name": "root", "passwordHash": hashed}])
    dest = tmp_path / "disk.img"
    argv = [str(dest), str(write_cfg(tmp_path, cfg)), "--image-file", str(image)]
    rc, screen = on_terminal(argv, [])
    assert rc == 0, screen
    assert "Set one now" not in screen and root_hash(dest, tmp_path) == hashed
    dest.unlink()
    argv = [str(dest), str(write_cfg(tmp_path, config())), "--image-file", str(image), "--no-root-password"]
    rc, screen = on_terminal(argv, [])
    assert rc == 0, screen
    assert "Set one now" not in screen and root_hash(dest, tmp_path) == "*"


def test_json_names_the_qcow2(image: Path, tmp_path: Path) -> None:
    dest = tmp_path / "disk.qcow2"
    out = io.StringIO()
    argv = [str(dest), str(write_cfg(tmp_path, config())), "--image-file", str(image), "--json"]
    rc = main(argv, stdin=io.BytesIO(b""), stdout=out, stderr=io.StringIO())
    assert rc == 0
    installed = [e for e in map(json.loads, out.getvalue().splitlines()) if e.get("event") == "installed"]
    assert [(e["dest"], e["format"]) for e in installed] == [(str(dest), "qcow2")]
