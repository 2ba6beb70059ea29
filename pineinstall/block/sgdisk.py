"""sgdisk: GPT edits as argv lists, and parsing of ``--pretend`` output.

One :class:`Edit` is one sgdisk invocation: wipe or clear, then deletions, then creations (each with
its name, type and GUID), then ``--info`` queries or ``--print``, in the order sgdisk applies them.
Sizes and starts are in logical sectors; a start of 0 means "the first free aligned sector" and a
size of 0 "as large as possible", as sgdisk itself takes them; partition number 0 means "the next
free number" and later options in the same call may use 0 to refer to that partition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SGDISK = "sgdisk"

# The flag table: each operation and how it is spelled on sgdisk's command line.
FLAGS = {
    "zap": "--zap-all",
    "clear": "--clear",
    "pretend": "--pretend",
    "move_header": "--move-second-header",
    "delete": "--delete={number}",
    "new": "--new={number}:{start}:+{size}",
    "name": "--change-name={number}:{value}",
    "type": "--typecode={number}:{value}",
    "guid": "--partition-guid={number}:{value}",
    "info": "--info={number}",
    "print": "--print",
}


@dataclass(frozen=True)
class NewPartition:
    number: int
    start: int | None = None  # sectors; None or 0: first free aligned sector
    size: int | None = None  # sectors; None or 0: the largest free block
    label: str | None = None
    type_guid: str | None = None
    guid: str | None = None


@dataclass
class Edit:
    device: str
    zap: bool = False
    clear: bool = False
    move_header: bool = False  # the disk grew: put the backup GPT at its real end first
    deletes: list[int] = field(default_factory=list)
    creates: list[NewPartition] = field(default_factory=list)
    infos: list[int] = field(default_factory=list)
    print_table: bool = False

    def empty(self) -> bool:
        return not (self.zap or self.clear or self.deletes or self.creates)

    def argv(self, *, pretend: bool = False) -> list[str]:
        args = [SGDISK]
        if pretend:
            args.append(FLAGS["pretend"])
        if self.zap:
            args.append(FLAGS["zap"])
        if self.clear:
            args.append(FLAGS["clear"])
        if self.move_header:
            args.append(FLAGS["move_header"])
        args += [FLAGS["delete"].format(number=n) for n in self.deletes]
        for p in self.creates:
            args.append(FLAGS["new"].format(number=p.number, start=p.start or 0, size=p.size or 0))
            if p.label is not None:
                args.append(FLAGS["name"].format(number=p.number, value=p.label))
            if p.type_guid:
                args.append(FLAGS["type"].format(number=p.number, value=p.type_guid))
            if p.guid:
                args.append(FLAGS["guid"].format(number=p.number, value=p.guid))
        args += [FLAGS["info"].format(number=n) for n in self.infos]
        if self.print_table:
            args.append(FLAGS["print"])
        return [*args, self.device]


def zap_argv(device: str) -> list[str]:
    return Edit(device, zap=True).argv()


_FIRST = re.compile(r"^First sector: (\d+) \(.*\)$")
_LAST = re.compile(r"^Last sector: (\d+) \(.*\)$")


class SgdiskOutputError(ValueError):
    pass


def parse_info(text: str, numbers: list[int]) -> dict[int, tuple[int, int]]:
    """``{number: (start, size)}`` from the ``--info`` blocks of ``numbers``, in that order."""
    starts = [int(m.group(1)) for m in map(_FIRST.match, text.splitlines()) if m]
    lasts = [int(m.group(1)) for m in map(_LAST.match, text.splitlines()) if m]
    if len(starts) != len(numbers) or len(lasts) != len(numbers):
        raise SgdiskOutputError(f"expected {len(numbers)} partition info blocks from sgdisk")
    return {n: (s, e - s + 1) for n, s, e in zip(numbers, starts, lasts, strict=True)}


_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+([0-9A-Fa-f]{4})(?: +(.*))?$")


@dataclass(frozen=True)
class PrintRow:
    number: int
    start: int
    end: int
    code: str
    name: str


def parse_print(text: str) -> list[PrintRow]:
    """Rows of the table ``--print`` shows (number, first and last sector, type code, name)."""
    rows = []
    in_table = False
    for line in text.splitlines():
        if line.startswith("Number  Start"):
            in_table = True
            continue
        if in_table:
            m = _ROW.match(line)
            if m:
                name = (m.group(5) or "").rstrip()
                rows.append(PrintRow(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4), name))
    return rows
