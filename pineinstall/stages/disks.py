"""The disks stage: partitions, RAID arrays, LUKS volumes and filesystems, in Ignition's order.

:func:`plan` reads the devices (partition tables, signatures, sizes, who holds them) and decides
everything: which partitions are kept, created, resized, recreated or deleted (Ignition's matching
rules), which filesystems are reused or made, and whether anything is in the way. Every refusal
happens there, before a byte is written. :func:`apply` then runs the plan's commands, telling the
kernel about partitions with ``partx`` after each table change and waiting for the nodes.

Deliberate differences from Ignition, for safety: a disk holding a non-GPT table or a filesystem
directly (no table) is only partitioned with ``wipeTable``; busy devices (mounted, swap, held) are
never repartitioned, formatted or wiped.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import os
import secrets
import shutil
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pineinstall.block import (
    blkid,
    busy,
    cryptsetup,
    discover,
    ioctl,
    mdadm,
    mkfs,
    partx,
    sfdisk,
    sgdisk,
    sysfs,
    wait,
    wipefs,
)
from pineinstall.run import DEFAULT_PATH, CommandError, run
from pineinstall.stages import Log, StageError
from pineinstall.stages.plan import (
    LINUX_FILESYSTEM,
    MIB,
    Command,
    DiskPlan,
    FsPlan,
    LuksPlan,
    MountPlan,
    PartAction,
    PartRow,
    Plan,
    RaidPlan,
)

GENERATED_KEY_BYTES = 4096  # hex-encoded, as Ignition generates them
LUKS_KEY_DIR = "/etc/luks"


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


# --- where config names point ----------------------------------------------------------------------


@dataclass
class _Ref:
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
class _Names:
    disks: list[DiskPlan]
    raids: dict[str, str] = field(default_factory=dict)  # name -> /dev/md/NAME
    luks: dict[str, str] = field(default_factory=dict)  # name -> /dev/mapper/NAME
    timeout: float = 0.0

    def resolve(self, name: str, where: str) -> _Ref:
        # Devices this plan creates first: arrays, LUKS mappings.
        for raid, path in self.raids.items():
            if name in (path, f"/dev/md/{raid}", f"/dev/disk/by-id/md-name-any:{raid}"):
                return _Ref("raid", path)
        for vol, path in self.luks.items():
            if name in (path, f"/dev/disk/by-id/dm-name-{vol}"):
                return _Ref("luks", path)
        # Partitions of configured disks, as they will be after partitioning.
        if name.startswith("/dev/disk/by-partlabel/"):
            label = discover._unescape(name.rsplit("/", 1)[1])
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
        node = _existing(name, self.timeout)
        if node is None:
            raise StageError(f"{where}: device {name} does not exist and this config does not create it")
        parent = discover.whole_disk(node)
        for d in self.disks:
            if node == d.path:
                return _Ref("block", node, disk=d)
            if parent == d.path:
                number = sysfs.partition_number(sysfs.name_of(node) or "")
                for r in d.after:
                    if r.number == number:
                        return self._part(d, r)
                raise StageError(
                    f"{where}: {name} is partition {number} of {d.device}, which this config removes"
                )
        return _Ref("block", node)

    @staticmethod
    def _part(disk: DiskPlan, row: PartRow) -> _Ref:
        return _Ref("partition", sysfs.partition_node(disk.path, row.number), disk=disk, row=row)


def _existing(name: str, timeout: float) -> str | None:
    """The node of a device that must exist already, waiting up to ``timeout`` for it."""
    node = discover.resolve(name)
    if node is None and timeout > 0:
        try:
            node = wait.wait_for(name, timeout)
        except wait.DeviceTimeout:
            return None
    return node


def _probe(ref: _Ref) -> blkid.Signature:
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


def _busy(ref: _Ref, where: str, what: str) -> None:
    if ref.kind == "partition":
        assert ref.disk is not None and ref.row is not None
        if ref.row.action != "create":
            found = _kernel_partition(ref.disk.path, ref.row.number)
            if found:
                _refuse_busy(f"/dev/{found}", where, what, with_partitions=False)
        return
    if ref.kind == "block":
        _refuse_busy(ref.node, where, what)


def _refuse_busy(node: str, where: str, what: str, *, with_partitions: bool = True) -> None:
    why = busy.reasons(node, with_partitions=with_partitions)
    if why:
        raise StageError(f"{where}: cannot {what}: {'; '.join(why)}")


def _kernel_partition(disk_path: str, number: int) -> str | None:
    name = sysfs.name_of(disk_path)
    for kp in sysfs.partitions(name or ""):
        if kp.number == number:
            return kp.name
    return None


# --- partitions ------------------------------------------------------------------------------------


@dataclass
class _Spec:
    index: int  # position in the config's list, for messages
    number: int
    start: int | None  # sectors
    size: int | None
    label: str | None
    type_guid: str | None
    guid: str | None
    wipe_entry: bool
    should_exist: bool
    resize: bool


def _mib_to_sectors(mib: int | None, sector_size: int) -> int | None:
    return None if mib is None else mib * (MIB // sector_size)


def _matches_common(info: sfdisk.PartitionInfo, spec: _Spec) -> str | None:
    if spec.start is not None and spec.start != info.start:
        return f"starting sector did not match (specified {spec.start}, got {info.start})"
    if spec.guid and spec.guid.upper() != info.guid.upper():
        return f'GUID did not match (specified "{spec.guid}", got "{info.guid}")'
    if spec.type_guid and spec.type_guid.upper() != info.type_guid.upper():
        return f'type GUID did not match (specified "{spec.type_guid}", got "{info.type_guid}")'
    if spec.label is not None and spec.label != info.label:
        return f'label did not match (specified "{spec.label}", got "{info.label}")'
    return None


def _matches(info: sfdisk.PartitionInfo, spec: _Spec) -> str | None:
    common = _matches_common(info, spec)
    if common:
        return common
    if spec.size is not None and spec.size != info.size:
        return f"size did not match (specified {spec.size}, got {info.size})"
    return None


def _pretend(edit: sgdisk.Edit, where: str) -> str:
    proc = run(edit.argv(pretend=True), check=False)
    text = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        said = (text + proc.stderr.decode("utf-8", "replace")).strip().splitlines()
        detail = next((ln for ln in said if "Could not" in ln or "rror" in ln), said[-1] if said else "")
        raise StageError(f"{where}: the partitions do not fit on the disk: {detail}")
    return text


def _plan_disk(index: int, disk: Any, timeout: float = 0.0) -> DiskPlan:
    where = f"$.storage.disks.{index}"
    path = _existing(disk.device, timeout)
    if path is None:
        raise StageError(f"{where}.device: {disk.device} does not exist")
    name = sysfs.name_of(path)
    if name and sysfs.is_partition(name):
        raise StageError(f"{where}.device: {disk.device} is a partition, not a whole disk")
    wipe = bool(disk.wipe_table)
    ss = ioctl.logical_sector_size(path)
    size = ioctl.size_bytes(path)
    table = sfdisk.dump(path)
    before = [PartRow(p.number, p.start, p.size, p.type_guid, p.guid, p.label) for p in table.partitions]
    where_dev = f"{where} ({disk.device})"
    if not wipe and disk.partitions:
        if table.label not in ("", "gpt"):
            raise StageError(
                f"{where_dev}: the disk has a {table.label} partition table and only GPT is written; "
                "set wipeTable to replace it"
            )
        if table.label == "":
            sig = blkid.probe(path)
            if sig.type:
                raise StageError(
                    f"{where_dev}: the disk holds a {sig.type} signature and no partition table; "
                    "set wipeTable to replace it"
                )
    existing = sfdisk.TableInfo(sector_size=ss) if wipe else table
    # An image written to a bigger disk keeps its backup GPT where the image ended: move it to the
    # disk's end in the same edit, or "as large as possible" would stop at the old end.
    grown = (
        not wipe and table.label == "gpt" and table.last_lba is not None and table.last_lba < size // ss - 34
    )

    specs = [
        _Spec(
            index=i,
            number=p.number or 0,
            start=_mib_to_sectors(p.start_mib, ss),
            size=_mib_to_sectors(p.size_mib, ss),
            label=p.label,
            type_guid=p.type_guid,
            guid=p.guid,
            wipe_entry=bool(p.wipe_partition_entry),
            should_exist=p.should_exist is None or bool(p.should_exist),
            resize=bool(p.resize),
        )
        for i, p in enumerate(disk.partitions)
    ]
    # Number 0 ("the next free number") is handled after all numbered partitions (stable).
    specs.sort(key=lambda s: s.number == 0)
    _refuse_duplicates(specs, where)

    # Resolve start/size 0 ("what it would become") with sgdisk --pretend, as if every specified
    # partition were created anew; unspecified start/size of an existing one means "keep it".
    probe_edit = sgdisk.Edit(path, clear=wipe, move_header=grown)
    for s in specs:
        info = existing.get(s.number) if s.number else None
        if info is not None:
            probe_edit.deletes.append(s.number)
            if s.start is None and not s.wipe_entry:
                s.start = info.start
            if s.size is None and not s.wipe_entry:
                s.size = info.size
        if s.should_exist:
            probe_edit.creates.append(sgdisk.NewPartition(s.number, s.start, s.size))
    inspect = [s.number for s in specs if s.number and (s.start == 0 or s.size == 0)]
    if inspect:
        probe_edit.infos = inspect
        dims = sgdisk.parse_info(_pretend(probe_edit, where_dev), inspect)
        for s in specs:
            if s.number in dims:
                start, length = dims[s.number]
                if s.start is not None:
                    s.start = start
                if s.size is not None:
                    s.size = length

    # Ignition's matrix: exists x shouldExist x matches x wipePartitionEntry (x resize).
    edit = sgdisk.Edit(path)
    actions: list[PartAction] = []
    row_action: dict[int, str] = {}
    for s in specs:
        pwhere = f"{where}.partitions.{s.index}"
        info = existing.get(s.number) if s.number else None
        mismatch = _matches(info, s) if info is not None else None
        new = sgdisk.NewPartition(s.number, s.start, s.size, s.label, s.type_guid, s.guid)
        if info is None and not s.should_exist:
            actions.append(PartAction(s.number, "absent", "does not exist, as specified", s.label))
        elif info is None:
            edit.creates.append(new)
            actions.append(PartAction(s.number, "create", label=s.label))
            if s.number:
                row_action[s.number] = "create"
        elif not s.should_exist and not s.wipe_entry:
            raise StageError(
                f"{pwhere}: partition {s.number} exists but is specified as nonexistent "
                "and wipePartitionEntry is false"
            )
        elif not s.should_exist:
            edit.deletes.append(s.number)
            actions.append(PartAction(s.number, "delete", label=s.label))
        elif mismatch is None:
            actions.append(PartAction(s.number, "keep", "matches", s.label))
            row_action[s.number] = "keep"
        elif not s.wipe_entry:
            if s.resize and _matches_common(info, s) is None:
                edit.deletes.append(s.number)
                edit.creates.append(
                    sgdisk.NewPartition(s.number, info.start, s.size, info.label, info.type_guid, info.guid)
                )
                actions.append(PartAction(s.number, "resize", f"{info.size} -> {s.size} sectors", s.label))
                row_action[s.number] = "resize"
            else:
                raise StageError(f"{pwhere}: partition {s.number} didn't match: {mismatch}")
        else:
            edit.deletes.append(s.number)
            edit.creates.append(new)
            actions.append(PartAction(s.number, "recreate", mismatch, s.label))
            row_action[s.number] = "recreate"

    # Busy partitions are never deleted, moved or resized; a busy disk's table is never wiped.
    for number in edit.deletes:
        kernel = _kernel_partition(path, number)
        if kernel:
            _refuse_busy(f"/dev/{kernel}", where_dev, f"change partition {number}", with_partitions=False)

    commands: list[Command] = []
    if wipe:
        commands.append(Command(sgdisk.zap_argv(path), "wipe the partition table"))
    if not edit.empty():
        edit.move_header = grown
        commands.append(Command(edit.argv(), "write the partition table"))
    if commands:
        # A wipe touches every partition; any edit touches the whole disk's own use.
        what = "wipe the partition table" if wipe else "change the partition table"
        _refuse_busy(path, where_dev, what, with_partitions=wipe)

    after = [PartRow(r.number, r.start, r.size, r.type_guid, r.guid, r.label, "keep") for r in before]
    if commands:
        final = sgdisk.Edit(
            path, clear=wipe, move_header=grown, deletes=edit.deletes, creates=edit.creates, print_table=True
        )
        after = _after_rows(sgdisk.parse_print(_pretend(final, where_dev)), existing, edit, row_action)
    _refuse_overlap(after, where_dev)
    # Tell which numbers the "next free number" partitions get (the rows sgdisk created for them).
    explicit = {s.number for s in specs if s.number}
    free = iter(sorted(r.number for r in after if r.action == "create" and r.number not in explicit))
    for a in actions:
        if not a.number and a.action == "create":
            a.assigned = next(free, None)
    return DiskPlan(
        device=disk.device,
        path=path,
        size_bytes=size,
        sector_size=ss,
        table_before=table.label,
        wipe_table=wipe,
        before=before,
        after=after,
        actions=actions,
        commands=commands,
    )


def _refuse_duplicates(specs: list[_Spec], where: str) -> None:
    seen: set[int] = set()
    for s in specs:
        if s.number and s.number in seen:
            raise StageError(f"{where}.partitions.{s.index}: partition number {s.number} is given twice")
        seen.add(s.number)


def _refuse_overlap(rows: list[PartRow], where: str) -> None:
    ordered = sorted(rows, key=lambda r: r.start)
    for a, b in itertools.pairwise(ordered):
        if a.start + a.size > b.start:
            raise StageError(f"{where}: partitions {a.number} and {b.number} would overlap")


def _after_rows(
    printed: list[sgdisk.PrintRow],
    existing: sfdisk.TableInfo,
    edit: sgdisk.Edit,
    row_action: dict[int, str],
) -> list[PartRow]:
    created = {p.number: p for p in edit.creates if p.number}
    kept = {p.number for p in existing.partitions} - set(edit.deletes)
    unnumbered = [p for p in edit.creates if not p.number]
    # sgdisk gives each "number 0" partition the lowest free number, in the order created.
    new_numbers = sorted(r.number for r in printed if r.number not in created and r.number not in kept)
    by_new = dict(zip(new_numbers, unnumbered, strict=False))
    rows = []
    for r in printed:
        size = r.end - r.start + 1
        if r.number in created or r.number in by_new:
            p = created.get(r.number) or by_new[r.number]
            action = row_action.get(r.number, "create")
            rows.append(
                PartRow(
                    r.number,
                    r.start,
                    size,
                    (p.type_guid or LINUX_FILESYSTEM).upper(),
                    (p.guid or "").upper(),
                    p.label or "",
                    action,
                )
            )
        else:
            info = existing.get(r.number)
            rows.append(
                PartRow(
                    r.number,
                    r.start,
                    size,
                    info.type_guid if info else "",
                    info.guid if info else "",
                    info.label if info else r.name,
                    "keep",
                )
            )
    return rows


# --- RAID ------------------------------------------------------------------------------------------


def _plan_raid(index: int, raid: Any, names: _Names) -> RaidPlan:
    where = f"$.storage.raid.{index}"
    level = str(raid.level) if raid.level is not None else ""
    if level not in mdadm.LEVELS:
        raise StageError(f"{where}.level: unsupported RAID level {level!r}")
    spares = raid.spares or 0
    active = len(raid.devices) - spares
    minimum = mdadm.MIN_ACTIVE[mdadm.LEVELS[level]]
    if active < minimum:
        raise StageError(
            f"{where}: {level} needs at least {minimum} active devices, got {active} "
            f"({len(raid.devices)} devices, {spares} spares)"
        )
    nodes = []
    for j, dev in enumerate(raid.devices):
        ref = names.resolve(dev, f"{where}.devices.{j}")
        _busy(ref, f"{where}.devices.{j}", f"use {dev} in array {raid.name}")
        nodes.append(ref.node)
    path = mdadm.device_path(raid.name)
    argv = mdadm.create_argv(raid.name, level, nodes, spares=spares, options=tuple(raid.options))
    return RaidPlan(
        name=raid.name,
        path=path,
        level=level,
        devices=list(raid.devices),
        nodes=nodes,
        spares=spares,
        options=list(raid.options),
        commands=[Command(argv, f"create RAID array {raid.name}")],
    )


# --- LUKS ------------------------------------------------------------------------------------------


def _wants_clevis(luks: Any) -> bool:
    c = luks.clevis
    return bool(c.tang) or bool(c.tpm2) or c.custom is not None


def fetch_data_url(source: str) -> bytes:
    """The bytes of a ``data:`` URL (RFC 2397)."""
    head, sep, data = source[len("data:") :].partition(",")
    if not sep:
        raise ValueError("malformed data URL")
    if head.endswith(";base64"):
        return base64.b64decode(urllib.parse.unquote(data))
    return urllib.parse.unquote_to_bytes(data)


def _fetch_key(resource: Any, env: Env, where: str) -> bytes:
    source = resource.source
    if env.dry_run and env.fetch is None and not source.startswith("data:"):
        return b""
    try:
        if env.fetch is not None:
            data = env.fetch(resource)
        elif source.startswith("data:"):
            data = fetch_data_url(source)
        else:
            raise StageError(f"{where}: cannot fetch {source!r} here (no resource fetcher was given)")
        if resource.compression is not None and str(resource.compression) == "gzip":
            data = gzip.decompress(data)
    except StageError:
        raise
    except Exception as exc:
        raise StageError(f"{where}: cannot read the key file: {exc}") from exc
    want = resource.verification.hash if resource.verification else None
    if want:
        algo, _, digest = want.partition("-")
        if hashlib.new(algo, data).hexdigest() != digest.lower():
            raise StageError(f"{where}: the key file does not match its verification hash")
    return data


def _luks_matches(ref: _Ref, sig: blkid.Signature, luks: Any, key: bytes) -> bool:
    """Ignition's "volume exists": a LUKS2 header, the same label and UUID when given, and the key
    opens it. The header is read by blkid (it works on a partition's byte range before the kernel
    has a node for it); the key is tested without device-mapper (``--test-passphrase``) when the
    volume has a node now, otherwise by the open in :func:`apply`."""
    if sig.type != "crypto_LUKS" or sig.get("VERSION") != "2":
        return False
    if luks.label is not None and sig.label != luks.label:
        return False
    if luks.uuid is not None and sig.uuid.lower() != luks.uuid.lower():
        return False
    node: str | None = ref.node if ref.kind == "block" else None
    if ref.kind == "partition" and ref.disk is not None and ref.row is not None and ref.row.action == "keep":
        kernel = _kernel_partition(ref.disk.path, ref.row.number)
        node = f"/dev/{kernel}" if kernel else None
    if node is None or not key:
        return True  # tested by the open in apply (or not at all: a dry run without the key)
    return run(cryptsetup.test_key_argv(node), input=key, check=False).returncode == 0


def _plan_luks(index: int, luks: Any, names: _Names, env: Env) -> LuksPlan:
    where = f"$.storage.luks.{index}"
    if luks.cex.enabled:
        raise StageError(f"{where}.cex: IBM CEX secure keys are not supported here")
    clevis = _wants_clevis(luks)
    if clevis and shutil.which("clevis", path=DEFAULT_PATH) is None:
        raise StageError(f"{where}.clevis: clevis is not supported here (the clevis tools are not installed)")
    if luks.device is None:
        raise StageError(f"{where}.device: no device given")
    ref = names.resolve(luks.device, f"{where}.device")
    generated = not luks.key_file.source
    key = (
        secrets.token_hex(GENERATED_KEY_BYTES).encode()
        if generated
        else _fetch_key(luks.key_file, env, f"{where}.keyFile")
    )
    wipe = bool(luks.wipe_volume)
    path = f"/dev/mapper/{luks.name}"
    found = "?" if ref.fresh else ""
    action = "create"
    if not ref.fresh:
        sig = _probe(ref)
        found = sig.type
        if wipe:
            action = "wipe+create" if sig.type else "create"
        elif sig.type:
            reusable = not generated and not clevis and _luks_matches(ref, sig, luks, key)
            if not reusable:
                raise StageError(
                    f"{where}: volume at {luks.device} is not of the correct type, label, or UUID "
                    f"(found {sig.type}, {sig.label!r}, {sig.uuid}) and a volume wipe was not requested"
                )
            action = "reuse"
    if action != "reuse":
        _busy(ref, where, f"format {luks.device} as LUKS")
    commands: list[Command] = []
    if action == "wipe+create" or (action == "create" and ref.fresh and wipe):
        commands.append(Command(wipefs.wipe_all_argv(ref.node), f"wipe signatures from {ref.node}"))
    if action != "reuse":
        commands.append(
            Command(
                cryptsetup.format_argv(
                    ref.node, label=luks.label, uuid=luks.uuid, options=tuple(luks.options)
                ),
                f"format LUKS volume {luks.name}",
                key,
            )
        )
    commands.append(
        Command(
            cryptsetup.open_argv(
                ref.node, luks.name, discard=bool(luks.discard), open_options=tuple(luks.open_options)
            ),
            f"open LUKS volume {luks.name}",
            key,
        )
    )
    if clevis:
        pin, config = _clevis_pin(luks)
        commands.append(Command(cryptsetup.clevis_bind_argv(ref.node, pin, config), "bind clevis", key))
    return LuksPlan(
        name=luks.name,
        device=luks.device,
        node=ref.node,
        path=path,
        action=action,
        key_source="generated" if generated else "resource",
        label=luks.label,
        uuid=luks.uuid,
        discard=bool(luks.discard),
        open_options=list(luks.open_options),
        clevis=clevis,
        found=found,
        commands=commands,
        key=key,
    )


def _clevis_pin(luks: Any) -> tuple[str, str]:
    import json

    c = luks.clevis
    if c.custom is not None and c.custom.pin:
        return c.custom.pin, c.custom.config or ""
    pins: dict[str, Any] = {}
    if c.tang:
        pins["tang"] = [
            {
                "url": t.url,
                **({"thp": t.thumbprint} if t.thumbprint else {}),
                **({"adv": t.advertisement} if t.advertisement else {}),
            }
            for t in c.tang
        ]
    if c.tpm2:
        pins["tpm2"] = {}
    return "sss", json.dumps({"t": c.threshold or 1, "pins": pins})


# --- filesystems -----------------------------------------------------------------------------------


def decide_filesystem(fs: Any, sig: blkid.Signature, where: str) -> str:
    """Ignition's reuse rule: ``reuse``, ``create``, ``wipe+create``, ``wipe`` or ``nothing``;
    raises when something else is there and no wipe was requested."""
    fmt = str(fs.format) if fs.format is not None else None
    if fmt is None:
        return "nothing"
    wipe = bool(fs.wipe_filesystem)
    if not wipe:
        want = "" if fmt == "none" else mkfs.FORMATS[fmt].blkid_type
        if (
            sig.type == want
            and (fs.label is None or sig.label == fs.label)
            and (
                fs.uuid is None
                or mkfs.canonical_uuid(sig.type, sig.uuid) == mkfs.canonical_uuid(fmt, fs.uuid)
            )
        ):
            return "reuse" if fmt != "none" else "nothing"
        if sig.type:
            raise StageError(
                f"{where}: filesystem at {fs.device} is not of the correct type, label, or UUID "
                f"(found {sig.type}, {sig.label!r}, {sig.uuid}) and a filesystem wipe was not requested"
            )
    if fmt == "none":
        return "wipe"
    return "wipe+create" if sig.type else "create"


def _fs_commands(fs: Any, node: str, action: str) -> list[Command]:
    if action in ("reuse", "nothing"):
        return []
    out = [Command(wipefs.wipe_all_argv(node), f"wipe signatures from {node}")]
    if action != "wipe":
        fmt = str(fs.format)
        argv = mkfs.argv(fmt, node, label=fs.label, uuid=fs.uuid, options=tuple(fs.options))
        out.append(Command(argv, f"create {fmt} on {node}"))
    return out


def _plan_fs(index: int, fs: Any, names: _Names) -> FsPlan:
    where = f"$.storage.filesystems.{index}"
    fmt = str(fs.format) if fs.format is not None else None
    if fmt is not None and fmt != "none" and fmt not in mkfs.FORMATS:
        raise StageError(f"{where}.format: unsupported filesystem format {fmt!r}")
    ref = names.resolve(fs.device, f"{where}.device")
    sig = _probe(ref)
    action = decide_filesystem(fs, sig, where)
    if action not in ("reuse", "nothing"):
        _busy(ref, where, f"format {fs.device}")
    return FsPlan(
        index=index,
        device=fs.device,
        node=ref.node,
        format=fmt,
        action=action,
        found_type=sig.type,
        found_label=sig.label,
        found_uuid=sig.uuid,
        label=fs.label,
        uuid=fs.uuid,
        options=list(fs.options),
        wipe=bool(fs.wipe_filesystem),
        path=fs.path,
        recheck=ref.fresh,
        commands=_fs_commands(fs, ref.node, action),
        mount_options=list(fs.mount_options),
    )


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p and p != "."])


def plan_mounts(filesystems: list[FsPlan]) -> list[MountPlan]:
    """Filesystems with a path, shallowest first (stable for equal depth), as Ignition orders them."""
    out = [
        MountPlan(f.device, f.node, f.path, f.format, list(f.mount_options))
        for f in filesystems
        if f.path and f.format and f.format in mkfs.FORMATS and mkfs.FORMATS[f.format].mountable
    ]
    return sorted(out, key=lambda m: _depth(m.path))


# --- tools -----------------------------------------------------------------------------------------


def _tools(plan_: Plan) -> set[str]:
    tools: set[str] = set()
    if plan_.disks:
        tools |= {"blkid", "sfdisk", "partx"}
    if plan_.luks or plan_.filesystems:
        tools.add("blkid")
    for d in plan_.disks:
        tools |= {c.argv[0] for c in d.commands}
    for group in (plan_.raids, plan_.luks, plan_.filesystems):
        for item in group:
            tools |= {c.argv[0] for c in item.commands}
    if plan_.mounts:
        tools |= {"mount", "umount"}
    return tools


def _refuse_missing_tools(plan_: Plan) -> None:
    missing = sorted(
        t
        for t in _tools(plan_)
        if shutil.which(t, path=os.environ.get("PINE_TOOLS_PATH", DEFAULT_PATH)) is None
    )
    if missing:
        raise StageError(f"storage: required tools are missing: {', '.join(missing)}")


# --- entry points ----------------------------------------------------------------------------------


def plan(storage: Any, env: Env | None = None) -> Plan:
    """What the disks stage would do to the devices as they are now. Changes nothing; raises
    :class:`StageError` for anything that would make it fail or destroy data it may not."""
    env = env or Env()
    result = Plan(dry_run=env.dry_run)
    try:
        for i, disk in enumerate(storage.disks):
            result.disks.append(_plan_disk(i, disk, env.device_timeout))
        names = _Names(result.disks, timeout=env.device_timeout)
        for r in storage.raid:
            names.raids[r.name] = mdadm.device_path(r.name)
        for lk in storage.luks:
            names.luks[lk.name] = f"/dev/mapper/{lk.name}"
        for i, raid in enumerate(storage.raid):
            result.raids.append(_plan_raid(i, raid, names))
        for i, lk in enumerate(storage.luks):
            result.luks.append(_plan_luks(i, lk, names, env))
        for i, fs in enumerate(storage.filesystems):
            fp = _plan_fs(i, fs, names)
            result.filesystems.append(fp)
            if fs.path and fp.format in ("swap", "none"):
                result.warnings.append(
                    f"$.storage.filesystems.{i}.path: a {fp.format} filesystem is not mounted"
                )
    except CommandError as exc:
        raise StageError(f"storage: reading the devices failed: {exc}") from exc
    result.mounts = plan_mounts(result.filesystems)
    _refuse_missing_tools(result)
    return result


@dataclass
class LuksKey:
    name: str
    key: bytes = field(repr=False)
    uuid: str
    discard: bool
    clevis: bool


@dataclass
class Applied:
    """What :func:`apply` made that later steps need: the LUKS keys for :func:`write_luks_keys`."""

    luks: list[LuksKey] = field(default_factory=list)


def _run(cmd: Command, log: Log) -> None:
    log.info(f"{cmd.why}: {' '.join(cmd.argv)}")
    run(cmd.argv, input=cmd.input)


def apply(plan_: Plan, log: Log, *, timeout: float = 30.0) -> Applied:
    """Carry out ``plan_`` (from :func:`plan`, computed just before)."""
    if plan_.dry_run:
        raise StageError("disks: a plan computed for a dry run cannot be applied")
    applied = Applied()
    try:
        for d in plan_.disks:
            with log.op(f"partitioning {d.device}"):
                for cmd in d.commands:
                    _run(cmd, log)
                    partx.sync(d.path)
                if not d.commands:
                    partx.sync(d.path)  # kernels without partition parsers: existing ones get nodes
                for row in d.after:
                    wait.wait_for(sysfs.partition_node(d.path, row.number), timeout)
        for r in plan_.raids:
            with log.op(f"creating RAID array {r.name}"):
                for node in r.nodes:
                    wait.wait_for(node, timeout)
                for cmd in r.commands:
                    _run(cmd, log)
                wait.wait_for(r.path, timeout)
        for lk in plan_.luks:
            with log.op(f"{'opening' if lk.action == 'reuse' else 'creating'} LUKS volume {lk.name}"):
                wait.wait_for(lk.node, timeout)
                for cmd in lk.commands:
                    _run(cmd, log)
                wait.wait_for(lk.path, timeout)
                uuid = lk.uuid or run(cryptsetup.uuid_argv(lk.node)).stdout.decode().strip()
                applied.luks.append(LuksKey(lk.name, lk.key, uuid, lk.discard, lk.clevis))
        for f in plan_.filesystems:
            if f.format is None:
                continue
            with log.op(f"filesystem {f.format} on {f.device}"):
                node = wait.wait_for(f.node, timeout)
                action = f.action
                if f.recheck:
                    action = decide_filesystem(
                        _FsSpec.of(f), blkid.probe(node), f"$.storage.filesystems.{f.index}"
                    )
                    f.commands = _fs_commands(_FsSpec.of(f), f.node, action)
                log.info(f"{f.device}: {action}")
                for cmd in f.commands:
                    _run(cmd, log)
    except CommandError as exc:
        raise StageError(f"disks: {exc}") from exc
    except wait.DeviceTimeout as exc:
        raise StageError(f"disks: {exc}") from exc
    return applied


@dataclass
class _FsSpec:
    """The config fields :func:`decide_filesystem` reads, rebuilt from a plan entry."""

    device: str
    format: str | None
    label: str | None
    uuid: str | None
    options: tuple[str, ...]
    wipe_filesystem: bool

    @classmethod
    def of(cls, f: FsPlan) -> _FsSpec:
        return cls(f.device, f.format, f.label, f.uuid, tuple(f.options), f.wipe)


def crypttab_line(key: LuksKey) -> str:
    options = "luks" + (",discard" if key.discard else "")
    keyfile = "none" if key.clevis else f"{LUKS_KEY_DIR}/{key.name}"
    return f"{key.name} UUID={key.uuid} {keyfile} {options}"


def write_luks_keys(applied: Applied, root: Any, log: Log) -> None:
    """Keep each LUKS key at ``/etc/luks/NAME`` (0600, directory 0700) in the target root and give
    it an ``/etc/crypttab`` line. Called after the target's filesystems are mounted."""
    if not applied.luks:
        return
    # A pineinstall.target.Target (an OSTree deployment's etc) or a plain directory.
    etc = root.resolve_all("/etc") if hasattr(root, "resolve_all") else Path(root) / "etc"
    keydir = etc / "luks"
    keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keydir, 0o700)
    crypttab = etc / "crypttab"
    lines = crypttab.read_text().splitlines() if crypttab.exists() else []
    for k in applied.luks:
        if not k.clevis:
            target = keydir / k.name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(k.key)
            os.chmod(target, 0o600)
        lines = [ln for ln in lines if ln.split()[:1] != [k.name]]
        lines.append(crypttab_line(k))
        log.info(f"LUKS volume {k.name}: key kept at {LUKS_KEY_DIR}/{k.name}, crypttab entry written")
    crypttab.write_text("\n".join(lines) + "\n")
