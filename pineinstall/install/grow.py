"""After the image is written: the backup GPT moved to the real end of DEST, the root partition grown
to fill it, and the root filesystem grown with it (ext4 offline, xfs and btrfs once mounted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pineinstall.block import blkid, sfdisk
from pineinstall.run import run
from pineinstall.stages import Log, StageError

ROOT_LABELS = ("root", "ROOT")
GROWABLE = ("ext4", "xfs", "btrfs")


@dataclass
class RootPart:
    number: int
    node: str
    fstype: str
    start: int  # sectors
    size: int  # sectors, after growing
    size_before: int
    last: bool  # the last partition on the disk (only that one can grow)


def move_backup_header(dev: str, log: Log) -> None:
    """The image was made for a smaller disk; its backup GPT is in the middle. (``sfdisk --relocate``
    does what ``sgdisk -e`` does, without the second it sleeps after re-reading the table.)"""
    table = sfdisk.dump(dev)
    if table.label != "gpt":
        log.info(f"{dev}: {table.label or 'no'} partition table: no backup GPT to move")
        return
    with log.op(f"moving the backup GPT of {dev} to its end"):
        run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", dev])


def find_root(
    dev: str,
    table: sfdisk.TableInfo | None = None,
    fstype_of: Callable[[sfdisk.PartitionInfo], str] | None = None,
) -> RootPart:
    """The root partition: labelled ``root`` (Pine, Fedora CoreOS), else the last partition with a
    Linux filesystem. ``fstype_of`` reads a partition's filesystem type (default: its node)."""
    from pineinstall.install.dest import node

    table = table or sfdisk.dump(dev)
    fstype_of = fstype_of or (lambda p: blkid.probe(node(dev, p.number)).get("TYPE") or "")
    if not table.partitions:
        raise StageError(f"{dev}: the image has no partitions")
    end = max(p.start + p.size for p in table.partitions)
    labelled = [p for p in table.partitions if p.label in ROOT_LABELS]
    candidates = labelled or sorted(table.partitions, key=lambda p: p.start, reverse=True)
    for p in candidates:
        fstype = fstype_of(p)
        if labelled or fstype in GROWABLE:
            return RootPart(
                p.number, node(dev, p.number), fstype, p.start, p.size, p.size, p.start + p.size == end
            )
    raise StageError(f"{dev}: no root partition (none labelled root, none with ext4, xfs or btrfs)")


def grow_partition(dev: str, root: RootPart, log: Log) -> None:
    """Extend the root partition to the end of the disk (start, type, GUID and name kept)."""
    from pineinstall.install.dest import sync_partitions

    if not root.last:
        log.warning(f"{root.node}: not the last partition: it cannot grow")
        return
    table = sfdisk.dump(dev)
    last_lba = table.last_lba
    if last_lba is not None and root.start + root.size - 1 >= last_lba:
        log.info(f"{root.node}: already fills the disk")
        return
    with log.op(f"growing partition {root.number} of {dev} to the end of the disk"):
        run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", str(root.number), dev], input=b", +\n")
        sync_partitions(dev)
    grown = sfdisk.dump(dev).get(root.number)
    if grown is not None:
        root.size = grown.size


def grow_filesystem_offline(root: RootPart, log: Log) -> bool:
    """ext4 is grown before it is mounted (after a forced check, which resize2fs requires)."""
    if root.fstype != "ext4" or root.size == root.size_before:
        return False
    with log.op(f"growing the ext4 filesystem on {root.node}"):
        proc = run(["e2fsck", "-f", "-p", root.node], check=False)
        if proc.returncode > 1:  # 1: errors corrected
            raise StageError(f"{root.node}: e2fsck found errors it could not fix (status {proc.returncode})")
        run(["resize2fs", root.node])
    return True


def grow_filesystem_online(root: RootPart, mountpoint: str, log: Log) -> bool:
    """xfs and btrfs grow while mounted."""
    if root.size == root.size_before:
        return False
    if root.fstype == "xfs":
        with log.op(f"growing the xfs filesystem on {root.node}"):
            run(["xfs_growfs", mountpoint])
        return True
    if root.fstype == "btrfs":
        with log.op(f"growing the btrfs filesystem on {root.node}"):
            run(["btrfs", "filesystem", "resize", "max", mountpoint])
        return True
    return False


def tools(fstype: str | None = None) -> list[str]:
    """What growing needs (all of them when the filesystem is not known yet)."""
    base = ["sgdisk", "sfdisk", "partx", "blkid"]
    per = {"ext4": ["e2fsck", "resize2fs"], "xfs": ["xfs_growfs"], "btrfs": ["btrfs"]}
    return base + (per.get(fstype or "", []) if fstype else per["ext4"])
