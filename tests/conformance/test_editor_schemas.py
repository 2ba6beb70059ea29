"""The editor schemas (schemas/butane/editor/) in real clients: check-jsonschema (PyPI) and
yaml-language-server (npm, installed by scripts/setup into .cache/npm) accept every valid config of
the Butane corpus (valid: Butane exits 0, with --strict or without), and still flag a wrong type.

Butane reads only the first document of a file; check-jsonschema refuses multi-document files, so
it is given the first. yaml-language-server gets each file as an editor has it, with the modeline
of docs/editors.md on top.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.conformance, pytest.mark.real_processes]

REPO = Path(__file__).resolve().parents[2]
EDITOR = REPO / "schemas" / "butane" / "editor"
CORPORA = [Path(__file__).parent / "butane", REPO.parent / "shared" / "conformance" / "butane"]
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
YAML_LS = REPO / ".cache" / "npm" / "node_modules" / ".bin" / "yaml-language-server"
EXAMPLES = sorted((REPO / "examples").glob("*.bu"))
BAD = "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: [not, a, string]\n"


def valid_cases() -> list[Path]:
    cases = []
    for corpus in CORPORA:
        for d in sorted(corpus.glob("[0-9][0-9][0-9]-*")):
            rcs = [
                (d / n).read_text().strip()
                for n in ("expected.rc", "expected.nostrict.rc")
                if (d / n).exists()
            ]
            if "0" in rcs:
                cases.append(d)
    return cases


CASES = valid_cases()


def first_document(text: str) -> str:
    return text.split("\n---", 1)[0] + "\n"


def schema_of(text: str) -> Path:
    config = next(yaml.safe_load_all(text))
    return EDITOR / f"{config['variant']}-{config['version']}.json"


def test_the_corpus_has_the_valid_configs() -> None:
    assert len([c for c in CASES if c.parent == CORPORA[0]]) == 44


# --- check-jsonschema --------------------------------------------------------------------------------


NO_CHECKER = pytest.mark.skipif(
    not CHECK_JSONSCHEMA.exists(), reason="check-jsonschema not installed (pip install '.[test]')"
)


def check_jsonschema(schema: Path, docs: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--force-filetype", "yaml", "--schemafile", str(schema), *map(str, docs)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def by_schema() -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for case in CASES:
        groups.setdefault(schema_of((case / "input.bu").read_text()).name, []).append(case)
    return groups


@NO_CHECKER
@pytest.mark.parametrize(
    ("schema", "cases"), sorted(by_schema().items()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_check_jsonschema_accepts(schema: str, cases: list[Path], tmp_path: Path) -> None:
    docs = []
    for case in cases:  # one run per schema: check-jsonschema takes seconds to start
        doc = tmp_path / f"{case.parent.parent.parent.name}-{case.name}.yaml"
        doc.write_text(first_document((case / "input.bu").read_text()))
        docs.append(doc)
    done = check_jsonschema(EDITOR / schema, docs)
    assert done.returncode == 0, done.stdout + done.stderr


@NO_CHECKER
def test_check_jsonschema_still_flags_a_wrong_type(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    done = check_jsonschema(schema_of(BAD), [tmp_path / "bad.yaml"])
    assert done.returncode == 1 and "storage.files[0].path" in done.stdout


# --- yaml-language-server ----------------------------------------------------------------------------


class LanguageServer:
    """yaml-language-server over stdio: JSON-RPC with Content-Length headers."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(YAML_LS), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.buf = b""
        self.diagnostics: dict[str, list[dict]] = {}

    def send(self, **msg: object) -> None:
        body = json.dumps({"jsonrpc": "2.0", **msg}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict | None:
        assert self.proc.stdout is not None
        while True:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if sep:
                length = next(
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                )
                if len(rest) >= length:
                    self.buf = rest[length:]
                    return self.handle(json.loads(rest[:length]))
            if not select.select([self.proc.stdout], [], [], timeout)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            assert chunk, "yaml-language-server exited"
            self.buf += chunk

    def handle(self, msg: dict) -> dict:
        if msg.get("method") == "textDocument/publishDiagnostics":
            self.diagnostics[msg["params"]["uri"]] = msg["params"]["diagnostics"]
        elif msg.get("method") == "workspace/configuration":
            items = msg["params"]["items"]
            self.send(
                id=msg["id"],
                result=[{"validate": True} if i.get("section") == "yaml" else None for i in items],
            )
        elif "id" in msg and "method" in msg:
            self.send(id=msg["id"], result=None)
        return msg

    def start(self) -> None:
        self.send(id=1, method="initialize", params={"processId": os.getpid(), "rootUri": None,
                                                    "capabilities": {"workspace": {"configuration": True}}})  # fmt: skip
        while (msg := self.receive(60)) is not None and msg.get("id") != 1:
            pass
        self.send(method="initialized", params={})
        self.send(
            method="workspace/didChangeConfiguration", params={"settings": {"yaml": {"validate": True}}}
        )

    def check(self, docs: dict[str, str]) -> dict[str, list[dict]]:
        """Open each document (uri -> text); their diagnostics once all have some."""
        for uri, text in docs.items():
            self.send(method="textDocument/didOpen",
                      params={"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})  # fmt: skip
        deadline = time.monotonic() + 120
        while not set(docs) <= set(self.diagnostics) and time.monotonic() < deadline:
            self.receive(5)
        return {uri: self.diagnostics.get(uri, [{"message": "no diagnostics published"}]) for uri in docs}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def with_modeline(text: str) -> str:
    return f"# yaml-language-server: $schema={schema_of(text)}\n{text}"


@pytest.mark.skipif(
    not YAML_LS.exists() or shutil.which("node") is None,
    reason="yaml-language-server not installed (scripts/setup installs it into .cache/npm)",
)
def test_yaml_language_server_accepts_every_valid_config_and_flags_a_wrong_type() -> None:
    docs = {
        f"file:///corpus/{c.parent.parent.parent.name}/{c.name}.bu": with_modeline(
            (c / "input.bu").read_text()
        )
        for c in CASES
    }
    docs["file:///bad.bu"] = with_modeline(BAD)
    for example in EXAMPLES:  # as they are: their own modeline, relative to the file
        assert example.read_text().startswith(f"# yaml-language-server: $schema=../{EDITOR.relative_to(REPO)}/")
        docs[example.as_uri()] = example.read_text()
    server = LanguageServer()
    try:
        server.start()
        found = server.check(docs)
    finally:
        server.close()
    bad = found.pop("file:///bad.bu")
    assert [d["range"]["start"]["line"] for d in bad] == [5], bad  # the path, below the modeline
    rejected = {uri: [d["message"] for d in diags] for uri, diags in found.items() if diags}
    assert not rejected


@pytest.mark.parametrize("path", sorted(EDITOR.glob("*.json")), ids=lambda p: p.name)
def test_editor_schema_is_a_valid_2020_12_schema_with_its_own_id(path: Path) -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    variant, version = path.stem.split("-", 1)
    assert schema["$id"] == f"urn:pineinstall:schema:butane:{variant}:{version}"
    assert {p.stem for p in EDITOR.glob("*.json")} == {p.stem for p in EDITOR.parent.glob("*.json")}
