"""``pineinstall install`` onto an OSTree-sysroot image (files land in the deployment and the
stateroot, kernel arguments in the BLS entry) and in rootfs mode (layout, mkfs, unpack, fstab by UUID,
GRUB for BIOS and UEFI)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .image_helpers import (
    MiB,
    installed_root,
    loop,
    loop_device,
    make_rootfs_tarball,
    seed_tree,
    sh,
    tools_missing,
)
from .test_install_image import KEY, config, install_tree, run, write_cfg

NEEDED = ("sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck", "blkid", "zstd", "tar")
pytestmark = pytest.mark.needs(*NEEDED)

DEPLOY = "ostree/deploy/pine/deploy/0123abcd.0"


def ostree_tree(root: Path) -> Path:
    """An OSTree sysroot's shape: one deployment, its stateroot, a BLS entry pointing at it."""
    dep = seed_tree(root / DEPLOY)
    os.rename(dep / "var", dep / "sysroot-var-placeholder")
    (dep / "var").mkdir()
    (dep / "home").symlink_to("var/home")
    (root / "ostree" / "deploy" / "pine" / "var" / "home").mkdir(parents=True)
    boot = root / "ostree" / "boot.1" / "pine" / "bootcsum"
    boot.mkdir(parents=True)
    (boot / "0").symlink_to("../../../deploy/pine/deploy/0123abcd.0")
    entries = root / "boot" / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / "ostree-1-pine.conf").write_text(
        "title Pine (ostree:0)\nversion 1\nlinux /ostree/pine-bootcsum/vmlinuz\n"
        "initrd /ostree/pine-bootcsum/initramfs.img\n"
        "options root=UUID=0000 rw console=tty0 ostree=/ostree/boot.1/pine/bootcsum/0\n"
    )
    return root


def test_ostree_sysroot_image(tmp_path: Path) -> None:
    tree = ostree_tree(tmp_path / "tree")
    disk, result, _ = install_tree(tree, tmp_path)
    assert result["target"]["kind"] == "ostree"
    assert result["bootloader"]["name"] == "bls"
    with installed_root(disk, tmp_path) as sysroot:
        dep = sysroot / DEPLOY
        assert (dep / "etc" / "hostname").read_text() == "node-1"
        assert "pine:x:1000:" in (dep / "etc" / "passwd").read_text()
        assert (dep / "etc" / "systemd" / "system" / "multi-user.target.wants" / "hello.service").is_symlink()
        var = sysroot / "ostree" / "deploy" / "pine" / "var"
        assert (var / "lib" / "pine" / "hello").read_text() == "hi"  # /var is the stateroot's
        assert KEY in (var / "home" / "pine" / ".ssh" / "authorized_keys").read_text()
        assert not (sysroot / "etc").exists()  # nothing at the sysroot's top
        entry = (sysroot / "boot" / "loader" / "entries" / "ostree-1-pine.conf").read_text()
        options = next(ln for ln in entry.splitlines() if ln.startswith("options "))
        assert "pine.karg=1" in options and "console=tty0" not in options
        assert "ostree=/ostree/boot.1/pine/bootcsum/0" in options
        assert (sysroot / "boot" / "ignition" / "config.ign").exists()


@pytest.fixture(scope="module")
def rootfs_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs_tarball(tmp_path_factory.mktemp("rootfs"))


def test_rootfs_mode(rootfs_tarball: Path, tmp_path: Path) -> None:
    missing = tools_missing("grub-install", "grub-mkimage", "mkfs.vfat", "mkswap", "mmd", "mcopy", "mdir")
    if missing or not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip(f"needs GRUB for i386-pc and x86_64-efi, dosfstools, mtools ({missing})")
    disk = tmp_path / "disk.img"
    rc, _out, err = run(disk, write_cfg(tmp_path, config()), "--rootfs", rootfs_tarball, "--size", "512M",
                       "--console", "ttyS0,115200n8", "--json")  # fmt: skip
    assert rc == 0, err
    table = json.loads(sh("sfdisk", "--json", disk).stdout)["partitiontable"]
    names = [p.get("name") for p in table["partitions"]]
    assert names == ["BIOS-BOOT", "EFI-SYSTEM", "swap", "root"]
    last = table["partitions"][-1]
    assert last["start"] + last["size"] >= 512 * MiB // 512 - 40
    with loop(disk) as dev:
        sh("partx", "-a", dev)
        try:
            uuids = {
                n: sh("blkid", "-s", "UUID", "-o", "value", f"{dev}p{n}").stdout.decode().strip()
                for n in (2, 3, 4)
            }
            types = {
                n: sh("blkid", "-s", "TYPE", "-o", "value", f"{dev}p{n}").stdout.decode().strip()
                for n in (2, 3, 4)
            }
            assert types == {2: "vfat", 3: "swap", 4: "ext4"}
            esp = subprocess.run(["mdir", "-i", f"{dev}p2", "::/EFI/BOOT"], capture_output=True, text=True,
                                 env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})  # fmt: skip
            assert "BOOTX64" in esp.stdout, esp.stderr
            with open(f"{dev}p1", "rb") as f:
                assert any(f.read(MiB))  # GRUB's core.img in the BIOS boot partition
            with open(dev, "rb") as f:
                assert f.read(512)[510:] == b"\x55\xaa"  # GRUB's boot sector in the protective MBR
        finally:
            subprocess.run(["partx", "-d", dev], capture_output=True)
    with installed_root(disk, tmp_path, number=4) as root:
        fstab = (root / "etc" / "fstab").read_text()
        assert f"UUID={uuids[4]}\t/\text4" in fstab
        assert f"UUID={uuids[2]}\t/boot/efi\tvfat" in fstab
        assert f"UUID={uuids[3]}\tnone\tswap" in fstab
        cfg = (root / "boot" / "grub" / "grub.cfg").read_text()
        linux = next(ln for ln in cfg.splitlines() if ln.strip().startswith("linux "))
        assert "/boot/vmlinuz-6.1.0-test" in linux and f"root=UUID={uuids[4]}" in linux
        assert "pine.karg=1" in linux and "console=ttyS0,115200n8" in linux and "console=tty0" not in linux
        assert "initrd /boot/initrd.img-6.1.0-test" in cfg
        assert "serial --unit=0 --speed=115200" in cfg
        assert (root / "boot" / "grub" / "i386-pc" / "core.img").exists()
        assert (root / "etc" / "hostname").read_text() == "node-1"
        assert KEY in (root / "home" / "pine" / ".ssh" / "authorized_keys").read_text()


def test_rootfs_too_small_refused(rootfs_tarball: Path, tmp_path: Path) -> None:
    rc, _, err = run(
        tmp_path / "disk.img", write_cfg(tmp_path, config()), "--rootfs", rootfs_tarball, "--size", "64M"
    )
    assert rc == 1
    assert "too small" in err and "untouched" in err
    assert not (tmp_path / "disk.img").exists()


def test_rootfs_needs_a_size_for_a_new_file(rootfs_tarball: Path, tmp_path: Path) -> None:
    rc, _, err = run(tmp_path / "disk.img", write_cfg(tmp_path, config()), "--rootfs", rootfs_tarball)
    assert rc == 1
    assert "--size" in err


def test_rootfs_not_an_archive_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 4096)
    rc, _, err = run(tmp_path / "disk.img", write_cfg(tmp_path, config()), "--rootfs", junk, "--size", "512M")
    assert rc == 1
    assert "neither a tarball" in err


def test_rootfs_mode_with_the_configs_layout(rootfs_tarball: Path, tmp_path: Path) -> None:
    """DEST named in storage.disks: the config's partitions and filesystems (/ and /var) are made,
    the root unpacked across them, fstab lists both, GRUB lands on its BIOS boot and EFI partitions."""
    missing = tools_missing("grub-install", "grub-mkimage", "mkfs.vfat", "mmd", "mcopy", "mdir")
    if missing or not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip(f"needs GRUB for i386-pc and x86_64-efi, dosfstools, mtools ({missing})")
    with loop_device(tmp_path / "dev.img", 512) as dev:
        cfg = config()
        cfg["storage"]["disks"] = [
            {
                "device": dev,
                "wipeTable": True,
                "partitions": [
                    {
                        "number": 1,
                        "label": "bios",
                        "sizeMiB": 1,
                        "typeGuid": "21686148-6449-6E6F-744E-656564454649",
                    },
                    {
                        "number": 2,
                        "label": "esp",
                        "sizeMiB": 64,
                        "typeGuid": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                    },
                    {"number": 3, "label": "root", "sizeMiB": 256},
                    {"number": 4, "label": "var", "sizeMiB": 0},
                ],
            }
        ]
        cfg["storage"]["filesystems"] = [
            {"device": f"{dev}p2", "format": "vfat", "label": "ESP", "wipeFilesystem": True},
            {"device": f"{dev}p3", "format": "ext4", "path": "/", "label": "root", "wipeFilesystem": True},
            {"device": f"{dev}p4", "format": "ext4", "path": "/var", "label": "var", "wipeFilesystem": True},
        ]
        rc, out, err = run(dev, write_cfg(tmp_path, cfg), "--rootfs", rootfs_tarball, "--yes", "--json")
        assert rc == 0, err
        summary = json.loads(out.splitlines()[-1])
        assert summary["layout"] == "config" and summary["tables_held"] is True, summary
        names = [
            p.get("name")
            for p in json.loads(sh("sfdisk", "--json", dev).stdout)["partitiontable"]["partitions"]
        ]
        assert names == ["bios", "esp", "root", "var"]
        sh("partx", "-u", dev)
        uuid = {
            n: sh("blkid", "-s", "UUID", "-o", "value", f"{dev}p{n}").stdout.decode().strip() for n in (3, 4)
        }
        esp = subprocess.run(["mdir", "-i", f"{dev}p2", "::/EFI/BOOT"], capture_output=True, text=True,
                             env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})  # fmt: skip
        assert "BOOTX64" in esp.stdout, esp.stderr
        with installed_root(dev, tmp_path, number=4) as var:
            assert (
                var / "lib" / "pine" / "hello"
            ).read_text() == "hi"  # /var/... landed on the var filesystem
        with installed_root(dev, tmp_path, number=3) as root:
            fstab = (root / "etc" / "fstab").read_text()
            assert f"UUID={uuid[3]}\t/\text4" in fstab and f"UUID={uuid[4]}\t/var\text4" in fstab
            assert f"root=UUID={uuid[3]}" in (root / "boot" / "grub" / "grub.cfg").read_text()
            assert (root / "etc" / "hostname").read_text() == "node-1"
            assert not (root / "var" / "lib" / "pine" / "hello").exists()


def test_rootfs_mode_with_the_configs_layout_on_two_disks(rootfs_tarball: Path, tmp_path: Path) -> None:
    """The config's layout with a filesystem on another disk cannot be made in held tables: the disks
    stage partitions both disks itself (not kill-safe: docs/safety.md), says so, and installs."""
    missing = tools_missing("grub-install", "grub-mkimage", "mkfs.vfat", "mmd", "mcopy")
    if missing or not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip(f"needs GRUB for i386-pc and x86_64-efi, dosfstools, mtools ({missing})")
    with loop_device(tmp_path / "dev.img", 384) as dev, loop_device(tmp_path / "other.img", 32) as other:
        cfg = config()
        cfg["storage"]["disks"] = [
            {"device": dev, "wipeTable": True, "partitions": [
                {"number": 1, "label": "bios", "sizeMiB": 1, "typeGuid": "21686148-6449-6E6F-744E-656564454649"},
                {"number": 2, "label": "root", "sizeMiB": 0}]},
            {"device": other, "wipeTable": True, "partitions": [{"number": 1, "label": "srv"}]},
        ]  # fmt: skip
        cfg["storage"]["filesystems"] = [
            {"device": f"{dev}p2", "format": "ext4", "path": "/", "wipeFilesystem": True},
            {"device": f"{other}p1", "format": "ext4", "path": "/srv", "label": "srv", "wipeFilesystem": True},
        ]  # fmt: skip
        rc, out, err = run(dev, write_cfg(tmp_path, cfg), "--rootfs", rootfs_tarball, "--yes", "--json")
        assert rc == 0, err
        summary = json.loads(out.splitlines()[-1])
        assert summary["layout"] == "config" and summary["tables_held"] is False, summary
        assert f"the config partitions other disks too ({other})" in err
        sh("partx", "-u", dev)
        with installed_root(dev, tmp_path, number=2) as root:
            assert "\t/srv\text4" in (root / "etc" / "fstab").read_text()
            assert (root / "etc" / "hostname").read_text() == "node-1"


def test_rootfs_mode_from_squashfs(rootfs_tarball: Path, tmp_path: Path) -> None:
    missing = tools_missing(
        "mksquashfs", "unsquashfs", "grub-install", "grub-mkimage", "mkfs.vfat", "mmd", "mcopy"
    )
    if missing or not Path("/usr/lib/grub/i386-pc").is_dir() or not Path("/usr/lib/grub/x86_64-efi").is_dir():
        pytest.skip(f"needs squashfs-tools, GRUB for i386-pc and x86_64-efi, dosfstools, mtools ({missing})")
    tree = tmp_path / "tree"
    tree.mkdir()
    sh("tar", "-C", tree, "-I", "zstd", "-xf", rootfs_tarball)
    sq = tmp_path / "rootfs.squashfs"
    sh("mksquashfs", tree, sq, "-quiet", "-comp", "zstd")
    disk = tmp_path / "disk.img"
    rc, _, err = run(
        disk, write_cfg(tmp_path, config()), "--rootfs", sq, "--size", "512M", "--swap-size", "0"
    )
    assert rc == 0, err
    names = [
        p.get("name") for p in json.loads(sh("sfdisk", "--json", disk).stdout)["partitiontable"]["partitions"]
    ]
    assert names == ["BIOS-BOOT", "EFI-SYSTEM", "root"]
    with installed_root(disk, tmp_path, number=3) as root:
        assert (root / "boot" / "vmlinuz-6.1.0-test").read_bytes() == b"not really a kernel"
        assert (root / "etc" / "hostname").read_text() == "node-1"
        assert "swap" not in (root / "etc" / "fstab").read_text()
