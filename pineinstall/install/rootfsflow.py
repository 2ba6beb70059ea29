"""Rootfs mode's install flow (``pineinstall DEST CONFIG --rootfs ROOT``), the tools being in
:mod:`.rootfs`.

Pine's default layout follows the image modes' rule (docs/safety.md): the old tables are wiped,
the layout is made in a held scratch table (:class:`.tables.HeldTables`), the filesystems, the
root, GRUB and the provisioning reach DEST through loop devices at the partitions' offsets, and
the first MiB (boot code, primary GPT) and the backup GPT are written last, once all of it is
synced. GRUB's BIOS boot code is installed on the scratch table's loop device: the boot sector
lands in the held first MiB and the core image in the scratch file's BIOS boot partition, which
is then copied to DEST (:meth:`.tables.HeldTables.carry`).

The config's own layout (DEST in ``storage.disks``) follows the same rule when its storage is
partitions of DEST and filesystems on them (:func:`why_not_held`): the disks stage's plan, computed
in preflight against DEST's table, is carried out on the held scratch table (DEST's first MiB and
backup GPT copied there before they are wiped), its filesystems made, mounted and provisioned
through loop devices at the planned partitions' offsets. Anything else (RAID, LUKS, filesystems on
other disks) runs the disks stage on DEST itself, as the stage is written for, and is not covered
(docs/safety.md).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from pineinstall.install import dest, rootfs
from pineinstall.run import run
from pineinstall.stages import StageError


def install(inst: Any) -> None:
    """``inst``: the :class:`pineinstall.install.Installer` at work. A file DEST is created or
    grown (sparse) to its size first."""
    d = inst.dest
    if not d.is_block:
        with open(d.path, "ab") as f:
            if f.tell() < inst.capacity:
                f.truncate(inst.capacity)
    d = inst.dest = dest.Dest(d.path, d.is_block, True, os.path.getsize(d.path) if not d.is_block else d.size)
    if inst.config_layout:
        install_config_layout(inst, d)
    else:
        install_default_layout(inst, d)


def install_default_layout(inst: Any, d: dest.Dest) -> None:
    from pineinstall.install import checkpoint

    opts, log, layout = inst.opts, inst.log, inst.layout
    with log.op(f"wiping the partition tables of {d.path}"):
        dest.wipe_tables(d.path, rootfs.MIB)  # the old system cannot boot from here on
    with inst._holding(b"", 0) as held:
        rootfs.partition(held.dev, layout, log)
        checkpoint("partitioned")
        uuids = rootfs.make_filesystems(held.partition, layout, log)
        inst.summary["filesystems"] = uuids
        checkpoint("filesystems-made")
        esp, bios = layout.by_name("EFI-SYSTEM"), layout.by_name("BIOS-BOOT")
        with inst._mounted(held.partition(layout.root.number), "ext4") as mnt:
            checkpoint("root-mounted")
            rootfs.unpack(opts.rootfs or "", inst.rootfs_kind or "tar", mnt, log, inst.rundir.path)
            checkpoint("unpacked")
            rootfs.write_fstab(mnt, layout, uuids, log)
            esp_node = held.partition(esp.number) if esp is not None else None
            rootfs.install_grub(held.dev, mnt, layout, uuids, esp_node, tuple(opts.console), log)
            if bios is not None:
                held.carry(bios.number)  # GRUB's core image, written into the held table
            checkpoint("grub-installed")
            inst.provision(mnt)
            checkpoint("provisioned")
        checkpoint("unmounted")


def why_not_held(plan: Any, dest_path: str) -> str | None:
    """Why the config's layout cannot be made in held tables (None: it can): it must partition
    DEST alone, with every filesystem on one of DEST's partitions, none starting in the first MiB."""
    from pineinstall.install import tables

    if plan.raids or plan.luks:
        return "the config makes " + ("RAID arrays" if plan.raids else "LUKS volumes")
    mine = os.path.realpath(dest_path)
    others = [d.device for d in plan.disks if os.path.realpath(d.path) != mine]
    if others or not plan.disks:
        return f"the config partitions other disks too ({', '.join(others)})"
    disk = plan.disks[0]
    early = [r.number for r in disk.after if r.start * disk.sector_size < tables.HEAD]
    if early:
        return f"partition {early[0]} of {disk.device} starts within the first MiB"
    numbers = partition_numbers(disk)
    outside = [f.device for f in plan.filesystems if f.node not in numbers]
    if outside:
        return f"the config has filesystems outside DEST's partitions ({', '.join(outside)})"
    return None


def partition_numbers(disk: Any) -> dict[str, int]:
    """The kernel node of each partition ``disk`` will have (as the plan's filesystems name them)
    -> its number."""
    return {dest.node(disk.path, r.number): r.number for r in disk.after}


def held_storage(plan: Any, node_of: Any) -> Any:
    """``plan`` with its filesystems on ``node_of(number)`` (loop devices at the partitions'
    offsets) instead of DEST's partition nodes, their mkfs commands rewritten for those."""
    import dataclasses

    from pineinstall.stages.disks.filesystems import FsSpec, fs_commands, plan_mounts

    numbers = partition_numbers(plan.disks[0])
    filesystems = []
    for f in plan.filesystems:
        node = node_of(numbers[f.node])
        filesystems.append(
            dataclasses.replace(f, node=node, commands=fs_commands(FsSpec.of(f), node, f.action))
        )
    return dataclasses.replace(plan, filesystems=filesystems, mounts=plan_mounts(filesystems))


def install_config_layout(inst: Any, d: dest.Dest) -> None:
    why = why_not_held(inst.storage_plan, d.path)
    inst.summary["layout"] = "config"
    inst.summary["tables_held"] = why is None
    if why is None:
        install_config_layout_held(inst, d)
        return
    inst.log.warning(f"{why}: the disks stage partitions {d.path} itself; a kill before the end can "
                     "leave a partition table over an unprovisioned root (docs/safety.md)")  # fmt: skip
    install_config_layout_direct(inst, d)


def install_config_layout_held(inst: Any, d: dest.Dest) -> None:
    """The config's layout in held tables: DEST's tables copied to the scratch table, then wiped;
    the plan's partitioning runs on the scratch table, its filesystems are made, mounted (as the
    config says, / first), unpacked into, given GRUB and provisioned through loop devices at the
    partitions' offsets; the tables are committed last (:meth:`.Installer._holding`)."""
    from pineinstall.block import blkid
    from pineinstall.install import checkpoint, rundir, tables
    from pineinstall.stages import disks, mount

    opts, log, plan = inst.opts, inst.log, inst.storage_plan
    disk = plan.disks[0]
    with inst._holding(tables.head_of(d.path), os.path.getsize(d.path) if not d.is_block else d.size) as held:
        with log.op(f"wiping the partition tables of {d.path}"):  # copied to the scratch table first
            dest.wipe_tables(d.path, tables.HEAD, tail=tables.backup_gpt_bytes(held.sector))
        with log.stage("disks"):
            for cmd in disk.commands:
                argv = [held.dev if a == disk.path else a for a in cmd.argv]
                log.info(f"{cmd.why} (in the held table): {' '.join(argv)}")
                run(argv, input=cmd.input)
            checkpoint("partitioned")
            plan = held_storage(plan, held.partition)
            for f in plan.filesystems:
                for cmd in f.commands:
                    log.info(f"{cmd.why}: {' '.join(cmd.argv)}")
                    run(cmd.argv, input=cmd.input)
        inst.engine.applied = disks.Applied()
        checkpoint("filesystems-made")
        mnt = inst.rundir.subdir("root")
        try:
            with log.stage("mount"):
                mount.mount_all(plan.filesystems, mnt, log)
            checkpoint("root-mounted")
            rootfs.unpack(opts.rootfs or "", inst.rootfs_kind or "tar", mnt, log, inst.rundir.path)
            checkpoint("unpacked")
            rootfs.fstab_from_plan(mnt, plan, log)
            root_uuid = blkid.probe(rootfs.config_root(plan).node).get("UUID") or ""
            bios, esp = rootfs.esp_and_bios(plan, disk.path, held.partition)
            rootfs.install_grub_on(held.dev, mnt, root_uuid, bios=bios is not None, esp_node=esp,
                                   consoles=tuple(opts.console), log=log)  # fmt: skip
            if bios is not None:
                held.carry(bios)  # GRUB's core image, written into the held table
            checkpoint("grub-installed")
            inst.provision(mnt)
            checkpoint("provisioned")
        finally:
            for point in rundir.mounts_under(mnt):
                run(["umount", point], check=False)
            with contextlib.suppress(OSError):
                os.rmdir(mnt)
        if rundir.mounts_under(mnt):  # the commit must not put tables over what is not written yet
            raise StageError(f"{mnt}: still mounted after umount")
        checkpoint("unmounted")


def install_config_layout_direct(inst: Any, d: dest.Dest) -> None:
    """The config's layout made by its disks stage on DEST itself, mounted as the config says (/
    first), the root unpacked into them (not kill-safe: docs/safety.md)."""
    from pineinstall.block import blkid

    opts, log, plan, engine = inst.opts, inst.log, inst.storage_plan, inst.engine
    engine.disks()
    mnt = inst.rundir.subdir("root")
    try:
        engine.mount(mnt)
        try:
            rootfs.unpack(opts.rootfs or "", inst.rootfs_kind or "tar", mnt, log, inst.rundir.path)
            rootfs.fstab_from_plan(mnt, plan, log)
            root_uuid = blkid.probe(rootfs.config_root(plan).node).get("UUID") or ""
            bios, esp = rootfs.esp_and_bios(plan, d.path)
            rootfs.install_grub_on(d.path, mnt, root_uuid, bios=bios is not None, esp_node=esp,
                                   consoles=tuple(opts.console), log=log)  # fmt: skip
            inst.provision(mnt)
        finally:
            engine.umount(mnt)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(mnt)
