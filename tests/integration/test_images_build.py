"""iso.images: the built test images, inspected offline on loop devices (the builds are cached; the
first run takes a few minutes), and pineinstall.boot editing the kernel arguments of a real one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iso import images
from iso.lib import cache, debian, initramfs
from iso.lib.disk import loop_device, mounted
from pineinstall.boot import apply_kargs, detect
from pineinstall.boot.bls import MARK, Bls
from pineinstall.boot.grub import Grub

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def sh(*argv, **kw) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True, **kw).stdout


attached = loop_device  # the image library's own: img on a loop device with partition nodes


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


# --- the image library (iso.lib) on its own: no image is built ----------------------------------------


def test_cached_build_runs_once_and_leaves_only_the_kept_files(tmp_path):
    calls = []

    def build(tmp: Path) -> dict:
        calls.append(tmp)
        assert tmp.name.startswith("thing-1.tmp-") and tmp.parent == tmp_path  # built next to its place
        (tmp / "out.bin").write_bytes(b"x")
        (tmp / "scratch").mkdir()
        return {"file": "out.bin"}

    first = cache.cached_build(tmp_path / "thing-1", build, keep=["out.bin"])
    again = cache.cached_build(tmp_path / "thing-1", build, keep=["out.bin"])
    assert len(calls) == 1 and again == first
    assert first["key"] == "thing-1" and first["file"] == "out.bin" and "build_seconds" in first
    assert sorted(p.name for p in (tmp_path / "thing-1").iterdir()) == ["manifest.json", "out.bin"]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_cached_build_failure_leaves_no_directory(tmp_path):
    def build(tmp: Path) -> dict:
        (tmp / "half").write_text("")
        raise RuntimeError("mmdebstrap failed")

    with pytest.raises(RuntimeError, match="mmdebstrap failed"):
        cache.cached_build(tmp_path / "broken", build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.lock"]


def test_python_packages_follow_pyproject():
    import tomllib

    packages = debian.python_packages()
    assert packages[0] == "python3" and len(set(packages)) == len(packages)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in deps:
        name = re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower()
        assert name in debian.DEBIAN_NAMES, f"{name}: no Debian name in iso/lib/debian.py"
        if debian.DEBIAN_NAMES[name]:
            assert debian.DEBIAN_NAMES[name] in packages
    known = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *packages], capture_output=True, text=True
    )
    assert known.returncode == 0, known.stderr  # every name is a real Debian package


def test_initramfs_holds_busybox_modules_in_dependency_order_and_init(tmp_path):
    root = tmp_path / "root"
    modroot = root / "usr/lib/modules/6.1.0-test"
    (modroot / "kernel/fs").mkdir(parents=True)
    for name in ("crc16", "mbcache", "ext4"):
        (modroot / f"kernel/fs/{name}.ko").write_bytes(name.encode())
    (modroot / "modules.dep").write_text(
        "kernel/fs/ext4.ko: kernel/fs/mbcache.ko kernel/fs/crc16.ko\nkernel/fs/mbcache.ko:\nkernel/fs/crc16.ko:\n"
    )
    (root / "bin").mkdir()
    shutil.copy("/bin/busybox", root / "bin/busybox")
    out = tmp_path / "initrd.img"
    names = initramfs.build(
        root, "6.1.0-test", "#!/bin/sh\necho hi\n", out, ("ext4", "builtin_one"), required=False
    )
    assert names == ["crc16.ko", "mbcache.ko", "ext4.ko"]  # modules.dep lists the deepest dependency last
    with pytest.raises(FileNotFoundError, match="builtin_one"):
        initramfs.build(root, "6.1.0-test", "", tmp_path / "x.img", ("builtin_one",))
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(f"gzip -dc {out} | cpio -id --quiet", shell=True, cwd=tree, check=True)
    assert (tree / "modules.list").read_text() == "crc16.ko\nmbcache.ko\next4.ko\n"
    assert (tree / "init").read_text() == "#!/bin/sh\necho hi\n" and os.access(tree / "init", os.X_OK)
    assert os.readlink(tree / "bin/sh") == "busybox"
    assert (tree / "lib/modules/ext4.ko").read_bytes() == b"ext4"
    again = tmp_path / "again.img"
    initramfs.build(
        root, "6.1.0-test", "#!/bin/sh\necho hi\n", again, ("ext4", "builtin_one"), required=False
    )
    assert again.read_bytes() == out.read_bytes()  # reproducible: root's files, mtime 0


def test_image_and_installer_grub_cfgs_are_the_products(tmp_path):
    """Both grub.cfg files come from pineinstall.boot.grub.render_config, which its Grub reads back."""
    from iso.images.disk import grub_cfg
    from iso.installer.build import grub_cfg as installer_cfg

    (tmp_path / "boot/grub").mkdir(parents=True)
    (tmp_path / "boot/grub/grub.cfg").write_text(grub_cfg("6.1.0-50-amd64", "1234-abcd"))
    loader = detect(tmp_path)
    assert isinstance(loader, Grub)
    assert loader.kargs() == ["root=UUID=1234-abcd", "rw", "console=tty0", "console=ttyS0,115200n8"]
    text = installer_cfg()
    assert "set timeout=10" in text and "# CONSOLE-SETTINGS-START" in text
    assert "serial --unit=0 --speed=115200" in text and "terminal_input serial console" in text
    assert text.count("menuentry ") == 2 and "systemd.unit=rescue.target" in text
