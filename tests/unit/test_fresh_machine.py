"""Fresh-machine proof: every program the code runs comes from a package that ``scripts/setup`` installs.

Three links, each checked:

1. the code -> ``scripts/tools.toml``: a static scan of the code (Python: argv lists in argv position,
   tool lists, ``shutil.which``, the mkfs table; the bash scripts in ``scripts/``: words in command
   position) finds the program names; each must be listed there, so a new program in the code fails
   here until someone says where it comes from;
2. ``scripts/tools.toml`` -> a Debian package: ``dpkg -S`` on the program's path (``/usr/bin``,
   ``/usr/sbin``, ``/bin``, ``/sbin``: with the /usr merge, dpkg knows each file under one of them);
3. the package -> ``scripts/setup``'s ``APT_PACKAGES`` (or an Essential package, on every Debian).
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from pineinstall.block import mkfs

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "scripts" / "tools.toml"
SETUP = ROOT / "scripts" / "setup"
SCANNED = ("pineinstall", "butane_like", "iso")
BIN_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
# Tables that name programs through an attribute (``spec.tool``), which a static scan cannot follow.
TOOL_TABLES = {"pineinstall/block/mkfs.py": {f.tool for f in mkfs.FORMATS.values()}}

SHELL_SCRIPTS = sorted(
    p
    for p in (ROOT / "scripts").iterdir()
    if p.is_file() and p.read_bytes().startswith(b"#!/usr/bin/env bash")
)
RUNNERS = {"run", "_run", "Popen", "check_call", "check_output", "call"}  # callables taking argv first
PROGRAM = re.compile(r"^[a-z][a-z0-9._+-]*$")
_WRAPPERS = (ast.IfExp, ast.BinOp, ast.List, ast.Tuple, ast.Starred)  # [a] + [b], x if c else y, [[...]]


# --- the scan --------------------------------------------------------------------------------------


class Scan:
    """Program names in one module's source."""

    def __init__(self, source: str) -> None:
        self.tree = ast.parse(source)
        self.parent = {c: n for n in ast.walk(self.tree) for c in ast.iter_child_nodes(n)}
        self.consts = {  # module-level NAME = "text" (SGDISK = "sgdisk")
            t.id: n.value.value
            for n in self.tree.body
            if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str)
            for t in n.targets
            if isinstance(t, ast.Name)
        }

    def text(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        return self.consts.get(node.id) if isinstance(node, ast.Name) else None

    def function(self, node: ast.AST) -> str:
        while node in self.parent:
            node = self.parent[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node.name
        return ""

    def outer(self, node: ast.AST) -> tuple[ast.AST, ast.AST | None]:
        """The node that holds ``node`` once list/ternary/concatenation wrappers are left."""
        child, up = node, self.parent.get(node)
        while isinstance(up, (*_WRAPPERS, ast.Dict)):
            child, up = up, self.parent.get(up)
        return child, up

    @staticmethod
    def assigned(stmt: ast.AST | None) -> list[str]:
        if isinstance(stmt, ast.Assign):
            return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        if isinstance(stmt, ast.AugAssign | ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            return [stmt.target.id]
        return []

    def in_argv_position(self, node: ast.AST) -> bool:
        child, up = self.outer(node)
        if isinstance(up, ast.Call):
            f = up.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            return name in RUNNERS and bool(up.args) and up.args[0] is child
        in_builder = "argv" in self.function(node)  # def argv(...), def dump_argv(...)
        if isinstance(up, ast.Return):
            return in_builder
        names = self.assigned(up)
        return bool(names) and (in_builder or any("argv" in n or "cmd" in n for n in names))

    def in_tool_list(self, node: ast.AST) -> bool:
        _, up = self.outer(node)
        if any(n.lower().endswith("tools") for n in self.assigned(up)):  # REQUIRED_TOOLS = (...)
            return True
        return self.function(node).endswith("tools")  # def tools(kind): return [...]

    def programs(self) -> set[str]:
        found: set[str | None] = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.List | ast.Tuple) and n.elts:
                if self.in_argv_position(n):
                    found.add(self.text(n.elts[0]))
                elif self.in_tool_list(n):
                    found.update(self.text(e) for e in n.elts)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "which":
                found.update(self.text(a) for a in n.args[:1])
        return {t for t in found if t and PROGRAM.match(t)}

    def strings(self) -> set[str]:
        return {
            n.value for n in ast.walk(self.tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }


@functools.cache
def modules() -> tuple[tuple[str, Scan], ...]:
    """(path, scan) of every module, parsed once for all the tests."""
    paths = sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))
    return tuple((str(p.relative_to(ROOT)), Scan(p.read_text(encoding="utf-8"))) for p in paths)


SHELL_WORDS = set(
    [
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "while",
        "until",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "function",
        "select",
        "time",
        "[",
        "[[",
        "]]",
        "test",
        "echo",
        "printf",
        "cd",
        "pwd",
        "set",
        "export",
        "local",
        "return",
        "trap",
        "read",
        "shift",
        "exit",
        "source",
        ".",
        "true",
        "false",
        ":",
        "eval",
        "exec",
        "unset",
        "declare",
        "readonly",
        "wait",
        "kill",
        "let",
        "compgen",
        "complete",
        "pushd",
        "popd",
        "type",
        "command",
        "builtin",
        "getopts",
        "umask",
        "hash",
        "break",
        "continue",
    ]
)
_LEADS = {
    "exec",
    "command",
    "time",
    "!",
    "if",
    "then",
    "elif",
    "else",
    "while",
    "until",
    "do",
}  # a command follows
_QUOTED = "\0"  # stands for quoted text inside a word: never part of a program name


def shell_commands(text: str) -> set[str]:
    """Words in command position of a bash script: after a separator or a leading keyword, outside
    quotes, comments and array literals, inside ``$( )`` even within double quotes; not the script's
    own functions, builtins, ``NAME=value`` prefixes or ``$(( ))`` arithmetic."""
    functions = set(re.findall(r"^\s*([A-Za-z_][\w-]*)\s*\(\)", text, re.M))
    found: set[str] = set()
    word, at_start, i = "", True, 0
    stack: list[str] = []  # '"' for an open double quote, else the outer word of an open "$("

    def end_word() -> None:
        nonlocal word, at_start
        if word and at_start and not re.match(r"^\w+=", word):
            if PROGRAM.match(word) and word not in SHELL_WORDS and word not in functions:
                found.add(word)
            at_start = word in _LEADS
        word = ""

    while i < len(text):
        c = text[i]
        if text.startswith("$((", i):  # arithmetic: names in it are variables
            word, i = word + _QUOTED, text.find("))", i) % len(text) + 2
        elif stack and stack[-1] == '"':
            if text.startswith("$(", i):
                stack.append(word)
                word, at_start, i = "", True, i + 2
                continue
            if c == '"':
                stack.pop()
            i += 2 if c == "\\" else 1
        elif c == "\\":
            word, i = word + _QUOTED, i + 2
        elif c == "#" and not word:
            i = text.find("\n", i) % (len(text) + 1)
        elif c == "'":
            word, i = word + _QUOTED, text.find("'", i + 1) % len(text) + 1
        elif c == '"':
            stack.append(c)
            word, i = word + _QUOTED, i + 1
        elif text.startswith("$(", i):
            stack.append(word)
            word, at_start, i = "", True, i + 2
        elif c == "(" and word.endswith("="):  # NAME=( words ), comments allowed inside
            body = re.match(r"\((?:[^)#]|#[^\n]*)*\)", text[i:])
            word, at_start, i = "", False, i + (body.end() if body else 1)
        elif c == ")" and stack:
            end_word()
            word, at_start, i = stack.pop() + _QUOTED, False, i + 1
        elif c in "<>":  # a redirection and its target
            end_word()
            target = re.match(r"[<>&]*\s*[^\s;|&)]*", text[i:])
            i += target.end() if target else 1
        elif c in "|;&(){}`\n \t":
            end_word()
            at_start = at_start if c in " \t" else True
            i += 1
        else:
            word, i = word + c, i + 1
    end_word()
    return found


@functools.cache
def programs_in_code() -> dict[str, set[str]]:
    """program -> the modules that run it."""
    found: dict[str, set[str]] = {}
    for name, scan in modules():
        for program in scan.programs() | TOOL_TABLES.get(name, set()):
            found.setdefault(program, set()).add(name)
    for script in SHELL_SCRIPTS:
        for program in shell_commands(script.read_text(encoding="utf-8")):
            found.setdefault(program, set()).add(str(script.relative_to(ROOT)))
    return found


# --- the lists ---------------------------------------------------------------------------------------


def manifest() -> dict[str, dict[str, str]]:
    return tomllib.loads(MANIFEST.read_text(encoding="utf-8"))


def apt_packages() -> set[str]:
    """The words of scripts/setup's APT_PACKAGES=( ... ) array, comments dropped."""
    m = re.search(r"^APT_PACKAGES=\((.*?)^\)", SETUP.read_text(encoding="utf-8"), re.M | re.S)
    assert m, "scripts/setup has no APT_PACKAGES=( ... ) array"
    return {w for line in m.group(1).splitlines() for w in line.split("#", 1)[0].split()}


def dpkg_owners(programs: list[str]) -> dict[str, str]:
    """program -> the package that ships it, for those installed here (one dpkg call). A program that
    is an alternative (awk -> /etc/alternatives/awk -> mawk) is owned by the package of its target."""
    paths: dict[str, str] = {}
    for program in programs:
        found = [Path(d, program) for d in BIN_DIRS if Path(d, program).exists()]
        for path in [*found, *(p.resolve() for p in found[:1])]:
            paths.setdefault(str(path), program)
    out = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True, check=False).stdout
    owners: dict[str, str] = {}
    for line in out.splitlines():
        packages, _, path = line.partition(": ")
        if path in paths and not line.startswith("diversion "):
            owners.setdefault(paths[path], packages.split(",")[0].split(":")[0].strip())
    return owners


def essential(packages: set[str]) -> set[str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Essential}\\n", *sorted(packages)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" yes")}


# --- the checks --------------------------------------------------------------------------------------


def test_the_scan_sees_the_known_kinds_of_call():
    source = """
import shutil, subprocess
from pineinstall.run import run
TOOL = "const-tool"
REQUIRED_TOOLS = ("listed-a", "listed-b")
def probe_argv(dev):
    args = [TOOL, "-p"]
    return [*args, dev]
def grow(dev, big):
    run(["direct", dev])
    subprocess.run(["first", "x"] if big else ["second"], check=True)
    argv = ["assigned", "-v"]
    shutil.which("looked-up")
def tools(kind):
    return ["in-tools"] + (["zstd-ish"] if kind else [])
def not_programs():
    report(["storage", "files"])
    names = ["x", "y"]
"""
    assert Scan(source).programs() == {
        "const-tool", "listed-a", "listed-b", "direct", "first", "second", "assigned", "looked-up",
        "in-tools", "zstd-ish",
    }  # fmt: skip


def test_the_shell_scan_sees_commands_not_words():
    script = """#!/usr/bin/env bash
# comment: not-a-command here
set -euo pipefail
PKGS=(
    pkg-one  # (comment) pkg-two
    pkg-three
)
cleanup() { umount "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
echo "== building (cached in ~/.cache) with $(uname -r)" >&2
out=$(mktemp -d)
LANG=C sort -u list | head -1 > "$out/first"
if ! grep -q x file; then exec env A=1 python3 -m venv .venv; fi
[ -x .venv/bin/python ] || ./local-tool
echo "hostname: $(cat "$out/etc/hostname")"
exit $(( rc != 0 ? rc : other ))
"""
    assert shell_commands(script) == {"umount", "uname", "mktemp", "sort", "head", "grep", "env", "cat"}


def test_the_scan_finds_the_programs_of_each_area():
    found = programs_in_code()
    # one per area the brief names: block flag tables, mkfs table, install, image, firstboot, iso
    for program in (
        "sgdisk",
        "partx",
        "mkfs.xfs",
        "grub-install",
        "gpg",
        "rc-service",
        "xorriso",
        "mmdebstrap",
    ):
        assert program in found, program


def test_every_program_the_code_runs_is_listed():
    listed = {p for table in manifest().values() for p in table}
    unlisted = {p: sorted(m) for p, m in programs_in_code().items() if p not in listed}
    assert not unlisted, f"programs run by the code but missing from scripts/tools.toml: {unlisted}"


def test_every_listed_program_is_still_named_in_the_code():
    named = set().union(*(scan.strings() for _, scan in modules()), *TOOL_TABLES.values(), programs_in_code())
    programs = (table for name, table in manifest().items() if name != "npm")  # [npm]: packages
    stale = sorted(p for table in programs for p in table if p not in named)
    assert not stale, f"scripts/tools.toml lists programs no code names any more: {stale}"


def test_the_manifest_has_only_known_tables():
    assert set(manifest()) == {"host", "target", "self", "npm"}
    assert set(manifest()["self"].values()) == {"pineinstall"}


HOST = sorted(manifest()["host"].items())


@pytest.fixture(scope="module")
def owners() -> dict[str, str]:
    return dpkg_owners([p for p, _ in HOST])


@pytest.fixture(scope="module")
def installable() -> set[str]:
    listed = {package for _, package in HOST}
    return apt_packages() | essential(listed)


@pytest.mark.parametrize(("program", "package"), HOST)
def test_host_program_comes_from_a_package_setup_installs(program, package, owners, installable):
    assert program in owners, (
        f"{program} is not installed here: scripts/setup installs none of its package ({package}); "
        "add the package to APT_PACKAGES"
    )
    assert owners[program] == package, f"{program} is shipped by {owners[program]}, not {package}"
    assert package in installable, f"{program}: its package {package} is not in scripts/setup's APT_PACKAGES"


def test_setup_lists_no_package_twice():
    words = [w for line in SETUP.read_text().split("APT_PACKAGES=(", 1)[1].split("\n)", 1)[0].splitlines()
             for w in line.split("#", 1)[0].split()]  # fmt: skip
    assert len(words) == len(set(words))
