"""The disks stage where this host's kernel cannot go (md, dm-crypt, vfat): one QEMU guest applies a
config that combines them, then the host checks what the guest reported.

Marked ``vm``: it boots a guest with the harness of ``tests/vm`` (~2-4 minutes under TCG).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]

HARNESS = Path(__file__).resolve().parents[1] / "vm"

GUEST_SCRIPT = r"""
import os, subprocess, sys
from pineinstall.config import model
from pineinstall.stages import disks, mount, Log
from pineinstall.stages.files import luks_keys
from pineinstall.stages.plan import render_text

FAST = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
cfg = model.from_dict({"storage": {
    "disks": [
        {"device": "/dev/disk/by-id/virtio-a", "wipeTable": True, "partitions": [
            {"number": 1, "label": "esp", "sizeMiB": 40, "typeGuid": "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
            {"number": 2, "label": "ra"}]},
        {"device": "/dev/disk/by-id/virtio-b", "wipeTable": True, "partitions": [{"number": 1, "label": "rb", "sizeMiB": 80}, {"number": 2, "label": "s0"}]},
        {"device": "/dev/disk/by-id/virtio-d", "wipeTable": True, "partitions": [{"number": 1, "label": "s1"}]},
    ],
    "raid": [
        {"name": "var", "level": "raid1", "devices": ["/dev/disk/by-partlabel/ra", "/dev/disk/by-partlabel/rb"]},
        {"name": "fast", "level": "raid0", "devices": ["/dev/disk/by-partlabel/s0", "/dev/disk/by-partlabel/s1"]},
    ],
    "luks": [
        {"name": "data", "device": "/dev/disk/by-id/virtio-c", "options": FAST, "discard": True, "label": "DATA"},
        {"name": "keyed", "device": "/dev/md/fast", "options": FAST, "keyFile": {"source": "data:,secret-key"}},
    ],
    "filesystems": [
        {"device": "/dev/md/var", "format": "ext4", "label": "VAR", "path": "/var"},
        {"device": "/dev/disk/by-partlabel/esp", "format": "vfat", "label": "ESP", "path": "/boot/efi"},
        {"device": "/dev/mapper/data", "format": "ext4", "label": "SRV", "path": "/srv"},
        {"device": "/dev/mapper/keyed", "format": "btrfs", "path": "/srv/fast"},
    ]}})
plan = disks.plan(cfg.storage)
print(render_text(plan), flush=True)
log = Log()
applied = disks.apply(plan, log)
root = "/tmp/target"
os.makedirs(root + "/etc", exist_ok=True)
mount.mount_all(plan.filesystems, root, log)
luks_keys.write_luks_keys(applied, root, log)
for d in ("var", "srv", "srv/fast", "boot/efi"):
    with open(f"{root}/{d}/MARK", "w") as f:
        f.write(d)
print(subprocess.run(["findmnt", "-R", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", root], capture_output=True, text=True).stdout)
mount.umount_all(plan.filesystems, root, log)
print("CRYPTTAB", open(root + "/etc/crypttab").read().replace("\n", " | "))
print("KEYMODE", oct(os.stat(root + "/etc/luks/data").st_mode & 0o777))
# Close and reopen with the kept key, then mount and read.
for name in ("data", "keyed"):
    subprocess.run(["cryptsetup", "close", name], check=True)
subprocess.run(["cryptsetup", "open", "--key-file", root + "/etc/luks/data", "/dev/disk/by-id/virtio-c", "again"], check=True)
os.makedirs("/tmp/m", exist_ok=True)
subprocess.run(["mount", "/dev/mapper/again", "/tmp/m"], check=True)
print("REOPENED", open("/tmp/m/MARK").read())
subprocess.run(["umount", "/tmp/m"], check=True)
print(subprocess.run(["cryptsetup", "luksDump", "/dev/disk/by-id/virtio-c"], capture_output=True, text=True).stdout.split("Keyslots")[0])
print(subprocess.run(["mdadm", "--detail", "/dev/md/var"], capture_output=True, text=True).stdout)
print(subprocess.run(["mdadm", "--detail", "/dev/md/fast"], capture_output=True, text=True).stdout)
print(subprocess.run(["blkid"], capture_output=True, text=True).stdout)
# Second plan: the reuse path with what is there now (RAID members are held: refused, as they must be).
subprocess.run(["cryptsetup", "close", "again"], check=True)
cfg2 = model.from_dict({"storage": {
    "luks": [{"name": "data", "device": "/dev/disk/by-id/virtio-c", "label": "DATA", "keyFile": {"source": "data:,x"}}],
    "filesystems": [{"device": "/dev/md/var", "format": "ext4", "label": "VAR", "path": "/var"}]}})
try:
    disks.plan(cfg2.storage)
except Exception as exc:
    print("SECOND", exc)
cfg3 = model.from_dict({"storage": {"filesystems": [{"device": "/dev/md/var", "format": "ext4", "label": "VAR"}, {"device": "/dev/disk/by-partlabel/esp", "format": "vfat", "label": "ESP"}]}})
print("THIRD", [f.action for f in disks.plan(cfg3.storage).filesystems])
from pineinstall.block import discover
print("UDEV", discover.udev_running(), discover._resolve_with_pyudev("/dev/disk/by-partlabel/esp"),
      discover._resolve_with_pyudev("/dev/disk/by-id/virtio-c"))
print("SCENARIO-OK")
"""


@pytest.fixture(scope="module")
def guest_output(tmp_path_factory) -> str:
    sys.path.insert(0, str(HARNESS))
    import harness

    if harness.qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    share = tmp_path_factory.mktemp("share")
    (share / "guest_scenario.py").write_text(GUEST_SCRIPT)
    result = harness.run_in_guest(
        "python3 /mnt/share/guest_scenario.py 2>&1",
        share=share,
        disks=[
            harness.DiskSpec("a", "256M"),
            harness.DiskSpec("b", "256M"),
            harness.DiskSpec("c", "128M"),
            harness.DiskSpec("d", "192M"),
        ],
        timeout=900,
    )
    assert result.rc == 0, result.output[-3000:]
    return result.output


def test_the_combined_config_ran_to_the_end(guest_output):
    assert "SCENARIO-OK" in guest_output
    # the plan printed before anything was done
    assert "raid /dev/md/var: create raid1 on /dev/vdb2, /dev/vdc1" in guest_output
    assert "luks /dev/mapper/keyed on /dev/md/fast: create (resource key -> /etc/luks/keyed)" in guest_output


def test_raid1_and_raid0_arrays(guest_output):
    # mdadm --detail output, after the plan (which names the arrays too)
    details = guest_output.split("\n/dev/md/var:\n")[1]
    var, fast = details.split("\n/dev/md/fast:\n")
    assert "Raid Level : raid1" in var and "Active Devices : 2" in var
    assert "Raid Level : raid0" in fast and "Active Devices : 2" in fast
    assert re.search(r'^/dev/md\d+: LABEL="VAR" .*TYPE="ext4"', guest_output, re.M)


def test_luks_generated_key_kept_and_reopened(guest_output):
    crypttab = re.search(r"^CRYPTTAB (.*)$", guest_output, re.M).group(1)
    assert re.fullmatch(
        r"data UUID=[0-9a-f-]{36} /etc/luks/data luks,discard \| keyed UUID=[0-9a-f-]{36} /etc/luks/keyed luks \| ",
        crypttab,
    )
    assert "KEYMODE 0o600" in guest_output
    assert "REOPENED srv" in guest_output  # closed, opened again with the kept key, data there
    assert re.search(r'^/dev/vdd: UUID="[0-9a-f-]+" LABEL="DATA" TYPE="crypto_LUKS"', guest_output, re.M)


def test_udev_names_through_pyudev(guest_output):
    assert "UDEV True /dev/vdb1 /dev/vdd" in guest_output


def test_vfat_esp(guest_output):
    assert re.search(r'^/dev/vdb1: .*LABEL="ESP" .*TYPE="vfat" PARTLABEL="esp"', guest_output, re.M)


def test_second_plan_reuses_and_refuses(guest_output):
    assert "THIRD ['reuse', 'reuse']" in guest_output
    assert re.search(
        r"^SECOND \$\.storage\.luks\.0: volume at /dev/disk/by-id/virtio-c is not of the correct type",
        guest_output,
        re.M,
    )
