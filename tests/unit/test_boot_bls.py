"""pineinstall.boot.bls on OSTree-style BLS entries written here, and the grub.cfg written from them."""

from __future__ import annotations

import pytest

from pineinstall.boot import BootError, apply_kargs, detect
from pineinstall.boot import bls as blsmod
from pineinstall.boot.bls import Bls

CSUM = "0123abcd" * 8


def _entry(version: int, deploy: int, options: str) -> str:
    return (
        f"title Pine 1.{version} (ostree:pine:{deploy})\n"
        f"version {version}\n"
        f"options {options} ostree=/ostree/boot.1/pine/{CSUM}/{deploy}\n"
        f"linux /ostree/pine-{CSUM}/vmlinuz-6.1.0-50-amd64\n"
        f"initrd /ostree/pine-{CSUM}/initramfs-6.1.0-50-amd64.img\n"
    )


def _sysroot(tmp_path, with_boot_dir=True):
    """A sysroot as `ostree admin deploy` leaves it: boot/loader -> loader.1, two deployments."""
    boot = tmp_path / "boot" if with_boot_dir else tmp_path
    (boot / "loader.1" / "entries").mkdir(parents=True)
    (boot / "loader").symlink_to("loader.1")
    entries = boot / "loader" / "entries"
    (entries / "ostree-1-pine.conf").write_text(_entry(1, 1, "root=UUID=r rw console=tty0"))
    (entries / "ostree-2-pine.conf").write_text(_entry(2, 0, "root=UUID=r rw console=tty0 quiet"))
    kdir = boot / "ostree" / f"pine-{CSUM}"
    kdir.mkdir(parents=True)
    (kdir / "vmlinuz-6.1.0-50-amd64").write_bytes(b"k")
    return entries


def test_detect_prefers_bls_over_grub(tmp_path):
    entries = _sysroot(tmp_path)
    (tmp_path / "boot" / "grub").mkdir()
    (tmp_path / "boot" / "grub" / "grub.cfg").write_text("menuentry x {\n linux /k a\n}\n")
    found = detect(tmp_path)
    assert isinstance(found, Bls) and found.config == entries


def test_newest_entry_edited_only(tmp_path):
    entries = _sysroot(tmp_path)
    old = (entries / "ostree-1-pine.conf").read_text()
    change = apply_kargs(
        tmp_path, should_exist=["mitigations=off", "quiet"], should_not_exist=["console=tty0"]
    )
    assert change.bootloader == "bls"
    assert change.before == [
        "root=UUID=r",
        "rw",
        "console=tty0",
        "quiet",
        f"ostree=/ostree/boot.1/pine/{CSUM}/0",
    ]
    assert change.after == [
        "root=UUID=r",
        "rw",
        "quiet",
        f"ostree=/ostree/boot.1/pine/{CSUM}/0",
        "mitigations=off",
    ]
    newest = (entries / "ostree-2-pine.conf").read_text().split("\n")
    assert newest[2] == f"options root=UUID=r rw quiet ostree=/ostree/boot.1/pine/{CSUM}/0 mitigations=off"
    assert newest[:2] == _entry(2, 0, "").split("\n")[:2] and newest[3:] == _entry(2, 0, "").split("\n")[3:]
    assert (entries / "ostree-1-pine.conf").read_text() == old
    # written through the loader symlink: it still points at loader.1
    assert (tmp_path / "boot" / "loader").readlink().name == "loader.1"
    assert change.files == [entries / "ostree-2-pine.conf"]


def test_version_sorts_numerically(tmp_path):
    entries = _sysroot(tmp_path)
    (entries / "ostree-10-pine.conf").write_text(_entry(10, 0, "root=UUID=r newest"))
    assert "newest" in detect(tmp_path).kargs()


def test_grub_cfg_from_entries_rewritten_after_edit(tmp_path):
    _sysroot(tmp_path)
    cfg = tmp_path / "boot" / "grub" / "grub.cfg"
    cfg.parent.mkdir()
    cfg.write_text("# CONSOLE-SETTINGS-START\nserial --unit=0 --speed=115200\n# CONSOLE-SETTINGS-END\n")
    blsmod.write_grub_cfg(tmp_path, cfg)
    text = cfg.read_text()
    assert text.startswith(blsmod.MARK)
    assert "serial --unit=0 --speed=115200\n" in text  # the console block was kept
    # newest first; paths prefixed with /boot since the kernel lives in this filesystem's /boot
    first = text.index("(ostree:pine:0)")
    assert first < text.index("(ostree:pine:1)")
    assert (
        f"\tlinux /boot/ostree/pine-{CSUM}/vmlinuz-6.1.0-50-amd64 root=UUID=r rw console=tty0 quiet" in text
    )
    assert f"\tinitrd /boot/ostree/pine-{CSUM}/initramfs-6.1.0-50-amd64.img" in text

    change = apply_kargs(tmp_path, append=["pine.test.poweroff"], console=["ttyS0,115200n8"])
    assert cfg in change.files
    text = cfg.read_text()
    assert "terminal_output serial\n" in text and text.count("CONSOLE-SETTINGS-START") == 1
    linux = [ln for ln in text.split("\n") if ln.startswith("\tlinux")]
    assert linux[0].endswith("pine.test.poweroff console=ttyS0,115200n8")
    assert "pine.test.poweroff" not in linux[1]  # the older deployment keeps its arguments


def test_boot_partition_paths_have_no_prefix(tmp_path):
    _sysroot(tmp_path, with_boot_dir=False)  # a mounted /boot partition: loader/ at its top
    text = blsmod.render_grub_cfg(tmp_path)
    assert f"\tlinux /ostree/pine-{CSUM}/vmlinuz-6.1.0-50-amd64 " in text


def test_foreign_grub_cfg_only_console_changed(tmp_path):
    _sysroot(tmp_path)
    cfg = tmp_path / "boot" / "grub" / "grub.cfg"
    cfg.parent.mkdir()
    cfg.write_text("set timeout=5\nblscfg\n")
    change = apply_kargs(tmp_path, should_exist=["x"])
    assert cfg.read_text() == "set timeout=5\nblscfg\n" and cfg not in change.files
    apply_kargs(tmp_path, console=["tty0"])
    assert cfg.read_text() == (
        "# CONSOLE-SETTINGS-START\nterminal_input console\nterminal_output console\n"
        "# CONSOLE-SETTINGS-END\nset timeout=5\nblscfg\n"
    )


def test_entry_without_options_gets_one(tmp_path):
    d = tmp_path / "boot" / "loader" / "entries"
    d.mkdir(parents=True)
    (d / "a.conf").write_text("title A\nlinux /vmlinuz\n\n")
    apply_kargs(tmp_path, should_exist=["root=/dev/vda3"])
    assert (d / "a.conf").read_text() == "title A\nlinux /vmlinuz\noptions root=/dev/vda3\n\n"


def test_render_without_entries(tmp_path):
    with pytest.raises(BootError, match="no BLS entries"):
        blsmod.render_grub_cfg(tmp_path)


def test_bios_pause_between_linux_and_initrd(tmp_path):
    """GRUB 2.06 drops its disk cache (the kernel's blocks, where the initramfs must go on a 64 MiB
    machine) only when a disk opens > 2 s after the last close: the pause, BIOS only."""
    _sysroot(tmp_path)
    text = blsmod.render_grub_cfg(tmp_path)
    lines = text.split("\n")
    assert "insmod sleep" in lines[: lines.index("insmod ext2") + 2]
    entry = [
        ln.strip() for ln in lines[lines.index(next(ln for ln in lines if ln.startswith("menuentry"))) :]
    ]
    linux = next(i for i, ln in enumerate(entry) if ln.startswith("linux "))
    assert entry[linux + 1] == 'if [ "$grub_platform" = pc ]; then sleep 3; fi'
    assert entry[linux + 2].startswith("initrd ")
