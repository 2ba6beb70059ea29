"""Where the config's device names point once the disks stage has run (partitions of configured
disks as they will be, arrays and LUKS mappings this plan creates, devices already there), and the
checks every step shares: the signature a device will show, and whether something holds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pineinstall.block import blkid, busy, discover, sysfs, wait
from pineinstall.stages import StageError
from pineinstall.stages.plan import DiskPlan, PartRow


@dataclass
class Env:
    """What :func:`plan` needs besides the config.

    ``fetch`` turns a key file resource into bytes (the resources package's fetcher); without it
    only ``data:`` URLs can be used. ``device_timeout``: how long to wait for a device the config
    names but this plan does not create (early boot: disks appear late); 0 looks once.
    """

    fetch: Callable[[Any], bytes] | None = None
    device_timeout: float = 0.0
    # A plan only shown (--dry-run), never applied: remote key files are not fetched without a
    # fetcher, and an existing volume's key is then not tested.
    dry_run: bool = False


@dataclass
class DeviceRef:
    """What a device name in the config will be once the disks stage has run."""

    kind: str  # "partition" (on a configured disk), "raid", "luks", "block" (existing, not configured)
    node: str  # kernel node (or /dev/md/NAME, /dev/mapper/NAME)
    disk: DiskPlan | None = None
    row: PartRow | None = None

    @property
    def fresh(self) -> bool:
        """Created by this plan on top of other devices: content known only after creation."""
        return self.kind in ("raid", "luks")


@dataclass
class DeviceNames:
    disks: list[DiskPlan]
    raids: dict[str, str] = field(default_factory=dict)  # name -> /dev/md/NAME
    luks: dict[str, str] = field(default_factory=dict)  # name -> /dev/mapper/NAME
    timeout: float = 0.0

    def resolve(self, name: str, where: str) -> DeviceRef:
        # Devices this plan creates first: arrays, LUKS mappings.
        for raid, path in self.raids.items():
            if name in (path, f"/dev/md/{raid}", f"/dev/disk/by-id/md-name-any:{raid}"):
                return DeviceRef("raid", path)
        for vol, path in self.luks.items():
            if name in (path, f"/dev/disk/by-id/dm-name-{vol}"):
                return DeviceRef("luks", path)
        # Partitions of configured disks, as they will be after partitioning.
        if name.startswith("/dev/disk/by-partlabel/"):
            label = discover.unescape_link_name(name.rsplit("/", 1)[1])
            hits = [(d, r) for d in self.disks for r in d.after if r.label == label]
            if len(hits) > 1:
                raise StageError(f"{where}: {name} is ambiguous: {len(hits)} partitions have that label")
            if hits:
                return self._part(*hits[0])
        if name.startswith("/dev/disk/by-partuuid/"):
            guid = name.rsplit("/", 1)[1].upper()
            for d in self.disks:
                for r in d.after:
                    if r.guid and r.guid.upper() == guid:
                        return self._part(d, r)
        for d in self.disks:
            for r in d.after:
                if name == sysfs.partition_node(d.path, r.number):
                    return self._part(d, r)
        # /dev/disk/by-id/NAME-partN (and by-path): partition N of a configured disk, which may
        # not exist yet.
        base, sep, number = name.rpartition("-part")
        if sep and number.isdigit() and name.startswith(discover.BY):
            disk_node = discover.resolve(base)
            for d in self.disks:
                if disk_node == d.path:
                    for r in d.after:
                        if r.number == int(number):
                            return self._part(d, r)
                    raise StageError(f"{where}: {name}: {d.device} will have no partition {number}")
        node = existing_node(name, self.timeout)
        if node is None:
            raise StageError(f"{where}: device {name} does not exist and this config does not create it")
        parent = discover.whole_disk(node)
        for d in self.disks:
            if node == d.path:
                return DeviceRef("block", node, disk=d)
            if parent == d.path:
                part = sysfs.partition_number(sysfs.name_of(node) or "")
                for r in d.after:
                    if r.number == part:
                        return self._part(d, r)
                raise StageError(
                    f"{where}: {name} is partition {part} of {d.device}, which this config removes"
                )
        return DeviceRef("block", node)

    @staticmethod
    def _part(disk: DiskPlan, row: PartRow) -> DeviceRef:
        return DeviceRef("partition", sysfs.partition_node(disk.path, row.number), disk=disk, row=row)


def existing_node(name: str, timeout: float) -> str | None:
    """The node of a device that must exist already, waiting up to ``timeout`` for it."""
    node = discover.resolve(name)
    if node is None and timeout > 0:
        try:
            node = wait.wait_for(name, timeout)
        except wait.DeviceTimeout:
            return None
    return node


def probe(ref: DeviceRef) -> blkid.Signature:
    """The signature on a device as it will be when the filesystem step runs."""
    if ref.kind == "partition":
        assert ref.disk is not None and ref.row is not None
        ss = ref.disk.sector_size
        # Probe the byte range on the whole disk: the partition may not have a kernel node yet, or
        # have one at its old place.
        return blkid.probe(ref.disk.path, offset=ref.row.start * ss, size=ref.row.size * ss)
    if ref.fresh:
        return blkid.Signature()
    return blkid.probe(ref.node)


def refuse_busy_ref(ref: DeviceRef, where: str, what: str) -> None:
    if ref.kind == "partition":
        assert ref.disk is not None and ref.row is not None
        if ref.row.action != "create":
            found = kernel_partition(ref.disk.path, ref.row.number)
            if found:
                refuse_busy(f"/dev/{found}", where, what, with_partitions=False)
        return
    if ref.kind == "block":
        refuse_busy(ref.node, where, what)


def refuse_busy(node: str, where: str, what: str, *, with_partitions: bool = True) -> None:
    why = busy.reasons(node, with_partitions=with_partitions)
    if why:
        raise StageError(f"{where}: cannot {what}: {'; '.join(why)}")


def kernel_partition(disk_path: str, number: int) -> str | None:
    name = sysfs.name_of(disk_path)
    for kp in sysfs.partitions(name or ""):
        if kp.number == number:
            return kp.name
    return None
