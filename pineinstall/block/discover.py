"""Finding devices by the names configs use.

Configs name devices as ``/dev/vda``, ``/dev/disk/by-partlabel/root``, ``/dev/disk/by-id/...``,
``/dev/md/NAME`` or ``/dev/mapper/NAME``. Where udev runs, the ``/dev/disk/by-*`` links exist and
pyudev knows every device's links; where it does not (these test hosts, early boot), the same names
are answered from blkid (labels, UUIDs, partition labels and UUIDs) and sysfs (by-id names of
virtio disks, device-mapper and md devices).
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from pineinstall.block import blkid, sysfs

UDEV_CONTROL = Path("/run/udev/control")
BY = "/dev/disk/"


def udev_running() -> bool:
    """udevd listens on its control socket (a socket file left behind by a stopped udevd refuses
    the connection, so it does not count)."""
    if not UDEV_CONTROL.exists():
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.settimeout(0.5)
        sock.connect(str(UDEV_CONTROL))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _by_id_names(name: str) -> list[str]:
    """The by-id names udev's rules would give ``name``, from sysfs alone."""
    out: list[str] = []
    part = sysfs.partition_number(name)
    base = sysfs.parent_of(name) if part is not None else name
    if base is None:
        return out
    suffix = f"-part{part}" if part is not None else ""
    serial = sysfs.attribute(base, "serial")
    if serial and base.startswith("vd"):
        out.append(f"virtio-{serial}{suffix}")
    wwid = sysfs.attribute(base, "wwid") or sysfs.attribute(base, "device/wwid")
    if wwid:
        out.append(wwid.replace(" ", "_") + suffix)
    dm_name = sysfs.attribute(base, "dm/name")
    if dm_name and part is None:
        out.append(f"dm-name-{dm_name}")
        dm_uuid = sysfs.attribute(base, "dm/uuid")
        if dm_uuid:
            out.append(f"dm-uuid-{dm_uuid}")
    md_uuid = sysfs.attribute(base, "md/uuid")
    if md_uuid:
        out.append(f"md-uuid-{md_uuid}{suffix}")
    return out


def _resolve_with_pyudev(path: str) -> str | None:
    import pyudev  # only here: not every caller needs it, and it is slow to import

    context = pyudev.Context()
    for device in context.list_devices(subsystem="block"):
        if path in device.device_links and device.device_node:
            return str(device.device_node)
    return None


def _resolve_without_udev(path: str) -> str | None:
    if not path.startswith(BY):
        return None
    kind, _, value = path[len(BY) :].partition("/")
    if "/" in value or not value:
        return None
    value = unescape_link_name(value)
    tag = blkid.TAG_OF_BY_KIND.get(kind)
    if tag is not None:
        found = blkid.find(tag, value)
        if not found and tag in ("UUID", "PARTUUID"):
            found = blkid.find(tag, value.lower()) or blkid.find(tag, value.upper())
        # Partitions are preferred over whole disks holding the same tag (udev does the same
        # for by-partlabel; for by-label, a whole disk with an fs and partitions cannot both be).
        return found[0] if len(found) == 1 else (found[-1] if found else None)
    if kind == "by-id":
        for name in sysfs.all_names():
            if value in _by_id_names(name):
                return f"/dev/{name}"
    return None


def unescape_link_name(value: str) -> str:
    """A /dev/disk/by-* link name as the tag it stands for: udev escapes unsafe characters as \\xHH."""
    out, i = "", 0
    while i < len(value):
        if value.startswith("\\x", i) and len(value) >= i + 4:
            try:
                out += chr(int(value[i + 2 : i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out += value[i]
        i += 1
    return out


def resolve(path: str) -> str | None:
    """The kernel device node (``/dev/loop0p1``) a config name refers to now, or None."""
    if is_block(path):
        name = sysfs.name_of(path)
        return f"/dev/{name}" if name else os.path.realpath(path)
    if path.startswith("/dev/mapper/"):
        target = _dm_by_name(path[len("/dev/mapper/") :])
        if target:
            return target
    if udev_running() and path.startswith(BY):
        found = _resolve_with_pyudev(path)
        if found:
            return found
        # udev has not made the link (yet): the same answer from blkid and sysfs.
    return _resolve_without_udev(path)


def _dm_by_name(name: str) -> str | None:
    for dev in sysfs.all_names():
        if dev.startswith("dm-") and sysfs.attribute(dev, "dm/name") == name:
            return f"/dev/{dev}"
    return None


def whole_disk(path: str) -> str | None:
    """The whole-disk node of a partition node (None for a whole disk or a non-device)."""
    name = sysfs.name_of(path)
    parent = sysfs.parent_of(name) if name else None
    return f"/dev/{parent}" if parent else None
