"""The disks stage's decisions as pure functions: Ignition's partition matching and filesystem reuse
rules, name resolution against a plan, mount order, plan rendering (no processes run here)."""

from __future__ import annotations

import json

import pytest

from pineinstall.block import blkid, discover, sfdisk
from pineinstall.config import model
from pineinstall.stages import StageError, disks
from pineinstall.stages import mount as mount_stage
from pineinstall.stages.disks import devices, filesystems, partitions, raid_luks
from pineinstall.stages.files import luks_keys
from pineinstall.stages.plan import (
    Command,
    DiskPlan,
    FsPlan,
    LuksPlan,
    PartAction,
    PartRow,
    StoragePlan,
    render_text,
)


def fs(**kw):
    return model.from_dict({"storage": {"filesystems": [{"device": "/dev/x", **kw}]}}).storage.filesystems[0]


def sig(type_="", label="", uuid=""):
    return blkid.Signature(type=type_, label=label, uuid=uuid)


# --- filesystem reuse ------------------------------------------------------------------------------


def test_no_format_means_no_action():
    assert disks.decide_filesystem(fs(), sig("xfs"), "$") == "nothing"


def test_empty_device_gets_created():
    assert disks.decide_filesystem(fs(format="ext4"), sig(), "$") == "create"
    assert disks.decide_filesystem(fs(format="ext4", wipeFilesystem=True), sig(), "$") == "create"


def test_reuse_needs_type_and_given_label_and_uuid():
    existing = sig("ext4", "root", "6F3B8F4E-1C2D-4E5F-8A9B-0C1D2E3F4A5B")
    assert disks.decide_filesystem(fs(format="ext4"), existing, "$") == "reuse"
    assert disks.decide_filesystem(fs(format="ext4", label="root"), existing, "$") == "reuse"
    same_uuid = fs(format="ext4", uuid="6f3b8f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
    assert disks.decide_filesystem(same_uuid, existing, "$") == "reuse"
    for bad in (
        fs(format="xfs"),
        fs(format="ext4", label="var"),
        fs(format="ext4", uuid="00000000-0000-4000-8000-000000000000"),
    ):
        with pytest.raises(
            StageError,
            match=r"\$\.x: filesystem at /dev/x is not of the correct type, label, or UUID \(found ext4, 'root', ",
        ):
            disks.decide_filesystem(bad, existing, "$.x")


def test_empty_label_given_matches_only_an_empty_label():
    assert disks.decide_filesystem(fs(format="ext4", label=""), sig("ext4", ""), "$") == "reuse"
    with pytest.raises(StageError):
        disks.decide_filesystem(fs(format="ext4", label=""), sig("ext4", "root"), "$")


def test_wipe_filesystem_always_recreates():
    assert (
        disks.decide_filesystem(fs(format="ext4", wipeFilesystem=True), sig("ext4", "same"), "$")
        == "wipe+create"
    )
    assert disks.decide_filesystem(fs(format="xfs", wipeFilesystem=True), sig("ext4"), "$") == "wipe+create"


def test_vfat_volume_id_with_or_without_dash():
    existing = sig("vfat", "EFI", "A1B2-C3D4")
    assert disks.decide_filesystem(fs(format="vfat", uuid="a1b2c3d4"), existing, "$") == "reuse"
    assert disks.decide_filesystem(fs(format="vfat", uuid="A1B2-C3D4"), existing, "$") == "reuse"


def test_swap_and_none():
    assert disks.decide_filesystem(fs(format="swap", label="sw"), sig("swap", "sw"), "$") == "reuse"
    assert disks.decide_filesystem(fs(format="none"), sig(), "$") == "nothing"
    with pytest.raises(StageError, match="found ext4"):
        disks.decide_filesystem(fs(format="none"), sig("ext4"), "$")
    assert disks.decide_filesystem(fs(format="none", wipeFilesystem=True), sig("ext4"), "$") == "wipe"


def test_ambivalent_signatures_are_never_reused():
    many = blkid.Signature(type="ambivalent(ext4,xfs)", ambivalent=True)
    with pytest.raises(StageError, match="ambivalent"):
        disks.decide_filesystem(fs(format="ext4"), many, "$")
    assert disks.decide_filesystem(fs(format="ext4", wipeFilesystem=True), many, "$") == "wipe+create"


def test_filesystem_commands_wipe_then_mkfs():
    f = fs(format="btrfs", label="data", options=["-m", "single"])
    assert [c.argv for c in filesystems.fs_commands(f, "/dev/vdb1", "create")] == [
        ["wipefs", "-a", "/dev/vdb1"],
        ["mkfs.btrfs", "-m", "single", "--force", "-L", "data", "/dev/vdb1"],
    ]
    assert filesystems.fs_commands(f, "/dev/vdb1", "reuse") == []
    assert [c.argv[0] for c in filesystems.fs_commands(f, "/dev/vdb1", "wipe")] == ["wipefs"]


# --- partition matching ----------------------------------------------------------------------------


def spec(**kw):
    base = dict(index=0, number=1, start=None, size=None, label=None, type_guid=None, guid=None,
                wipe_entry=False, should_exist=True, resize=False)  # fmt: skip
    base.update(kw)
    return partitions.PartitionSpec(**base)


INFO = sfdisk.PartitionInfo(1, 2048, 20480, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "AAAA-BB", "root")


def test_partition_matching_fields():
    assert partitions.matches(INFO, spec()) is None
    assert partitions.matches(INFO, spec(start=2048, size=20480, label="root", guid="aaaa-bb")) is None
    assert partitions.matches(INFO, spec(type_guid="0fc63daf-8483-4772-8e79-3d69d8477de4")) is None
    assert (
        partitions.matches(INFO, spec(start=4096)) == "starting sector did not match (specified 4096, got 2048)"
    )
    assert partitions.matches(INFO, spec(size=1)) == "size did not match (specified 1, got 20480)"
    assert partitions.matches(INFO, spec(label="var")) == 'label did not match (specified "var", got "root")'
    assert partitions.matches(INFO, spec(guid="CCCC")) == 'GUID did not match (specified "CCCC", got "AAAA-BB")'
    assert partitions.matches(INFO, spec(type_guid="X")).startswith("type GUID did not match")
    # Resize compares everything but the size.
    assert partitions.matches_common(INFO, spec(size=99999)) is None
    # An empty label is a label: it must match.
    assert partitions.matches(INFO, spec(label="")) == 'label did not match (specified "", got "root")'


def test_duplicate_partition_numbers_refused():
    with pytest.raises(StageError, match=r"\$\.d\.partitions\.1: partition number 3 is given twice"):
        partitions.refuse_duplicates(
            [spec(number=3), spec(index=1, number=3), spec(index=2, number=0), spec(index=3, number=0)], "$.d"
        )


def test_overlap_check():
    partitions.refuse_overlap([PartRow(1, 2048, 2048), PartRow(2, 4096, 10)], "$")
    with pytest.raises(StageError, match="partitions 1 and 2 would overlap"):
        partitions.refuse_overlap([PartRow(2, 4000, 10), PartRow(1, 2048, 2048)], "$")


def test_mib_to_sectors_follows_the_sector_size():
    assert partitions.mib_to_sectors(3, 512) == 6144
    assert partitions.mib_to_sectors(3, 4096) == 768
    assert partitions.mib_to_sectors(None, 512) is None


# --- resolving config names against a plan ---------------------------------------------------------


def disk_plan(path="/dev/vda", rows=()):
    return DiskPlan("/dev/disk/by-id/virtio-a", path, 1 << 30, 512, "gpt", False, [], list(rows), [], [])


def test_names_resolve_to_planned_devices():
    d = disk_plan(rows=[PartRow(1, 2048, 100, label="root", action="create"),
                        PartRow(2, 4096, 100, guid="ABCD-EF", label="var", action="keep")])  # fmt: skip
    names = devices.DeviceNames([d], raids={"data": "/dev/md/data"}, luks={"vault": "/dev/mapper/vault"})
    assert names.resolve("/dev/disk/by-partlabel/root", "$").node == "/dev/vda1"
    assert names.resolve("/dev/disk/by-partuuid/abcd-ef", "$").row.number == 2
    assert names.resolve("/dev/vda2", "$").row.label == "var"
    raid = names.resolve("/dev/md/data", "$")
    assert (raid.kind, raid.node, raid.fresh) == ("raid", "/dev/md/data", True)
    assert names.resolve("/dev/disk/by-id/dm-name-vault", "$").node == "/dev/mapper/vault"


def test_ambiguous_partition_label():
    d1 = disk_plan("/dev/vda", [PartRow(1, 2048, 100, label="data")])
    d2 = disk_plan("/dev/vdb", [PartRow(1, 2048, 100, label="data")])
    with pytest.raises(StageError, match="ambiguous: 2 partitions have that label"):
        devices.DeviceNames([d1, d2]).resolve("/dev/disk/by-partlabel/data", "$")


def test_raid_level_and_member_count_checked_first():
    storage = model.from_dict(
        {
            "storage": {
                "raid": [
                    {"name": "r", "level": "raid6", "devices": ["/a", "/b", "/c"]},
                    {"name": "s", "level": "raid1", "devices": ["/a", "/b"], "spares": 2},
                ]
            }
        }
    ).storage
    names = devices.DeviceNames([])
    with pytest.raises(
        StageError, match=r"\$\.storage\.raid\.0: raid6 needs at least 4 active devices, got 3"
    ):
        raid_luks.plan_raid(0, storage.raid[0], names)
    with pytest.raises(StageError, match="got 0"):
        raid_luks.plan_raid(1, storage.raid[1], names)


# --- keys, crypttab --------------------------------------------------------------------------------


def test_data_urls():
    assert disks.fetch_data_url("data:,hello%20world") == b"hello world"
    assert disks.fetch_data_url("data:text/plain;base64,aGk=") == b"hi"
    with pytest.raises(ValueError):
        disks.fetch_data_url("data:nocomma")


def test_key_verification_hash():
    import hashlib

    good = hashlib.sha512(b"key").hexdigest()
    res = (
        model.from_dict(
            {
                "storage": {
                    "luks": [
                        {
                            "name": "x",
                            "keyFile": {"source": "data:,key", "verification": {"hash": f"sha512-{good}"}},
                        }
                    ]
                }
            }
        )
        .storage.luks[0]
        .key_file
    )
    assert raid_luks.fetch_key(res, disks.Env(), "$") == b"key"
    bad = (
        model.from_dict(
            {
                "storage": {
                    "luks": [
                        {
                            "name": "x",
                            "keyFile": {"source": "data:,key", "verification": {"hash": "sha512-00"}},
                        }
                    ]
                }
            }
        )
        .storage.luks[0]
        .key_file
    )
    with pytest.raises(StageError, match="does not match its verification hash"):
        raid_luks.fetch_key(bad, disks.Env(), "$")
    remote = (
        model.from_dict(
            {"storage": {"luks": [{"name": "x", "keyFile": {"source": "https://example.com/k"}}]}}
        )
        .storage.luks[0]
        .key_file
    )
    with pytest.raises(StageError, match="no resource fetcher"):
        raid_luks.fetch_key(remote, disks.Env(), "$")
    assert (
        raid_luks.fetch_key(remote, disks.Env(fetch=lambda r: b"from " + r.source.encode()), "$")
        == b"from https://example.com/k"
    )


def test_crypttab_lines():
    assert (
        luks_keys.crypttab_line(disks.LuksKey("data", b"k", "U-1", False, False))
        == "data UUID=U-1 /etc/luks/data luks"
    )
    assert (
        luks_keys.crypttab_line(disks.LuksKey("d", b"k", "U", True, False)) == "d UUID=U /etc/luks/d luks,discard"
    )
    assert luks_keys.crypttab_line(disks.LuksKey("t", b"", "U", False, True)) == "t UUID=U none luks"


def test_clevis_pin_config():
    luks = model.from_dict(
        {
            "storage": {
                "luks": [
                    {
                        "name": "x",
                        "clevis": {
                            "tpm2": True,
                            "threshold": 2,
                            "tang": [{"url": "http://t", "thumbprint": "abc"}],
                        },
                    }
                ]
            }
        }
    ).storage.luks[0]
    pin, config = raid_luks.clevis_pin(luks)
    assert pin == "sss"
    assert json.loads(config) == {"t": 2, "pins": {"tang": [{"url": "http://t", "thp": "abc"}], "tpm2": {}}}


# --- mounts ----------------------------------------------------------------------------------------


def test_mount_order_shallowest_first_stable_and_only_mountable():
    storage = model.from_dict(
        {
            "storage": {
                "filesystems": [
                    {"device": "/a", "format": "ext4", "path": "/var/lib/x"},
                    {"device": "/b", "format": "xfs", "path": "/var"},
                    {"device": "/c", "format": "swap", "path": "/swap"},
                    {"device": "/d", "format": "ext4", "path": "/srv"},
                    {"device": "/e", "format": "none", "path": "/none"},
                    {"device": "/f", "path": "/noformat"},
                    {"device": "/g", "format": "btrfs", "path": "/"},
                    {"device": "/h", "format": "ext4"},
                ]
            }
        }
    ).storage
    assert [f.device for f in mount_stage.mountable(storage.filesystems)] == ["/g", "/b", "/d", "/a"]


# --- rendering -------------------------------------------------------------------------------------


def sample_plan() -> StoragePlan:
    d = DiskPlan(
        device="/dev/disk/by-id/virtio-a",
        path="/dev/vda",
        size_bytes=1 << 30,
        sector_size=512,
        table_before="gpt",
        wipe_table=False,
        before=[PartRow(1, 2048, 20480, "T", "G", "boot")],
        after=[
            PartRow(1, 2048, 20480, "T", "G", "boot", "keep"),
            PartRow(2, 22528, 1000, "T", "", "root", "create"),
        ],
        actions=[PartAction(1, "keep", "matches"), PartAction(2, "create")],
        commands=[Command(["sgdisk", "--new=2:0:+1000", "/dev/vda"], "write the partition table")],
    )
    lk = LuksPlan("vault", "/dev/vda2", "/dev/vda2", "/dev/mapper/vault", "create", "generated", None, None, True,
                  [], False, "", [Command(["cryptsetup", "luksFormat"], "format", b"SECRETKEY")], key=b"SECRETKEY")  # fmt: skip
    f = FsPlan(0, "/dev/mapper/vault", "/dev/mapper/vault", "ext4", "create", "", "", "", "data", None, [], False,
               "/srv", True, [])  # fmt: skip
    return StoragePlan(disks=[d], luks=[lk], filesystems=[f], mounts=disks.plan_mounts([f]))


def test_render_text():
    text = render_text(sample_plan())
    lines = text.splitlines()
    assert lines[0] == "disk /dev/disk/by-id/virtio-a (/dev/vda, 1024 MiB, 512-byte sectors)"
    assert "  table before: gpt" in lines and "  table after: gpt" in lines
    assert any(ln.split()[:4] == ["2", "11", "0.49", "T"] and ln.endswith("root  [create]") for ln in lines)
    assert "  partition 1: keep (matches)" in lines
    assert "luks /dev/mapper/vault on /dev/vda2: create (generated key -> /etc/luks/vault, discard)" in lines
    assert (
        "filesystem /dev/mapper/vault (/dev/mapper/vault): create ext4 [label data]; found decided once the device exists"
        in lines
    )
    assert "mount /dev/mapper/vault on /srv (ext4)" in lines
    assert "SECRETKEY" not in text


def test_plan_json_never_holds_keys():
    data = sample_plan().to_dict()
    dumped = json.dumps(data)
    assert "SECRETKEY" not in dumped
    assert data["luks"][0]["commands"][0]["stdin"] == "<key>"
    assert data["disks"][0]["after"][1] == {
        "number": 2, "start": 22528, "size": 1000, "startMiB": 11.0, "sizeMiB": 0.488,
        "typeGuid": "T", "guid": None, "label": "root", "action": "create",
    }  # fmt: skip
    assert sample_plan().changes


def test_empty_plan_renders():
    assert render_text(StoragePlan()) == "storage: nothing to do\n"
    assert not StoragePlan().changes


def test_discover_prefers_a_real_node(monkeypatch):
    monkeypatch.setattr(discover, "udev_running", lambda: False)
    assert discover._resolve_without_udev("/dev/sda") is None
    assert discover._resolve_without_udev("/dev/disk/by-path/pci-0000:00:1f.2-ata-1") is None


def test_by_id_partition_names_of_a_configured_disk(monkeypatch):
    monkeypatch.setattr(
        discover, "resolve", lambda p: "/dev/vda" if p == "/dev/disk/by-id/virtio-a" else None
    )
    d = disk_plan(rows=[PartRow(1, 2048, 100, action="create"), PartRow(3, 4096, 100, action="create")])
    names = devices.DeviceNames([d])
    ref = names.resolve("/dev/disk/by-id/virtio-a-part3", "$")
    assert (ref.kind, ref.node, ref.row.number) == ("partition", "/dev/vda3", 3)
    with pytest.raises(StageError, match="will have no partition 2"):
        names.resolve("/dev/disk/by-id/virtio-a-part2", "$")
    with pytest.raises(StageError, match="does not exist and this config does not create it"):
        names.resolve("/dev/disk/by-id/virtio-zzz-part1", "$")


def test_an_empty_storage_section_needs_no_tools(monkeypatch):
    monkeypatch.setattr(disks.shutil, "which", lambda *a, **k: None)
    assert disks.plan(model.Storage()).to_dict()["disks"] == []
    with pytest.raises(StageError, match=r"required tools are missing: blkid, mkfs\.xfs, wipefs$"):
        disks._refuse_missing_tools(
            StoragePlan(
                filesystems=[
                    FsPlan(
                        0,
                        "/d",
                        "/d",
                        "xfs",
                        "create",
                        "",
                        "",
                        "",
                        None,
                        None,
                        [],
                        False,
                        None,
                        False,
                        [Command(["wipefs", "-a", "/d"], ""), Command(["mkfs.xfs", "/d"], "")],
                    )
                ]
            )
        )


def test_dry_run_plans_do_not_fetch_remote_keys_and_cannot_be_applied():
    remote = model.from_dict(
        {"storage": {"luks": [{"name": "x", "keyFile": {"source": "https://example.com/k"}}]}}
    )
    key_file = remote.storage.luks[0].key_file
    assert raid_luks.fetch_key(key_file, disks.Env(dry_run=True), "$") == b""
    assert raid_luks.fetch_key(key_file, disks.Env(dry_run=True, fetch=lambda r: b"got"), "$") == b"got"
    with pytest.raises(StageError, match="dry run cannot be applied"):
        disks.apply(StoragePlan(dry_run=True), None)
