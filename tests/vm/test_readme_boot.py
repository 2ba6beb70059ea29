"""The demo, as README.md tells a user to run it: ``scripts/demo`` installs the Pine image with
examples/pine-host.bu onto demo/demo.img, README's boot command (run exactly as README.md gives it)
boots that disk to a login prompt, and README's SSH command logs in through the forwarded port with
the demo's key and reads back the host.

``scripts/demo`` runs into a cache directory (PINE_DEMO_OUT), keyed by its inputs (the Pine image, the
example, the script and the code), so the install happens once per change. One boot (~1-3 min
under TCG).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from iso.images.pine import ensure_pine_image  # noqa: E402
from iso.lib import cache  # noqa: E402
from iso.lib.disk import copy_sparse  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root (loop devices)")

BOOT_TIMEOUT = 900  # TCG on 2 shared cores: 1-3 minutes seen for the Pine image
# The login prompt, or the two ways the image says it will not get there (no root disk found, panic):
# those end the wait at once instead of at the timeout.
LOGIN = re.compile(r"[\w.-]+ login: ")  # getty's prompt on the serial console
STOP = re.compile(rf"{LOGIN.pattern}|PINE-INITRAMFS-ERROR[^\n]*|Kernel panic[^\n]*")
HOSTNAME = "pine-01.example.net"  # examples/pine-host.bu


def readme_command(pattern: str, what: str) -> list[str]:
    """The one backquoted README.md command matching pattern (it may wrap over lines)."""
    text = (REPO / "README.md").read_text()
    found = re.findall(rf"`({pattern}[^`]*)`", text)
    assert len(found) == 1, f"README.md: expected one {what}, found {found}"
    return shlex.split(" ".join(found[0].split()))


def readme_boot_command() -> list[str]:
    return readme_command(r"qemu-system-x86_64\s[^`]*demo/demo\.img", "qemu command for demo/demo.img")


def readme_ssh_command() -> list[str]:
    return readme_command(r"ssh\s[^`]*demo/id_ed25519", "ssh command with demo/id_ed25519")


def _demo_inputs() -> list[Path]:
    code = [p for pkg in ("pineinstall", "butane_like") for p in sorted((REPO / pkg).rglob("*.py"))]
    files = sorted(p for p in (REPO / "examples" / "files").rglob("*") if p.is_file())
    return [REPO / "scripts" / "demo", REPO / "examples" / "pine-host.bu", *files, *code]


def demo() -> tuple[Path, dict]:
    """scripts/demo's output directory (demo.img, id_ed25519) and manifest (what the script printed),
    built once per set of inputs."""
    image = ensure_pine_image()
    h = hashlib.sha256(image.path.parent.name.encode())
    for path in _demo_inputs():
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    directory = cache.cache_dir("demo") / f"pine-{h.hexdigest()[:16]}"

    def build(tmp: Path) -> dict:
        env = {**os.environ, "PINE_DEMO_OUT": str(tmp), "PINE_DEMO_PYTHON": sys.executable,
               "PINE_DEMO_NO_SETUP": "1"}  # fmt: skip
        done = subprocess.run([REPO / "scripts" / "demo"], env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"scripts/demo failed:\n{done.stderr[-4000:]}"
        return {"image": image.path.parent.name, "stdout": done.stdout, "stderr": done.stderr}

    manifest = cache.cached_build(directory, build, keep=["demo.img", "id_ed25519", "id_ed25519.pub"])
    return directory, manifest


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_demo_then_readme_boot_and_login(tmp_path: Path) -> None:
    from harness import qemu_binary, running_command_line
    from harness.ssh import OPTIONS

    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    boot, login = readme_boot_command(), readme_ssh_command()
    built, manifest = demo()
    printed = manifest["stdout"]
    assert f"hostname:        {HOSTNAME}" in printed, printed
    assert "admin's keys:    1 in /home/admin/.ssh/authorized_keys" in printed, printed
    assert "myapp -> /etc/init.d/myapp" in printed and "sshd -> /etc/init.d/sshd" in printed, printed

    (tmp_path / "demo").mkdir()
    copy_sparse(built / "demo.img", tmp_path / "demo" / "demo.img")  # the command may write to its disk
    shutil.copy(built / "id_ed25519", tmp_path / "demo" / "id_ed25519")
    os.chmod(tmp_path / "demo" / "id_ed25519", 0o600)
    port = int(login[login.index("-p") + 1])
    assert port_is_free(port), (
        f"127.0.0.1:{port} is taken on this machine: README's command cannot forward it"
    )
    # README's ssh line with the options a script needs (no prompt, no known_hosts) and a command.
    ssh = [login[0], *OPTIONS, *login[1:]]
    probe = 'echo "$(hostname) $(id -un) $(test -e /run/openrc/started/myapp && echo myapp)"'
    with running_command_line(boot, cwd=tmp_path) as guest:
        while not STOP.search(guest.serial()) and not guest.exited() and guest.elapsed() < BOOT_TIMEOUT:
            time.sleep(0.5)
        console = guest.serial()
        prompt = STOP.search(console)
        assert prompt and LOGIN.fullmatch(prompt.group()), (
            f"{shlex.join(boot)} did not boot:\n{console[-3000:]}"
        )
        print(f"README boot command: login prompt after {guest.elapsed():.1f} s")
        got, last = None, ""
        while guest.elapsed() < BOOT_TIMEOUT and not guest.exited():
            try:
                r = subprocess.run([*ssh, probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                continue
            if r.returncode == 0:
                got = r.stdout.split()
                break
            last = r.stderr
            time.sleep(2)
        print(f"README ssh command: answered after {guest.elapsed():.1f} s")
        console = guest.serial()
    assert got == [HOSTNAME, "admin", "myapp"], f"{shlex.join(ssh)}: {got} {last}\n{console[-3000:]}"
