"""Partitions on real loop devices: Ignition's matching rules, applied with sgdisk and partx, and
the property that a refused config leaves the disk byte-for-byte unchanged."""

from __future__ import annotations

import os

import pytest

from pineinstall.stages import StageError, disks
from tests.integration.test_disks_support import (
    MIB,
    config,
    file_hash,
    quiet_log,
    sh,
    sysfs_int,
    table,
)

pytestmark = pytest.mark.needs("sgdisk")

LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GUID1 = "11111111-2222-4333-8444-555555555555"


def apply_storage(storage: dict):
    cfg = config(storage)
    plan = disks.plan(cfg.storage)
    disks.apply(plan, quiet_log())
    return plan


def sectors(mib: int) -> int:
    return mib * MIB // 512


def partition_nodes(dev: str) -> list[str]:
    name = os.path.basename(dev)
    return sorted(p for p in os.listdir(f"/sys/class/block/{name}") if p.startswith(name + "p"))


def test_create_on_blank_disk(loops):
    dev, _ = loops.make(64)
    apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [
                        {"number": 1, "label": "esp", "sizeMiB": 8, "typeGuid": ESP, "guid": GUID1},
                        {"number": 2, "label": "root", "startMiB": 16, "sizeMiB": 20},
                        {"number": 3, "label": "rest"},
                    ],
                }
            ]
        }
    )
    t = table(dev)
    assert t["label"] == "gpt"
    p = t["by_number"]
    assert (p[1]["start"], p[1]["size"], p[1]["name"]) == (sectors(1), sectors(8), "esp")
    assert p[1]["type"] == ESP and p[1]["uuid"] == GUID1.upper()
    assert (p[2]["start"], p[2]["size"], p[2]["name"], p[2]["type"]) == (
        sectors(16),
        sectors(20),
        "root",
        LINUX,
    )
    # No start and no size: the first free aligned sector, up to the end of the disk.
    assert p[3]["start"] == sectors(36)
    assert p[3]["start"] + p[3]["size"] - 1 == t["lastlba"]
    # partx told the kernel: the nodes exist with the same geometry.
    assert partition_nodes(dev) == [f"{os.path.basename(dev)}p{n}" for n in (1, 2, 3)]
    name = os.path.basename(dev)
    assert sysfs_int(f"/sys/class/block/{name}p2/start") == sectors(16)
    assert sysfs_int(f"/sys/class/block/{name}p2/size") == sectors(20)


def test_reapplying_the_same_config_changes_nothing(loops):
    dev, image = loops.make(64)
    storage = {
        "disks": [
            {
                "device": dev,
                "partitions": [
                    {"number": 1, "label": "a", "sizeMiB": 10},
                    {"number": 2, "label": "b", "sizeMiB": 0},
                ],
            }
        ]
    }
    apply_storage(storage)
    before = file_hash(image)
    plan = disks.plan(config(storage).storage)
    assert [a.action for a in plan.disks[0].actions] == ["keep", "keep"]
    assert plan.disks[0].commands == []
    disks.apply(plan, quiet_log())
    assert file_hash(image) == before


def test_start_and_size_zero_mean_what_they_would_become(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "label": "a", "sizeMiB": 10}]}]})
    before = file_hash(image)
    # startMiB 0 is "where it would be created": the existing partition matches.
    plan = disks.plan(
        config(
            {
                "disks": [
                    {"device": dev, "partitions": [{"number": 1, "label": "a", "startMiB": 0, "sizeMiB": 10}]}
                ]
            }
        ).storage
    )
    assert plan.disks[0].actions[0].action == "keep"
    disks.apply(plan, quiet_log())
    assert file_hash(image) == before


def test_resize_keeps_identity_and_data(loops):
    dev, _ = loops.make(96)
    apply_storage(
        {
            "disks": [{"device": dev, "partitions": [{"number": 1, "label": "data", "sizeMiB": 16}]}],
            "filesystems": [{"device": f"{dev}p1", "format": "ext4", "label": "DATA"}],
        }
    )
    old = table(dev)["by_number"][1]
    fs_uuid = sh("blkid", "-p", "-s", "UUID", "-o", "value", f"{dev}p1").strip()
    plan = apply_storage(
        {
            "disks": [
                {"device": dev, "partitions": [{"number": 1, "label": "data", "sizeMiB": 48, "resize": True}]}
            ],
            "filesystems": [{"device": f"{dev}p1", "format": "ext4", "label": "DATA"}],
        }
    )
    assert plan.disks[0].actions[0].action == "resize"
    assert plan.filesystems[0].action == "reuse"
    new = table(dev)["by_number"][1]
    assert new["start"] == old["start"] and new["uuid"] == old["uuid"] and new["name"] == "data"
    assert new["size"] == sectors(48)
    name = os.path.basename(dev)
    assert sysfs_int(f"/sys/class/block/{name}p1/size") == sectors(48)
    assert sh("blkid", "-p", "-s", "UUID", "-o", "value", f"{dev}p1").strip() == fs_uuid


def test_resize_with_size_zero_grows_to_the_end_of_a_grown_disk(loops):
    """The usual first-boot case: an image written to a bigger disk, its last partition grown to
    fill it (the backup GPT header moves to the new end in the same edit)."""
    dev, image = loops.make(64)
    apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [
                        {"number": 1, "sizeMiB": 8},
                        {"number": 2, "label": "root", "sizeMiB": 16},
                    ],
                }
            ]
        }
    )
    with open(image, "r+b") as f:
        f.truncate(96 * MIB)
    sh("losetup", "-c", dev)
    plan = apply_storage(
        {
            "disks": [
                {"device": dev, "partitions": [{"number": 2, "label": "root", "sizeMiB": 0, "resize": True}]}
            ]
        }
    )
    assert plan.disks[0].actions[0].action == "resize"
    t = table(dev)
    assert t["by_number"][2]["start"] == sectors(9)
    assert t["lastlba"] == sectors(96) - 34  # the backup header is at the new end
    assert t["by_number"][2]["start"] + t["by_number"][2]["size"] - 1 == t["lastlba"]
    assert t["by_number"][1]["size"] == sectors(8)


def test_size_mismatch_without_resize_is_refused_and_disk_unchanged(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "label": "a", "sizeMiB": 10}]}]})
    before = file_hash(image)
    with pytest.raises(
        StageError, match=r"disks\.0\.partitions\.0: partition 1 didn't match: size did not match"
    ):
        disks.plan(
            config(
                {"disks": [{"device": dev, "partitions": [{"number": 1, "label": "a", "sizeMiB": 20}]}]}
            ).storage
        )
    assert file_hash(image) == before


def test_label_mismatch_refused_then_recreated_with_wipe_partition_entry(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "label": "old", "sizeMiB": 10}]}]})
    before = file_hash(image)
    part = {"number": 1, "label": "new", "sizeMiB": 10}
    with pytest.raises(StageError, match='label did not match \\(specified "new", got "old"\\)'):
        disks.plan(config({"disks": [{"device": dev, "partitions": [part]}]}).storage)
    assert file_hash(image) == before
    plan = apply_storage({"disks": [{"device": dev, "partitions": [{**part, "wipePartitionEntry": True}]}]})
    assert plan.disks[0].actions[0].action == "recreate"
    assert table(dev)["by_number"][1]["name"] == "new"


def test_type_guid_and_guid_mismatch_refused(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "sizeMiB": 10, "guid": GUID1}]}]})
    before = file_hash(image)
    for part, message in (
        ({"number": 1, "typeGuid": ESP}, "type GUID did not match"),
        ({"number": 1, "guid": "99999999-2222-4333-8444-555555555555"}, "GUID did not match"),
    ):
        with pytest.raises(StageError, match=message):
            disks.plan(config({"disks": [{"device": dev, "partitions": [part]}]}).storage)
    # Case does not matter for GUIDs.
    plan = disks.plan(
        config({"disks": [{"device": dev, "partitions": [{"number": 1, "guid": GUID1.lower()}]}]}).storage
    )
    assert plan.disks[0].actions[0].action == "keep"
    assert file_hash(image) == before


def test_wipe_table_replaces_everything(loops):
    dev, _ = loops.make(64)
    apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [{"number": n, "label": f"p{n}", "sizeMiB": 8} for n in (1, 2, 3)],
                }
            ]
        }
    )
    assert len(partition_nodes(dev)) == 3
    plan = apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "wipeTable": True,
                    "partitions": [{"number": 2, "label": "only", "sizeMiB": 5}],
                }
            ]
        }
    )
    assert plan.disks[0].commands[0].argv[1] == "--zap-all"
    t = table(dev)
    assert sorted(t["by_number"]) == [2]
    assert t["by_number"][2]["name"] == "only" and t["by_number"][2]["start"] == sectors(1)
    # The kernel forgot partitions 1 and 3.
    assert partition_nodes(dev) == [f"{os.path.basename(dev)}p2"]


def test_number_zero_takes_the_next_free_number_after_numbered_ones(loops):
    dev, _ = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 2, "label": "two", "sizeMiB": 8}]}]})
    plan = apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [
                        # listed first, handled last
                        {"label": "z1", "sizeMiB": 4},
                        {"number": 3, "label": "three", "sizeMiB": 4},
                        {"label": "z2", "sizeMiB": 4},
                    ],
                }
            ]
        }
    )
    p = table(dev)["by_number"]
    assert {n: p[n]["name"] for n in p} == {1: "z1", 2: "two", 3: "three", 4: "z2"}
    assert [(a.label, a.assigned) for a in plan.disks[0].actions] == [("three", None), ("z1", 1), ("z2", 4)]


def test_should_exist_false(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": n, "sizeMiB": 8} for n in (1, 2)]}]})
    before = file_hash(image)
    with pytest.raises(StageError, match="partition 2 exists but is specified as nonexistent"):
        disks.plan(
            config({"disks": [{"device": dev, "partitions": [{"number": 2, "shouldExist": False}]}]}).storage
        )
    assert file_hash(image) == before
    # Absent and asked absent: nothing to do.
    plan = disks.plan(
        config({"disks": [{"device": dev, "partitions": [{"number": 5, "shouldExist": False}]}]}).storage
    )
    assert plan.disks[0].actions[0].action == "absent" and not plan.disks[0].commands
    apply_storage(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [{"number": 2, "shouldExist": False, "wipePartitionEntry": True}],
                }
            ]
        }
    )
    assert sorted(table(dev)["by_number"]) == [1]
    assert partition_nodes(dev) == [f"{os.path.basename(dev)}p1"]


def test_overlapping_partitions_refused_and_disk_unchanged(loops):
    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "label": "keep", "sizeMiB": 8}]}]})
    before = file_hash(image)
    with pytest.raises(StageError, match=r"do not fit|overlap"):
        disks.plan(
            config(
                {
                    "disks": [
                        {
                            "device": dev,
                            "partitions": [
                                {"number": 2, "startMiB": 20, "sizeMiB": 10},
                                {"number": 3, "startMiB": 25, "sizeMiB": 10},
                            ],
                        }
                    ]
                }
            ).storage
        )
    with pytest.raises(StageError, match=r"do not fit|overlap"):
        # overlapping the existing, kept partition 1
        disks.plan(
            config(
                {"disks": [{"device": dev, "partitions": [{"number": 2, "startMiB": 4, "sizeMiB": 4}]}]}
            ).storage
        )
    with pytest.raises(StageError, match="do not fit"):
        disks.plan(
            config({"disks": [{"device": dev, "partitions": [{"number": 2, "sizeMiB": 100}]}]}).storage
        )
    assert file_hash(image) == before


def test_refused_disk_among_several_leaves_all_unchanged(loops):
    """The second disk's mismatch is found before the first disk is touched."""
    dev1, image1 = loops.make(64)
    dev2, image2 = loops.make(64)
    apply_storage({"disks": [{"device": dev2, "partitions": [{"number": 1, "label": "x", "sizeMiB": 8}]}]})
    before = (file_hash(image1), file_hash(image2))
    with pytest.raises(StageError, match=r"\$\.storage\.disks\.1\.partitions\.0"):
        disks.plan(
            config(
                {
                    "disks": [
                        {"device": dev1, "wipeTable": True, "partitions": [{"number": 1, "sizeMiB": 8}]},
                        {"device": dev2, "partitions": [{"number": 1, "label": "y"}]},
                    ]
                }
            ).storage
        )
    assert (file_hash(image1), file_hash(image2)) == before


def test_foreign_table_or_whole_disk_filesystem_needs_wipe_table(loops):
    dev, image = loops.make(64)
    sh("sfdisk", dev, input=b"label: dos\n,8M\n")
    before = file_hash(image)
    storage = {"disks": [{"device": dev, "partitions": [{"number": 1, "sizeMiB": 8}]}]}
    with pytest.raises(StageError, match="dos partition table"):
        disks.plan(config(storage).storage)
    assert file_hash(image) == before
    sh("wipefs", "-a", dev)
    sh("mkfs.ext4", "-q", "-F", dev)
    before = file_hash(image)
    with pytest.raises(StageError, match="ext4 signature and no partition table"):
        disks.plan(config(storage).storage)
    assert file_hash(image) == before
    storage["disks"][0]["wipeTable"] = True
    apply_storage(storage)
    assert table(dev)["label"] == "gpt"


def test_busy_partition_is_not_touched(loops, tmp_path):
    dev, image = loops.make(64)
    apply_storage(
        {
            "disks": [{"device": dev, "partitions": [{"number": 1, "label": "m", "sizeMiB": 16}]}],
            "filesystems": [{"device": f"{dev}p1", "format": "ext4"}],
        }
    )
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    sh("mount", "-o", "ro", f"{dev}p1", str(mnt))
    try:
        before = file_hash(image)
        with pytest.raises(StageError, match="is mounted on"):
            disks.plan(config({"disks": [{"device": dev, "wipeTable": True}]}).storage)
        with pytest.raises(StageError, match="is mounted on"):
            disks.plan(
                config(
                    {
                        "disks": [
                            {
                                "device": dev,
                                "partitions": [{"number": 1, "label": "m", "sizeMiB": 20, "resize": True}],
                            }
                        ]
                    }
                ).storage
            )
        with pytest.raises(StageError, match="is mounted on"):
            disks.plan(
                config(
                    {"filesystems": [{"device": f"{dev}p1", "format": "xfs", "wipeFilesystem": True}]}
                ).storage
            )
        # Adding a partition next to a mounted one is allowed.
        plan = disks.plan(
            config({"disks": [{"device": dev, "partitions": [{"number": 2, "sizeMiB": 8}]}]}).storage
        )
        assert [a.action for a in plan.disks[0].actions] == ["create"]
        assert file_hash(image) == before
    finally:
        sh("umount", str(mnt))


def test_dry_run_plan_text_and_json_touch_nothing(loops):
    import json

    from pineinstall.stages.plan import render_text

    dev, image = loops.make(64)
    apply_storage({"disks": [{"device": dev, "partitions": [{"number": 1, "label": "old", "sizeMiB": 8}]}]})
    before = file_hash(image)
    cfg = config(
        {
            "disks": [
                {
                    "device": dev,
                    "partitions": [
                        {"number": 1, "label": "old"},
                        {"number": 2, "label": "new", "sizeMiB": 16},
                    ],
                }
            ],
            "filesystems": [
                {"device": "/dev/disk/by-partlabel/new", "format": "ext4", "label": "NEW", "path": "/var"},
            ],
        }
    )
    plan = disks.plan(cfg.storage)
    text = render_text(plan)
    assert f"disk {dev} ({dev}, 64 MiB, 512-byte sectors)" in text
    assert "table before: gpt" in text and "table after: gpt" in text
    assert 'partition 1 "old": keep (matches)' in text and 'partition 2 "new": create' in text
    assert f"filesystem /dev/disk/by-partlabel/new ({dev}p2): create ext4 [label NEW]; found nothing" in text
    assert f"mount {dev}p2 on /var (ext4)" in text
    data = json.loads(json.dumps(plan.to_dict()))
    d = data["disks"][0]
    assert [r["label"] for r in d["before"]] == ["old"]
    assert [(r["number"], r["label"], r["action"], r["startMiB"], r["sizeMiB"]) for r in d["after"]] == [
        (1, "old", "keep", 1.0, 8.0),
        (2, "new", "create", 9.0, 16.0),
    ]
    assert d["commands"][0]["argv"][:2] == ["sgdisk", "--new=2:0:+32768"]
    assert data["filesystems"][0]["action"] == "create"
    assert data["mounts"] == [
        {
            "device": "/dev/disk/by-partlabel/new",
            "node": f"{dev}p2",
            "path": "/var",
            "format": "ext4",
            "options": [],
        }
    ]
    # The partition does not exist yet: nothing was written.
    assert not os.path.exists(f"{dev}p2")
    assert file_hash(image) == before
