"""The README's boot command, exactly as README.md gives it, boots the demo image to a login prompt.

The command is read from README.md (the backquoted ``qemu-system-x86_64 … demo/demo.img …``) and run
in a directory holding ``demo/demo.img``: a copy of the demo image that ``scripts/demo`` builds (the
same transpile and install of examples/pine-host.bu onto the raw test image), cached by its inputs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.images import ensure_image  # noqa: E402
from iso.lib import cache  # noqa: E402
from iso.lib.disk import copy_sparse  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root (loop devices)")

BOOT_TIMEOUT = 900  # TCG on 2 shared cores: 1-4 minutes seen for this image
# The login prompt, or the two ways the image says it will not get there (no root disk found, panic):
# those end the run at once instead of at the timeout.
LOGIN = re.compile(r"[\w.-]+ login: ")  # agetty's prompt on the serial console
STOP = re.compile(rf"{LOGIN.pattern}|PINE-INITRAMFS-ERROR[^\n]*|Kernel panic[^\n]*")


def readme_boot_command() -> list[str]:
    """The README's command that boots the demo image (it may wrap over lines inside its backquotes)."""
    text = (REPO / "README.md").read_text()
    found = re.findall(r"`(qemu-system-x86_64\s[^`]*demo/demo\.img[^`]*)`", text)
    assert len(found) == 1, f"README.md: expected one qemu command for demo/demo.img, found {found}"
    return shlex.split(" ".join(found[0].split()))


def _demo_inputs() -> list[Path]:
    code = [p for pkg in ("pineinstall", "butane_like") for p in sorted((REPO / pkg).rglob("*.py"))]
    files = sorted(p for p in (REPO / "examples" / "files").rglob("*") if p.is_file())
    return [REPO / "examples" / "pine-host.bu", *files, *code]


def demo_image() -> Path:
    """scripts/demo's demo.img, built once per set of inputs (the image, the example, the code)."""
    raw = ensure_image("raw")
    h = hashlib.sha256(raw.directory.name.encode())
    for path in _demo_inputs():
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    directory = cache.cache_dir("demo") / h.hexdigest()[:16]

    def build(tmp: Path) -> dict:
        # The commands of scripts/demo, with this interpreter's modules for its .venv/bin scripts.
        ign = tmp / "pine-host.ign"
        steps = [
            ["butane_like", "--strict", "--files-dir", "examples/files", "examples/pine-host.bu", "-o", str(ign)],
            ["pineinstall", "validate", str(ign)],
            ["pineinstall", "install", str(tmp / "demo.img"), str(ign), "--image-file", str(raw.path),
             "--size", "4G", "--append-karg", "pine.demo=1", "--yes"],
        ]  # fmt: skip
        for module, *args in steps:
            done = subprocess.run(
                [sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{module} {args}: {done.stderr}"
        return {"image": raw.directory.name}

    cache.cached_build(directory, build, keep=["demo.img"])
    return directory / "demo.img"


def test_readme_boot_command_reaches_a_login_prompt(tmp_path: Path) -> None:
    from harness import qemu_binary, run_command_line

    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    argv = readme_boot_command()
    (tmp_path / "demo").mkdir()
    copy_sparse(demo_image(), tmp_path / "demo" / "demo.img")  # the command may write to its disk
    r = run_command_line(argv, cwd=tmp_path, until=STOP, timeout=BOOT_TIMEOUT)
    print(f"README boot command: {r.seconds} s to {'the login prompt' if r.marker_seen else 'exit'}")
    tail = r.serial[-3000:]
    assert r.marker_seen, f"QEMU exited before a login prompt: {shlex.join(argv)}\n{tail}"
    stopped_at = STOP.search(r.serial)
    assert stopped_at and LOGIN.fullmatch(stopped_at.group()), f"{shlex.join(argv)} did not boot:\n{tail}"
