"""Filesystems, mounts, LUKS headers and RAID plans on real loop devices.

What the host kernel cannot do (md arrays, opening LUKS, mounting vfat) is left to the VM tier;
here LUKS is formatted and checked header-only, and RAID is planned but not created.
"""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from pineinstall.stages import StageError, disks, mount
from pineinstall.stages.files import luks_keys
from tests.integration.test_disks_support import (
    config,
    file_hash,
    quiet_log,
    sh,
)

pytestmark = pytest.mark.needs("sgdisk")

UUID1 = "6f3b8f4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
UUID2 = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SIZES = {"ext4": 32, "btrfs": 128, "xfs": 320, "swap": 16}
# Fast, small key derivation for tests (argon2's default costs seconds and memory).
FAST_KDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


def blk(dev: str, tag: str) -> str:
    return sh("blkid", "-p", "-s", tag, "-o", "value", dev).strip()


def one_partition(loops, fmt: str):
    size = SIZES[fmt] + 2
    dev, image = loops.make(size)
    disk = {"device": dev, "partitions": [{"number": 1, "label": "p"}]}
    plan = disks.plan(config({"disks": [disk]}).storage)
    disks.apply(plan, quiet_log())
    return dev, f"{dev}p1", image, disk


def apply(storage: dict):
    plan = disks.plan(config(storage).storage)
    disks.apply(plan, quiet_log())
    return plan


@pytest.mark.parametrize("fmt", ["ext4", "xfs", "btrfs", "swap"])
def test_create_then_reuse_by_label_and_uuid_then_wipe(loops, fmt):
    _dev, part, image, disk = one_partition(loops, fmt)
    fs = {"device": part, "format": fmt, "label": "L1", "uuid": UUID1}
    plan = apply({"disks": [disk], "filesystems": [fs]})
    assert plan.filesystems[0].action == "create"
    want_type = fmt
    assert (blk(part, "TYPE"), blk(part, "LABEL"), blk(part, "UUID")) == (want_type, "L1", UUID1)

    # Same type and label (uuid not given): reused, not one byte changes.
    before = file_hash(image)
    plan = apply({"disks": [disk], "filesystems": [{"device": part, "format": fmt, "label": "L1"}]})
    assert plan.filesystems[0].action == "reuse" and plan.filesystems[0].commands == []
    # by UUID only, upper case: reused too.
    plan = apply({"disks": [disk], "filesystems": [{"device": part, "format": fmt, "uuid": UUID1.upper()}]})
    assert plan.filesystems[0].action == "reuse"
    assert file_hash(image) == before

    # Another label without wipeFilesystem: refused at plan time, disk unchanged.
    with pytest.raises(StageError, match="is not of the correct type, label, or UUID"):
        disks.plan(
            config({"disks": [disk], "filesystems": [{"device": part, "format": fmt, "label": "L2"}]}).storage
        )
    other = "ext4" if fmt != "ext4" else "xfs"
    if SIZES[other] <= SIZES[fmt]:
        with pytest.raises(StageError, match=f"found {fmt}"):
            disks.plan(config({"filesystems": [{"device": part, "format": other}]}).storage)
    assert file_hash(image) == before

    # With wipeFilesystem: made again, new label and UUID.
    plan = apply(
        {
            "disks": [disk],
            "filesystems": [
                {"device": part, "format": fmt, "label": "L2", "uuid": UUID2, "wipeFilesystem": True}
            ],
        }
    )
    assert plan.filesystems[0].action == "wipe+create"
    assert next(c.argv[0] for c in plan.filesystems[0].commands) == "wipefs"
    assert (blk(part, "TYPE"), blk(part, "LABEL"), blk(part, "UUID")) == (want_type, "L2", UUID2)


def test_options_are_passed_to_mkfs(loops):
    _, part, _, disk = one_partition(loops, "ext4")
    apply(
        {
            "disks": [disk],
            "filesystems": [{"device": part, "format": "ext4", "options": ["-b", "1024", "-I", "256"]}],
        }
    )
    dump = sh("dumpe2fs", "-h", part)
    assert "Block size:               1024" in dump
    assert "Inode size:\t          256" in dump


def test_format_none_and_wipe(loops):
    _, part, image, disk = one_partition(loops, "ext4")
    sh("mkfs.ext4", "-q", "-F", part)
    before = file_hash(image)
    # "none" expects nothing there: refused while ext4 is present.
    with pytest.raises(StageError, match="found ext4"):
        disks.plan(config({"filesystems": [{"device": part, "format": "none"}]}).storage)
    assert file_hash(image) == before
    plan = apply(
        {"disks": [disk], "filesystems": [{"device": part, "format": "none", "wipeFilesystem": True}]}
    )
    assert plan.filesystems[0].action == "wipe"
    assert "TYPE=" not in sh("blkid", "-p", "-o", "export", part, check=False).replace("PART_ENTRY_TYPE=", "")


def test_filesystem_on_a_partition_created_in_the_same_config_sees_stale_data(loops):
    """A recreated partition over an old filesystem: the plan probes the new partition's byte range,
    so the old ext4 is found (and refused) before anything is written."""
    dev, image = loops.make(64)
    apply(
        {
            "disks": [{"device": dev, "partitions": [{"number": 1, "label": "a", "sizeMiB": 20}]}],
            "filesystems": [{"device": f"{dev}p1", "format": "ext4", "label": "OLD"}],
        }
    )
    before = file_hash(image)
    storage = {
        "disks": [
            {"device": dev, "wipeTable": True, "partitions": [{"number": 1, "label": "b", "sizeMiB": 20}]}
        ],
        "filesystems": [{"device": "/dev/disk/by-partlabel/b", "format": "xfs"}],
    }
    with pytest.raises(StageError, match="found ext4, 'OLD'"):
        disks.plan(config(storage).storage)
    assert file_hash(image) == before
    # The same old ext4 is reused when the config asks for it.
    storage["filesystems"] = [{"device": "/dev/disk/by-partlabel/b", "format": "ext4", "label": "OLD"}]
    plan = apply(storage)
    assert plan.filesystems[0].action == "reuse"
    assert blk(f"{dev}p1", "LABEL") == "OLD"


def test_existing_device_found_by_label_without_udev(loops):
    dev, _ = loops.make(40)
    sh("mkfs.ext4", "-q", "-F", "-L", "BYLABEL", dev)
    plan = disks.plan(
        config(
            {"filesystems": [{"device": "/dev/disk/by-label/BYLABEL", "format": "ext4", "label": "BYLABEL"}]}
        ).storage
    )
    assert plan.filesystems[0].node == dev and plan.filesystems[0].action == "reuse"
    with pytest.raises(StageError, match="does not exist and this config does not create it"):
        disks.plan(
            config(
                {"filesystems": [{"device": "/dev/disk/by-label/NO-SUCH-LABEL", "format": "ext4"}]}
            ).storage
        )


def test_mounts_shallowest_first_with_options_and_umount_in_reverse(loops, tmp_path):
    dev, _ = loops.make(100)
    storage = {
        "disks": [
            {
                "device": dev,
                "partitions": [
                    {"number": 1, "label": "root", "sizeMiB": 30},
                    {"number": 2, "label": "var", "sizeMiB": 30},
                    {"number": 3, "label": "log", "sizeMiB": 30},
                ],
            }
        ],
        # Listed deepest first on purpose.
        "filesystems": [
            {
                "device": "/dev/disk/by-partlabel/log",
                "format": "ext4",
                "path": "/var/log",
                "mountOptions": ["noatime"],
            },
            {
                "device": "/dev/disk/by-partlabel/var",
                "format": "ext4",
                "path": "/var",
                "mountOptions": ["nodev", "noexec"],
            },
            {"device": "/dev/disk/by-partlabel/root", "format": "ext4", "path": "/"},
        ],
    }
    plan = apply(storage)
    assert [m.path for m in plan.mounts] == ["/", "/var", "/var/log"]
    root = tmp_path / "target"
    root.mkdir()
    log = quiet_log()
    points = mount.mount_all(plan.filesystems, root, log)
    try:
        assert points == [root, root / "var", root / "var" / "log"]
        mounts = {}
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            mounts[fields[4]] = fields[5].split(",")
        assert {"nodev", "noexec"} <= set(mounts[str(root / "var")])
        assert "noatime" in mounts[str(root / "var" / "log")]
        # /var/log was mounted after /var (on top of it): it is visible through the tree.
        assert os.path.ismount(root / "var" / "log")
    finally:
        mount.umount_all(plan.filesystems, root, log)
    assert not any(os.path.ismount(p) for p in (root, root / "var", root / "var" / "log"))
    text = log.stream.getvalue()
    order = [
        ln.split("unmounting ")[1].split()[0] for ln in text.splitlines() if "[started]  unmounting" in ln
    ]
    assert order == ["/var/log", "/var", "/"]


def test_mount_points_stay_inside_the_root(tmp_path):
    assert mount.mount_point(tmp_path, "/var/../../etc") == tmp_path / "etc"
    (tmp_path / "link").symlink_to("/")
    (tmp_path / "home").symlink_to("var/home")
    assert mount.mount_point(tmp_path, "/link/x") == tmp_path / "x"
    assert mount.mount_point(tmp_path, "/home") == tmp_path / "var" / "home"
    assert mount.mount_point(tmp_path, "/") == tmp_path
    # An OSTree-shaped target: /var is the stateroot's var.
    from pineinstall.target import Target

    stateroot_var = tmp_path / "stateroot-var"
    target = Target(tmp_path / "deploy", mounts={("var",): stateroot_var})
    assert mount.mount_point(target, "/var/log") == stateroot_var / "log"


def test_a_failed_mount_unmounts_what_was_mounted(loops, tmp_path):
    dev, _ = loops.make(40)
    sh("mkfs.ext4", "-q", "-F", dev)

    class Fs:
        def __init__(self, device, path, fmt, opts=()):
            self.device, self.path, self.format, self.mount_options = device, path, fmt, opts

    root = tmp_path / "t"
    root.mkdir()
    with pytest.raises(StageError):
        mount.mount_all([Fs(dev, "/", "ext4"), Fs(dev, "/x", "xfs")], root, quiet_log())
    assert not os.path.ismount(root)


# --- LUKS: header only on this host ----------------------------------------------------------------


def data_url(key: bytes) -> str:
    return "data:;base64," + base64.b64encode(key).decode()


def test_luks_plan_format_and_reuse_detection(loops):
    dev, image = loops.make(40)
    key = b"correct horse battery staple"
    luks = {
        "name": "secret",
        "device": dev,
        "keyFile": {"source": data_url(key)},
        "label": "VAULT",
        "options": FAST_KDF,
    }
    plan = disks.plan(config({"luks": [luks]}).storage)
    lk = plan.luks[0]
    assert (lk.action, lk.key_source, lk.path) == ("create", "resource", "/dev/mapper/secret")
    fmt = lk.commands[0]
    assert fmt.argv[:2] == ["cryptsetup", "luksFormat"] and fmt.input == key
    assert "<key>" in str(plan.to_dict()) and "horse" not in str(plan.to_dict())
    # Run the format command the plan holds (opening needs device-mapper: VM tier).
    sh(*fmt.argv, input=fmt.input)
    assert "VAULT" in sh("cryptsetup", "luksDump", dev)
    before = file_hash(image)
    # Same key and label: reused (only opened).
    plan = disks.plan(config({"luks": [luks]}).storage)
    assert plan.luks[0].action == "reuse"
    assert [c.argv[1] for c in plan.luks[0].commands] == ["luksOpen"]
    # A wrong key, another label, a generated key: not the same volume, refused.
    for change in (
        {"keyFile": {"source": data_url(b"wrong")}},
        {"label": "OTHER"},
        {"keyFile": {}},
        {"uuid": UUID1},
    ):
        with pytest.raises(StageError, match=r"volume at .* is not of the correct type"):
            disks.plan(config({"luks": [{**luks, **change}]}).storage)
    assert file_hash(image) == before
    # wipeVolume: formatted anew.
    plan = disks.plan(config({"luks": [{**luks, "keyFile": {}, "wipeVolume": True}]}).storage)
    assert plan.luks[0].action == "wipe+create" and plan.luks[0].key_source == "generated"
    assert len(plan.luks[0].key) == 8192
    assert file_hash(image) == before


def test_luks_reuse_on_a_partition_before_the_kernel_knows_it(loops):
    """After a reboot on a kernel without partition parsers the partition has no node: the header is
    still recognised from the disk's byte range (the key is then checked by the open)."""
    dev, image = loops.make(40)
    key = b"k3y"
    disk = {"device": dev, "partitions": [{"number": 1, "label": "crypt"}]}
    disks.apply(disks.plan(config({"disks": [disk]}).storage), quiet_log())
    sh("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--label", "C", *FAST_KDF,
       "--key-file", "-", f"{dev}p1", input=key)  # fmt: skip
    luks = {
        "name": "c",
        "device": "/dev/disk/by-partlabel/crypt",
        "label": "C",
        "keyFile": {"source": data_url(key)},
    }
    wrong = {**luks, "keyFile": {"source": data_url(b"nope")}}
    # With a node, the key is tested now.
    assert disks.plan(config({"disks": [disk], "luks": [luks]}).storage).luks[0].action == "reuse"
    with pytest.raises(StageError, match="not of the correct type"):
        disks.plan(config({"disks": [disk], "luks": [wrong]}).storage)
    sh("partx", "-d", dev)
    before = file_hash(image)
    plan = disks.plan(config({"disks": [disk], "luks": [luks]}).storage)
    assert (plan.luks[0].action, plan.luks[0].node) == ("reuse", f"{dev}p1")
    with pytest.raises(StageError, match="not of the correct type"):
        disks.plan(config({"disks": [disk], "luks": [{**luks, "label": "D"}]}).storage)
    assert file_hash(image) == before


def test_luks_on_a_partition_with_a_filesystem_on_it(loops):
    dev, _ = loops.make(40)
    plan = disks.plan(
        config(
            {
                "disks": [{"device": dev, "partitions": [{"number": 1, "label": "crypt"}]}],
                "luks": [
                    {
                        "name": "data",
                        "device": "/dev/disk/by-partlabel/crypt",
                        "discard": True,
                        "openOptions": ["--perf-no_read_workqueue"],
                    }
                ],
                "filesystems": [{"device": "/dev/mapper/data", "format": "ext4", "path": "/data"}],
            }
        ).storage
    )
    lk = plan.luks[0]
    assert lk.node == f"{dev}p1"
    assert lk.commands[-1].argv == [
        "cryptsetup", "luksOpen", f"{dev}p1", "data", "--key-file", "-",
        "--allow-discards", "--perf-no_read_workqueue", "--persistent",
    ]  # fmt: skip
    fs = plan.filesystems[0]
    assert (fs.node, fs.action, fs.recheck) == ("/dev/mapper/data", "create", True)
    assert plan.mounts[0].node == "/dev/mapper/data"


def test_luks_existing_filesystem_refused_without_wipe(loops):
    dev, image = loops.make(40)
    sh("mkfs.ext4", "-q", "-F", dev)
    before = file_hash(image)
    with pytest.raises(StageError, match="found ext4"):
        disks.plan(config({"luks": [{"name": "x", "device": dev}]}).storage)
    assert file_hash(image) == before


def test_clevis_and_cex_are_not_supported_here(loops):
    dev, _ = loops.make(16)
    with pytest.raises(StageError, match="cex: IBM CEX secure keys are not supported here"):
        disks.plan(config({"luks": [{"name": "x", "device": dev, "cex": {"enabled": True}}]}).storage)
    if not any(os.access(os.path.join(d, "clevis"), os.X_OK) for d in ("/usr/bin", "/usr/sbin", "/bin")):
        with pytest.raises(StageError, match="clevis is not supported here"):
            disks.plan(config({"luks": [{"name": "x", "device": dev, "clevis": {"tpm2": True}}]}).storage)


def test_luks_keys_and_crypttab_in_the_target(tmp_path):
    applied = disks.Applied(
        luks=[
            disks.LuksKey("data", b"k" * 10, UUID1, True, False),
            disks.LuksKey("tang", b"t", UUID2, False, True),
        ]
    )
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "crypttab").write_text("data UUID=old /old luks\nother UUID=x none luks\n")
    luks_keys.write_luks_keys(applied, tmp_path, quiet_log())
    key = tmp_path / "etc/luks/data"
    assert key.read_bytes() == b"k" * 10
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "etc/luks").stat().st_mode) == 0o700
    assert not (tmp_path / "etc/luks/tang").exists()
    assert (etc / "crypttab").read_text().splitlines() == [
        "other UUID=x none luks",
        f"data UUID={UUID1} /etc/luks/data luks,discard",
        f"tang UUID={UUID2} none luks",
    ]
    # A Target: /etc as the target resolves it (here a link inside the root, re-rooted).
    from pineinstall.target import Target

    deploy = tmp_path / "deploy"
    (deploy / "usr" / "etc").mkdir(parents=True)
    (deploy / "etc").symlink_to("/usr/etc")
    luks_keys.write_luks_keys(applied, Target(deploy), quiet_log())
    assert (deploy / "usr/etc/luks/data").read_bytes() == b"k" * 10
    assert (deploy / "usr/etc/crypttab").read_text().startswith("data UUID=")


# --- RAID: planned here, created in the VM tier ----------------------------------------------------


def test_raid_plan_on_new_partitions_of_two_disks(loops):
    dev1, image1 = loops.make(40)
    dev2, image2 = loops.make(40)
    disk = {"partitions": [{"number": 1, "label": "md", "sizeMiB": 30}]}
    storage = {
        "disks": [{"device": dev1, **disk}, {"device": dev2, **disk}],
        "raid": [
            {
                "name": "data",
                "level": "raid1",
                "devices": [f"{dev1}p1", f"{dev2}p1"],
                "options": ["--metadata=1.2"],
            }
        ],
        "filesystems": [{"device": "/dev/md/data", "format": "xfs", "path": "/var"}],
    }
    before = (file_hash(image1), file_hash(image2))
    plan = disks.plan(config(storage).storage)
    assert plan.raids[0].commands[0].argv == [
        "mdadm", "--create", "/dev/md/data", "--force", "--run", "--homehost", "any",
        "--level", "raid1", "--raid-devices", "2", "--metadata=1.2", f"{dev1}p1", f"{dev2}p1",
    ]  # fmt: skip
    assert plan.filesystems[0].node == "/dev/md/data" and plan.filesystems[0].recheck
    assert (file_hash(image1), file_hash(image2)) == before


def test_raid_on_a_mounted_device_is_refused(loops, tmp_path):
    dev, image = loops.make(40)
    sh("mkfs.ext4", "-q", "-F", dev)
    mnt = tmp_path / "m"
    mnt.mkdir()
    sh("mount", "-o", "ro", dev, str(mnt))
    try:
        before = file_hash(image)
        with pytest.raises(StageError, match="is mounted on"):
            disks.plan(config({"raid": [{"name": "r", "level": "raid1", "devices": [dev, dev]}]}).storage)
        assert file_hash(image) == before
    finally:
        sh("umount", str(mnt))
