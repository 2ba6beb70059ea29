"""The JSON Schemas of the Butane-like YAML side (schemas/butane/): valid schemas, in step with their
generator, accepting every clean config of the shared corpus and rejecting known mistakes."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas" / "butane"
CORPUS = REPO / "tests" / "conformance" / "butane"  # the repository's copy of the shared corpus

EXPERIMENTAL = {"fcos-1.8.0-experimental", "flatcar-1.2.0-experimental"}  # not in the shared corpus
EXPECTED = {
    *(f"fcos-1.{n}.0" for n in range(8)),
    "flatcar-1.0.0",
    "flatcar-1.1.0",
    "pine-1.0.0",
    *EXPERIMENTAL,
}


class _Loader(yaml.SafeLoader):
    """PyYAML speaks YAML 1.1; Butane (Go yaml.v3) and editors also read YAML 1.2's `0o644`."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7]+$"), list("0"))


def _int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and text.startswith("0o"):
        return int(text[2:], 8)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_Loader.add_constructor("tag:yaml.org,2002:int", _int)


def load(text: str | bytes) -> object:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def errors(name: str, config: object) -> list[jsonschema.ValidationError]:
    return list(validator(name).iter_errors(config))


def _cases() -> list[Path]:
    return sorted(p for p in CORPUS.iterdir() if (p / "input.bu").is_file())


def _clean_cases() -> list[Path]:
    """rc 0 and no warnings at all: what the schema must accept."""
    out = []
    for case in _cases():
        if (case / "expected.rc").read_text().strip() != "0":
            continue
        if list(case.glob("expected.nostrict.*")):
            continue
        if "warning" in (case / "expected.stderr").read_text(encoding="utf-8", errors="replace"):
            continue
        out.append(case)
    return out


def _case_schema(case: Path) -> tuple[str, object]:
    config = load((case / "input.bu").read_bytes())
    assert isinstance(config, dict)
    return f"{config['variant']}-{config['version']}", config


# --- the files ----------------------------------------------------------------------------------


def test_one_schema_per_variant_version() -> None:
    assert {p.stem for p in SCHEMAS.glob("*.json")} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_is_a_valid_2020_12_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    variant, version = name.split("-", 1)
    assert schema["properties"]["variant"]["const"] == variant
    assert schema["properties"]["version"]["const"] == version
    assert schema["required"] == ["variant", "version"]


@pytest.mark.real_processes
def test_generator_and_files_agree() -> None:
    done = subprocess.run(
        [sys.executable, str(SCHEMAS / "_build.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_property_is_described(name: str) -> None:
    """Editors show descriptions on hover: no field without one."""
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    missing = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{key}")
            for key, sub in node.items():
                if key not in ("if", "then", "not", "anyOf", "allOf"):
                    walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "$")
    assert not missing


# --- the corpus ---------------------------------------------------------------------------------


CLEAN = _clean_cases()


def test_corpus_has_clean_cases_of_every_butane_version() -> None:
    names = {_case_schema(c)[0] for c in CLEAN}
    assert names == EXPECTED - {"pine-1.0.0"} - EXPERIMENTAL


@pytest.mark.parametrize("case", CLEAN, ids=[c.name for c in CLEAN])
def test_clean_corpus_config_validates(case: Path) -> None:
    name, config = _case_schema(case)
    assert [(list(e.absolute_path), e.message) for e in errors(name, config)] == []


UNUSED = [c for c in _cases() if "unused key" in (c / "expected.stderr").read_text(errors="replace")]


@pytest.mark.parametrize("case", UNUSED, ids=[c.name for c in UNUSED])
def test_keys_butane_calls_unused_are_flagged(case: Path) -> None:
    """Where Butane warns `unused key K` (a key of another version/variant), the schema says so."""
    name, config = _case_schema(case)
    keys = set(re.findall(r"unused key (\w+)", (case / "expected.stderr").read_text()))
    assert keys
    flagged = {
        k
        for e in errors(name, config)
        if e.validator == "additionalProperties"
        for k in re.findall(r"'(\w+)'", e.message)
    }
    assert keys <= flagged


# errors Butane reports that the schema can see too (the rest need files, or the whole config)
SCHEMA_VISIBLE = {
    "057-fcos14-raw-errors-errors": "pattern",
    "091-err-type-quoted-mode": "type",
    "092-err-type-scalar-for-list": "type",
    "094-err-type-map-for-string": "type",
    "102-err-inline-and-local": "not",
    "106-err-mount-unit-missing-format-path": "required",
    "107-err-mount-unit-outside-etc-var": "pattern",
    "109-err-bootdev-single-mirror": "minItems",
    "111-err-bootdev-eckd-bad-device": "pattern",
    "112-err-cex-with-tpm2-on-x86": "enum",
    "114-err-flatcar-clevis": "additionalProperties",
    "116-err-ignition-unit-validation": "pattern",
    "117-err-ignition-resource-validation": "pattern",
    "121-err-fs-label-too-long-and-format": "enum",
    "122-err-luks-name-slash-and-user-id-name": "pattern",
    "124-err-overwrite-without-source": "required",
    "127-err-raid-no-level": "required",
}


@pytest.mark.parametrize("case_name", sorted(SCHEMA_VISIBLE))
def test_corpus_errors_the_schema_can_see(case_name: str) -> None:
    case = CORPUS / case_name
    if not case.is_dir():
        pytest.skip(f"{case_name} not in the corpus")
    name, config = _case_schema(case)
    found = {e.validator for err in errors(name, config) for e in [err, *(err.context or [])]}
    assert SCHEMA_VISIBLE[case_name] in found, found


# --- hand-made mistakes -------------------------------------------------------------------------


def bu(variant: str, version: str, body: str = "") -> object:
    return load(f"variant: {variant}\nversion: {version}\n{body}")


def test_minimal_config_of_each_version_validates() -> None:
    for name in EXPECTED:
        variant, version = name.split("-", 1)
        assert errors(name, bu(variant, version)) == [], name


def test_string_mode_is_rejected() -> None:
    cfg = bu("fcos", "1.5.0", "storage:\n  files:\n    - path: /etc/x\n      mode: '0644'\n")
    found = errors("fcos-1.5.0", cfg)
    assert [(list(e.absolute_path), e.validator) for e in found] == [
        (["storage", "files", 0, "mode"], "type")
    ]
    ok = bu("fcos", "1.5.0", "storage:\n  files:\n    - path: /etc/x\n      mode: 0o644\n")
    assert errors("fcos-1.5.0", ok) == []


def test_unknown_top_level_key_is_rejected() -> None:
    found = errors("fcos-1.6.0", bu("fcos", "1.6.0", "storgae:\n  files: []\n"))
    assert len(found) == 1 and found[0].validator == "additionalProperties"
    assert "storgae" in found[0].message


def test_wrong_variant_or_version_is_rejected() -> None:
    assert errors("fcos-1.5.0", bu("flatcar", "1.5.0"))
    assert errors("fcos-1.5.0", bu("fcos", "1.4.0"))
    assert errors("fcos-1.5.0", load("variant: fcos\nversion: 1.5\n"))  # a float, not the string
    assert errors("fcos-1.5.0", load("variant: fcos\n"))


@pytest.mark.parametrize(
    ("older", "newer", "body"),
    [
        ("fcos-1.0.0", "fcos-1.1.0", "storage:\n  trees:\n    - local: tree\n"),
        ("fcos-1.0.0", "fcos-1.1.0", "ignition:\n  proxy:\n    http_proxy: http://p:3128\n"),
        ("fcos-1.0.0", "fcos-1.1.0", "ignition:\n  config:\n    merge:\n      - inline: '{}'\n"),
        (
            "fcos-1.0.0",
            "fcos-1.1.0",
            "storage:\n  filesystems:\n    - device: /dev/vdb\n      format: ext4\n"
            "      path: /var/d\n      with_mount_unit: true\n",
        ),
        ("fcos-1.1.0", "fcos-1.2.0", "storage:\n  luks:\n    - name: d\n      device: /dev/vdb\n"),
        ("fcos-1.1.0", "fcos-1.2.0", "passwd:\n  users:\n    - name: old\n      should_exist: false\n"),
        ("fcos-1.2.0", "fcos-1.3.0", "boot_device:\n  mirror:\n    devices: [/dev/sda, /dev/sdb]\n"),
        ("fcos-1.3.0", "fcos-1.4.0", "kernel_arguments:\n  should_exist: [quiet]\n"),
        (
            "fcos-1.3.0",
            "fcos-1.4.0",
            "storage:\n  filesystems:\n    - device: /dev/vdb\n      format: none\n",
        ),
        (
            "fcos-1.4.0",
            "fcos-1.5.0",
            "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [k.pub]\n",
        ),
        (
            "fcos-1.4.0",
            "fcos-1.5.0",
            "systemd:\n  units:\n    - name: a.service\n      contents_local: a.service\n",
        ),
        (
            "fcos-1.4.0",
            "fcos-1.5.0",
            "grub:\n  users:\n    - name: root\n      password_hash: grub.pbkdf2.sha512.10000.AB.CD\n",
        ),
        (
            "fcos-1.4.0",
            "fcos-1.5.0",
            "storage:\n  luks:\n    - name: d\n      device: /dev/vdb\n      discard: true\n",
        ),
        ("fcos-1.5.0", "fcos-1.6.0", "boot_device:\n  layout: s390x-virt\n  luks:\n    tpm2: true\n"),
        (
            "fcos-1.5.0",
            "fcos-1.6.0",
            "storage:\n  luks:\n    - name: d\n      device: /dev/vdb\n      cex:\n        enabled: true\n",
        ),
        (
            "flatcar-1.0.0",
            "flatcar-1.1.0",
            "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [k.pub]\n",
        ),
        ("fcos-1.6.0", "pine-1.0.0", "openrc:\n  services:\n    - name: sshd\n"),
        ("fcos-1.7.0", "pine-1.0.0", "network:\n  hostname: node1\n"),
        ("fcos-1.7.0", "fcos-1.8.0-experimental", "systemd:\n  quadlets:\n    - name: web.container\n"),
    ],
)
def test_field_from_a_later_version_is_rejected_by_earlier_schema(older: str, newer: str, body: str) -> None:
    new_variant, new_version = newer.split("-", 1)
    assert errors(newer, bu(new_variant, new_version, body)) == []
    old_variant, old_version = older.split("-", 1)
    found = errors(older, bu(old_variant, old_version, body))
    assert found, f"{older} accepted a field of {newer}"


def test_flatcar_has_no_boot_device_grub_or_clevis() -> None:
    assert errors("flatcar-1.1.0", bu("flatcar", "1.1.0", "boot_device:\n  luks:\n    tpm2: true\n"))
    assert errors("flatcar-1.1.0", bu("flatcar", "1.1.0", "grub:\n  users: []\n"))
    clevis = "storage:\n  luks:\n    - name: d\n      device: /dev/vdb\n      clevis:\n        tpm2: true\n"
    assert errors("flatcar-1.1.0", bu("flatcar", "1.1.0", clevis))
    assert errors("fcos-1.5.0", bu("fcos", "1.5.0", clevis)) == []


def test_mutually_exclusive_sources() -> None:
    both = "storage:\n  files:\n    - path: /etc/a\n      contents:\n        inline: x\n        source: data:,y\n"
    assert errors("fcos-1.3.0", bu("fcos", "1.3.0", both))
    unit = "systemd:\n  units:\n    - name: a.service\n      contents: x\n      contents_local: a\n"
    assert errors("fcos-1.5.0", bu("fcos", "1.5.0", unit))


def test_boot_device_layouts_per_version() -> None:
    s390 = "boot_device:\n  layout: s390x-eckd\n  luks:\n    device: /dev/dasda\n    tpm2: true\n"
    assert errors("fcos-1.6.0", bu("fcos", "1.6.0", s390)) == []
    assert errors("fcos-1.5.0", bu("fcos", "1.5.0", s390))
    assert errors("fcos-1.6.0", bu("fcos", "1.6.0", "boot_device:\n  layout: riscv64\n"))


# --- the pine variant ---------------------------------------------------------------------------

PINE_OK = """\
openrc:
  services:
    - name: myapp
      contents: |
        #!/sbin/openrc-run
        command=/usr/bin/myapp
    - name: backup
      contents_local: init.d/backup
      enabled: false
      runlevel: boot
network:
  hostname: node1.example.org
  interfaces:
    - name: eth0
      dhcp: true
    - name: eth1
      address: 192.0.2.10/24
      gateway: 192.0.2.1
    - name: eth2
      address: 2001:db8::10/64
  dns: [192.0.2.53, "2001:db8::53"]
passwd:
  users:
    - name: admin
      ssh_authorized_keys: [ssh-ed25519 AAAA admin@laptop]
boot_device:
  layout: x86_64
  luks:
    tpm2: true
"""


def test_pine_full_config_validates() -> None:
    assert errors("pine-1.0.0", bu("pine", "1.0.0", PINE_OK)) == []


def test_pine_defaults_are_documented() -> None:
    schema = json.loads((SCHEMAS / "pine-1.0.0.json").read_text())
    service = schema["$defs"]["OpenrcService"]["properties"]
    assert service["enabled"]["default"] is True
    assert service["runlevel"]["default"] == "default"


@pytest.mark.parametrize(
    "body",
    [
        "openrc:\n  services:\n    - contents: x\n",  # no name
        "openrc:\n  services:\n    - name: a\n      contents: x\n      contents_local: y\n",
        "openrc:\n  services:\n    - name: a/b\n",
        "openrc:\n  services:\n    - name: a\n      enabled: 'yes please'\n",
        "openrc:\n  services:\n    - name: a\n      runlevel: ../etc\n",
        "openrc:\n  units: []\n",
        "network:\n  interfaces:\n    - name: eth0\n",  # neither dhcp nor address
        "network:\n  interfaces:\n    - name: eth0\n      dhcp: true\n      address: 10.0.0.2/24\n",
        "network:\n  interfaces:\n    - name: eth0\n      address: 10.0.0.2\n",  # not CIDR
        "network:\n  interfaces:\n    - name: eth0\n      address: 10.0.0.2/33\n",
        "network:\n  interfaces:\n    - dhcp: true\n",
        "network:\n  dns: 10.0.0.53\n",
        "network:\n  dns: [resolver.example]\n",
        "network:\n  hostname: -bad-\n",
        "network:\n  gateway: 10.0.0.1\n",
    ],
)
def test_pine_mistakes_are_rejected(body: str) -> None:
    assert errors("pine-1.0.0", bu("pine", "1.0.0", body)), body


# --- agreement with the transpiler's own field table --------------------------------------------


def _schema_tree(schema: dict, node: dict, depth: int = 0) -> object:
    """The key/type tree a schema describes, in the shape of butane_like.fields.accepted()."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
    if "object" in kinds:
        if depth > 12:
            return "object"
        return {k: _schema_tree(schema, v, depth + 1) for k, v in node["properties"].items()}
    if "array" in kinds:
        return [_schema_tree(schema, node["items"], depth + 1)]
    return {"string": "string", "integer": "int", "boolean": "bool"}[kinds[0]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_accepts_the_fields_the_transpiler_accepts(name: str) -> None:
    """Two independent readings of Butane's specs (this generator, the transpiler's table) agree.

    One deliberate difference: flatcar parses `storage.luks.clevis` only to refuse it with an
    error, so the schema leaves it out.
    """
    fields = pytest.importorskip("butane_like.fields", reason="transpiler field table not there yet")
    variant, version = name.split("-", 1)
    theirs = fields.accepted(variant, version)
    if variant == "flatcar":
        theirs["storage"]["luks"][0].pop("clevis")
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    assert _schema_tree(schema, schema) == theirs
