"""iso.images: the built test images, inspected offline on loop devices (the builds are cached; the
first run takes a few minutes), and pineinstall.boot editing the kernel arguments of a real one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from iso import images
from pineinstall.boot import apply_kargs, detect
from pineinstall.boot.bls import MARK, Bls
from pineinstall.boot.grub import Grub

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def sh(*argv, **kw) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw).stdout


@contextmanager
def attached(img: Path):
    dev = sh("losetup", "--find", "--show", img).strip()
    try:
        sh("partx", "-u", dev) if os.path.exists(f"{dev}p1") else sh("partx", "-a", dev)
        yield dev
    finally:
        subprocess.run(["partx", "-d", dev], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@contextmanager
def mounted(dev: str, where: Path):
    where.mkdir(exist_ok=True)
    sh("mount", "-t", "ext4", dev, where)
    try:
        yield where
    finally:
        sh("umount", where)


@pytest.fixture(scope="module")
def raw() -> images.BuiltImage:
    return images.ensure_image("raw")


@pytest.fixture(scope="module")
def ostree() -> images.BuiltImage:
    return images.ensure_image("ostree")


def _gpt(img: Path) -> list[tuple[str, str, str]]:
    """(number, type code, name) of each partition, as sgdisk prints them."""
    out = sh("sgdisk", "-p", img)
    rows = re.findall(r"^\s+(\d+)\s+\d+\s+\d+\s+[\d.]+ \S+\s+([0-9A-F]{4})\s+(.*)$", out, re.M)
    return [(n, code, name.strip()) for n, code, name in rows]


def _check_disk(img: Path, manifest: dict) -> None:
    assert _gpt(img) == [("1", "EF02", "BIOS-BOOT"), ("2", "EF00", "EFI-SYSTEM"), ("3", "8300", "root")]
    size = img.stat().st_size
    assert 1 << 30 <= size <= 3 << 29, size  # 1 .. 1.5 GiB
    with open(img, "rb") as f:
        mbr = f.read(512)
    assert b"GRUB" in mbr and mbr[510:] == b"\x55\xaa"  # GRUB's boot.img with a protective MBR
    with attached(img) as dev:
        info = sh("blkid", "-o", "export", f"{dev}p3")
        assert "TYPE=ext4" in info and "LABEL=root" in info and f"UUID={manifest['root_uuid']}" in info
        assert "TYPE=vfat" in sh("blkid", "-o", "export", f"{dev}p2")
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        listing = sh("mdir", "-b", "-i", f"{dev}p2", "::/EFI/BOOT", env=env)
        assert "::/EFI/BOOT/BOOTX64.EFI" in listing
        efi = subprocess.run(
            ["mcopy", "-i", f"{dev}p2", "::/EFI/BOOT/BOOTX64.EFI", "-"],
            env=env,
            capture_output=True,
            check=True,
        ).stdout
        assert efi[:2] == b"MZ" and len(efi) > 100_000  # a PE executable with its modules built in
        # core.img in the BIOS boot partition
        with open(f"{dev}p1", "rb") as f:
            assert f.read(512).strip(b"\0")


def test_raw_disk_layout(raw, tmp_path):
    assert raw.path.name == "disk.img" and raw.manifest["kind"] == "raw"
    _check_disk(raw.path, raw.manifest)
    with attached(raw.path) as dev, mounted(f"{dev}p3", tmp_path / "m") as m:
        kver = raw.manifest["kernel_version"]
        for rel in (f"boot/vmlinuz-{kver}", f"boot/initrd.img-{kver}", "boot/grub/i386-pc/normal.mod",
                    "boot/grub/x86_64-efi/normal.mod", "usr/libexec/pine-test-report",
                    f"usr/lib/modules/{kver}/modules.dep"):  # fmt: skip
            assert (m / rel).exists(), rel
        assert (m / "etc/hostname").read_text() == "pine\n"
        link = m / "etc/systemd/system/multi-user.target.wants/pine-test-report.service"
        assert os.readlink(link) == "/usr/lib/systemd/system/pine-test-report.service"
        loader = detect(m)
        assert isinstance(loader, Grub) and loader.config == m / "boot/grub/grub.cfg"
        assert loader.kargs() == [
            f"root=UUID={raw.manifest['root_uuid']}",
            "rw",
            "console=tty0",
            "console=ttyS0,115200n8",
        ]


def test_raw_kargs_edited_on_a_copy(raw, tmp_path):
    img = images.copy_out(raw, tmp_path / "disk.img")
    with attached(img) as dev, mounted(f"{dev}p3", tmp_path / "m") as m:
        change = apply_kargs(m, should_exist=["pine.test.poweroff", "rw"], should_not_exist=["console=tty0"])
        assert change.files == [m / "boot/grub/grub.cfg"]
    with attached(img) as dev, mounted(f"{dev}p3", tmp_path / "m2") as m:
        text = (m / "boot/grub/grub.cfg").read_text()
        uuid = raw.manifest["root_uuid"]
        assert f"root=UUID={uuid} rw console=ttyS0,115200n8 pine.test.poweroff\n" in text
    # the cached image is untouched
    with attached(raw.path) as dev, mounted(f"{dev}p3", tmp_path / "m3") as m:
        assert "pine.test.poweroff" not in (m / "boot/grub/grub.cfg").read_text()


def test_ostree_disk_layout(ostree, tmp_path):
    _check_disk(ostree.path, ostree.manifest)
    with attached(ostree.path) as dev, mounted(f"{dev}p3", tmp_path / "m") as m:
        (deploy,) = ostree.manifest["deployments"]
        droot = m / "ostree/deploy/pine/deploy" / deploy
        assert (droot / "usr/libexec/pine-test-report").exists()
        assert (droot / "etc/hostname").read_text() == "pine\n"  # /etc merged from usr/etc
        assert os.readlink(droot / "ostree") == "sysroot/ostree"
        assert (m / "ostree/deploy/pine/var").is_dir()
        loader = detect(m)
        assert isinstance(loader, Bls)
        args = loader.kargs()
        assert args[:4] == [
            f"root=UUID={ostree.manifest['root_uuid']}",
            "rw",
            "console=tty0",
            "console=ttyS0,115200n8",
        ]
        (ostree_arg,) = [a for a in args if a.startswith("ostree=")]
        # ostree= resolves (relative symlink) to the deployment
        assert (m / ostree_arg.removeprefix("ostree=").lstrip("/")).resolve() == droot.resolve()
        cfg = (m / "boot/grub/grub.cfg").read_text()
        assert cfg.startswith(MARK) and "# CONSOLE-SETTINGS-START" in cfg
        assert f" {ostree_arg}" in cfg and "linux /boot/ostree/pine-" in cfg


def test_rootfs_tarball(tmp_path):
    img = images.ensure_image("rootfs")
    assert img.path.name == "rootfs.tar.zst"
    names = set(sh("tar", "-I", "zstd", "-tf", img.path).split())
    kver = img.manifest["kernel_version"]
    for want in (f"./boot/vmlinuz-{kver}", f"./boot/initrd.img-{kver}", "./usr/libexec/pine-test-report",
                 "./etc/hostname", "./usr/lib/systemd/system/pine-test-report.service"):  # fmt: skip
        assert want in names, want


def test_cache_hit_is_fast_and_keys_differ(raw):
    started = time.monotonic()
    again = images.ensure_image("raw")
    assert time.monotonic() - started < 1
    assert again.path == raw.path
    keys = {images.image_key(k) for k in images.KINDS}
    assert len(keys) == 3
    assert raw.directory.name == f"raw-{images.image_key('raw')}"
    assert json.loads((raw.directory / "manifest.json").read_text())["kernel_package"].startswith(
        "linux-image-6.1.0-"
    )


def test_cli_build_copies_out(raw, tmp_path):
    out = tmp_path / "copy.img"
    proc = subprocess.run(
        [sys.executable, "-m", "iso.images", "build", "--kind", "raw", "-o", out],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.strip() == str(out)
    assert out.stat().st_size == raw.path.stat().st_size
    # sparse: the copy uses far fewer blocks than its size
    assert out.stat().st_blocks * 512 < out.stat().st_size * 0.8
    bad = subprocess.run(
        [sys.executable, "-m", "iso.images", "build", "--kind", "iso"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
