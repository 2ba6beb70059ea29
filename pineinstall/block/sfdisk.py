"""sfdisk: reading a partition table as JSON (partition numbers, sectors, GUIDs, names)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pineinstall.run import CommandError, run

SFDISK = "sfdisk"
NO_TABLE = "does not contain a recognized partition table"


@dataclass(frozen=True)
class PartitionInfo:
    number: int
    start: int  # logical sectors
    size: int  # logical sectors
    type_guid: str = ""
    guid: str = ""
    label: str = ""


@dataclass(frozen=True)
class TableInfo:
    """A disk's partition table; ``label`` is "gpt", "dos", ... or "" for no table."""

    label: str = ""
    sector_size: int = 512
    first_lba: int | None = None
    last_lba: int | None = None
    partitions: tuple[PartitionInfo, ...] = field(default=())

    def get(self, number: int) -> PartitionInfo | None:
        for part in self.partitions:
            if part.number == number:
                return part
        return None


def dump_argv(device: str) -> list[str]:
    return [SFDISK, "--json", device]


def _number(node: str, device: str) -> int:
    rest = node[len(device) :] if node.startswith(device) else node
    digits = ""
    for ch in reversed(rest):
        if not ch.isdigit():
            break
        digits = ch + digits
    if not digits:
        raise ValueError(f"cannot tell the partition number of {node!r}")
    return int(digits)


def parse_dump(text: str) -> TableInfo:
    table = json.loads(text)["partitiontable"]
    device = table.get("device", "")
    parts = tuple(
        PartitionInfo(
            number=_number(p["node"], device),
            start=int(p["start"]),
            size=int(p["size"]),
            type_guid=str(p.get("type", "")).upper(),
            guid=str(p.get("uuid", "")).upper(),
            label=str(p.get("name", "")),
        )
        for p in table.get("partitions", [])
    )
    return TableInfo(
        label=table.get("label", ""),
        sector_size=int(table.get("sectorsize", 512)),
        first_lba=table.get("firstlba"),
        last_lba=table.get("lastlba"),
        partitions=tuple(sorted(parts, key=lambda p: p.number)),
    )


def dump(device: str) -> TableInfo:
    """The partition table of ``device``; an empty :class:`TableInfo` when there is none."""
    proc = run(dump_argv(device), check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        if NO_TABLE in stderr:
            return TableInfo()
        raise CommandError(proc.args, proc.returncode, stderr)
    return parse_dump(proc.stdout.decode("utf-8", "replace"))
