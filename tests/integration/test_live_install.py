"""``pineinstall live-install`` end to end: a kernel command line file, a scratch directory standing in
for the ISO medium (with a real embed area), a real image, loop devices and disk-image files as the
target, a real HTTP server on 127.0.0.1 for the config."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pineinstall.providers.embedded import encode

from .httpserver import Answer, serve
from .image_helpers import MiB, installed_root, loop, make_pine_image, seed_tree, sh

NEEDED = ("sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck", "blkid", "wipefs")
pytestmark = pytest.mark.needs(*NEEDED)

SECRET = "$6$rounds=4096$live-install-test$notARealHashButSecretEnough"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlive test@example"
# with the console block the installer rewrites from the live command line's console=
GRUB_CFG = """set timeout=1
# CONSOLE-SETTINGS-START
# CONSOLE-SETTINGS-END
menuentry 'Pine' {
	linux /boot/vmlinuz-6.1 root=UUID=0000 rw console=tty0
	initrd /boot/initrd.img-6.1
}
"""


def config(hostname: str = "live-node") -> bytes:
    return json.dumps(
        {
            "ignition": {"version": "3.4.0"},
            "passwd": {"users": [{"name": "pine", "passwordHash": SECRET, "sshAuthorizedKeys": [KEY]}]},
            "storage": {
                "files": [
                    {
                        "path": "/etc/hostname",
                        "overwrite": True,
                        "contents": {"source": f"data:,{hostname}"},
                        "mode": 420,
                    }
                ]
            },
        }
    ).encode()


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Pine-shaped raw image: GPT, 1 BIOS-BOOT (1 MiB), 2 ext4 labelled root."""
    d = tmp_path_factory.mktemp("live-image")
    return make_pine_image(d / "pine.raw", tree=seed_tree(d / "tree", GRUB_CFG))


class Live:
    """A scratch medium, command line and run directory for one live-install run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.medium = tmp / "medium"
        (self.medium / "pine").mkdir(parents=True)
        self.run_dir = tmp / "run"
        self.cmdline = tmp / "cmdline"
        self.cmdline.write_text("BOOT_IMAGE=/live/vmlinuz boot=live components\n")

    def embed(
        self,
        cfg: bytes,
        dest: str | None = None,
        after: str | None = None,
        image: str | None = None,
        image_sha256: str | None = None,
    ) -> None:
        (self.medium / "pine" / "embed.bin").write_bytes(encode(cfg, dest, after, image, image_sha256))

    def kargs(self, *args: str) -> None:
        self.cmdline.write_text("BOOT_IMAGE=/live/vmlinuz boot=live components " + " ".join(args) + "\n")

    def run(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "pineinstall.cli", "live-install", "--cmdline", str(self.cmdline)]
        argv += ["--medium", str(self.medium), "--run-dir", str(self.run_dir), "--wait", "0", *extra]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
        )


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stderr.strip().splitlines()[-1]


def sha(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture
def live(tmp_path: Path) -> Live:
    return Live(tmp_path)


def blank_file(path: Path, size: int = 256 * MiB) -> Path:
    sh("truncate", "-s", str(size), path)
    return path


def assert_installed(root: Path, hostname: str = "live-node") -> None:
    assert (root / "etc" / "hostname").read_text() == hostname
    assert "pine:x:1000:" in (root / "etc" / "passwd").read_text()
    assert KEY in (root / "home" / "pine" / ".ssh" / "authorized_keys").read_text()
    assert SECRET in (root / "etc" / "shadow").read_text()


# --- no target: the instructions ---------------------------------------------------------------------


def test_no_target_prints_how_to_install(live: Live) -> None:
    proc = live.run()
    assert proc.returncode == 0
    for text in ("lsblk", "curl -o cfg.ign", "scp ", "pineinstall /dev/sdX cfg.ign --image-url"):
        assert text in proc.stderr
    assert "--write-config" not in proc.stderr  # nothing embedded
    assert last_line(proc) == "pine-live-install: nothing to do"
    assert proc.stdout == ""


def test_embedded_config_without_target_can_be_written_out(live: Live, tmp_path: Path) -> None:
    live.embed(config())
    proc = live.run()
    assert proc.returncode == 0 and "--write-config cfg.ign" in proc.stderr
    assert SECRET not in proc.stderr
    out = tmp_path / "cfg.ign"
    proc = live.run("--write-config", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == config()
    assert out.stat().st_mode & 0o777 == 0o600


# --- installs -----------------------------------------------------------------------------------------


def test_embedded_install_onto_a_loop_device(live: Live, image: Path, tmp_path: Path) -> None:
    (live.medium / "images").mkdir()
    os.symlink(image, live.medium / "images" / "pine.raw")
    disk = blank_file(tmp_path / "disk.img")
    with loop(disk) as dev:
        live.embed(config(), dev, "poweroff")
        live.kargs("console=ttyS0,115200n8", "pine.inst.image=images/pine.raw")
        proc = live.run("--no-act")
        assert proc.returncode == 0, proc.stderr
        assert last_line(proc) == "pine-live-install: done"
        err = proc.stderr
        assert f"target {dev} embedded in the ISO" in err
        assert "config embedded in the ISO" in err
        assert f"image {live.medium}/images/pine.raw" in err
        assert "after the install: poweroff, embedded in the ISO" in err
        assert f"{dev} is blank" in err
        assert "would poweroff with systemctl poweroff (else poweroff -f)" in err
        assert SECRET not in err and SECRET not in proc.stdout  # the embedded config is never logged
        # The staged config (0600 in a 0700 dir) is gone after the run.
        assert list(live.run_dir.iterdir()) == []
        with installed_root(dev, tmp_path) as root:
            assert_installed(root)
            grub = (root / "boot" / "grub" / "grub.cfg").read_text()
            assert "console=ttyS0,115200n8" in grub  # the live system's console carried over
            assert "serial --unit=0 --speed=115200" in grub


def test_everything_embedded_nothing_on_the_command_line(live: Live, image: Path, tmp_path: Path) -> None:
    # What 'pineinstall iso embed --config --dest --image --reboot' gives: no kernel argument needed.
    (live.medium / "images").mkdir()
    os.symlink(image, live.medium / "images" / "pine.raw")
    disk = blank_file(tmp_path / "disk.img")
    live.embed(config(), str(disk), "reboot", "/images/pine.raw")
    proc = live.run("--no-act")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert f"target {disk} embedded in the ISO" in err
    assert "image embedded in the ISO" in err and f"image {live.medium}/images/pine.raw" in err
    assert "after the install: reboot, embedded in the ISO" in err
    assert "would reboot with systemctl reboot (else reboot -f)" in err
    assert last_line(proc) == "pine-live-install: done"
    with installed_root(disk, tmp_path) as root:
        assert_installed(root)


def test_kernel_arguments_win_over_the_embedded_values(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img")
    (live.medium / "configs").mkdir()
    (live.medium / "configs" / "node.ign").write_bytes(config("from-karg"))
    live.embed(config("from-embedded"), "/dev/nonexistent-embedded", "reboot", "/nonexistent.raw")
    # An absolute config path means "inside the medium"; the image is a path in the live system.
    live.kargs(f"pine.inst.dest={disk}", "pine.inst.config=/configs/node.ign", f"pine.inst.image={image}",
               "pine.inst.poweroff")  # fmt: skip
    proc = live.run("--no-act")
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert (
        f"target {disk} from pine.inst.dest= (the embedded target /dev/nonexistent-embedded is not used)"
        in err
    )
    assert "config from pine.inst.config= (the embedded config is not used)" in err
    assert f"config {live.medium}/configs/node.ign" in err
    assert "image from pine.inst.image= (the embedded image /nonexistent.raw is not used)" in err
    assert f"image {image}" in err
    assert "poweroff, from pine.inst.poweroff (the embedded choice, reboot, is not used)" in err
    assert "would poweroff" in err and "would reboot" not in err
    with installed_root(disk, tmp_path) as root:
        assert_installed(root, "from-karg")


def test_config_from_http_and_image_sha256(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img")
    with serve() as server:
        url = server.route("/node.ign?token=abc123", Answer(body=config("from-http")))
        live.kargs(f"pine.inst.dest={disk}", f"pine.inst.config={url}", f"pine.inst.image={image}",
                   f"pine.inst.image_sha256={sha(image)}")  # fmt: skip
        proc = live.run()
        assert proc.returncode == 0, proc.stderr
        assert len(server.hits("/node.ign?token=abc123")) == 1
    assert "fetching the config from http://127.0.0.1" in proc.stderr
    assert "abc123" not in proc.stderr  # a URL's query may hold a token
    assert "staying in the live system" in proc.stderr
    assert last_line(proc) == "pine-live-install: done"
    assert list(live.run_dir.iterdir()) == []
    with installed_root(disk, tmp_path) as root:
        assert_installed(root, "from-http")


def test_embedded_image_url_with_its_sha256(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img")
    with serve() as server:
        url = server.route("/pine.raw?token=abc123", Answer(body=image.read_bytes()))
        live.embed(config("from-embedded"), str(disk), None, url, sha(image))
        proc = live.run()
    assert proc.returncode == 0, proc.stderr
    assert "image sha256 embedded in the ISO" in proc.stderr
    assert f"--image-sha256 {sha(image)}" in proc.stderr and "abc123" not in proc.stderr
    with installed_root(disk, tmp_path) as root:
        assert_installed(root, "from-embedded")


def test_image_url_without_a_sha256_says_how_to_give_one(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img", 32 * MiB)
    # The embedded sha256 is that of the embedded image, not of another one given at boot.
    live.embed(config(), str(disk), None, "/pine/other.raw", sha(image))
    live.kargs("pine.inst.image=http://127.0.0.1:9/pine.raw.zst?token=abc123")
    proc = live.run()
    assert proc.returncode == 1
    line = last_line(proc)
    assert line.startswith(
        "pine-live-install: FAILED: the image http://127.0.0.1:9/pine.raw.zst is a URL and no sha256 "
        "was given to verify it; nothing written. Add pine.inst.image_sha256=HEX to the kernel command line"
    ), line
    assert "--image-sha256 HEX" in line and "'sha256sum pine.raw.zst'" in line and "abc123" not in line
    assert disk.read_bytes() == bytes(32 * MiB)  # untouched


def test_config_url_that_fails(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img", 32 * MiB)
    with serve() as server:
        url = server.route("/gone.ign", Answer(status=404, body=b"no"))
        live.kargs(f"pine.inst.dest={disk}", f"pine.inst.config={url}", f"pine.inst.image={image}")
        proc = live.run()
    assert proc.returncode == 1
    assert (
        last_line(proc)
        == f"pine-live-install: FAILED: cannot fetch the config: GET {url}: server answered 404 Not Found"
    )
    assert list(live.run_dir.iterdir()) == []  # the staging directory went with the failure


def test_real_power_command_falls_back_to_the_forced_one(live: Live, image: Path, tmp_path: Path) -> None:
    # Real processes: a systemctl that fails (no init to talk to) and a reboot that records its argv.
    tools = tmp_path / "tools"
    tools.mkdir()
    record = tmp_path / "reboot-argv"
    (tools / "systemctl").write_text(
        "#!/bin/sh\necho 'System has not been booted with systemd' >&2\nexit 1\n"
    )
    (tools / "reboot").write_text(f'#!/bin/sh\necho "$0 $*" > {record}\n')
    for t in ("systemctl", "reboot"):
        os.chmod(tools / t, 0o755)
    disk = blank_file(tmp_path / "disk.img")
    live.embed(config(), str(disk), "reboot")
    live.kargs(f"pine.inst.image={image}")
    path = f"{tools}:{os.environ.get('PINE_TOOLS_PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')}"
    proc = live.run(env={"PINE_TOOLS_PATH": path})
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().split() == [str(tools / "reboot"), "-f"]
    assert "reboot now" in proc.stderr


@pytest.mark.skipif(
    not (Path.home() / ".cache" / "pineinstall-tests").exists() and "PINE_VM_CACHE" not in os.environ,
    reason="no test image cache",
)
def test_the_cached_raw_test_image(live: Live, tmp_path: Path) -> None:
    from iso.images import build

    directory = build.cache_dir() / f"raw-{build.image_key('raw')}"
    if not (directory / "manifest.json").exists():
        pytest.skip("the raw test image is not built (python -m iso.images build --kind raw)")
    raw = directory / json.loads((directory / "manifest.json").read_text())["file"]
    disk = blank_file(tmp_path / "disk.img", 1536 * MiB)
    with loop(disk) as dev:
        live.embed(config(), dev, None)
        live.kargs(f"pine.inst.image={raw}", "console=ttyS0,115200n8")
        proc = live.run()
        assert proc.returncode == 0, proc.stderr
        assert last_line(proc) == "pine-live-install: done"
        with installed_root(dev, tmp_path, number=3) as root:
            assert_installed(root)


# --- refusals -----------------------------------------------------------------------------------------


def _gpt(path: Path) -> None:
    sh("sgdisk", "-n1:2048:+8M", path)


def _mbr(path: Path) -> None:
    sh("sfdisk", "-q", path, input=b"label: dos\n,16M,83\n")


def _ext4(path: Path) -> None:
    sh("mkfs.ext4", "-q", "-F", path)  # a filesystem on the whole disk, no table


def _backup_gpt_only(path: Path) -> None:
    sh("sgdisk", "-n1:2048:+8M", path)
    with open(path, "r+b") as f:
        f.write(bytes(34 * 512))  # primary table zeroed: the backup at the end still says GPT


@pytest.mark.parametrize(
    "make", [_gpt, _mbr, _ext4, _backup_gpt_only], ids=["gpt", "mbr", "ext4", "backup-gpt"]
)
def test_a_disk_that_is_not_blank_is_refused_without_yes(
    live: Live, image: Path, tmp_path: Path, make: object
) -> None:
    disk = blank_file(tmp_path / "disk.img", 64 * MiB)
    make(disk)  # type: ignore[operator]
    with loop(disk) as dev:
        before = sha(dev)
        live.embed(config(), dev, "reboot")
        live.kargs(f"pine.inst.image={image}")
        proc = live.run()
        assert proc.returncode == 1
        line = last_line(proc)
        assert line.startswith(f"pine-live-install: FAILED: {dev} is not blank (")
        assert "Add pine.inst.yes" in line
        assert "reboot now" not in proc.stderr
        assert sha(dev) == before
    assert list(live.run_dir.iterdir()) == []


def test_yes_installs_over_a_used_disk(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img")
    _gpt(disk)
    live.embed(config())
    live.kargs(f"pine.inst.dest={disk}", f"pine.inst.image={image}", "pine.inst.yes")
    proc = live.run()
    assert proc.returncode == 0, proc.stderr
    assert "pine.inst.yes: " in proc.stderr
    with installed_root(disk, tmp_path) as root:
        assert_installed(root)


def test_installer_failure_is_reported_and_nothing_reboots(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img", 96 * MiB)
    before = sha(disk)
    (live.medium / "bad.ign").write_text(
        '{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"x"}]}}'
    )
    live.kargs(
        f"pine.inst.dest={disk}", "pine.inst.config=bad.ign", f"pine.inst.image={image}", "pine.inst.reboot"
    )
    proc = live.run("--no-act")
    assert proc.returncode == 1
    assert "error at $.storage.files.0.path" in proc.stderr  # the installer's own report
    assert last_line(proc).startswith("pine-live-install: FAILED: the installer failed (exit status 1")
    assert "would reboot" not in proc.stderr
    assert sha(disk) == before


def test_dry_run_touches_nothing(live: Live, image: Path, tmp_path: Path) -> None:
    disk = blank_file(tmp_path / "disk.img")
    before = sha(disk)
    live.embed(config(), str(disk), "poweroff")
    live.kargs(f"pine.inst.image={image}")
    proc = live.run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run: nothing written, no poweroff" in proc.stderr
    assert "root" in proc.stdout  # the installer's plan
    assert sha(disk) == before


@pytest.mark.parametrize(
    ("kargs", "embedded", "message"),
    [
        (["pine.inst.dest=/dev/null-x", "pine.inst.image=IMAGE"], False, "no config: give pine.inst.config="),
        (["pine.inst.dest=DISK", "pine.inst.config=nope.ign", "pine.inst.image=IMAGE"], False,
         "pine.inst.config= nope.ign: not found on the medium"),
        (["pine.inst.dest=DISK", "pine.inst.config=/nope.ign", "pine.inst.image=IMAGE"], False,
         "not found on the medium (MEDIUM/nope.ign) or in the live system"),
        (["pine.inst.dest=DISK", "pine.inst.config=../etc/passwd", "pine.inst.image=IMAGE"], False, "not a usable path"),
        (["pine.inst.dest=DISK"], True, "no image: give pine.inst.image="),
        (["pine.inst.dest=DISK", "pine.inst.image=images/none.raw"], True,
         "pine.inst.image= images/none.raw: not found on the medium"),
        (["pine.inst.dest=DISK", "pine.inst.image=IMAGE", "pine.inst.reboot", "pine.inst.poweroff"], True,
         "both given"),
        (["pine.inst.dest=/dev/no-such-disk", "pine.inst.image=IMAGE"], True,
         "target /dev/no-such-disk does not exist (waited 0 s)"),
        (["pine.inst.dest"], True, "pine.inst.dest needs a value"),
        (["pine.inst.yes=maybe"], True, "pine.inst.yes is a flag"),
    ],
)  # fmt: skip
def test_refusals(
    live: Live, image: Path, tmp_path: Path, kargs: list[str], embedded: bool, message: str
) -> None:
    disk = blank_file(tmp_path / "disk.img", 32 * MiB)
    before = sha(disk)
    if embedded:
        live.embed(config())
    live.kargs(*(k.replace("DISK", str(disk)).replace("IMAGE", str(image)) for k in kargs))
    proc = live.run("--no-act")
    assert proc.returncode == 1
    assert message.replace("MEDIUM", str(live.medium)) in last_line(proc)
    assert last_line(proc).startswith("pine-live-install: FAILED: ")
    assert sha(disk) == before


def test_damaged_embedded_area(live: Live, tmp_path: Path) -> None:
    area = bytearray(encode(config(), "/dev/vda", None))
    area[200] ^= 1
    (live.medium / "pine" / "embed.bin").write_bytes(bytes(area))
    proc = live.run()
    assert proc.returncode == 1
    assert "FAILED: the config embedded in the ISO cannot be read" in last_line(proc)
    assert "checksum mismatch" in last_line(proc)


def test_unknown_argument_warns(live: Live) -> None:
    live.kargs("pine.inst.dset=/dev/vda")
    proc = live.run()
    assert proc.returncode == 0
    assert "unknown kernel argument pine.inst.dset ignored" in proc.stderr


def test_the_target_may_appear_late(live: Live, image: Path, tmp_path: Path) -> None:
    late = tmp_path / "late.img"
    live.embed(config(), str(late))
    live.kargs(f"pine.inst.image={image}")
    argv = [sys.executable, "-m", "pineinstall.cli", "live-install", "--cmdline", str(live.cmdline),
            "--medium", str(live.medium), "--run-dir", str(live.run_dir), "--wait", "20", "--dry-run"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "waiting for" in line:
            assert f"waiting for {late} to appear (up to 20 s)" in line
            time.sleep(0.7)
            blank_file(late)
            break
    _out, err = proc.communicate(timeout=120)
    assert any("waiting for" in line for line in seen), "".join(seen)
    assert proc.returncode == 0, "".join(seen) + err
    assert err.strip().splitlines()[-1] == "pine-live-install: done"
