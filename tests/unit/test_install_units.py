"""Unit tests of the installer's pure parts: options, sizes, config sniffing, layout, GRUB config,
the dry-run text, network file discovery."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from pineinstall import configsrc
from pineinstall.install import main, options, rootfs, stash
from pineinstall.install.plan import render
from pineinstall.stages.plan import DiskPlan, FsPlan, PartRow, StoragePlan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8G", 8 << 30),
        ("512M", 512 << 20),
        ("1536MiB", 1536 << 20),
        ("4096", 4096),
        ("2k", 2048),
        ("1T", 1 << 40),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert options.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1M", "8X"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        options.parse_size(text)


def test_options_roundtrip() -> None:
    o = options.parse(
        ["/dev/vdb", "c.ign", "--image-url", "https://x/pine.raw.xz", "--image-sig", "s.sig", "--keyring", "k.gpg",
         "--append-karg", "a=1", "--append-karg", "b", "--delete-karg", "quiet", "--console", "ttyS0,115200n8",
         "--fetch-retries", "7", "--stash-config", "--no-grow", "--yes", "--json"]
    )  # fmt: skip
    assert o.dest == "/dev/vdb" and o.config == "c.ign"
    assert o.image == "https://x/pine.raw.xz"
    assert o.append_karg == ["a=1", "b"] and o.delete_karg == ["quiet"] and o.console == ["ttyS0,115200n8"]
    assert o.fetch_retries == 7 and o.stash_config and o.no_grow and o.yes and o.json
    assert not o.dry_run and not o.insecure and o.size is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["d", "c"], "exactly one"),
        (["d", "c", "--image-file", "a", "--rootfs", "b"], "exactly one"),
        (["d", "c", "--image-file", "a", "--image-sig", "s"], "--keyring"),
        (["d", "c", "--rootfs", "r", "--image-sha256", "00"], "for images"),
        (["d", "c", "--image-url", "ftp://x/y"], "http"),
        (["d", "c", "--image-file", "a", "--fetch-retries", "-1"], "0 or more"),
    ],
)
def test_options_contradictions(argv: list[str], message: str) -> None:
    with pytest.raises(options.UsageError, match=message):
        options.parse(argv)


def test_usage_error_exit_status() -> None:
    err = io.StringIO()
    assert main(["disk.img", "c.ign"], stderr=err) == 2
    assert "exactly one of --image-file" in err.getvalue()


@pytest.mark.parametrize(
    ("data", "json_"),
    [(b'{"ignition": {}}', True), (b'\n  \t{"a":1}', True), (b"\xef\xbb\xbf{}", True),
     (b"variant: fcos\nversion: 1.4.0\n", False), (b"# {comment}\nvariant: pine\n", False)],
)  # fmt: skip
def test_is_json(data: bytes, json_: bool) -> None:
    assert configsrc.is_json(data) is json_


def test_empty_config_refused(tmp_path: Path) -> None:
    p = tmp_path / "empty.ign"
    p.write_text("  \n")
    with pytest.raises(configsrc.ConfigError, match="is empty"):
        configsrc.read(str(p))


def test_default_layout() -> None:
    layout = rootfs.default_layout(256 << 20)
    assert [(p.number, p.name, p.type_code, p.mib) for p in layout.parts] == [
        (1, "BIOS-BOOT", "ef02", 1),
        (2, "EFI-SYSTEM", "ef00", 127),
        (3, "swap", "8200", 256),
        (4, "root", "8300", 0),
    ]
    assert layout.root.number == 4
    no_swap = rootfs.default_layout(0)
    assert [p.name for p in no_swap.parts] == ["BIOS-BOOT", "EFI-SYSTEM", "root"]
    assert no_swap.root.number == 3


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"\x28\xb5\x2f\xfd" + bytes(600), "zstd"), (b"\xfd7zXZ\x00" + bytes(600), "xz"), (b"\x1f\x8b" + bytes(600), "gzip"),
     (b"hsqs" + bytes(600), "squashfs"), (bytes(257) + b"ustar" + bytes(300), "tar")],
)  # fmt: skip
def test_sniff_rootfs(head: bytes, kind: str, tmp_path: Path) -> None:
    p = tmp_path / "r"
    p.write_bytes(head)
    assert rootfs.sniff(str(p)) == kind


def test_grub_cfg_consoles_and_root() -> None:
    text = rootfs.grub_cfg("1234-abcd", "/boot/vmlinuz-6.1", "/boot/initrd.img-6.1", ("ttyS0,115200n8",))
    linux = next(ln for ln in text.splitlines() if ln.strip().startswith("linux "))
    assert linux.split()[1:] == ["/boot/vmlinuz-6.1", "root=UUID=1234-abcd", "rw", "console=ttyS0,115200n8"]
    assert "initrd /boot/initrd.img-6.1" in text
    assert "search --no-floppy --fs-uuid --set=root 1234-abcd" in text
    assert "serial --unit=0 --speed=115200" in text and "# CONSOLE-SETTINGS-START" in text
    assert "initrd" not in rootfs.grub_cfg("u", "/boot/vmlinuz", None, ("tty0",))


def test_find_kernel_newest(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    for v in ("6.1.0-9", "6.1.0-10"):
        (tmp_path / "boot" / f"vmlinuz-{v}").write_bytes(b"k")
    (tmp_path / "boot" / "initramfs-6.1.0-9.img").write_bytes(b"i")
    (tmp_path / "boot" / "initrd.img-6.1.0-10").write_bytes(b"i")
    # Versions compare as numbers (-10 after -9), with the initramfs of the chosen version.
    assert rootfs.find_kernel(str(tmp_path)) == ("/boot/vmlinuz-6.1.0-10", "/boot/initrd.img-6.1.0-10")
    (tmp_path / "boot" / "initrd.img-6.1.0-10").unlink()
    assert rootfs.find_kernel(str(tmp_path)) == ("/boot/vmlinuz-6.1.0-10", None)


def test_network_files(tmp_path: Path) -> None:
    nm = tmp_path / "etc" / "NetworkManager" / "system-connections"
    nm.mkdir(parents=True)
    (nm / "a.nmconnection").write_text("x")
    nd = tmp_path / "etc" / "systemd" / "network"
    nd.mkdir(parents=True)
    (nd / "10.network").write_text("x")
    (nd / "README").write_text("not network config")
    found = [inside for _src, inside in stash.network_files(str(tmp_path))]
    assert found == [
        "/etc/NetworkManager/system-connections/a.nmconnection",
        "/etc/systemd/network/10.network",
    ]


def test_stash_modes(tmp_path: Path) -> None:
    from pineinstall.stages import Log

    path = stash.stash_config(tmp_path, b'{"ignition":{}}', Log(io.StringIO()))
    assert path == tmp_path / "boot" / "ignition" / "config.ign"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.read_bytes() == b'{"ignition":{}}'


def test_render_plan_text() -> None:
    plan = {
        "dest": {"path": "/dev/vdb", "kind": "block device", "size": 10 << 30, "exists": True},
        "image": {"summary": "pine.raw.xz (xz, 1073741824 bytes) -> /dev/vdb; verified before writing"},
        "growth": "backup GPT moved to the end; grown",
        "partitions": [{"number": 1, "label": "root", "size": 1 << 20}],
        "files_stage": {"files": ["/etc/a"], "directories": [], "links": [], "users": ["core"], "groups": [],
                        "units": [{"name": "x.service", "enabled": True}]},
        "bootloader": {"should_exist": ["a"], "should_not_exist": ["b"], "append": ["c"], "delete": [],
                       "console": ["ttyS0"]},
        "stash_config": "/boot/ignition/config.ign",
    }  # fmt: skip
    text = render(plan)
    assert "DEST: /dev/vdb (block device, 10737418240 bytes (10.0 GiB))" in text
    assert "  1: root 1048576 bytes (1.0 MiB)" in text
    assert "files stage: 1 files, 0 directories, 0 links, 1 users, 0 groups, 1 units" in text
    assert "bootloader: +a +c -b console=ttyS0" in text
    assert "unit: x.service (enabled)" in text
    assert text.endswith("dry run: nothing was written\n")


def _plan(filesystems: list[FsPlan], rows: list[PartRow] = ()) -> StoragePlan:
    disk = DiskPlan("/dev/vdb", "/dev/vdb", 1 << 30, 512, "", True, [], list(rows), [], [])
    return StoragePlan(disks=[disk], filesystems=filesystems)


def _fs(node: str, fmt: str, path: str | None) -> FsPlan:
    return FsPlan(0, node, node, fmt, "create", "", "", "", None, None, [], True, path, False, [])


def test_config_layout_root_and_boot_partitions() -> None:
    rows = [
        PartRow(1, 2048, 2048, type_guid=rootfs.BIOS_BOOT_GUID.lower()),
        PartRow(2, 4096, 131072, type_guid=rootfs.ESP_GUID),
        PartRow(3, 135168, 1000000),
    ]
    plan = _plan([_fs("/dev/vdb2", "vfat", None), _fs("/dev/vdb3", "xfs", "/")], rows)
    assert rootfs.config_root(plan).node == "/dev/vdb3"
    assert rootfs.esp_and_bios(plan, "/dev/vdb") == (1, "/dev/vdb2")
    assert rootfs.esp_and_bios(plan, "/dev/vdc") == (None, None)  # another disk's partitions do not count
    # An ESP-typed partition without a vfat filesystem is not used.
    assert rootfs.esp_and_bios(_plan([_fs("/dev/vdb3", "ext4", "/")], rows), "/dev/vdb") == (1, None)


@pytest.mark.parametrize(
    ("filesystems", "message"),
    [
        ([_fs("/dev/vdb3", "ext4", "/var")], "mounts no filesystem at /"),
        ([_fs("/dev/vdb3", "vfat", "/")], "must be ext4, xfs or btrfs"),
        ([_fs("/dev/vdb3", "ext4", "/"), _fs("/dev/vdb2", "ext4", "/boot")], "separate /boot"),
    ],
)
def test_config_layout_refusals(filesystems: list[FsPlan], message: str) -> None:
    from pineinstall.stages import StageError

    with pytest.raises(StageError, match=message):
        rootfs.config_root(_plan(filesystems))


def test_root_password_fragment_is_merged_under_the_config() -> None:
    import json as json_

    from pineinstall.install import rootpw

    user = {"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "root", "sshAuthorizedKeys": ["k"]}]}}
    merged = json_.loads(rootpw.merged_under(json_.dumps(user).encode(), "$y$j9T$salt$hash"))
    assert merged["passwd"]["users"] == [
        {"name": "root", "passwordHash": "$y$j9T$salt$hash", "sshAuthorizedKeys": ["k"]}
    ]
    assert merged["ignition"]["version"] == "3.4.0"
    # Where the config speaks, it wins: its own hash stays.
    user["passwd"]["users"][0]["passwordHash"] = "$6$own"
    merged = json_.loads(rootpw.merged_under(json_.dumps(user).encode(), "$y$j9T$salt$hash"))
    assert merged["passwd"]["users"][0]["passwordHash"] == "$6$own"


def _carried_rows() -> list[PartRow]:
    return [
        PartRow(1, 2048, 2048, type_guid=rootfs.BIOS_BOOT_GUID),
        PartRow(2, 4096, 131072, type_guid=rootfs.ESP_GUID),
        PartRow(3, 135168, 1000000),
    ]


def test_config_layout_in_held_tables() -> None:
    """Partitions of DEST and filesystems on them: carried in held tables; the filesystems, their
    mkfs commands and mounts move to the loop devices at the partitions' offsets."""
    from pineinstall.install import rootfsflow

    plan = _plan([_fs("/dev/vdb2", "vfat", None), _fs("/dev/vdb3", "ext4", "/")], _carried_rows())
    assert rootfsflow.why_not_held(plan, "/dev/vdb") is None
    held = rootfsflow.held_storage(plan, lambda n: f"/dev/loop7{n}")
    assert [f.node for f in held.filesystems] == ["/dev/loop72", "/dev/loop73"]
    for f in held.filesystems:  # wipefs, mkfs: on the loop device only
        assert [c.argv[0] for c in f.commands] == ["wipefs", f"mkfs.{f.format}"], f.commands
        assert all(f.node in c.argv and "/dev/vdb" not in " ".join(c.argv) for c in f.commands), f.commands
    assert [(m.node, m.path) for m in held.mounts] == [("/dev/loop73", "/")]
    assert [f.node for f in plan.filesystems] == ["/dev/vdb2", "/dev/vdb3"]  # the plan itself unchanged
    assert rootfs.esp_and_bios(held, "/dev/vdb", lambda n: f"/dev/loop7{n}") == (1, "/dev/loop72")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("raid", "the config makes RAID arrays"),
        ("other disk", "the config partitions other disks too (/dev/vdc)"),
        ("fs elsewhere", "the config has filesystems outside DEST's partitions (/dev/vdc1)"),
        ("early", "partition 1 of /dev/vdb starts within the first MiB"),
    ],
)
def test_config_layout_not_in_held_tables(change: str, message: str) -> None:
    from pineinstall.install import rootfsflow
    from pineinstall.stages.plan import RaidPlan

    rows = _carried_rows()
    if change == "early":
        rows[0] = PartRow(1, 34, 2014)
    plan = _plan([_fs("/dev/vdb3", "ext4", "/")], rows)
    if change == "raid":
        plan.raids.append(RaidPlan("md0", "/dev/md/md0", "raid1", ["/dev/vdb3"], ["/dev/vdb3"], 0, [], []))
    elif change == "other disk":
        plan.disks.append(DiskPlan("/dev/vdc", "/dev/vdc", 1 << 30, 512, "", True, [], [], [], []))
    elif change == "fs elsewhere":
        plan.filesystems.append(_fs("/dev/vdc1", "ext4", "/srv"))
    assert rootfsflow.why_not_held(plan, "/dev/vdb") == message
