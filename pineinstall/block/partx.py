"""partx: tell the kernel about a disk's partitions, one by one.

Some kernels (these test hosts') parse no partition tables, so ``BLKRRPART``/``partprobe`` make no
partition nodes; ``partx`` adds them through BLKPG. ``partx -u`` alone does not remove partitions
that left the table and ``-a`` fails on ones the kernel already has, so :func:`sync` compares the
table with sysfs and deletes, updates or adds each partition that differs. This is correct on
kernels that do parse tables too.
"""

from __future__ import annotations

from pineinstall.block import sfdisk, sysfs
from pineinstall.run import run

PARTX = "partx"

FLAGS = {"add": "-a", "update": "-u", "delete": "-d", "number": "--nr"}


def argv(action: str, device: str, number: int | None = None) -> list[str]:
    args = [PARTX, FLAGS[action]]
    if number is not None:
        args += [FLAGS["number"], str(number)]
    return [*args, device]


def sync_argvs(device: str, table: sfdisk.TableInfo, kernel: list[sysfs.KernelPartition]) -> list[list[str]]:
    """The partx calls that make the kernel's view (``kernel``) equal the on-disk ``table``."""
    scale = table.sector_size // 512  # sysfs counts 512-byte units
    want = {p.number: (p.start * scale, p.size * scale) for p in table.partitions}
    have = {k.number: (k.start, k.size) for k in kernel}
    out = []
    for number in sorted(have):
        if number not in want:
            out.append(argv("delete", device, number))
        elif have[number][0] != want[number][0]:
            # BLKPG cannot move a partition: delete it, then add it back below.
            out.append(argv("delete", device, number))
    for number in sorted(want):
        if number not in have or have[number][0] != want[number][0]:
            out.append(argv("add", device, number))
        elif have[number][1] != want[number][1]:
            out.append(argv("update", device, number))
    return out


def sync(device: str) -> list[list[str]]:
    """Bring the kernel's partitions of ``device`` in line with its table; returns what ran."""
    name = sysfs.name_of(device)
    if name is None:
        raise FileNotFoundError(f"{device} is not a block device")
    calls = sync_argvs(device, sfdisk.dump(device), sysfs.partitions(name))
    for call in calls:
        run(call)
    return calls
