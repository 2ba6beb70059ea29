"""Kernel command lines as argument lists, Ignition's kernelArguments semantics and console specs.

Arguments compare as whole strings (``foo`` and ``foo=bar`` are different arguments), as Ignition and
coreos-installer compare them. A value may be double-quoted and then contain spaces
(``dyndbg="file x.c +p"``): the quotes belong to the argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pineinstall.errors import PineError


class KargsError(PineError, ValueError):
    """A kernel argument or console spec that cannot be used."""


def split(cmdline: str) -> list[str]:
    """Arguments of a command line; double quotes keep spaces inside one argument."""
    args: list[str] = []
    cur: list[str] = []
    quoted = False
    started = False
    for ch in cmdline:
        if ch == '"':
            quoted = not quoted
            cur.append(ch)
            started = True
        elif ch.isspace() and not quoted:
            if started:
                args.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if quoted:
        raise KargsError(f"unbalanced double quote in kernel command line {cmdline!r}")
    if started:
        args.append("".join(cur))
    return args


def join(args: Iterable[str]) -> str:
    return " ".join(args)


def check_arg(arg: str) -> str:
    """arg itself, or KargsError when it could not survive a round trip through a command line."""
    if not arg or split(arg) != [arg]:
        raise KargsError(f"invalid kernel argument {arg!r}: empty, or whitespace outside double quotes")
    return arg


@dataclass(frozen=True)
class Edit:
    """What to change, applied in this order: delete, append, should_exist, should_not_exist, console.

    - delete: every occurrence removed (coreos-installer --delete-karg);
    - append: added at the end even when already present (--append-karg);
    - should_exist: added at the end only when missing (Ignition shouldExist);
    - should_not_exist: every occurrence removed (Ignition shouldNotExist);
    - consoles: when given, every ``console=`` argument is replaced by one per console, in order
      (coreos-installer --console).
    """

    should_exist: tuple[str, ...] = ()
    should_not_exist: tuple[str, ...] = ()
    append: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    consoles: tuple[Console, ...] = ()

    def __post_init__(self) -> None:
        for group in (self.should_exist, self.should_not_exist, self.append, self.delete):
            for arg in group:
                check_arg(arg)
        both = set(self.should_exist) & set(self.should_not_exist)
        if both:
            raise KargsError(f"kernel argument(s) both required and forbidden: {', '.join(sorted(both))}")

    @property
    def empty(self) -> bool:
        return not (self.should_exist or self.should_not_exist or self.append or self.delete or self.consoles)

    def apply(self, args: Sequence[str]) -> list[str]:
        out = list(args)
        gone = set(self.delete)
        out = [a for a in out if a not in gone]
        out += self.append
        for arg in self.should_exist:
            if arg not in out:
                out.append(arg)
        forbidden = set(self.should_not_exist)
        out = [a for a in out if a not in forbidden]
        if self.consoles:
            out = [a for a in out if not a.startswith("console=")]
            out += [c.karg for c in self.consoles]
        return out


# ttyS0 / ttyS0,115200 / ttyS0,115200n8 / ttyS1,9600o7 (the kernel's console= syntax for 8250 UARTs)
_SERIAL = re.compile(r"ttyS(\d+)(?:,(\d+)(?:([noe])([5-8])?)?)?")


@dataclass(frozen=True)
class Console:
    """A console as coreos-installer's --console takes it: the kernel's console= value."""

    spec: str
    unit: int | None = None  # serial unit; None for a graphical/other console (tty0, hvc0, ...)
    speed: int = 115200
    parity: str = "no"
    word: int = 8

    @property
    def karg(self) -> str:
        return f"console={self.spec}"

    @property
    def serial(self) -> bool:
        return self.unit is not None


def parse_console(spec: str) -> Console:
    """`ttyS0,115200n8` and friends (serial), or another device name such as `tty0` or `hvc0`."""
    spec = spec.strip()
    if spec.startswith("console="):
        spec = spec[len("console=") :]
    if not spec or split(spec) != [spec] or '"' in spec:
        raise KargsError(f"invalid console {spec!r}")
    m = _SERIAL.fullmatch(spec)
    if m:
        parity = {"n": "no", "o": "odd", "e": "even"}[m.group(3) or "n"]
        return Console(spec, int(m.group(1)), int(m.group(2) or 9600), parity, int(m.group(4) or 8))
    if spec.startswith("ttyS"):
        raise KargsError(f"invalid serial console {spec!r} (expected e.g. ttyS0,115200n8)")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", spec):
        raise KargsError(f"invalid console {spec!r} (expected a device name such as tty0, or ttyS0,115200n8)")
    return Console(spec)


def grub_console_commands(consoles: Sequence[Console]) -> list[str]:
    """GRUB commands for consoles: a serial line per serial unit, then the terminals in order."""
    lines: list[str] = []
    terminals: list[str] = []
    for c in consoles:
        if c.serial:
            lines.append(
                f"serial --unit={c.unit} --speed={c.speed} --word={c.word} --parity={c.parity} --stop=1"
            )
            name = "serial" if c.unit == 0 else f"serial_com{c.unit}"
        else:
            name = "console"
        if name not in terminals:
            terminals.append(name)
    if terminals:
        lines.append("terminal_input " + " ".join(terminals))
        lines.append("terminal_output " + " ".join(terminals))
    return lines
