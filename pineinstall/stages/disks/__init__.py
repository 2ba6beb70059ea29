"""The disks stage: partitions, RAID arrays, LUKS volumes and filesystems, in Ignition's order.

:func:`plan` reads the devices (partition tables, signatures, sizes, who holds them) and decides
everything: which partitions are kept, created, resized, recreated or deleted (Ignition's matching
rules), which filesystems are reused or made, and whether anything is in the way. Every refusal
happens there, before a byte is written. :func:`apply` then runs the plan's commands, telling the
kernel about partitions with ``partx`` after each table change and waiting for the nodes.

Deliberate differences from Ignition, for safety: a disk holding a non-GPT table or a filesystem
directly (no table) is only partitioned with ``wipeTable``; busy devices (mounted, swap, held) are
never repartitioned, formatted or wiped.

One module per concept: :mod:`.devices` (where names point), :mod:`.partitions`,
:mod:`.raid_luks`, :mod:`.filesystems`. The LUKS keys are kept in the target by the files stage
(:mod:`pineinstall.stages.files.luks_keys`), once the target's filesystems are mounted.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from pineinstall.block import blkid, cryptsetup, mdadm, partx, sysfs, wait
from pineinstall.run import DEFAULT_PATH, CommandError, run
from pineinstall.stages import Log, StageError
from pineinstall.stages.disks.devices import DeviceNames, Env
from pineinstall.stages.disks.filesystems import FsSpec, decide_filesystem, fs_commands, plan_fs, plan_mounts
from pineinstall.stages.disks.partitions import plan_disk
from pineinstall.stages.disks.raid_luks import fetch_data_url, plan_luks, plan_raid
from pineinstall.stages.plan import Applied, Command, LuksKey, StoragePlan

__all__ = [
    "Applied",
    "Env",
    "LuksKey",
    "StoragePlan",
    "apply",
    "decide_filesystem",
    "fetch_data_url",
    "plan",
    "plan_mounts",
]


def _tools(plan_: StoragePlan) -> set[str]:
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


def _refuse_missing_tools(plan_: StoragePlan) -> None:
    missing = sorted(
        t
        for t in _tools(plan_)
        if shutil.which(t, path=os.environ.get("PINE_TOOLS_PATH", DEFAULT_PATH)) is None
    )
    if missing:
        raise StageError(f"storage: required tools are missing: {', '.join(missing)}")


def plan(storage: Any, env: Env | None = None) -> StoragePlan:
    """What the disks stage would do to the devices as they are now. Changes nothing; raises
    :class:`StageError` for anything that would make it fail or destroy data it may not."""
    env = env or Env()
    result = StoragePlan(dry_run=env.dry_run)
    try:
        for i, disk in enumerate(storage.disks):
            result.disks.append(plan_disk(i, disk, env.device_timeout))
        names = DeviceNames(result.disks, timeout=env.device_timeout)
        for r in storage.raid:
            names.raids[r.name] = mdadm.device_path(r.name)
        for lk in storage.luks:
            names.luks[lk.name] = f"/dev/mapper/{lk.name}"
        for i, raid in enumerate(storage.raid):
            result.raids.append(plan_raid(i, raid, names))
        for i, lk in enumerate(storage.luks):
            result.luks.append(plan_luks(i, lk, names, env))
        for i, fs in enumerate(storage.filesystems):
            fp = plan_fs(i, fs, names)
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


def _run(cmd: Command, log: Log) -> None:
    log.info(f"{cmd.why}: {' '.join(cmd.argv)}")
    run(cmd.argv, input=cmd.input)


def apply(plan_: StoragePlan, log: Log, *, timeout: float = 30.0) -> Applied:
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
                        FsSpec.of(f), blkid.probe(node), f"$.storage.filesystems.{f.index}"
                    )
                    f.commands = fs_commands(FsSpec.of(f), f.node, action)
                log.info(f"{f.device}: {action}")
                for cmd in f.commands:
                    _run(cmd, log)
    except CommandError as exc:
        raise StageError(f"disks: {exc}") from exc
    except wait.DeviceTimeout as exc:
        raise StageError(f"disks: {exc}") from exc
    return applied
