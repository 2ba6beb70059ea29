"""``boot_device`` (fcos 1.3 on, and pine): the boot disk's LUKS encryption and RAID1 mirroring.

As Butane's ``config/fcos/v1_x``: the sugar renders the partitions, RAID arrays, LUKS volume and
filesystems of the OS layout (per architecture ``layout``), merged under the user's config.
"""

from __future__ import annotations

import re

from ..errors import (
    ERR_CEX_ARCH,
    ERR_CEX_CLEVIS,
    ERR_LAYOUT,
    ERR_LAYOUT_LEGACY,
    ERR_LUKS_BOOT_DEVICE_NAME,
    ERR_MIRROR_NOT_SUPPORTED,
    ERR_MIRROR_REQUIRES_LAYOUT,
    ERR_NO_LUKS_BOOT_DEVICE,
    ERR_TOO_FEW_MIRROR,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

    from ..base.translate import Translator

_DASD = r"(/dev/dasd[a-z]$)"
_SD = r"(/dev/sd[a-z]$)"

RESERVED_GUID = "8DA63339-0007-60C0-C436-083AC8230908"
BIOS_GUID = "21686148-6449-6E6F-744E-656564454649"
PREP_GUID = "9E1A2D38-C612-4316-AA26-8B49521E5A8B"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"


def validate_boot_device(tr: Translator, bd: dict) -> None:
    layout = bd.get("layout")
    luks = bd.get("luks") or {}
    mirror = bd.get("mirror") or {}
    base = ("boot_device",)
    if mirror.get("devices") and layout is None:
        # A warning until fcos 1.6, an error from 1.7 on (Butane's BootDevice.Validate).
        report = tr.report.error if tr.spec.fcos >= 7 else tr.report.warning
        report(ERR_MIRROR_REQUIRES_LAYOUT, (*base, "mirror"))
    if layout is not None:
        s390x = tr.spec.fcos >= 6
        if layout in ("aarch64", "ppc64le", "x86_64"):
            pass
        elif s390x and layout in ("s390x-eckd", "s390x-zfcp"):
            dev = luks.get("device")
            if not dev:
                tr.report.error(ERR_NO_LUKS_BOOT_DEVICE, (*base, "layout"))
            elif not re.search(_DASD if layout == "s390x-eckd" else _SD, dev):
                tr.report.error(ERR_LUKS_BOOT_DEVICE_NAME, (*base, "layout"))
        elif s390x and layout == "s390x-virt":
            pass
        else:
            tr.report.error(ERR_LAYOUT if s390x else ERR_LAYOUT_LEGACY, (*base, "layout"))
        if layout.startswith("s390x-") and s390x and mirror.get("devices"):
            tr.report.error(ERR_MIRROR_NOT_SUPPORTED, (*base, "layout"))
    cex = (luks.get("cex") or {}).get("enabled") is True
    if cex and (layout is None or not layout.startswith("s390x")):
        tr.report.error(ERR_CEX_ARCH, (*base, "layout"))
    # BootDevice.Validate checks the mirror, and so does the walk into the mirror: twice.
    if len(mirror.get("devices") or []) == 1:
        tr.report.error(ERR_TOO_FEW_MIRROR, (*base, "mirror", "devices"))
    if cex and (luks.get("tpm2") is True or luks.get("tang")):
        tr.report.error(ERR_CEX_CLEVIS, (*base, "luks"))
    if len(mirror.get("devices") or []) == 1:
        tr.report.error(ERR_TOO_FEW_MIRROR, (*base, "mirror", "devices"))


def add_boot_device(tr: Translator, out: dict, bd: dict) -> dict:
    luks = bd.get("luks") or {}
    mirror = (bd.get("mirror") or {}).get("devices") or []
    want_luks = luks.get("tpm2") is True or bool(luks.get("tang"))
    if (luks.get("cex") or {}).get("enabled") is True:
        want_luks = True
    if not want_luks and not mirror:
        return out
    layout = bd.get("layout") or "x86_64"
    bios = layout == "x86_64"
    efi = layout in ("x86_64", "aarch64")
    prep = layout == "ppc64le"
    reg = tr.origins.reg
    disks: list = []
    filesystems: list = []
    raids: list = []
    luks_list: list = []
    if mirror:
        for i, device in enumerate(mirror):
            n = len(disks) + 1
            dpath = ("boot_device", "mirror", "devices", i)
            parts = []
            if bios:
                parts.append({"label": f"bios-{n}", "sizeMiB": 1, "typeGuid": BIOS_GUID})
            elif prep:
                parts.append({"label": f"prep-{n}", "sizeMiB": 4, "typeGuid": PREP_GUID})
            else:
                parts.append({"label": f"reserved-{n}", "sizeMiB": 1, "typeGuid": RESERVED_GUID})
            if efi:
                parts.append({"label": f"esp-{n}", "sizeMiB": 127, "typeGuid": ESP_GUID})
            else:
                parts.append({"label": f"reserved-{n}", "sizeMiB": 1, "typeGuid": RESERVED_GUID})
            parts.append({"label": f"boot-{n}", "sizeMiB": 384})
            parts.append({"label": f"root-{n}"})
            for p in parts:
                reg(p, dpath)
            disks.append(reg({"device": device, "partitions": reg(parts, dpath), "wipeTable": True}, dpath))
            if efi:
                filesystems.append(
                    reg(
                        {
                            "device": f"/dev/disk/by-partlabel/esp-{n}",
                            "format": "vfat",
                            "label": f"esp-{n}",
                            "wipeFilesystem": True,
                        },
                        dpath,
                    )
                )
        count = len(disks)
        mpath = ("boot_device", "mirror")
        raids.append(
            reg(
                {
                    "devices": [f"/dev/disk/by-partlabel/boot-{k + 1}" for k in range(count)],
                    "level": "raid1",
                    "name": "md-boot",
                    "options": ["--metadata=1.0"],
                },
                mpath,
            )
        )
        raids.append(
            reg(
                {
                    "devices": [f"/dev/disk/by-partlabel/root-{k + 1}" for k in range(count)],
                    "level": "raid1",
                    "name": "md-root",
                },
                mpath,
            )
        )
        filesystems.append(
            reg(
                {"device": "/dev/md/md-boot", "format": "ext4", "label": "boot", "wipeFilesystem": True},
                mpath,
            )
        )
    if want_luks:
        lpath = ("boot_device", "luks")
        if layout == "s390x-eckd":
            device = (luks.get("device") or "") + "2"
        elif layout == "s390x-zfcp":
            device = (luks.get("device") or "") + "4"
        elif mirror:
            device = "/dev/md/md-root"
        else:
            device = "/dev/disk/by-partlabel/root"
        clevis: dict[str, Any] = reg({}, lpath)
        if luks.get("tang"):
            clevis["tang"] = tr.convert(luks["tang"], ("list", "Tang"), (*lpath, "tang"))
        if "threshold" in luks:
            clevis["threshold"] = luks["threshold"]
        if "tpm2" in luks:
            clevis["tpm2"] = luks["tpm2"]
        entry: dict[str, Any] = {}
        if (luks.get("cex") or {}).get("enabled") is True:
            entry["cex"] = reg({"enabled": True}, (*lpath, "cex"))
        entry["clevis"] = clevis
        entry["device"] = device
        if "discard" in luks:
            entry["discard"] = luks["discard"]
        entry.update({"label": "luks-root", "name": "root", "wipeVolume": True})
        luks_list.append(reg(entry, lpath))
    root_dev = "/dev/mapper/root" if want_luks else "/dev/md/md-root"
    filesystems.append(
        reg(
            {"device": root_dev, "format": "xfs", "label": "root", "wipeFilesystem": True},
            ("boot_device",),
        )
    )
    storage: dict[str, Any] = {}
    if disks:
        storage["disks"] = reg(disks, ("boot_device", "mirror", "devices"))
    storage["filesystems"] = reg(filesystems, ("boot_device",))
    if luks_list:
        storage["luks"] = reg(luks_list, ("boot_device", "luks"))
    if raids:
        storage["raid"] = reg(raids, ("boot_device", "mirror"))
    rendered = reg({"storage": reg(storage, ("boot_device",))}, ())
    return tr.origins.merge_under(rendered, out)
