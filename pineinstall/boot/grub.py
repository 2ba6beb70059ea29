"""GRUB: kernel arguments in ``grub.cfg`` ``linux`` lines or in ``grubenv``'s ``kernelopts``.

A ``linux`` line that refers to ``$kernelopts`` takes its arguments from grubenv (Fedora/RHEL 8 style),
so the variable is edited there; literal arguments are edited in place, on every ``linux`` line (the
default entry and its siblings, e.g. a recovery entry, boot the same system). The console block is the
one between ``# CONSOLE-SETTINGS-START`` and ``# CONSOLE-SETTINGS-END`` (coreos-installer's markers);
without markers, the top-level ``serial``/``terminal_input``/``terminal_output`` lines are replaced by a
marked block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import grubenv, kargs
from .base import BootError, Bootloader, Change, write_atomic
from .kargs import Edit

CONFIG_PATHS = ("boot/grub/grub.cfg", "boot/grub2/grub.cfg", "grub/grub.cfg", "grub2/grub.cfg")
CONSOLE_START = "# CONSOLE-SETTINGS-START"
CONSOLE_END = "# CONSOLE-SETTINGS-END"

_LINUX = re.compile(
    r"^(?P<lead>\s*)(?P<cmd>linux|linux16|linuxefi)(?P<sep>\s+)(?P<kernel>\S+)(?P<args>.*?)(?P<trail>\s*)$"
)
_KERNELOPTS = re.compile(r"^\$\{?kernelopts\}?$")
_CONSOLE_CMD = re.compile(r"^\s*(serial|terminal_input|terminal_output|terminal)\b")


def find_config(root: Path) -> Path | None:
    for rel in CONFIG_PATHS:
        path = root / rel
        if path.is_file():
            return path
    return None


def console_block(consoles: tuple[kargs.Console, ...]) -> list[str]:
    return [CONSOLE_START, *kargs.grub_console_commands(consoles), CONSOLE_END]


def replace_console(lines: list[str], consoles: tuple[kargs.Console, ...]) -> list[str]:
    """lines with their console settings replaced by a marked block for consoles."""
    block = console_block(consoles)
    stripped = [ln.strip() for ln in lines]
    if CONSOLE_START in stripped and CONSOLE_END in stripped[stripped.index(CONSOLE_START) :]:
        start = stripped.index(CONSOLE_START)
        end = stripped.index(CONSOLE_END, start)
        return lines[:start] + block + lines[end + 1 :]
    out: list[str] = []
    depth = 0
    inserted = False
    for line in lines:
        if depth == 0 and _CONSOLE_CMD.match(line):
            if not inserted:
                out += block
                inserted = True
            continue
        out.append(line)
        depth += line.count("{") - line.count("}")
    if not inserted:
        # after the leading comment lines, before any command
        at = 0
        while at < len(out) and (not out[at].strip() or out[at].lstrip().startswith("#")):
            at += 1
        out[at:at] = block
    return out


@dataclass(frozen=True)
class MenuEntry:
    """One ``menuentry`` of a grub.cfg that :func:`render_config` writes."""

    title: str
    kernel: str  # path as GRUB sees it, e.g. /boot/vmlinuz-6.1.0-50-amd64
    args: str = ""
    initrd: str | None = None
    id: str | None = None
    comment: str = ""  # lines written above the entry as # comments


def render_config(
    entries: Sequence[MenuEntry],
    consoles: Sequence[str],
    *,
    header: str,
    timeout: int = 1,
    timeout_style: str | None = None,
    root_uuid: str | None = None,
    modules: Sequence[str] = (),
) -> str:
    """A grub.cfg (for media and images that have no grub-mkconfig): a header comment, the default
    (first) entry after timeout seconds, the console block for consoles (kernel console= values,
    e.g. ``ttyS0,115200n8``), ``insmod`` of modules, the root found by filesystem UUID."""
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"set timeout={timeout}", "set default=0"]
    if timeout_style:
        out.append(f"set timeout_style={timeout_style}")
    out += [f"insmod {m}" for m in modules]
    out += console_block(tuple(kargs.parse_console(c) for c in consoles))
    if root_uuid:
        out.append(f"search --no-floppy --fs-uuid --set=root {root_uuid}")
    for e in entries:
        out.append("")
        out += [f"# {line}".rstrip() for line in e.comment.splitlines()]
        ident = f" --id {e.id}" if e.id else ""
        out.append(f"menuentry '{e.title}'{ident} {{")
        out.append(f"\tlinux {e.kernel} {e.args}".rstrip())
        if e.initrd:
            out.append(f"\tinitrd {e.initrd}")
        out.append("}")
    return "\n".join(out) + "\n"


class Grub(Bootloader):
    name = "grub"

    def __init__(self, root: Path, config: Path) -> None:
        super().__init__(root, config)
        self.env_path = config.with_name("grubenv")

    def _lines(self) -> list[str]:
        try:
            return self.config.read_text().split("\n")
        except UnicodeDecodeError as e:
            raise BootError(f"{self.config}: not UTF-8 text ({e})") from None

    def _env(self) -> dict[str, str]:
        try:
            return grubenv.parse(self.env_path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise BootError(f"{self.env_path}: {e}") from None

    def _linux_lines(self, lines: list[str]) -> list[tuple[int, re.Match[str]]]:
        found = [(i, m) for i, line in enumerate(lines) if (m := _LINUX.match(line))]
        if not found:
            raise BootError(f"{self.config}: no linux line (no kernel entry to edit)")
        return found

    def _split(self, text: str, where: str) -> list[str]:
        try:
            return kargs.split(text)
        except kargs.KargsError as e:
            raise BootError(f"{where}: {e}") from None

    def kargs(self) -> list[str]:
        lines = self._lines()
        i, m = self._linux_lines(lines)[0]
        out: list[str] = []
        for arg in self._split(m.group("args"), f"{self.config}:{i + 1}"):
            if _KERNELOPTS.match(arg):
                out += self._split(self._env().get("kernelopts", ""), f"{self.env_path}: kernelopts")
            else:
                out.append(arg)
        return out

    def apply(self, edit: Edit) -> Change:
        before = self.kargs()
        lines = self._lines()
        new_lines = list(lines)
        uses_env = False
        for i, m in self._linux_lines(lines):
            args = self._split(m.group("args"), f"{self.config}:{i + 1}")
            if any(_KERNELOPTS.match(a) for a in args):
                uses_env = True
                continue  # edited in grubenv below
            new = edit.apply(args)
            tail = (" " + kargs.join(new)) if new else ""
            new_lines[i] = f"{m['lead']}{m['cmd']}{m['sep']}{m['kernel']}{tail}{m['trail']}"
        if edit.consoles:
            new_lines = replace_console(new_lines, edit.consoles)
        written = []
        if uses_env:
            env = self._env()
            old = env.get("kernelopts", "")
            new_opts = kargs.join(edit.apply(self._split(old, f"{self.env_path}: kernelopts")))
            if new_opts != old:
                env["kernelopts"] = new_opts
                try:
                    notes = grubenv.comments(self.env_path.read_bytes()) if self.env_path.exists() else []
                    write_atomic(self.env_path, grubenv.render(env, notes=notes))
                except ValueError as e:
                    raise BootError(f"{self.env_path}: {e}") from None
                written.append(self.env_path)
        if new_lines != lines:
            write_atomic(self.config, "\n".join(new_lines))
            written.append(self.config)
        return Change(self.name, before, self.kargs(), written)


def detect(root: Path) -> Grub | None:
    config = find_config(root)
    return Grub(root, config) if config else None
