"""Rules of storage.disks/partitions, filesystems, raid and luks."""

from __future__ import annotations

import pytest
from _rules_helpers import err, findings, warn

GUID_MSG = 'doesn\'t match the form "01234567-89AB-CDEF-EDCB-A98765432101"'


def disk(*parts, **more):
    return {"storage": {"disks": [{"device": "/dev/vda", "partitions": list(parts), **more}]}}


def test_disk_device_required_and_absolute():
    cfg = {"storage": {"disks": [{"device": ""}, {"device": "sda"}, {"device": "/dev/sdb"}]}}
    assert findings(cfg) == {
        err("$.storage.disks.0.device", "disk device is required"),
        err("$.storage.disks.1.device", "path not absolute"),
    }


def test_duplicate_disks():
    cfg = {"storage": {"disks": [{"device": "/dev/a"}, {"device": "/dev/a"}]}}
    assert findings(cfg) == {err("$.storage.disks.1", "duplicate entry defined")}


def test_partition_numbers_collide():
    got = findings(
        disk({"number": 1, "label": "a"}, {"number": 2, "label": "b"}, {"number": 1, "label": "c"})
    )
    assert got == {
        err("$.storage.disks.0.partitions.2", "partition numbers collide"),
        err("$.storage.disks.0.partitions.2", "duplicate entry defined"),
    }


def test_partitions_without_number_or_label_are_duplicates_of_each_other():
    got = findings(disk({}, {}))
    assert got == {
        err("$.storage.disks.0.partitions.0", "a partition number >= 1 or a label must be specified"),
        err("$.storage.disks.0.partitions.1", "a partition number >= 1 or a label must be specified"),
        err("$.storage.disks.0.partitions.1", "duplicate entry defined"),
    }


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((10, 100), (50, 100), True),
        ((100, 10), (50, 100), True),  # straddled
        ((1, 10), (11, 10), False),  # adjacent
        ((0, 100), (0, 100), False),  # start 0: placed by sgdisk, not checked
        ((10, 10), (15, 0), True),  # size 0 ends at its start
    ],
)
def test_partitions_overlap(a, b, overlap):
    got = findings(
        disk(
            {"number": 1, "startMiB": a[0], "sizeMiB": a[1]}, {"number": 2, "startMiB": b[0], "sizeMiB": b[1]}
        )
    )
    assert got == ({err("$.storage.disks.0.partitions.1", "partitions overlap")} if overlap else set())


def test_partition_label_length_counts_bytes():
    assert findings(disk({"label": "b" * 36})) == set()
    assert findings(disk({"label": "\U0001f600" * 9})) == set()  # 36 bytes
    for label in ("a" * 37, "\u00e9" * 19):
        assert findings(disk({"label": label})) == {
            err("$.storage.disks.0.partitions.0.label", "partition labels may not exceed 36 characters")
        }


def test_partition_label_colon():
    assert findings(disk({"number": 1, "label": "boot:efi"})) == {
        err(
            "$.storage.disks.0.partitions.0.label",
            "partition label will be truncated to text before the colon",
        )
    }


def test_partition_labels_unique():
    got = findings(disk({"number": 1, "label": "root"}, {"number": 2, "label": "root"}))
    assert got == {err("$.storage.disks.0.partitions.1", "cannot use the same partition label twice")}


@pytest.mark.parametrize("field", ["guid", "typeGuid"])
def test_partition_guids(field):
    assert findings(disk({"number": 1, field: "nope"})) == {
        err(f"$.storage.disks.0.partitions.0.{field}", GUID_MSG)
    }
    for ok in ("", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "5e9c4a2b-1b6e-4d2c-9f0a-0123456789ab"):
        assert findings(disk({"number": 1, field: ok})) == set()


@pytest.mark.parametrize(
    "extra",
    [{"sizeMiB": 1}, {"startMiB": 0}, {"label": ""}, {"guid": "5e9c4a2b-1b6e-4d2c-9f0a-0123456789ab"}],
)
def test_should_not_exist_with_other_fields(extra):
    assert findings(disk({"number": 3, "shouldExist": False, **extra})) == {
        err("$.storage.disks.0.partitions.0", "shouldExist specified false with other options also specified")
    }


def test_should_not_exist_alone_passes():
    assert findings(disk({"number": 3, "shouldExist": False, "wipePartitionEntry": True})) == set()


def test_unnumbered_partition_next_to_should_not_exist():
    got = findings(disk({"label": "a"}, {"number": 2, "shouldExist": False}))
    assert got == {
        err(
            "$.storage.disks.0.partitions",
            "shouldExist is false for a partition and other partition(s) has start or size 0",
        )
    }


def test_disk_checks_stop_without_a_device_but_partition_checks_run():
    got = findings({"storage": {"disks": [{"device": "", "partitions": [{"number": 1}, {"number": 1}]}]}})
    assert got == {
        err("$.storage.disks.0.device", "disk device is required"),
        err("$.storage.disks.0.partitions.1", "duplicate entry defined"),
    }


def fs(**kw):
    return {"storage": {"filesystems": [{"device": "/dev/vdb", **kw}]}}


def test_filesystem_paths():
    assert findings(fs(format="ext4", path="var")) == {
        err("$.storage.filesystems.0.path", "path not absolute")
    }
    assert findings(fs(format="ext4", path="")) == set()
    assert findings({"storage": {"filesystems": [{"device": "", "format": "ext4"}]}}) == {
        err("$.storage.filesystems.0.device", "path not specified")
    }


def test_filesystem_formats():
    assert findings(fs(format="zfs")) == {err("$.storage.filesystems.0.format", "invalid filesystem format")}
    assert findings(fs(format="none"), (3, 2)) == {
        err("$.storage.filesystems.0.format", "invalid filesystem format")
    }
    for ok in ("ext4", "btrfs", "xfs", "swap", "vfat"):
        assert findings(fs(format=ok)) == set()
    assert findings(fs(format="none"), (3, 3)) == set()


@pytest.mark.parametrize(
    ("fmt", "limit"), [("ext4", 16), ("btrfs", 256), ("xfs", 12), ("swap", 15), ("vfat", 11)]
)
def test_filesystem_label_limits(fmt, limit):
    assert findings(fs(format=fmt, label="x" * limit)) == set()
    assert findings(fs(format=fmt, label="x" * (limit + 1))) == {
        err(
            "$.storage.filesystems.0.label",
            f"filesystem labels cannot be longer than {limit} characters when using {fmt}",
        )
    }


def test_filesystem_label_needs_format():
    assert findings(fs(label="data")) == {
        err(
            "$.storage.filesystems.0.format",
            "format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified",
        ),
        err("$.storage.filesystems.0.label", "filesystem must specify format if label is specified"),
    }


@pytest.mark.parametrize(
    "extra",
    [
        {"path": "/var"},
        {"uuid": "u"},
        {"wipeFilesystem": True},
        {"options": ["-m0"]},
        {"mountOptions": ["ro"]},
    ],
)
def test_format_required_with_other_fields(extra):
    assert findings(fs(**extra)) == {
        err(
            "$.storage.filesystems.0.format",
            "format cannot be empty when path, label, uuid, wipeFilesystem, options, or mountOptions is specified",
        )
    }


def test_mount_options_did_not_exist_in_3_0():
    assert findings(fs(mountOptions=["ro"]), (3, 0)) == set()


def test_filesystem_options_may_repeat_but_devices_may_not():
    cfg = {
        "storage": {
            "filesystems": [
                {"device": "/dev/a", "format": "ext4", "options": ["x", "x"]},
                {"device": "/dev/a", "format": "xfs"},
            ]
        }
    }
    assert findings(cfg) == {err("$.storage.filesystems.1", "duplicate entry defined")}


def test_filesystem_on_disks_warnings_in_every_version():
    cfg = {
        "storage": {
            "disks": [
                {"device": "/dev/a", "partitions": [{"number": 1}]},
                {"device": "/dev/b", "wipeTable": True},
            ],
            "filesystems": [
                {"device": "/dev/a", "format": "ext4"},
                {"device": "/dev/b", "format": "xfs"},
                {"device": "/dev/b", "format": "xfs", "wipeFilesystem": True},
            ],
        }
    }
    got = findings(cfg, (3, 0))
    assert got == findings(cfg, (3, 4))
    assert warn("$.storage.filesystems.0.device", "filesystem overwrites partitioned device") in got
    assert (
        warn(
            "$.storage.filesystems.1.device",
            "device matches disk with wipeTable enabled; filesystem will be wiped",
        )
        in got
    )
    assert not any(p.startswith("$.storage.filesystems.2.device") for _, p, _ in got)


def raid(**kw):
    return {"storage": {"raid": [{"name": "md0", "devices": ["/dev/a", "/dev/b"], **kw}]}}


def test_raid_levels():
    assert findings(raid(level="raid7")) == {err("$.storage.raid.0.level", "unrecognized raid level")}
    assert findings(raid()) == {err("$.storage.raid.0.level", "raid level is required")}
    assert findings(raid(level=""), (3, 2)) == {err("$.storage.raid.0.level", "unrecognized raid level")}
    for ok in (
        "linear",
        "raid0",
        "0",
        "stripe",
        "raid1",
        "1",
        "mirror",
        "raid4",
        "4",
        "raid5",
        "5",
        "raid6",
        "6",
        "raid10",
        "10",
    ):
        assert findings(raid(level=ok)) == set()


def test_raid_spares():
    assert findings(raid(level="raid0", spares=1)) == {
        err("$.storage.raid.0.level", "spares unsupported for linear and raid0 arrays")
    }
    assert findings(raid(level="raid5", spares=1)) == set()


def test_raid_devices():
    assert findings(raid(level="raid1", devices=[])) == {
        err("$.storage.raid.0.devices", "raid devices required")
    }
    assert findings(raid(level="raid1", devices=["vdb", "/dev/a", "/dev/a"])) == {
        err("$.storage.raid.0.devices.0", "path not absolute"),
        err("$.storage.raid.0.devices.2", "duplicate entry defined"),
    }


def luks(**kw):
    return {"storage": {"luks": [{"name": "crypt", "device": "/dev/vdb", **kw}]}}


def test_luks_basics():
    assert findings(luks(name="a/b")) == {err("$.storage.luks.0.name", "device names cannot contain slashes")}
    assert findings({"storage": {"luks": [{"name": "c"}]}}) == {
        err("$.storage.luks.0.device", "disk device is required")
    }
    assert findings(luks(device="vdb")) == {err("$.storage.luks.0.device", "path not absolute")}
    assert findings(luks(label="L" * 48)) == {
        err("$.storage.luks.0.label", "luks device labels cannot be longer than 47 characters")
    }
    assert findings(luks(label="L" * 47, options=["x", "x"], clevis={"tpm2": True})) == set()


def test_luks_only_from_3_2():
    assert findings(luks(name="a/b"), (3, 1)) == set()


def test_luks_key_file():
    assert findings(luks(keyFile={"source": "ftp://x/key"})) == {
        err("$.storage.luks.0.keys", "invalid key-file source"),
        err("$.storage.luks.0.keyFile.source", "invalid url scheme"),
    }


def test_custom_clevis_with_others():
    got = findings(luks(clevis={"custom": {"pin": "tpm2", "config": "{}"}, "tpm2": True}))
    assert got == {
        err("$.storage.luks.0.clevis", "cannot use custom clevis config with tpm2, tang, or threshold")
    }
    # 3.3.0 needs a non-empty pin for the conflict; 3.2.0 only needed the custom object
    assert findings(luks(clevis={"custom": {}, "tpm2": True}), (3, 3)) == set()
    assert findings(luks(clevis={"custom": {}, "tpm2": True}), (3, 2)) == {
        err("$.storage.luks.0.clevis", "cannot use custom clevis config with tpm2, tang, or threshold")
    }


def test_custom_clevis_fields():
    base = "$.storage.luks.0.clevis.custom"
    assert findings(luks(clevis={"custom": {"pin": "yubikey", "config": "{}"}})) == {
        err(f"{base}.pin", "unsupported clevis pin")
    }
    assert findings(luks(clevis={"custom": {"pin": "tang"}})) == {
        err(f"{base}.config", "missing required custom clevis config")
    }
    assert findings(luks(clevis={"custom": {"needsNetwork": True}})) == {
        err(f"{base}.pin", "missing required custom clevis pin"),
        err(f"{base}.config", "missing required custom clevis config"),
    }
    assert findings(luks(clevis={"custom": {"config": "{}"}}), (3, 2)) == {
        err(f"{base}.pin", "unsupported clevis pin")
    }
    # 3.6.0 stopped checking pin names
    assert findings(luks(clevis={"custom": {"pin": "trustee", "config": "{}"}}), (3, 6)) == set()


def test_tang():
    base = "$.storage.luks.0.clevis.tang"
    got = findings(
        luks(clevis={"tang": [{"url": "tang.example"}, {"url": "tang.example", "thumbprint": "x"}]})
    )
    assert got == {
        err(f"{base}.0.url", "invalid url scheme"),
        err(f"{base}.0.thumbprint", "thumbprint is required"),
        err(f"{base}.1.url", "invalid url scheme"),
        err(f"{base}.1", "duplicate entry defined"),
    }


def test_tang_advertisement_from_3_4():
    cfg = luks(clevis={"tang": [{"url": "http://t", "thumbprint": "x", "advertisement": "{bad"}]})
    assert findings(cfg, (3, 3)) == set()
    assert findings(cfg, (3, 4)) == {
        err("$.storage.luks.0.clevis.tang.0.advertisement", "advertisement is not valid JSON")
    }


def test_cex_excludes_clevis_from_3_5():
    cfg = luks(cex={"enabled": True}, clevis={"tpm2": True})
    assert {p for _, p, _ in findings(cfg, (3, 5))} == {"$.storage.luks.0.cex"}
    assert findings(luks(cex={"enabled": True}), (3, 5)) == set()


def test_raid_and_luks_are_keyed_by_name():
    cfg = {
        "storage": {
            "raid": [
                {"name": "md0", "level": "raid1", "devices": ["/dev/a"]},
                {"name": "md0", "level": "raid1", "devices": ["/dev/b"]},
            ],
            "luks": [{"name": "c", "device": "/dev/a"}, {"name": "c", "device": "/dev/b"}],
        }
    }
    assert findings(cfg, (3, 2)) == {
        err("$.storage.raid.1", "duplicate entry defined"),
        err("$.storage.luks.1", "duplicate entry defined"),
    }


def test_partitions_keyed_by_number_else_label():
    got = findings(disk({"label": "a"}, {"label": "a"}, {"number": 2, "label": "a"}))
    # the third is keyed by its number, so only the label rule sees it
    assert got == {
        err("$.storage.disks.0.partitions.1", "duplicate entry defined"),
        err("$.storage.disks.0.partitions.1", "cannot use the same partition label twice"),
    }
