"""Is a block device in use? Mounted (any mount namespace we can see), active swap, or held by
another device (RAID member, device-mapper, ...). Each check covers the device's partitions too."""

from __future__ import annotations

import os
from pathlib import Path

from pineinstall.block import sysfs


def _devno(name: str) -> str | None:
    return sysfs.attribute(name, "dev")  # "MAJ:MIN"


def unescape_mount_field(field: str) -> str:
    """A field of /proc/self/mountinfo as it is: the kernel escapes space, tab, newline and backslash
    as octal (``\\040``)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounted_devnos(mountinfo: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            out.setdefault(fields[2], []).append(unescape_mount_field(fields[4]))
    return out


def _swap_names() -> set[str]:
    try:
        lines = Path("/proc/swaps").read_text().splitlines()[1:]
    except OSError:
        return set()
    names = set()
    for line in lines:
        dev = line.split()[0] if line.split() else ""
        name = sysfs.name_of(dev) if dev.startswith("/dev/") else None
        if name:
            names.add(name)
    return names


def reasons(path: str, *, with_partitions: bool = True) -> list[str]:
    """Why ``path`` is busy (empty when it is not): one sentence per finding."""
    name = sysfs.name_of(path)
    if name is None:
        return []
    names = [name]
    if with_partitions:
        names += [p.name for p in sysfs.partitions(name)]
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    except OSError:
        mountinfo = ""
    mounted = _mounted_devnos(mountinfo)
    swaps = _swap_names()
    out = []
    for n in names:
        devno = _devno(n)
        if devno and devno in mounted:
            out.append(f"/dev/{n} is mounted on {', '.join(sorted(mounted[devno]))}")
        if n in swaps:
            out.append(f"/dev/{n} is an active swap area")
        held = sysfs.holders(n)
        if held:
            out.append(f"/dev/{n} is held by {', '.join('/dev/' + h for h in held)}")
    return out


def running_root_device() -> str | None:
    """The device of ``/`` when it is a block device (for refusing to touch the running system)."""
    st = os.stat("/")
    link = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    return f"/dev/{link.resolve().name}" if link.exists() else None
