"""The storage plan: what the disks stage will do, as data, as text for people, and as JSON.

:func:`pineinstall.stages.disks.plan` computes a :class:`StoragePlan` from the config and the devices'
current state without changing anything; :func:`pineinstall.stages.disks.apply` carries it out.
``--dry-run`` prints :func:`render_text` (stderr-free: the caller decides where), ``--json`` prints
:meth:`StoragePlan.to_dict`. Key material is held in the plan for ``apply`` but never rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024

# What sgdisk gives a partition created without a type GUID (code 8300).
LINUX_FILESYSTEM = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


@dataclass
class Command:
    """One process to run: ``argv`` plus what it is for. ``input`` (a key) is never shown."""

    argv: list[str]
    why: str
    input: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"argv": list(self.argv), "why": self.why}
        if self.input is not None:
            out["stdin"] = "<key>"
        return out


@dataclass
class PartRow:
    """One row of a partition table (before or after), sectors in the disk's logical size."""

    number: int
    start: int
    size: int
    type_guid: str = ""
    guid: str = ""  # "" when sgdisk will pick a random one
    label: str = ""
    action: str = ""  # after-table only: keep, create, resize, recreate

    def to_dict(self, sector_size: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.number,
            "start": self.start,
            "size": self.size,
            "startMiB": round(self.start * sector_size / MIB, 3),
            "sizeMiB": round(self.size * sector_size / MIB, 3),
            "typeGuid": self.type_guid or None,
            "guid": self.guid or None,
            "label": self.label,
        }
        if self.action:
            out["action"] = self.action
        return out


@dataclass
class PartAction:
    number: int  # as configured (0: the next free number)
    action: str  # keep, create, delete, resize, recreate, absent
    detail: str = ""
    label: str | None = None  # as configured
    assigned: int | None = None  # the number a "next free number" partition gets

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"number": self.number, "action": self.action, "detail": self.detail}
        if self.label is not None:
            out["label"] = self.label
        if self.assigned is not None:
            out["assigned"] = self.assigned
        return out


@dataclass
class DiskPlan:
    device: str  # as the config names it
    path: str  # the kernel node
    size_bytes: int
    sector_size: int
    table_before: str  # "gpt", "dos", ... or "" (none)
    wipe_table: bool
    before: list[PartRow]
    after: list[PartRow]
    actions: list[PartAction]
    commands: list[Command]

    @property
    def changes(self) -> bool:
        return bool(self.commands)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "path": self.path,
            "sizeBytes": self.size_bytes,
            "sectorSize": self.sector_size,
            "tableBefore": self.table_before or None,
            "wipeTable": self.wipe_table,
            "before": [r.to_dict(self.sector_size) for r in self.before],
            "after": [r.to_dict(self.sector_size) for r in self.after],
            "actions": [a.to_dict() for a in self.actions],
            "commands": [c.to_dict() for c in self.commands],
        }


@dataclass
class RaidPlan:
    name: str
    path: str
    level: str
    devices: list[str]  # as configured
    nodes: list[str]  # kernel nodes they will be
    spares: int
    options: list[str]
    commands: list[Command]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "level": self.level,
            "devices": self.devices,
            "nodes": self.nodes,
            "spares": self.spares,
            "options": self.options,
            "action": "create",
            "commands": [c.to_dict() for c in self.commands],
        }


@dataclass
class LuksPlan:
    name: str
    device: str
    node: str
    path: str  # /dev/mapper/NAME
    action: str  # create, reuse, wipe+create
    key_source: str  # resource or generated
    label: str | None
    uuid: str | None
    discard: bool
    open_options: list[str]
    clevis: bool
    found: str  # what is there now ("" nothing, "?" unknown until created)
    commands: list[Command]
    key: bytes = field(default=b"", repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "node": self.node,
            "path": self.path,
            "action": self.action,
            "keySource": self.key_source,
            "keyFile": None if self.clevis else f"/etc/luks/{self.name}",
            "label": self.label,
            "uuid": self.uuid,
            "discard": self.discard,
            "openOptions": self.open_options,
            "clevis": self.clevis,
            "found": self.found,
            "commands": [c.to_dict() for c in self.commands],
        }


@dataclass
class FsPlan:
    index: int
    device: str
    node: str
    format: str | None
    action: str  # create, reuse, wipe+create, wipe, nothing; "+recheck" when decided after creation
    found_type: str
    found_label: str
    found_uuid: str
    label: str | None
    uuid: str | None
    options: list[str]
    wipe: bool
    path: str | None
    recheck: bool  # the device is created by this plan (RAID, LUKS): decided again in apply
    commands: list[Command]
    mount_options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "node": self.node,
            "format": self.format,
            "action": self.action,
            "found": {"type": self.found_type, "label": self.found_label, "uuid": self.found_uuid},
            "label": self.label,
            "uuid": self.uuid,
            "options": self.options,
            "wipeFilesystem": self.wipe,
            "path": self.path,
            "mountOptions": self.mount_options,
            "decidedAfterCreation": self.recheck,
            "commands": [c.to_dict() for c in self.commands],
        }


@dataclass
class MountPlan:
    device: str
    node: str
    path: str
    format: str
    options: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "node": self.node,
            "path": self.path,
            "format": self.format,
            "options": self.options,
        }


@dataclass
class StoragePlan:
    disks: list[DiskPlan] = field(default_factory=list)
    raids: list[RaidPlan] = field(default_factory=list)
    luks: list[LuksPlan] = field(default_factory=list)
    filesystems: list[FsPlan] = field(default_factory=list)
    mounts: list[MountPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False  # computed for showing only: apply refuses it

    @property
    def changes(self) -> bool:
        return (
            any(d.changes for d in self.disks)
            or bool(self.raids)
            or any(lk.action != "reuse" for lk in self.luks)
            or any(f.commands for f in self.filesystems)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "disks": [d.to_dict() for d in self.disks],
            "raid": [r.to_dict() for r in self.raids],
            "luks": [lk.to_dict() for lk in self.luks],
            "filesystems": [f.to_dict() for f in self.filesystems],
            "mounts": [m.to_dict() for m in self.mounts],
            "warnings": list(self.warnings),
        }


# --- text ------------------------------------------------------------------------------------------


@dataclass
class LuksKey:
    """A LUKS volume the disks stage opened, and its key (never rendered)."""

    name: str
    key: bytes = field(repr=False)
    uuid: str
    discard: bool
    clevis: bool


@dataclass
class Applied:
    """What :func:`pineinstall.stages.disks.apply` made that later steps need: the LUKS keys for :func:`pineinstall.stages.files.luks_keys.write_luks_keys`."""

    luks: list[LuksKey] = field(default_factory=list)


def _mib(sectors: int, sector_size: int) -> str:
    value = sectors * sector_size / MIB
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _table(rows: list[PartRow], sector_size: int, indent: str, with_action: bool) -> list[str]:
    if not rows:
        return [f"{indent}(no partitions)"]
    head = f"{indent}{'#':>3}  {'start MiB':>9}  {'size MiB':>9}  {'type GUID':<36}  {'GUID':<36}  label"
    if with_action:
        head += "  [action]"
    out = [head]
    for r in rows:
        line = (
            f"{indent}{r.number:>3}  {_mib(r.start, sector_size):>9}  {_mib(r.size, sector_size):>9}  "
            f"{r.type_guid or '-':<36}  {r.guid or '(random)':<36}  {r.label or '-'}"
        )
        if with_action and r.action:
            line += f"  [{r.action}]"
        out.append(line)
    return out


def render_text(plan: StoragePlan) -> str:
    lines: list[str] = []
    for d in plan.disks:
        size = d.size_bytes / MIB
        lines.append(
            f"disk {d.device} ({d.path}, {size:.0f} MiB, {d.sector_size}-byte sectors)"
            + ("" if d.changes else ": unchanged")
        )
        if d.wipe_table:
            lines.append("  wipe the partition table")
        lines.append(f"  table before: {d.table_before or 'none'}")
        lines += _table(d.before, d.sector_size, "    ", False)
        if d.changes:
            lines.append("  table after: gpt")
            lines += _table(d.after, d.sector_size, "    ", True)
        for a in d.actions:
            if a.number:
                number = f"partition {a.number}"
            elif a.assigned:
                number = f"partition {a.assigned} (next free number)"
            else:
                number = "partition (next free number)"
            if a.label:
                number += f' "{a.label}"'
            lines.append(f"  {number}: {a.action}" + (f" ({a.detail})" if a.detail else ""))
    for r in plan.raids:
        spares = f", {r.spares} spare" + ("s" if r.spares != 1 else "") if r.spares else ""
        lines.append(f"raid {r.path}: create {r.level} on {', '.join(r.nodes)}{spares}")
    for lk in plan.luks:
        extra = []
        if lk.label:
            extra.append(f"label {lk.label}")
        if lk.uuid:
            extra.append(f"uuid {lk.uuid}")
        if lk.discard:
            extra.append("discard")
        key = "clevis" if lk.clevis else f"{lk.key_source} key -> /etc/luks/{lk.name}"
        lines.append(
            f"luks {lk.path} on {lk.node}: {lk.action} ({key}"
            + (", " + ", ".join(extra) if extra else "")
            + ")"
        )
    for f in plan.filesystems:
        found = f.found_type or "nothing"
        if f.found_type and (f.found_label or f.found_uuid):
            found += f" label={f.found_label!r} uuid={f.found_uuid}"
        if f.recheck:
            found = "decided once the device exists"
        want = f.format or "(no format)"
        detail = []
        if f.label is not None:
            detail.append(f"label {f.label}")
        if f.uuid is not None:
            detail.append(f"uuid {f.uuid}")
        lines.append(
            f"filesystem {f.device} ({f.node}): {f.action} {want}"
            + (f" [{', '.join(detail)}]" if detail else "")
            + f"; found {found}"
        )
    for m in plan.mounts:
        opts = f" -o {','.join(m.options)}" if m.options else ""
        lines.append(f"mount {m.node} on {m.path} ({m.format}{opts})")
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    if not lines:
        lines.append("storage: nothing to do")
    return "\n".join(lines) + "\n"
