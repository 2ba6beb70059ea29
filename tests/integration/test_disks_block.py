"""The block layer on real loop devices: size and sector-size ioctls, 4 KiB sectors, partx syncing,
busy checks, discovery without udev."""

from __future__ import annotations

import os

import pytest

from pineinstall.block import busy, discover, ioctl, partx, sysfs
from pineinstall.stages import StageError, disks
from tests.integration.test_disks_support import (
    MIB,
    config,
    file_hash,
    quiet_log,
    sh,
    table,
)

pytestmark = pytest.mark.needs("sgdisk")


def test_size_and_sector_size(loops):
    dev, image = loops.make(24)
    assert ioctl.size_bytes(dev) == 24 * MIB
    assert ioctl.logical_sector_size(dev) == 512
    assert ioctl.size_bytes(str(image)) == 24 * MIB and ioctl.logical_sector_size(str(image)) == 512


def test_four_kib_sectors(loops, tmp_path):
    image = tmp_path / "4k.img"
    with open(image, "wb") as f:
        f.truncate(64 * MIB)
    dev = sh("losetup", "-f", "--show", "-b", "4096", str(image)).strip()
    loops.devices.append((dev, image))
    assert ioctl.logical_sector_size(dev) == 4096
    storage = {
        "disks": [
            {
                "device": dev,
                "partitions": [{"number": 1, "sizeMiB": 8}, {"number": 2, "startMiB": 20, "sizeMiB": 4}],
            }
        ]
    }
    plan = disks.plan(config(storage).storage)
    assert plan.disks[0].sector_size == 4096
    disks.apply(plan, quiet_log())
    p = table(dev)["by_number"]
    assert (p[1]["start"], p[1]["size"]) == (256, 2048)  # 1 MiB and 8 MiB in 4 KiB sectors
    assert (p[2]["start"], p[2]["size"]) == (5120, 1024)
    name = os.path.basename(dev)
    # sysfs counts 512-byte units whatever the sector size.
    assert int(sysfs.attribute(f"{name}p2", "start")) == 20 * MIB // 512
    assert disks.plan(config(storage).storage).disks[0].commands == []


def test_partx_sync_follows_the_table(loops):
    dev, _ = loops.make(64)
    sh("sgdisk", "-n", "1:0:+8M", "-n", "2:0:+8M", "-n", "3:0:+8M", dev)
    assert len(partx.sync(dev)) == 3
    name = os.path.basename(dev)
    assert [k.number for k in sysfs.partitions(name)] == [1, 2, 3]
    sh("sgdisk", "-d", "2", "-d", "3", "-n", "3:0:+4M", "-n", "4:0:+4M", dev)
    sh("sgdisk", "-d", "1", "-n", "1:4096:+4M", dev)  # moved and shrunk
    partx.sync(dev)
    kernel = {k.number: (k.start, k.size) for k in sysfs.partitions(name)}
    want = {n: (int(q["start"]), int(q["size"])) for n, q in table(dev)["by_number"].items()}
    assert kernel == want
    assert partx.sync(dev) == []  # nothing left to do
    sh("wipefs", "-a", dev)
    partx.sync(dev)
    assert sysfs.partitions(name) == []


def test_busy_swap_and_mount(loops, tmp_path):
    dev, image = loops.make(24)
    assert busy.reasons(dev) == []
    sh("mkswap", dev)
    sh("swapon", dev)
    try:
        assert busy.reasons(dev) == [f"{dev} is an active swap area"]
        before = file_hash(image)
        with pytest.raises(StageError, match="active swap area"):
            disks.plan(
                config({"filesystems": [{"device": dev, "format": "ext4", "wipeFilesystem": True}]}).storage
            )
        with pytest.raises(StageError, match="active swap area"):
            disks.plan(config({"disks": [{"device": dev, "wipeTable": True}]}).storage)
        # Reusing it as the swap it is does not touch it, and is allowed.
        assert (
            disks.plan(config({"filesystems": [{"device": dev, "format": "swap"}]}).storage)
            .filesystems[0]
            .action
            == "reuse"
        )
        assert file_hash(image) == before
    finally:
        sh("swapoff", dev)


def test_discovery_without_udev(loops):
    dev, _ = loops.make(40)
    sh("sgdisk", "-n", "1:0:+8M", "-c", "1:my part", "-u", "1:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", dev)
    partx.sync(dev)
    part = f"{dev}p1"
    sh("mkfs.ext4", "-q", "-F", "-L", "found-me", "-U", "6f3b8f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", part)
    if discover.udev_running():
        pytest.skip("udev is running: the links exist and this fallback is not used")
    assert discover.resolve("/dev/disk/by-partlabel/my\\x20part") == part
    assert discover.resolve("/dev/disk/by-partuuid/0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D") == part
    assert discover.resolve("/dev/disk/by-label/found-me") == part
    assert discover.resolve("/dev/disk/by-uuid/6f3b8f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b") == part
    assert discover.resolve("/dev/disk/by-label/not-there") is None
    assert discover.resolve(part) == part and discover.whole_disk(part) == dev
    assert discover.whole_disk(dev) is None


def test_plan_waits_for_a_device_that_appears_late(loops, tmp_path):
    import threading
    import time

    image = tmp_path / "late.img"
    with open(image, "wb") as f:
        f.truncate(24 * MIB)
    sh("mkfs.ext4", "-q", "-F", "-L", "LATE-ARRIVAL", str(image))

    def attach_later():
        time.sleep(1.0)
        dev = sh("losetup", "-f", "--show", str(image)).strip()
        loops.devices.append((dev, image))

    storage = config(
        {"filesystems": [{"device": "/dev/disk/by-label/LATE-ARRIVAL", "format": "ext4"}]}
    ).storage
    with pytest.raises(StageError, match="does not exist"):
        disks.plan(storage)  # looks once by default
    worker = threading.Thread(target=attach_later)
    worker.start()
    try:
        started = time.monotonic()
        plan = disks.plan(storage, disks.Env(device_timeout=20))
        assert plan.filesystems[0].action == "reuse"
        assert 0.9 < time.monotonic() - started < 15
    finally:
        worker.join()
