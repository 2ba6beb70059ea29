"""Robustness of pine-transpile against random and mutated YAML (hypothesis).

Whatever the input, the tool must: never show a Python traceback; exit 0 or 1 and nothing else;
on exit 0 print an Ignition config; on exit 1 print an error that names a place (a `$.` path, a
`line L`, or `input.bu:L:C`) -- except the few messages about the variant/version themselves, which
Butane also prints without a place, and only when the variant/version really is unusable.

Most examples run in-process through ``butane_like.cli.main`` (fast); a smaller set goes through
the venv's real ``pine-transpile`` console script, so start-up, stdin and exit codes are covered
as the user sees them. The seeds are the shared Butane corpus (every case, valid or not), mutated:
keys deleted, duplicated, retyped or replaced by random scalars, values nested deeply, bytes
flipped, lines duplicated or cut.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "conformance" / "butane"  # the repository's copy of the shared corpus
CLI = Path(sys.executable).with_name("pine-transpile")

try:
    from butane_like import cli as _cli

    MAIN: Any = getattr(_cli, "main", None)
except Exception as exc:  # any failure to import is a reason to skip, not to crash collection
    MAIN = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = "butane_like.cli has no main()"

pytestmark = pytest.mark.skipif(MAIN is None, reason=f"pine-transpile not importable yet ({_IMPORT_ERROR})")

SUPPORTED = {
    "fcos": {f"1.{n}.0" for n in range(8)},
    "flatcar": {"1.0.0", "1.1.0"},
    "pine": {"1.0.0"},
}

# What "names a place" means in our (Butane's) messages.
PLACE = re.compile(
    r"error\[\$[^\]]*\]"  # error[$.storage.files.0.mode]:
    r"|warning\[\$[^\]]*\]"  # warning[$.x] (with --strict)
    r"|(error|warning) at \$"  # --raw-errors: error at $.path, line L col C: msg
    r"|\bline \d+"  # yaml: line 3: ...
    r"|[\w.<>-]+:\d+:\d+"  # --> input.bu:6:15
)
# Messages about the variant/version, which have no better place than the whole document.
PLACELESS = re.compile(
    r"error parsing version|must be a valid semver|No translator exists for variant"
    r"|error parsing variant|variant.*(missing|required)",
    re.IGNORECASE,
)


# --- seeds --------------------------------------------------------------------------------------


def _seed_cases() -> list[tuple[str, bytes, str | None]]:
    out = []
    if CORPUS.is_dir():
        for case in sorted(CORPUS.iterdir()):
            src = case / "input.bu"
            if src.is_file():
                files = case / "files"
                out.append((case.name, src.read_bytes(), str(files) if files.is_dir() else None))
    return out


SEEDS = _seed_cases()


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(text: bytes) -> Any:
    try:
        return yaml.load(text, Loader=_SafeLoader)  # a safe loader
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


SEED_TREES = [(name, tree, files) for name, text, files in SEEDS if isinstance(tree := _load(text), dict)]


# --- strategies ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "~",
            "0644",
            "0o755",
            "0x1ed",
            "yes",
            "on",
            "1.5.0",
            "/etc/x",
            "../../../etc/passwd",
            "data:,x",
            "sha512-00",
            "\x00",
            "\u2028",
            "*anchor",
            "!!binary AAAA",
            "a: b",
            "- x",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), inner, max_size=4),
    ),
    max_leaves=12,
)
KEYS = sorted(
    {
        "variant",
        "version",
        "ignition",
        "storage",
        "systemd",
        "passwd",
        "kernel_arguments",
        "boot_device",
        "grub",
        "openrc",
        "network",
        "files",
        "directories",
        "links",
        "filesystems",
        "luks",
        "trees",
        "disks",
        "raid",
        "units",
        "dropins",
        "users",
        "groups",
        "path",
        "mode",
        "contents",
        "inline",
        "local",
        "source",
        "compression",
        "append",
        "with_mount_unit",
        "format",
        "device",
        "name",
        "contents_local",
        "ssh_authorized_keys_local",
        "layout",
        "mirror",
        "services",
        "interfaces",
        "dhcp",
        "address",
    }
)


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every container path in a parsed document (the places a mutation can hit)."""
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


@st.composite
def mutated_tree(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A corpus document, parsed, changed in one to three places, dumped again."""
    _name, tree, files = draw(st.sampled_from(SEED_TREES))
    tree = copy.deepcopy(tree)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(tree)))
        node = _get(tree, path)
        op = draw(st.sampled_from(["delete", "retype", "add", "nest", "dup_item", "replace_root"]))
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=repr)))
            if op == "delete":
                del node[key]
            elif op == "retype":
                node[key] = draw(values)
            elif op == "add":
                node[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(values)
            elif op == "nest":
                depth = draw(st.integers(1, 300))
                inner = node[key]
                for _ in range(depth):
                    inner = draw(st.sampled_from([[inner], {"k": inner}, {key: inner}]))
                node[key] = inner
            elif op == "dup_item" and isinstance(node[key], list) and node[key]:
                node[key].append(copy.deepcopy(node[key][0]))
            elif op == "replace_root" and not path:
                tree = draw(values)
                break
        elif isinstance(node, list) and node:
            i = draw(st.integers(0, len(node) - 1))
            if op in ("delete", "dup_item"):
                node.insert(i, node[i]) if op == "dup_item" else node.pop(i)
            else:
                node[i] = draw(values)
    try:
        text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=draw(st.booleans()))
    except (yaml.YAMLError, RecursionError):
        text = "variant: fcos\nversion: 1.5.0\n"
    return text.encode("utf-8", "surrogatepass"), files


@st.composite
def mutated_text(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A corpus file changed at the byte/line level (duplicate keys, bad indentation, junk bytes)."""
    _name, text, files = draw(st.sampled_from(SEEDS))
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "cut", "dup_line", "drop_line", "indent", "truncate"]))
        lines = bytes(data).split(b"\n")
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(
                st.one_of(
                    st.binary(max_size=8),
                    st.sampled_from([b":", b"- ", b"{", b"[", b"&a ", b"*a", b"!!str ", b"\t", b"'", b'"']),
                )
            )
        elif op == "cut" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i : i + draw(st.integers(1, 20))]
        elif op in ("dup_line", "drop_line", "indent") and lines:
            i = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(i, lines[i])
            elif op == "drop_line":
                lines.pop(i)
            else:
                lines[i] = b" " * draw(st.integers(1, 5)) + lines[i]
            data = bytearray(b"\n".join(lines))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
    return bytes(data), files


VALID_HEADERS = sorted((variant, version) for variant, versions in SUPPORTED.items() for version in versions)


@st.composite
def random_document(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A fresh document: a plausible header and random content, or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200)), None
    if draw(st.integers(0, 9)) < 8:  # mostly a usable header, so the body gets translated
        variant, version = draw(st.sampled_from(VALID_HEADERS))
    else:
        variant = draw(st.sampled_from([*SUPPORTED, "coreos", ""]))
        version = draw(st.sampled_from(["1.0.0", "1.3.0", "1.7.0", "1.8.0", "1.8.0-experimental", "2"]))
    body = draw(st.dictionaries(st.sampled_from(KEYS), values, max_size=4))
    doc = {"variant": variant, "version": version, **body}
    return yaml.safe_dump(doc, sort_keys=False).encode(), None


documents = st.one_of(mutated_tree(), mutated_text(), random_document()) if SEEDS else random_document()
flags = st.lists(
    st.sampled_from(["--pretty", "--strict", "--raw-errors", "--check", "--raw"]), unique=True, max_size=3
)


# --- running ------------------------------------------------------------------------------------


def _run_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.BytesIO()
    out_t = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    err_t = io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
    old_argv = sys.argv
    rc: Any = None
    try:
        with (
            contextlib.redirect_stdout(out_t),
            contextlib.redirect_stderr(err_t),
            contextlib.ExitStack() as stack,
        ):
            stack.callback(setattr, sys, "stdin", sys.stdin)
            sys.stdin = stdin
            try:
                if inspect.signature(MAIN).parameters:
                    rc = MAIN(argv)
                else:
                    sys.argv = ["pine-transpile", *argv]
                    rc = MAIN()
            except SystemExit as e:
                rc = e.code
    finally:
        sys.argv = old_argv
    out_t.flush()
    err_t.flush()
    if rc is None:
        rc = 0
    return rc, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")


def _header_usable(text: bytes) -> bool:
    """Does the document declare a supported variant and version (as Butane reads them)?"""
    tree = _load(text)
    if not isinstance(tree, dict):
        return False
    variant, version = tree.get("variant"), tree.get("version")
    return isinstance(variant, str) and isinstance(version, str) and version in SUPPORTED.get(variant, ())


def _yaml_problem_without_line(text: bytes, err: str) -> bool:
    """Is this a syntax problem for which Butane's parser names no line?

    Go's yaml.v3 writes `yaml: line N: ...` only when its 0-based line N is > 0; reader errors
    (bytes that are not UTF-8 text, control characters) carry no line at all, nor does
    `unknown anchor 'X' referenced`. An independent parser (PyYAML) decides whether the input
    really is such a case.
    """
    if not re.search(r"yaml: (?!line \d)", err):
        return False
    try:
        for _ in yaml.compose_all(text, Loader=_SafeLoader):
            pass
    except yaml.reader.ReaderError:
        return True
    except yaml.MarkedYAMLError as e:
        if "undefined alias" in str(e.problem) and "unknown anchor" in err:
            return True
        marks = [m for m in (e.context_mark, e.problem_mark) if m is not None]
        return bool(marks) and all(m.line == 0 for m in marks)
    except Exception:
        return False
    return False


def check_outcome(text: bytes, argv: list[str], rc: Any, out: str, err: str) -> None:
    shown = f"argv={argv}\n--- input ---\n{text[:2000]!r}\n--- stderr ---\n{err[-3000:]}"
    assert "Traceback (most recent call last)" not in err, shown
    assert rc in (0, 1), f"exit code {rc!r}\n{shown}"
    if rc == 0:
        if "--check" not in argv:
            config = json.loads(out)
            assert isinstance(config, dict) and "ignition" in config, shown
        return
    assert re.search(r"error|Error|warnings and --strict", err), shown
    # messages are for people: no Python reprs of parser internals
    assert not re.search(r"<(byte|unicode) string>", err), f"Python internals in the message\n{shown}"
    if PLACE.search(err):
        return
    if _yaml_problem_without_line(text, err):
        return
    # no place: acceptable only for a variant/version the tool cannot use
    assert PLACELESS.search(err), f"error without a place\n{shown}"
    assert not _header_usable(text), f"placeless error for a usable header\n{shown}"


_WORK = tempfile.TemporaryDirectory(prefix="pine-fuzz-")


def _write_input(text: bytes) -> str:
    path = os.path.join(_WORK.name, "input.bu")
    with open(path, "wb") as f:
        f.write(text)
    return path


def _argv(extra: list[str], files: str | None, path: str) -> list[str]:
    argv = [*extra]
    if files:
        argv += ["--files-dir", files]
    return [*argv, path]


COMMON = dict(
    database=None,
    deadline=10_000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@settings(max_examples=200, **COMMON)
@given(doc=documents, extra=flags)
def test_in_process_never_crashes_and_errors_name_a_place(
    doc: tuple[bytes, str | None], extra: list[str]
) -> None:
    text, files = doc
    path = _write_input(text)
    argv = _argv(extra, files, path)
    rc, out, err = _run_in_process(argv)
    check_outcome(text, argv, rc, out, err)


@pytest.mark.skipif(not CLI.exists(), reason=f"{CLI} not installed (pip install -e .)")
@settings(max_examples=15, **COMMON)
@given(doc=documents, extra=flags, via_stdin=st.booleans())
@pytest.mark.real_processes
def test_cli_subprocess_never_crashes_and_errors_name_a_place(
    doc: tuple[bytes, str | None], extra: list[str], via_stdin: bool
) -> None:
    text, files = doc
    if via_stdin:
        argv = [*extra, *(["--files-dir", files] if files else [])]
        done = subprocess.run([str(CLI), *argv], input=text, capture_output=True, timeout=60)
    else:
        argv = _argv(extra, files, _write_input(text))
        done = subprocess.run([str(CLI), *argv], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    err = done.stderr.decode("utf-8", "replace")
    check_outcome(text, argv, done.returncode, done.stdout.decode("utf-8", "replace"), err)


def test_corpus_seeds_are_there() -> None:
    """The mutations need seeds; without the corpus only random documents would be tried."""
    assert len(SEEDS) >= 70
    assert len(SEED_TREES) >= 60


@pytest.mark.parametrize("depth", [64, 3000])
@pytest.mark.real_processes
def test_deep_nesting(depth: int) -> None:
    """Very deep flow and block nesting: an error (or output), never a crash or a RecursionError.

    Run as a subprocess: a C-level stack overflow in the parser would otherwise take pytest down.
    """
    if not CLI.exists():
        pytest.skip(f"{CLI} not installed")
    flow = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files: " + b"[" * depth + b"]" * depth + b"\n"
    block = b"variant: fcos\nversion: 1.5.0\nstorage:\n" + b"".join(
        b"  " * (i + 1) + b"k:\n" for i in range(min(depth, 400))
    )
    mapping = b"variant: fcos\nversion: 1.5.0\nstorage: " + b"{a: " * depth + b"1" + b"}" * depth + b"\n"
    for text in (flow, block, mapping):
        argv = [_write_input(text)]
        done = subprocess.run([str(CLI), *argv], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        err = done.stderr.decode("utf-8", "replace")
        check_outcome(text, argv, done.returncode, done.stdout.decode("utf-8", "replace"), err)


# --- fixed examples (found by the properties above; kept so they stay fixed) ---------------------


def test_in_process_entry_point_works_more_than_once() -> None:
    """A library caller translates many configs in one process, not just one."""
    text = b"variant: fcos\nversion: 1.5.0\n"
    for _ in range(3):
        argv = [_write_input(text)]
        rc, out, err = _run_in_process(argv)
        check_outcome(text, argv, rc, out, err)
        assert rc == 0, err


@pytest.mark.skipif(not CLI.exists(), reason=f"{CLI} not installed (pip install -e .)")
@pytest.mark.parametrize(
    "text",
    [b"\x00ariant: fcos\nversion: 1.0.0\n", b"variant: fcos\nversion: 1.5.0\nx: \xff\xfe\n"],
    ids=["nul", "not-utf8"],
)
@pytest.mark.real_processes
def test_cli_unreadable_bytes(text: bytes) -> None:
    """Bytes YAML cannot read: exit 1 and a message for people (as in-process), not a repr."""
    argv = [_write_input(text)]
    done = subprocess.run([str(CLI), *argv], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    err = done.stderr.decode("utf-8", "replace")
    check_outcome(text, argv, done.returncode, done.stdout.decode("utf-8", "replace"), err)
    assert done.returncode == 1, err
