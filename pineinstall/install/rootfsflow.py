"""Rootfs mode's install flow (``pineinstall DEST CONFIG --rootfs ROOT``), the tools being in
:mod:`.rootfs`.

Pine's default layout follows the image modes' rule (docs/safety.md): the old tables are wiped,
the layout is made in a held scratch table (:class:`.tables.HeldTables`), the filesystems, the
root, GRUB and the provisioning reach DEST through loop devices at the partitions' offsets, and
the first MiB (boot code, primary GPT) and the backup GPT are written last, once all of it is
synced. GRUB's BIOS boot code is installed on the scratch table's loop device: the boot sector
lands in the held first MiB and the core image in the scratch file's BIOS boot partition, which
is then copied to DEST (:meth:`.tables.HeldTables.carry`).

The config's own layout (DEST in ``storage.disks``) is made by the engine's disks stage on DEST
itself and is not covered (docs/safety.md).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from pineinstall.install import dest, rootfs


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


def install_config_layout(inst: Any, d: dest.Dest) -> None:
    """The config's layout: its disks stage makes DEST's partitions and every filesystem, they are
    mounted as the config says (/ first), the root is unpacked into them."""
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
            rootfs.install_grub_on(
                d.path, mnt, root_uuid, bios=bios, esp_node=esp, consoles=tuple(opts.console), log=log
            )
            inst.summary["layout"] = "config"
            inst.provision(mnt)
        finally:
            engine.umount(mnt)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(mnt)
