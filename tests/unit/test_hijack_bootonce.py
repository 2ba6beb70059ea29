"""The one-shot installer boot's pure pieces: the choice of the takeover path, the GRUB entry, the
installer's kernel line, its network lines, the module order, and the scripts as sh parses them."""

from __future__ import annotations

import copy
import shutil
import subprocess
from typing import Any

import pytest

from iso.images.hijack_source import CUSTOM_BLOCK, NEXT_ENTRY_BLOCK
from pineinstall.hijack import bootonce, facts, installer, plan
from pineinstall.hijack.bootonce import BOOT_ONCE, RAM, BootFs

MIB = 1 << 20
# Debian 12's grub.cfg as grub-mkconfig writes it: the blocks the hijack source image carries
GRUB_CFG = NEXT_ENTRY_BLOCK + "menuentry 'Debian GNU/Linux' { linux /boot/vmlinuz root=UUID=x }\n" + CUSTOM_BLOCK
GRUBENV = "# GRUB Environment Block\n" + "#" * (1024 - 25)


def doc(**over: Any) -> dict[str, Any]:
    """A probe document of a 128 MiB Debian guest booted by GRUB from /dev/vda3."""
    d: dict[str, Any] = {
        "probe": 1,
        "user": "root",
        "ssh_port": "22",
        "lsblk": {"blockdevices": [{"name": "vda", "path": "/dev/vda", "type": "disk", "size": 1 << 30,
                                    "pttype": "gpt", "ptuuid": "694718f4-ea17-4993-89d5-0d2bac97c8ad",
                                    "children": [{"name": "vda3", "type": "part", "mountpoint": "/"}]}]},
        "boot_fs": {"filesystems": [{"target": "/", "source": "/dev/vda3", "fstype": "ext4",
                                     "uuid": "44d60857-248f-40e8-b383-20ccefc174b3", "avail": 500 * MIB}]},
        "grub_tools": {"editenv": "/usr/bin/grub-editenv", "reboot": "/usr/sbin/grub-reboot"},
        "files": {
            "/proc/meminfo": "MemTotal: 79872 kB\nMemAvailable: 33000 kB\n",
            "/proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz root=UUID=x rw console=tty0 console=ttyS0,115200n8",
            "/boot/grub/grub.cfg": GRUB_CFG,
            "/boot/grub/grubenv": GRUBENV,
        },
    }  # fmt: skip
    for key, value in over.items():
        d[key] = value
    return d


def choose(requested: str, d: dict[str, Any]) -> bootonce.Choice:
    return bootonce.choose(requested, d, facts.parse(d))


def test_auto_takes_the_one_shot_boot_where_grub_can_and_ram_allows() -> None:
    got = choose("auto", doc())
    assert (got.method, got.refused) == (BOOT_ONCE, None)


def test_ram_is_taken_when_asked() -> None:
    assert choose("ram", doc()).method == RAM


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["files"].pop("/boot/grub/grub.cfg"), "no readable /boot/grub/grub.cfg"),
        (lambda d: d["files"].__setitem__("/boot/grub/grub.cfg", "menuentry x {}\nsource custom.cfg"), "next_entry"),
        (lambda d: d["files"].__setitem__("/boot/grub/grub.cfg", GRUB_CFG.split("###")[0]), "custom.cfg"),
        (lambda d: d["files"].pop("/boot/grub/grubenv"), "grubenv"),
        (lambda d: d.__setitem__("grub_tools", {"editenv": "", "reboot": ""}), "grub-editenv"),
        (lambda d: d["boot_fs"]["filesystems"][0].__setitem__("fstype", "btrfs"), "btrfs"),
        (lambda d: d["boot_fs"]["filesystems"][0].__setitem__("source", "/dev/mapper/vg-root"), "LVM"),
        (lambda d: d["boot_fs"]["filesystems"][0].__setitem__("avail", 10 * MIB), "free on /boot"),
        (lambda d: d["files"].__setitem__("/proc/meminfo", "MemTotal: 45000 kB\n"), "of RAM"),
    ],
)
def test_auto_falls_back_to_the_ram_pivot_and_says_why(change: Any, reason: str) -> None:
    d = copy.deepcopy(doc())
    change(d)
    got = choose("auto", d)
    assert got.method == RAM and got.refused is None
    assert reason in got.reason or (reason == "LVM" and "/dev/mapper/vg-root" in got.reason), got.reason
    forced = choose("boot-once", d)
    assert forced.refused and forced.refused.startswith("--takeover boot-once: ")


def test_grub_entry_finds_the_files_by_uuid_on_root_or_on_a_boot_filesystem() -> None:
    root = bootonce.grub_entry(BootFs("/", "/dev/vda3", "ext4", "U-1", None), "console=ttyS0 panic=10")
    assert "\tsearch --no-floppy --fs-uuid --set=root U-1\n" in root
    assert "\tlinux /boot/pine-hijack/vmlinuz console=ttyS0 panic=10\n" in root
    assert "\tinitrd /boot/pine-hijack/initramfs\n" in root
    assert f"--id {bootonce.ENTRY_ID} {{" in root
    assert root.startswith(bootonce.BEGIN + "\n") and root.endswith(bootonce.END + "\n")
    boot = bootonce.grub_entry(BootFs("/boot", "/dev/sda1", "ext2", "U-2", None), "")
    assert "\tlinux /pine-hijack/vmlinuz\n" in boot and "\tinitrd /pine-hijack/initramfs\n" in boot


def test_kernel_args_keep_the_hosts_consoles_and_reboot_on_panic() -> None:
    cmdline = "BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro console=tty0 console=ttyS0,115200n8 quiet"
    assert bootonce.kernel_args(cmdline) == "console=tty0 console=ttyS0,115200n8 panic=10"
    assert bootonce.kernel_args("", fail=True) == "panic=10 pine_hijack.fail"


def test_net_lines_carry_each_family_with_its_gateway() -> None:
    static = facts.Interface("eth0", "52:54:00:12:34:56", None, (facts.Address("10.0.2.15/24", False),),
                             (facts.Address("2001:db8::5/64", False),), facts.Gateway("10.0.0.1", True),
                             facts.Gateway("fe80::1", False), "static", "static")  # fmt: skip
    dhcp = facts.Interface("eth1", "52:54:00:00:00:02", None, (), (), None, None, "dhcp", None)
    assert bootonce.net_lines((static, dhcp)) == (
        "52:54:00:12:34:56 static 10.0.2.15/24 10.0.0.1 1 static 2001:db8::5/64 fe80::1 0\n"
        "52:54:00:00:00:02 dhcp - - 0 - - - 0\n"
    )


def test_module_order_puts_dependencies_first_and_skips_what_the_kernel_lacks() -> None:
    dep = (
        "kernel/drivers/net/virtio_net.ko.gz: kernel/drivers/net/net_failover.ko.gz kernel/net/core/failover.ko.gz\n"
        "kernel/drivers/net/net_failover.ko.gz: kernel/net/core/failover.ko.gz\n"
        "kernel/net/core/failover.ko.gz:\n"
        "kernel/drivers/block/virtio_blk.ko.gz:\n"
    )
    assert installer.module_order(dep, ("virtio_blk", "virtio-net", "xen_netfront")) == [
        "kernel/drivers/block/virtio_blk.ko.gz",
        "kernel/net/core/failover.ko.gz",
        "kernel/drivers/net/net_failover.ko.gz",
        "kernel/drivers/net/virtio_net.ko.gz",
    ]


@pytest.mark.real_processes  # sh -n: the scripts as the shells that run them parse them
@pytest.mark.parametrize("shell", ["dash", "busybox"])
@pytest.mark.parametrize("script", ["INIT", "HOST_SCRIPT", "CLEANUP", "UDHCPC_SCRIPT"])
def test_scripts_parse(shell: str, script: str) -> None:
    argv = ["busybox", "sh", "-n"] if shell == "busybox" else ["dash", "-n"]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"no {argv[0]}")
    proc = subprocess.run(argv, input=getattr(bootonce, script).encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def test_plan_names_the_path_and_its_steps() -> None:
    d = doc()
    found = facts.parse(d)
    image = plan.Image("pine.img", "0" * 64, True)
    from pineinstall.hijack.carry import carry

    text = plan.render("root@h", [], found, image, "c.bu", carry(found, {"ignition": {"version": "3.4.0"}}, "h"),
                       [], choose("auto", d))  # fmt: skip
    assert "takeover: boot-once (auto: GRUB boots a one-shot entry here" in text
    assert "grub-reboot" in text and "POINT OF NO RETURN" in text
    ram = plan.render("root@h", [], found, image, "c.bu", carry(found, {"ignition": {"version": "3.4.0"}}, "h"),
                      [], choose("ram", d))  # fmt: skip
    assert "takeover: ram (--takeover ram)" in ram and "grub-reboot" not in ram
