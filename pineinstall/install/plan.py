"""``--dry-run``: the whole plan, from what preflight learned; nothing is touched."""

from __future__ import annotations

from typing import Any

from pineinstall.image.progress import sized
from pineinstall.stages import Log


def _partitions_of(path: str) -> list[dict[str, Any]] | None:
    """The partition table of a local raw image (sfdisk reads files too); None when unreadable."""
    from pineinstall.block import sfdisk
    from pineinstall.run import CommandError

    try:
        table = sfdisk.dump(path)
    except (CommandError, OSError):
        return None
    return [
        {"number": p.number, "start": p.start * table.sector_size, "size": p.size * table.sector_size,
         "label": p.label}
        for p in table.partitions
    ]  # fmt: skip


def _files_summary(config: Any) -> dict[str, Any]:
    st, pw = config.storage, config.passwd
    return {
        "files": [f.path for f in st.files],
        "directories": [d.path for d in st.directories],
        "links": [lk.path for lk in st.links],
        "users": [u.name for u in pw.users],
        "groups": [g.name for g in pw.groups],
        "units": [{"name": u.name, "enabled": u.enabled} for u in config.systemd.units],
    }


def describe(inst: Any) -> dict[str, Any]:
    opts, d, config = inst.opts, inst.dest, inst.config
    out: dict[str, Any] = {
        "dest": {"path": d.path, "kind": d.kind, "size": d.size, "exists": d.exists},
    }
    if opts.rootfs:
        layout = inst.layout
        out["rootfs"] = {"file": opts.rootfs, "format": inst.rootfs_kind}
        if layout is None:
            from pineinstall.install.rootfsflow import why_not_held

            out["layout"] = "the config's storage (DEST in storage.disks)"
            why = why_not_held(inst.storage_plan, d.path)
            out["kill_safety"] = (
                "tables held until provisioned" if why is None else f"not kill-safe: {why} (docs/safety.md)"
            )
        else:
            out["partitions"] = [
                {"number": p.number, "label": p.name, "type": p.type_code,
                 "size": p.mib << 20 if p.mib else "rest of the disk", "filesystem": p.fstype}
                for p in layout.parts
            ]  # fmt: skip
        out["size"] = inst.capacity
        out["bootloader_install"] = [
            "GRUB i386-pc (BIOS boot partition)",
            "GRUB x86_64-efi at EFI/BOOT/BOOTX64.EFI",
        ]
    else:
        p = inst.image_plan
        out["image"] = {
            "source": str(p.source),
            "format": str(p.fmt),
            "size": p.image_size,
            "min_size": p.min_size,
            "verified_before_write": p.verified_before_write,
            "checks": {"sha256": bool(p.sha256), "signature": p.signature is not None},
            "summary": p.describe(),
        }
        if p.raw_path is not None:
            out["partitions"] = _partitions_of(p.raw_path)
        target = opts.size or (d.size if d.is_block else None) or p.image_size
        out["growth"] = (
            "none (--no-grow)"
            if opts.no_grow
            else f"backup GPT moved to the end; the root partition and its filesystem grown to fill {target} bytes"
        )
    if inst.storage_plan is not None:
        from pineinstall.stages.plan import render_text

        out["storage"] = inst.storage_plan.to_dict()
        out["storage_text"] = render_text(inst.storage_plan)
    out["files_stage"] = _files_summary(config)
    ka = config.kernel_arguments
    out["bootloader"] = {
        "should_exist": list(ka.should_exist),
        "should_not_exist": list(ka.should_not_exist),
        "append": opts.append_karg,
        "delete": opts.delete_karg,
        "console": opts.console,
    }
    out["stash_config"] = "/boot/ignition/config.ign" if opts.stash_config else None
    if opts.copy_network:
        from pineinstall.install.stash import network_files

        out["copy_network"] = [inside for _src, inside in network_files(opts.network_source)]
    return out


def render(plan: dict[str, Any]) -> str:
    lines = []
    d = plan["dest"]
    size = sized(d["size"]) if d["size"] is not None else "to be created"
    lines.append(f"DEST: {d['path']} ({d['kind']}, {size})")
    if "image" in plan:
        lines.append(f"image: {plan['image']['summary']}")
        lines.append(f"growth: {plan['growth']}")
    if "rootfs" in plan:
        r = plan["rootfs"]
        lines.append(f"rootfs: {r['file']} ({r['format']}) onto {sized(plan['size'])}")
        lines.append("bootloader install: " + "; ".join(plan["bootloader_install"]))
        if "kill_safety" in plan:
            lines.append(f"layout: {plan['layout']}; {plan['kill_safety']}")
    parts = plan.get("partitions")
    if parts:
        lines.append("partitions:")
        for p in parts:
            extra = f" {p['filesystem']}" if p.get("filesystem") else ""
            lines.append(
                f"  {p['number']}: {p['label'] or '-'} {sized(p['size']) if isinstance(p['size'], int) else p['size']}{extra}"
            )
    if "storage" in plan:
        lines.append("disks stage (other disks):")
        lines.extend("  " + ln for ln in plan["storage_text"].splitlines())
    fs = plan["files_stage"]
    lines.append(
        f"files stage: {len(fs['files'])} files, {len(fs['directories'])} directories, {len(fs['links'])} links, "
        f"{len(fs['users'])} users, {len(fs['groups'])} groups, {len(fs['units'])} units"
    )
    for key in ("users", "groups", "files", "directories", "links"):
        for item in fs[key]:
            lines.append(f"  {key[:-1] if key != 'directories' else 'directory'}: {item}")
    for u in fs["units"]:
        lines.append(f"  unit: {u['name']}" + (" (enabled)" if u["enabled"] else ""))
    b = plan["bootloader"]
    changes = [f"+{a}" for a in b["should_exist"] + b["append"]] + [
        f"-{a}" for a in b["should_not_exist"] + b["delete"]
    ]
    changes += [f"console={c}" for c in b["console"]]
    lines.append("bootloader: " + (" ".join(changes) if changes else "no kernel argument changes"))
    if plan.get("stash_config"):
        lines.append(
            f"config stashed at {plan['stash_config']}; the first-boot service "
            "(systemd pine-firstboot.service or OpenRC pine-firstboot, by the target's init) enabled to apply it"
        )
    if "copy_network" in plan:
        lines.append("network copied: " + (", ".join(plan["copy_network"]) or "nothing found"))
    lines.append("dry run: nothing was written")
    return "\n".join(lines) + "\n"


__all__ = ["Log", "describe", "render"]
