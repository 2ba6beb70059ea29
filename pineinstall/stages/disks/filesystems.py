"""The disks stage's filesystems: Ignition's reuse rule (same type, label and UUID: kept; anything
else only with ``wipeFilesystem``), the mkfs commands, and the mounts in Ignition's order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pineinstall.block import blkid, mkfs, wipefs
from pineinstall.stages import StageError
from pineinstall.stages.disks.devices import DeviceNames, probe, refuse_busy_ref
from pineinstall.stages.plan import Command, FsPlan, MountPlan


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


def fs_commands(fs: Any, node: str, action: str) -> list[Command]:
    if action in ("reuse", "nothing"):
        return []
    out = [Command(wipefs.wipe_all_argv(node), f"wipe signatures from {node}")]
    if action != "wipe":
        fmt = str(fs.format)
        argv = mkfs.argv(fmt, node, label=fs.label, uuid=fs.uuid, options=tuple(fs.options))
        out.append(Command(argv, f"create {fmt} on {node}"))
    return out


def plan_fs(index: int, fs: Any, names: DeviceNames) -> FsPlan:
    where = f"$.storage.filesystems.{index}"
    fmt = str(fs.format) if fs.format is not None else None
    if fmt is not None and fmt != "none" and fmt not in mkfs.FORMATS:
        raise StageError(f"{where}.format: unsupported filesystem format {fmt!r}")
    ref = names.resolve(fs.device, f"{where}.device")
    sig = probe(ref)
    action = decide_filesystem(fs, sig, where)
    if action not in ("reuse", "nothing"):
        refuse_busy_ref(ref, where, f"format {fs.device}")
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
        commands=fs_commands(fs, ref.node, action),
        mount_options=list(fs.mount_options),
    )


@dataclass
class FsSpec:
    """The config fields :func:`decide_filesystem` reads, rebuilt from a plan entry."""

    device: str
    format: str | None
    label: str | None
    uuid: str | None
    options: tuple[str, ...]
    wipe_filesystem: bool

    @classmethod
    def of(cls, f: FsPlan) -> FsSpec:
        return cls(f.device, f.format, f.label, f.uuid, tuple(f.options), f.wipe)


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
