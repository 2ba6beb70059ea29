"""The block layer's argv builders and output parsers (no processes run here).

Sample outputs below were captured from the real tools (sgdisk 1.0.9, sfdisk 2.38) on a loop device;
where a sample was edited by hand to cover another case, a comment says so.
"""

from __future__ import annotations

import pytest

from pineinstall.block import blkid, cryptsetup, discover, mdadm, mkfs, partx, sfdisk, sgdisk, sysfs, wipefs

# --- sgdisk ----------------------------------------------------------------------------------------


def test_sgdisk_edit_orders_deletes_before_creates_and_spells_flags():
    edit = sgdisk.Edit("/dev/vda")
    edit.creates.append(
        sgdisk.NewPartition(2, 4096, 20480, "root", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "AB")
    )
    edit.deletes.append(2)
    edit.creates.append(sgdisk.NewPartition(0))
    assert edit.argv() == [
        "sgdisk",
        "--delete=2",
        "--new=2:4096:+20480",
        "--change-name=2:root",
        "--typecode=2:0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "--partition-guid=2:AB",
        "--new=0:0:+0",
        "/dev/vda",
    ]


def test_sgdisk_pretend_clear_info_print():
    edit = sgdisk.Edit(
        "/dev/sdb", clear=True, creates=[sgdisk.NewPartition(1, None, 2048, label="")], infos=[1]
    )
    edit.print_table = True
    assert edit.argv(pretend=True) == [
        "sgdisk",
        "--pretend",
        "--clear",
        "--new=1:0:+2048",
        "--change-name=1:",
        "--info=1",
        "--print",
        "/dev/sdb",
    ]
    assert sgdisk.zap_argv("/dev/sdb") == ["sgdisk", "--zap-all", "/dev/sdb"]
    assert sgdisk.Edit("/dev/sdb").empty() and not edit.empty()


PRETEND_INFO = """Creating new GPT entries in memory.
Partition GUID code: 0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)
Partition unique GUID: F4A64714-EE8D-4618-9915-EAE5AFDABAD5
First sector: 2048 (at 1024.0 KiB)
Last sector: 22527 (at 11.0 MiB)
Partition size: 20480 sectors (10.0 MiB)
Attribute flags: 0000000000000000
Partition name: ''
Partition GUID code: 0FC63DAF-8483-4772-8E79-3D69D8477DE4 (Linux filesystem)
Partition unique GUID: 9CAA3EDA-F38E-438B-85A6-89BC5ACEDB8E
First sector: 22528 (at 11.0 MiB)
Last sector: 131038 (at 64.0 MiB)
Partition size: 108511 sectors (53.0 MiB)
Attribute flags: 0000000000000000
Partition name: ''
"""


def test_sgdisk_parse_info():
    assert sgdisk.parse_info(PRETEND_INFO, [1, 4]) == {1: (2048, 20480), 4: (22528, 108511)}
    with pytest.raises(sgdisk.SgdiskOutputError):
        sgdisk.parse_info(PRETEND_INFO, [1])


PRINT = """Disk /dev/loop0: 131072 sectors, 64.0 MiB
Sector size (logical/physical): 512/512 bytes
Disk identifier (GUID): 9DC79A94-1B11-4E04-8015-A394176DE9C2
Partition table holds up to 128 entries
Main partition table begins at sector 2 and ends at sector 33
First usable sector is 34, last usable sector is 131038
Partitions will be aligned on 2048-sector boundaries
Total free space is 2014 sectors (1007.0 KiB)

Number  Start (sector)    End (sector)  Size       Code  Name
   1            2048           22527   10.0 MiB    8300  boot
   2           22528          131038   53.0 MiB    8300{TRAILING}
  12          131039          131040   1024 bytes  EF00  two words
""".replace("{TRAILING}", "  ")  # sgdisk ends an unnamed row with two spaces
# The last row was added by hand: a two-digit number, a size in bytes, a name with a space.


def test_sgdisk_parse_print():
    rows = sgdisk.parse_print(PRINT)
    assert [(r.number, r.start, r.end, r.code, r.name) for r in rows] == [
        (1, 2048, 22527, "8300", "boot"),
        (2, 22528, 131038, "8300", ""),
        (12, 131039, 131040, "EF00", "two words"),
    ]


# --- sfdisk ----------------------------------------------------------------------------------------

# The second partition's node was renamed by hand from loop0p2 to loop0p12.
SFDISK_JSON = """{
   "partitiontable": {
      "label": "gpt",
      "id": "9DC79A94-1B11-4E04-8015-A394176DE9C2",
      "device": "/dev/loop0",
      "unit": "sectors",
      "firstlba": 34,
      "lastlba": 131038,
      "sectorsize": 512,
      "partitions": [
         {
            "node": "/dev/loop0p1",
            "start": 2048,
            "size": 20480,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "9377AC5B-75FE-41BC-8806-ABBCE8FFD5D3",
            "name": "boot"
         },{
            "node": "/dev/loop0p12",
            "start": 22528,
            "size": 40960,
            "type": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "uuid": "77793990-6BF1-464B-88C4-54EAC1C83B17"
         }
      ]
   }
}"""


def test_sfdisk_parse_dump():
    t = sfdisk.parse_dump(SFDISK_JSON)
    assert (t.label, t.sector_size, t.first_lba, t.last_lba) == ("gpt", 512, 34, 131038)
    assert [(p.number, p.start, p.size, p.label) for p in t.partitions] == [
        (1, 2048, 20480, "boot"),
        (12, 22528, 40960, ""),
    ]
    assert t.get(12).guid == "77793990-6BF1-464B-88C4-54EAC1C83B17"
    assert t.get(3) is None


def test_sfdisk_partition_numbers_of_other_node_names():
    for device, node, number in (
        ("/dev/sda", "/dev/sda3", 3),
        ("/dev/nvme0n1", "/dev/nvme0n1p12", 12),
        ("/dev/vdb", "/dev/vdb1", 1),
        ("disk.img", "disk.img2", 2),
    ):
        assert sfdisk._number(node, device) == number


# --- partx -----------------------------------------------------------------------------------------


def K(number, start, size):
    return sysfs.KernelPartition(number, f"loop0p{number}", start, size)


def P(number, start, size):
    return sfdisk.PartitionInfo(number, start, size)


def test_partx_sync_adds_updates_moves_and_deletes():
    table = sfdisk.TableInfo("gpt", 512, partitions=(P(1, 2048, 100), P(2, 4096, 500), P(4, 9000, 10)))
    kernel = [K(1, 2048, 100), K(2, 4096, 200), K(3, 6000, 10), K(4, 8000, 10)]
    assert partx.sync_argvs("/dev/loop0", table, kernel) == [
        ["partx", "-d", "--nr", "3", "/dev/loop0"],
        ["partx", "-d", "--nr", "4", "/dev/loop0"],  # moved: delete, add back
        ["partx", "-u", "--nr", "2", "/dev/loop0"],  # grown in place
        ["partx", "-a", "--nr", "4", "/dev/loop0"],
    ]


def test_partx_sync_nothing_to_do_and_empty_table():
    table = sfdisk.TableInfo("gpt", 512, partitions=(P(1, 2048, 100),))
    assert partx.sync_argvs("/dev/vda", table, [K(1, 2048, 100)]) == []
    assert partx.sync_argvs("/dev/vda", sfdisk.TableInfo(), [K(1, 2048, 100)]) == [
        ["partx", "-d", "--nr", "1", "/dev/vda"]
    ]


def test_partx_sync_counts_sysfs_in_512_byte_units():
    table = sfdisk.TableInfo("gpt", 4096, partitions=(P(1, 256, 1000),))
    assert partx.sync_argvs("/dev/vda", table, [K(1, 2048, 8000)]) == []
    assert partx.sync_argvs("/dev/vda", table, [K(1, 256, 1000)]) == [
        ["partx", "-d", "--nr", "1", "/dev/vda"],
        ["partx", "-a", "--nr", "1", "/dev/vda"],
    ]


# --- mkfs, wipefs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("ext4", ["mkfs.ext4", "-b", "4096", "-F", "-U", "ab-cd", "-L", "root", "/dev/x"]),
        ("btrfs", ["mkfs.btrfs", "-b", "4096", "--force", "-U", "ab-cd", "-L", "root", "/dev/x"]),
        ("xfs", ["mkfs.xfs", "-b", "4096", "-f", "-m", "uuid=ab-cd", "-L", "root", "/dev/x"]),
        ("vfat", ["mkfs.vfat", "-b", "4096", "-i", "ab-cd", "-n", "root", "/dev/x"]),
        ("swap", ["mkswap", "-b", "4096", "-f", "-U", "ab-cd", "-L", "root", "/dev/x"]),
    ],
)
def test_mkfs_argv_options_first_then_force_uuid_label_device(fmt, expected):
    assert mkfs.argv(fmt, "/dev/x", label="root", uuid="AB-CD", options=("-b", "4096")) == expected


def test_mkfs_argv_without_label_and_uuid():
    assert mkfs.argv("xfs", "/dev/x") == ["mkfs.xfs", "-f", "/dev/x"]


def test_vfat_volume_id_loses_its_dash():
    assert mkfs.argv("vfat", "/dev/x", uuid="A1B2-C3D4") == ["mkfs.vfat", "-i", "a1b2c3d4", "/dev/x"]
    assert mkfs.canonical_uuid("vfat", "a1b2c3d4") == "a1b2c3d4"
    assert mkfs.canonical_uuid("ext4", "A1B2-C3D4") == "a1b2-c3d4"


def test_wipefs_argv():
    assert wipefs.wipe_all_argv("/dev/x") == ["wipefs", "-a", "/dev/x"]
    assert wipefs.wipe_all_argv("/dev/x", force=True) == ["wipefs", "-a", "--force", "/dev/x"]


# --- mdadm -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "mdlevel"),
    [("linear", "linear"), ("raid0", "raid0"), ("raid1", "raid1"), ("raid4", "raid4"),
     ("raid5", "raid5"), ("raid6", "raid6"), ("raid10", "raid10"), ("1", "raid1"), ("mirror", "raid1")],
)  # fmt: skip
def test_mdadm_create_levels(level, mdlevel):
    devices = ["/dev/vda1", "/dev/vdb1", "/dev/vdc1", "/dev/vdd1"]
    argv = mdadm.create_argv("data", level, devices)
    assert argv == [
        "mdadm", "--create", "/dev/md/data", "--force", "--run", "--homehost", "any",
        "--level", mdlevel, "--raid-devices", "4", *devices,
    ]  # fmt: skip


def test_mdadm_spares_and_options_come_before_devices():
    argv = mdadm.create_argv("/dev/md/x", "raid1", ["a", "b", "c"], spares=1, options=("--metadata=1.0",))
    assert argv[2] == "/dev/md/x"
    assert argv[-6:] == ["--spare-devices", "1", "--metadata=1.0", "a", "b", "c"]
    assert argv[argv.index("--raid-devices") + 1] == "2"


def test_mdadm_unknown_level():
    with pytest.raises(KeyError):
        mdadm.create_argv("x", "raid7", ["a"])


# --- cryptsetup ------------------------------------------------------------------------------------


def test_cryptsetup_format_reads_the_key_from_stdin():
    argv = cryptsetup.format_argv("/dev/vdb1", label="L", uuid="U", options=("--cipher", "aes-xts-plain64"))
    assert argv == [
        "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", "-",
        "--label", "L", "--uuid", "U", "--cipher", "aes-xts-plain64", "/dev/vdb1",
    ]  # fmt: skip


def test_cryptsetup_open_persists_discard_and_open_options():
    assert cryptsetup.open_argv("/dev/x", "n") == ["cryptsetup", "luksOpen", "/dev/x", "n", "--key-file", "-"]
    assert cryptsetup.open_argv("/dev/x", "n", discard=True)[-2:] == ["--allow-discards", "--persistent"]
    assert cryptsetup.open_argv("/dev/x", "n", open_options=("--perf-same_cpu_crypt",))[-2:] == [
        "--perf-same_cpu_crypt",
        "--persistent",
    ]


# --- blkid, discovery ------------------------------------------------------------------------------


def test_blkid_argv_and_export_parsing():
    assert blkid.probe_argv("/dev/x") == ["blkid", "-p", "-o", "export", "/dev/x"]
    assert blkid.probe_argv("/dev/x", 1048576, 4096) == [
        "blkid",
        "-p",
        "-o",
        "export",
        "-O",
        "1048576",
        "-S",
        "4096",
        "/dev/x",
    ]
    assert blkid.find_argv("PARTLABEL", "root") == [
        "blkid",
        "-c",
        "/dev/null",
        "-o",
        "device",
        "-t",
        "PARTLABEL=root",
    ]
    assert blkid.parse_export("DEVNAME=/dev/x\nLABEL=a=b\nTYPE=ext4\n") == {
        "DEVNAME": "/dev/x",
        "LABEL": "a=b",
        "TYPE": "ext4",
    }


def test_udev_escapes_in_link_names():
    assert discover.unescape_link_name("my\\x20disk") == "my disk"
    assert discover.unescape_link_name("a\\x2fb") == "a/b"
    assert discover.unescape_link_name("plain\\xZZ") == "plain\\xZZ"


def test_partition_node_names():
    assert sysfs.partition_node("/dev/sda", 2) == "/dev/sda2"
    assert sysfs.partition_node("/dev/loop3", 1) == "/dev/loop3p1"
    assert sysfs.partition_node("/dev/nvme0n1", 5) == "/dev/nvme0n1p5"


def test_partition_node_follows_a_by_id_link(tmp_path):
    # /dev/disk/by-id/virtio-target -> ../../vda: the partitions are /dev/vda1..., not virtio-target1
    link = tmp_path / "virtio-target"
    link.symlink_to("/dev/vda")
    assert sysfs.partition_node(str(link), 1) == "/dev/vda1"
    nvme = tmp_path / "nvme-disk"
    nvme.symlink_to("/dev/nvme0n1")
    assert sysfs.partition_node(str(nvme), 3) == "/dev/nvme0n1p3"


def test_udev_running_means_someone_listens(monkeypatch, tmp_path):
    import socket

    control = tmp_path / "control"
    monkeypatch.setattr(discover, "UDEV_CONTROL", control)
    assert not discover.udev_running()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(str(control))
    server.listen(1)
    try:
        assert discover.udev_running()
    finally:
        server.close()
    # The socket file a stopped udevd leaves behind does not count.
    assert control.exists() and not discover.udev_running()
