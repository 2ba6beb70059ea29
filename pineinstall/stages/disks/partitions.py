"""The disks stage's partitions: Ignition's matching rules (exists x shouldExist x matches x
wipePartitionEntry x resize) decide each partition's fate; ``sgdisk --pretend`` computes where
new ones land; busy partitions are never deleted, moved or resized."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pineinstall.block import blkid, ioctl, sfdisk, sgdisk, sysfs
from pineinstall.run import run
from pineinstall.stages import StageError
from pineinstall.stages.disks.devices import existing_node, kernel_partition, refuse_busy
from pineinstall.stages.plan import LINUX_FILESYSTEM, MIB, Command, DiskPlan, PartAction, PartRow


@dataclass
class PartitionSpec:
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


def mib_to_sectors(mib: int | None, sector_size: int) -> int | None:
    return None if mib is None else mib * (MIB // sector_size)


def matches_common(info: sfdisk.PartitionInfo, spec: PartitionSpec) -> str | None:
    if spec.start is not None and spec.start != info.start:
        return f"starting sector did not match (specified {spec.start}, got {info.start})"
    if spec.guid and spec.guid.upper() != info.guid.upper():
        return f'GUID did not match (specified "{spec.guid}", got "{info.guid}")'
    if spec.type_guid and spec.type_guid.upper() != info.type_guid.upper():
        return f'type GUID did not match (specified "{spec.type_guid}", got "{info.type_guid}")'
    if spec.label is not None and spec.label != info.label:
        return f'label did not match (specified "{spec.label}", got "{info.label}")'
    return None


def matches(info: sfdisk.PartitionInfo, spec: PartitionSpec) -> str | None:
    common = matches_common(info, spec)
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


def plan_disk(index: int, disk: Any, timeout: float = 0.0) -> DiskPlan:
    where = f"$.storage.disks.{index}"
    path = existing_node(disk.device, timeout)
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
        PartitionSpec(
            index=i,
            number=p.number or 0,
            start=mib_to_sectors(p.start_mib, ss),
            size=mib_to_sectors(p.size_mib, ss),
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
    refuse_duplicates(specs, where)

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
        mismatch = matches(info, s) if info is not None else None
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
            if s.resize and matches_common(info, s) is None:
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
        kernel = kernel_partition(path, number)
        if kernel:
            refuse_busy(f"/dev/{kernel}", where_dev, f"change partition {number}", with_partitions=False)

    commands: list[Command] = []
    if wipe:
        commands.append(Command(sgdisk.zap_argv(path), "wipe the partition table"))
    if not edit.empty():
        edit.move_header = grown
        commands.append(Command(edit.argv(), "write the partition table"))
    if commands:
        # A wipe touches every partition; any edit touches the whole disk's own use.
        what = "wipe the partition table" if wipe else "change the partition table"
        refuse_busy(path, where_dev, what, with_partitions=wipe)

    after = [PartRow(r.number, r.start, r.size, r.type_guid, r.guid, r.label, "keep") for r in before]
    if commands:
        final = sgdisk.Edit(
            path, clear=wipe, move_header=grown, deletes=edit.deletes, creates=edit.creates, print_table=True
        )
        after = _after_rows(sgdisk.parse_print(_pretend(final, where_dev)), existing, edit, row_action)
    refuse_overlap(after, where_dev)
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


def refuse_duplicates(specs: list[PartitionSpec], where: str) -> None:
    seen: set[int] = set()
    for s in specs:
        if s.number and s.number in seen:
            raise StageError(f"{where}.partitions.{s.index}: partition number {s.number} is given twice")
        seen.add(s.number)


def refuse_overlap(rows: list[PartRow], where: str) -> None:
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
