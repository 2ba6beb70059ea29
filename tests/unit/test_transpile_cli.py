"""``pine-transpile``: Butane's command line, its error formats and Go's JSON bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from butane_like import translate
from butane_like.gojson import string

REPO = Path(__file__).resolve().parents[2]
OK = b"variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: /etc/a\n      contents:\n        inline: x\n"
WARN = b"variant: fcos\nversion: 1.4.0\nbogus: 1\n"
BAD = b"variant: fcos\nversion: 1.4.0\nstorage:\n  files:\n    - path: etc/relative\n"


def cli(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "butane_like.cli", *args], input=stdin, capture_output=True, cwd=cwd, env=env
    )


# -- Go's encoding/json ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "json_text"),
    [
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ("line\u2028para\u2029", '"line\\u2028para\\u2029"'),
        ("\b\f\x00\x1b", '"\\u0008\\u000c\\u0000\\u001b"'),
        ("\n\r\t", '"\\n\\r\\t"'),
        ('q"b\\', '"q\\"b\\\\"'),
        ("\x7fé€", '"\x7fé€"'),
        ("bad\udce9byte", '"bad\\ufffdbyte"'),
    ],
)
def test_go_string_escaping(text: str, json_text: str) -> None:
    assert string(text) == json_text


def test_output_key_order_is_ignitions() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.4.0\nsystemd:\n  units:\n    - name: a.service\n      enabled: true\n"
        b"storage:\n  files:\n    - mode: 0644\n      contents:\n        inline: x\n      path: /etc/a\n"
        b"      overwrite: true\npasswd:\n  users:\n    - uid: 1\n      name: u\n"
    )
    assert res.output == (
        b'{"ignition":{"version":"3.3.0"},"passwd":{"users":[{"name":"u","uid":1}]},'
        b'"storage":{"files":[{"overwrite":true,"path":"/etc/a","contents":{"compression":"","source":"data:,x"},'
        b'"mode":420}]},"systemd":{"units":[{"enabled":true,"name":"a.service"}]}}'
    )


def test_pretty_is_marshal_indent() -> None:
    res = translate(OK, pretty=True)
    assert res.output.decode() == json.dumps(json.loads(res.output), indent=2)
    assert res.output.startswith(b'{\n  "ignition": {\n    "version": "3.3.0"\n  },')


def test_empty_objects_are_omitted_but_false_is_kept() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.0.0\nstorage:\n  links:\n    - path: /a\n      target: /b\n      hard: false\nsystemd: {}\n"
    )
    assert (
        res.output
        == b'{"ignition":{"version":"3.0.0"},"storage":{"links":[{"path":"/a","hard":false,"target":"/b"}]}}'
    )


def test_null_items_are_dropped_with_a_warning() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: a\n    -\n    - name: b\n"
    )
    assert [u["name"] for u in res.config["passwd"]["users"]] == ["a", "b"]
    assert res.entries[0].message.startswith("context tree does not match content tree at $.passwd.users.1.")


# -- errors before translation ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"", "error parsing variant; must be specified"),
        (b"variant: fcos\n", "error parsing version; must be a valid semver"),
        (b"variant: fcos\nversion: 1.4\n", "error parsing version; must be a valid semver"),
        (b"variant: fcos\nversion: 1.9.0\n", "No translator exists for variant fcos with version 1.9.0"),
        (
            b"variant: pine\nversion: 1.0.0-experimental\n",
            "No translator exists for variant pine with version 1.0.0-experimental",
        ),
        (
            # yaml.v3 names the 0-based line of the unclosed sequence (it starts on line 3).
            b"variant: fcos\nversion: 1.5.0\nx: [a, b\n",
            "Error unmarshaling yaml: yaml: line 2: did not find expected ',' or ']'",
        ),
        (
            b"variant: fcos\nversion: 1.5.0\nstorage:\n  files: []\n  files: []\n",
            'yaml: unmarshal errors:\n  line 5: mapping key "files" already defined at line 4',
        ),
        (
            b"variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: {a: 1}\n      uid: abc\n",
            "yaml: unmarshal errors:\n  line 5: cannot unmarshal !!map into string\n"
            "  line 6: cannot unmarshal !!str `abc` into int",
        ),
        (
            b"variant: fcos\nversion: 1.5.0\nstorage: [1]\n",
            "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!seq into v0_5.Storage",
        ),
    ],
)
def test_fatal_errors(text: bytes, error: str) -> None:
    res = translate(text)
    assert res.error == error and res.output is None


def test_only_the_first_document_counts() -> None:
    res = translate(b"variant: fcos\nversion: 1.0.0\n---\nvariant: nope\n")
    assert res.ok and res.output == b'{"ignition":{"version":"3.0.0"}}'


# -- the command line -------------------------------------------------------------------------------------
@pytest.mark.real_processes
def test_stdin_to_stdout() -> None:
    p = cli(stdin=OK)
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout.endswith(b"}\n") and json.loads(p.stdout)["storage"]["files"][0]["path"] == "/etc/a"


@pytest.mark.real_processes
def test_output_file_written_only_on_success(tmp_path: Path) -> None:
    (tmp_path / "ok.bu").write_bytes(OK)
    (tmp_path / "bad.bu").write_bytes(BAD)
    assert cli("-o", "out.ign", "ok.bu", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out.ign").read_bytes().endswith(b"}\n")
    p = cli("--output=fail.ign", "bad.bu", cwd=tmp_path)
    assert p.returncode == 1 and not (tmp_path / "fail.ign").exists()


@pytest.mark.real_processes
def test_pretty_error_block(tmp_path: Path) -> None:
    (tmp_path / "bad.bu").write_bytes(BAD)
    p = cli("bad.bu", cwd=tmp_path)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.decode() == (
        "error[$.storage.files.0.path]:\n"
        "  --> bad.bu:5:13\n"
        "   |\n"
        " 3 | storage:\n"
        " 4 |   files:\n"
        " 5 |     - path: etc/relative\n"
        "   |             ^^^^^^^^^^^^ path not absolute\n"
        " 6 | \n"
        "   |\n"
        "Error translating config: config generated was invalid\n"
    )


@pytest.mark.real_processes
def test_raw_errors() -> None:
    p = cli("--raw-errors", stdin=BAD)
    assert p.stderr.decode() == (
        "error at $.storage.files.0.path, line 5 col 13: path not absolute\n"
        "Error translating config: config generated was invalid\n"
    )


@pytest.mark.real_processes
def test_stdin_is_named_in_snippets() -> None:
    assert b"  --> <stdin>:5:13\n" in cli(stdin=BAD).stderr


@pytest.mark.real_processes
def test_strict_fails_on_warnings() -> None:
    p = cli("-s", stdin=WARN)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.endswith(b"Config produced warnings and --strict was specified\n")
    p = cli(stdin=WARN)
    assert p.returncode == 0 and p.stdout and b"unused key bogus" in p.stderr


@pytest.mark.real_processes
def test_check_produces_no_output() -> None:
    p = cli("--check", stdin=OK)
    assert p.returncode == 0 and p.stdout == b""


@pytest.mark.real_processes
def test_combined_short_flags_and_attached_values(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("hi")
    body = OK.replace(b"inline: x", b"local: f")
    p = cli("-psd", "d", stdin=body, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(b"{\n  ")
    assert cli("-dd", "--strict", stdin=body, cwd=tmp_path).returncode == 0
    assert cli("--files-dir=d", stdin=body, cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("args", [["--bogus"], ["-x"], ["a.bu", "b.bu"], ["-d"]])
@pytest.mark.real_processes
def test_usage_errors_exit_2(args: list[str]) -> None:
    p = cli(*args)
    assert p.returncode == 2 and b"Usage:" in p.stderr and p.stdout == b""


@pytest.mark.real_processes
def test_help_and_version() -> None:
    p = cli("--help")
    assert p.returncode == 0 and p.stdout.startswith(b"Usage:")
    assert cli("-V").stdout.startswith(b"pine-transpile ")


@pytest.mark.real_processes
def test_missing_input_file(tmp_path: Path) -> None:
    p = cli("nope.bu", cwd=tmp_path)
    assert p.returncode == 1
    assert p.stderr == b"failed to read nope.bu: open nope.bu: no such file or directory\n"


def test_crlf_input_positions() -> None:
    res = translate(BAD.replace(b"\n", b"\r\n"))
    assert [(e.line, e.col) for e in res.entries] == [(5, 13)]


def test_anchors_and_merge_keys() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - &base\n      path: /etc/a\n      mode: 0600\n"
        b"    - <<: *base\n      path: /etc/b\n"
    )
    assert res.ok and [(f["path"], f["mode"]) for f in res.config["storage"]["files"]] == [
        ("/etc/a", 0o600),
        ("/etc/b", 0o600),
    ]


def _findings(text: bytes) -> list[tuple[str, int | None, int | None, str]]:
    res = translate(b"variant: fcos\nversion: 1.5.0\nx: &a\n  name: core\n  bogus: 1\n" + text)
    return [(e.kind, e.line, e.col, e.message.split(" at ")[0]) for e in res.entries if e.line != 3]


MISMATCH = "context tree does not match content tree"


@pytest.mark.parametrize(
    ("text", "findings"),
    [
        # Butane's context tree has a leaf at an alias: a struct there warns at the alias, and the
        # unused key inside the anchored mapping ("bogus", line 5) is not reported.
        (b"passwd:\n  users:\n    - name: u\n    - *a\n", [("warning", 9, 7, MISMATCH)]),
        (b"passwd:\n  users: [{name: u}, *a]\n", [("warning", 7, 22, MISMATCH)]),
        (b"passwd:\n  users:\n    -   # here\n      *a\n", [("warning", 9, 7, MISMATCH)]),
        (b"passwd: *a\n", [("warning", 6, 9, MISMATCH)]),
        # A merge key takes the anchor's keys in without a context: only "<<" is unused.
        (b"passwd:\n  users:\n    - <<: *a\n", [("warning", 8, 7, "unused key <<")]),
    ],
)
def test_aliases_are_leaves_of_the_context_tree(text: bytes, findings: list) -> None:
    assert _findings(text) == findings


def test_findings_inside_an_alias_are_placed_at_the_alias() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.5.0\nf: &f\n  path: etc/rel\n  junk: 1\n"
        b"storage:\n  files:\n    - path: /etc/ok\n    - *f\n"
    )
    assert [(e.kind, e.line, e.col, e.message.split(" at ")[0]) for e in res.entries] == [
        ("warning", 3, 1, "unused key f"),
        ("warning", 9, 7, MISMATCH),
        ("error", 9, 7, "path not absolute"),
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (b"a: b: c\n", "yaml: line 3: mapping values are not allowed in this context"),
        (b"x: [*nope, a]\n", "yaml: unknown anchor 'nope' referenced"),
        (b"x: \x01\n", "yaml: control characters are not allowed"),
    ],
)
def test_yaml_errors_in_yaml_v3_words(text: bytes, error: str) -> None:
    res = translate(b"variant: fcos\nversion: 1.5.0\n" + text)
    assert res.error == "Error unmarshaling yaml: " + error


@pytest.mark.real_processes
def test_color_only_when_asked_or_on_a_terminal() -> None:
    assert b"\x1b[" not in cli(stdin=WARN).stderr  # a pipe: no colour
    colored = cli("--color=always", stdin=WARN).stderr
    assert colored.startswith(b"\x1b[1;33mwarning\x1b[0m[$.bogus]:\n")
    assert b"\x1b[" not in cli("--color=never", stdin=WARN).stderr


def test_unused_keys_in_struct_walk_order() -> None:
    res = translate(
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      bogus2: 1\nbogus: 1\npasswd:\n  bad: 1\n"
    )
    assert [e.message for e in res.entries] == ["unused key bogus", "unused key bad", "unused key bogus2"]


@pytest.mark.real_processes
def test_phase_times_on_request_only() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), PINE_TRANSPILE_TIMES="1")
    p = subprocess.run(
        [sys.executable, "-m", "butane_like.cli"], input=OK, capture_output=True, env=env, check=False
    )
    assert p.returncode == 0 and json.loads(p.stdout)["storage"]["files"][0]["path"] == "/etc/a"
    rows = [line.split() for line in p.stderr.decode().splitlines()]
    names = [r[1] for r in rows]
    assert names == [
        "startup",
        "read",
        "yaml",
        "decode",
        "validate",
        "desugar",
        "check",
        "json",
        "write",
        "total",
    ]
    assert all(r[0] == "phase" for r in rows)
    total_wall = float(rows[-1][2])
    assert 0 < sum(float(r[2]) for r in rows[1:-1]) <= total_wall + 0.5
    plain = cli(stdin=OK)
    assert plain.stderr == b"" and plain.stdout == p.stdout


# -- hints after Butane's error line: for a person, never in Butane's own byte-exact stderr --------
HINT_CASES = [
    (
        b"variant: fcos\nversion: 1.9.0\n",
        ["supported variants and versions: fcos 1.0.0 to 1.8.0-experimental, flatcar 1.0.0 to 1.2.0-experimental, pine 1.0.0"],
    ),
    (
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n  - path: /b\n",
        ["the problem is at line 6, column 3:", "   6 |   - path: /b", "     |   ^"],
    ),
]


@pytest.mark.real_processes
@pytest.mark.parametrize(("text", "hints"), HINT_CASES)
def test_hints_follow_the_error_for_a_person(text: bytes, hints: list[str]) -> None:
    plain = cli(stdin=text)
    assert plain.returncode == 1 and len(plain.stderr.decode().splitlines()) == 1
    assert plain.stderr.decode().startswith("Error translating config: ")
    asked = subprocess.run(
        [sys.executable, "-m", "butane_like.cli"], input=text, capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO), "PINE_TRANSPILE_HINTS": "1"}, timeout=60,
    )  # fmt: skip
    assert asked.stderr.decode().splitlines() == [plain.stderr.decode().rstrip("\n"), *hints]


@pytest.mark.real_processes
def test_hints_on_a_terminal(tmp_path: Path) -> None:
    import pty

    src = tmp_path / "bad.bu"
    src.write_bytes(HINT_CASES[0][0])
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.environ["PYTHONPATH"] = str(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "butane_like.cli", str(src)])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert b"supported variants and versions: fcos 1.0.0 to 1.8.0-experimental" in out


@pytest.mark.real_processes
def test_schema_prints_where_the_installed_editor_schema_lives() -> None:
    one = cli("--schema", "fcos", "1.5.0")
    assert one.returncode == 0, one.stderr
    path = Path(one.stdout.decode().strip())
    assert path.is_file() and path.parent.name == "editor" and path.name == "fcos-1.5.0.json"
    assert json.loads(path.read_text())["$id"] == "urn:pineinstall:schema:butane:fcos:1.5.0"
    every = cli("--schema").stdout.decode().splitlines()
    assert len(every) == 13 and str(path) in every and all(Path(p).is_file() for p in every)
    bad = cli("--schema", "fcos", "1.9.0")
    assert bad.returncode == 1
    assert b"supported: fcos 1.0.0 to 1.8.0-experimental, flatcar 1.0.0 to 1.2.0-experimental, pine 1.0.0" in bad.stderr
