"""The JSON Schemas of Ignition spec 3.0.0 ... 3.6.0 (schemas/ignition/).

Checks: each file is a valid draft 2020-12 schema and equals its generator's output; the
structure follows the walker's rules (docs/interfaces.md); a config using every field of a
version validates, and so do nulls; wrong types and unknown keys fail; each version step is
proven by a config that only the later schema accepts. Where Debian's ignition-validate 2.14
knows the version (3.0.0-3.3.0), the same configs are fed to it: no `unused key` and no
`cannot unmarshal` proves our key names and JSON types are those of Ignition's Go types.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "ignition"
VERSIONS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0", "3.7.0-experimental")
# versions Debian's ignition-validate 2.14 accepts as stable
REFERENCE_VERSIONS = ("3.0.0", "3.1.0", "3.2.0", "3.3.0")
IGNITION_VALIDATE = shutil.which("ignition-validate")
needs_reference = pytest.mark.skipif(IGNITION_VALIDATE is None, reason="ignition-validate is not installed")

# keywords the fast walker reads (structure) and those only editors use
STRUCTURE_KEYS = {"type", "properties", "additionalProperties", "items", "$ref"}
EDITOR_KEYS = {
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "required",
    "default",
    "description",
    "examples",
}
ROOT_KEYS = {"$schema", "$id", "title", "$defs"}
JSON_TYPES = {"object", "array", "string", "integer", "boolean", "number", "null"}


def load(version: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{version}.json").read_text(encoding="utf-8"))


def validator(version: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(version))


def errors(version: str, config: dict[str, Any]) -> list[str]:
    """Schema errors of a config as `path: message`, empty when valid."""
    out = []
    for err in validator(version).iter_errors(config):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(f"{path}: {err.message}")
    return out


def vt(version: str) -> tuple[int, int]:
    major, minor, _ = version.split(".")
    return int(major), int(minor)


# --- sample configs -------------------------------------------------------------------------------

SHA512 = "sha512-" + hashlib.sha512(b"hello").hexdigest()
SHA256 = "sha256-" + hashlib.sha256(b"hello").hexdigest()


def full_config(version: str) -> dict[str, Any]:
    """A semantically valid config that uses every field the spec version has."""
    v = vt(version)
    new31, new32, new33, new34, new35 = (v >= (3, n) for n in (1, 2, 3, 4, 5))
    hash_ = SHA256 if new31 else SHA512

    def resource(
        source: str | None, *, compression: str | None = None, headers: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if source is not None:
            out["source"] = source
        if compression is not None:
            out["compression"] = compression
        if headers and new31:  # HTTP headers only for http(s) sources
            out["httpHeaders"] = [{"name": "Authorization", "value": "Basic YWxhZGRpbjpvcGVu"}]
        out["verification"] = {"hash": hash_}
        return out

    def remote(source: str) -> dict[str, Any]:
        # 3.0.0: config/CA references have no compression; 3.1.0 unified them into Resource
        out = resource(source, compression="gzip" if new31 else None)
        if new31:
            out["httpHeaders"] = [
                {"name": "Authorization", "value": "Bearer c2VjcmV0"},
                {"name": "X-Drop-Me"},
            ]
        return out

    ignition: dict[str, Any] = {
        "version": version,
        "config": {
            "merge": [remote("https://config.example.com/base.ign")],
            "replace": remote("https://config.example.com/replace.ign"),
        },
        "timeouts": {"httpResponseHeaders": 20, "httpTotal": 600},
        "security": {"tls": {"certificateAuthorities": [remote("https://config.example.com/ca.pem")]}},
    }
    if new31:
        ignition["proxy"] = {
            "httpProxy": "http://proxy.example.com:3128",
            "httpsProxy": "http://proxy.example.com:3129",
            "noProxy": ["localhost", ".internal.example.com", "10.0.0.0/8"],
        }

    data_part: dict[str, Any] = {
        "label": "data",
        "number": 5,
        "sizeMiB": 4096,
        "startMiB": 0,
        "typeGuid": "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        "guid": "8a4a2ef6-1f5e-4c4b-9b53-5d1f0e7d2c11",
        "wipePartitionEntry": True,
        "shouldExist": True,
    }
    if new32:
        data_part["resize"] = True
    data_fs: dict[str, Any] = {
        "device": "/dev/disk/by-partlabel/data",
        "format": "ext4",
        "path": "/var/data",
        "wipeFilesystem": True,
        "label": "DATA",
        "uuid": "3c5b1e2a-7d44-4a8e-8f43-0d3a1b2c4d5e",
        "options": ["-m", "0"],
    }
    if new31:
        data_fs["mountOptions"] = ["noatime"]
    hostname = {
        "path": "/etc/hostname",
        "overwrite": True,
        "contents": resource("data:,pine01%0A", compression=""),
        "mode": 420,
        "user": {"id": 0},
        "group": {"name": "root"},
    }
    app = {
        "path": "/opt/app/bin/app",
        "contents": resource("https://files.example.com/app.gz", compression="gzip", headers=True),
        "append": [
            resource("https://files.example.com/tail.gz", compression="gzip", headers=True),
            {"source": "s3://bucket/extra"},
        ],
        "mode": 493,
        "user": {"name": "app"},
        "group": {"id": 1001},
    }
    storage: dict[str, Any] = {
        "disks": [
            {
                "device": "/dev/vda",
                "wipeTable": False,
                "partitions": [data_part, {"number": 9, "shouldExist": False}],
            }
        ],
        "raid": [
            {
                "name": "md0",
                "level": "raid1",
                "devices": ["/dev/vdb", "/dev/vdc"],
                "spares": 0,
                "options": ["--metadata=1.2"],
            }
        ],
        "filesystems": [data_fs, {"device": "/dev/md/md0", "format": "xfs", "wipeFilesystem": True}],
        "files": [hostname, app],
        "directories": [
            {
                "path": "/var/lib/app",
                "overwrite": False,
                "mode": 488,
                "user": {"name": "app"},
                "group": {"id": 1001},
            },
            {"path": "/var/lib/app/cache", "user": {"id": 0}, "group": {"name": "root"}},
        ],
        "links": [
            {
                "path": "/etc/localtime",
                "overwrite": True,
                "user": {"id": 0},
                "group": {"id": 0},
                "target": "/usr/share/zoneinfo/UTC",
                "hard": False,
            },
            {"path": "/opt/app/bin/app-hard", "target": "/opt/app/bin/app", "hard": True},
            {
                "path": "/home/core/app",
                "user": {"name": "core"},
                "group": {"name": "core"},
                "target": "/opt/app",
            },
        ],
    }
    if new32:
        tang: dict[str, Any] = {"url": "http://tang.example.com", "thumbprint": "PLjNyRdGw03zlRoGjQYMahSZGu9"}
        if new34:
            tang["advertisement"] = '{"payload": "eyJrZXlzIjpbXX0", "protected": "eyJhbGciOiJFUzUxMiJ9"}'
        secret: dict[str, Any] = {
            "name": "secret",
            "device": "/dev/vdd",
            "keyFile": resource("https://keys.example.com/secret.key", compression="", headers=True),
            "label": "SECRET",
            "uuid": "7f3e1c9a-2b4d-4e6f-8a1b-9c0d2e3f4a5b",
            "options": ["--cipher", "aes-xts-plain64"],
            "wipeVolume": True,
            "clevis": {"tpm2": True, "tang": [tang], "threshold": 1},
        }
        if new34:
            secret["discard"] = True
            secret["openOptions"] = ["--perf-no_read_workqueue"]
        if new35:
            secret["cex"] = {"enabled": False}
        custom = {
            "name": "custom",
            "device": "/dev/vde",
            "clevis": {
                "custom": {
                    "pin": "sss",
                    "config": '{"t": 1, "pins": {"tpm2": {}}}',
                    "needsNetwork": False,
                }
            },
        }
        storage["luks"] = [secret, custom]
        storage["filesystems"].append(
            {"device": "/dev/mapper/secret", "format": "btrfs", "path": "/var/secret", "wipeFilesystem": True}
        )
    if new33:
        storage["filesystems"].append({"device": "/dev/vdf", "format": "none", "wipeFilesystem": True})

    core: dict[str, Any] = {
        "name": "core",
        "passwordHash": "$6$rounds=4096$saltsalt$hashhashhash",
        "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7ly2b3o5s core@example"],
        "uid": 1000,
        "gecos": "CoreOS Admin",
        "homeDir": "/home/core",
        "noCreateHome": False,
        "primaryGroup": "core",
        "groups": ["wheel", "adm"],
        "noUserGroup": False,
        "noLogInit": True,
        "shell": "/bin/sh",
        "system": False,
    }
    app_group: dict[str, Any] = {"name": "app", "gid": 1001, "passwordHash": "!", "system": True}
    passwd: dict[str, Any] = {"users": [core], "groups": [app_group]}
    if new32:
        core["shouldExist"] = True
        app_group["shouldExist"] = True
        passwd["users"].append({"name": "games", "shouldExist": False})
        passwd["groups"].append({"name": "games", "shouldExist": False})

    config: dict[str, Any] = {
        "ignition": ignition,
        "storage": storage,
        "systemd": {
            "units": [
                {
                    "name": "app.service",
                    "enabled": True,
                    "contents": "[Unit]\nDescription=App\n\n[Service]\nExecStart=/opt/app/bin/app\n\n"
                    "[Install]\nWantedBy=multi-user.target\n",
                    "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=MODE=prod\n"}],
                },
                {"name": "debug-shell.service", "mask": True},
                {"name": "sshd.service", "enabled": True, "dropins": [{"name": "20-empty.conf"}]},
            ]
        },
        "passwd": passwd,
    }
    if new33:
        config["kernelArguments"] = {
            "shouldExist": ["console=ttyS0,115200n8", "systemd.unified_cgroup_hierarchy=1"],
            "shouldNotExist": ["quiet"],
        }
    return config


def small_configs(version: str) -> dict[str, dict[str, Any]]:
    """Short configs as people write them (Butane output shape)."""
    return {
        "minimal": {"ignition": {"version": version}},
        "ssh-and-hostname": {
            "ignition": {"version": version},
            "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-rsa AAAAB3NzaC1yc2E core"]}]},
            "storage": {
                "files": [{"path": "/etc/hostname", "mode": 420, "contents": {"source": "data:,node1"}}]
            },
        },
        "var-partition": {
            "ignition": {"version": version},
            "storage": {
                "disks": [
                    {
                        "device": "/dev/disk/by-id/virtio-disk0",
                        "partitions": [{"label": "var", "number": 0, "sizeMiB": 0}],
                    }
                ],
                "filesystems": [
                    {
                        "device": "/dev/disk/by-partlabel/var",
                        "format": "xfs",
                        "path": "/var",
                        "wipeFilesystem": True,
                    }
                ],
            },
            "systemd": {
                "units": [
                    {
                        "name": "var.mount",
                        "enabled": True,
                        "contents": "[Mount]\nWhat=/dev/disk/by-partlabel/var\nWhere=/var\nType=xfs\n\n"
                        "[Install]\nRequiredBy=local-fs.target\n",
                    }
                ]
            },
        },
        "nulls": {
            # Go's decoder treats null as "not given" for every field and list item
            "ignition": {"version": version, "config": None, "timeouts": {"httpTotal": None}},
            "passwd": {
                "users": [{"name": "core", "uid": None, "sshAuthorizedKeys": [None, "ssh-rsa AAAA x"]}]
            },
            "storage": {
                "files": [
                    {"path": "/etc/a", "mode": None, "contents": {"source": "data:,a", "compression": None}},
                ],
                "links": None,
            },
            "systemd": None,
        },
    }


def valid_configs(version: str) -> dict[str, dict[str, Any]]:
    return {"full": full_config(version), **small_configs(version)}


VALID_CASES = [(ver, name) for ver in VERSIONS for name in valid_configs(ver)]


# --- schema-level checks --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_file_is_a_valid_draft_2020_12_schema(version: str) -> None:
    schema = load(version)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://pine.example/schemas/ignition/{version}.json"
    assert schema["$defs"]["Ignition"]["properties"]["version"]["const"] == version


def test_committed_files_equal_generator_output() -> None:
    spec = importlib.util.spec_from_file_location("ignition_schema_build", SCHEMA_DIR / "_build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert tuple(build.VERSIONS) == VERSIONS
    for version in VERSIONS:
        assert (SCHEMA_DIR / f"{version}.json").read_text(encoding="utf-8") == build.render(version), version
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == [f"{v}.json" for v in VERSIONS]


def _types(node: dict[str, Any]) -> list[str]:
    t = node["type"]
    return [t] if isinstance(t, str) else list(t)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


@pytest.mark.parametrize("version", VERSIONS)
def test_structure_follows_walker_rules(version: str) -> None:
    schema = load(version)
    problems: list[str] = []
    used_defs: set[str] = set()

    def check(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            problems.append(f"{where}: not an object")
            return
        allowed = STRUCTURE_KEYS | EDITOR_KEYS | (ROOT_KEYS if where == "#" else set())
        for key in set(node) - allowed:
            problems.append(f"{where}: keyword {key!r} not allowed")
        if "$ref" in node:
            ref = node["$ref"]
            name = ref.removeprefix("#/$defs/")
            if not ref.startswith("#/$defs/") or name not in schema["$defs"]:
                problems.append(f"{where}: $ref {ref!r} does not resolve locally")
            else:
                used_defs.add(name)
            if set(node) & (STRUCTURE_KEYS - {"$ref"}):
                problems.append(f"{where}: $ref mixed with structure keywords")
            return
        if "type" not in node:
            problems.append(f"{where}: no type")
            return
        types = _types(node)
        if not types or set(types) - JSON_TYPES or len(set(types)) != len(types):
            problems.append(f"{where}: bad type {node['type']!r}")
        if "object" in types:
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: object without additionalProperties: false")
            props = node.get("properties")
            if not isinstance(props, dict) or not props:
                problems.append(f"{where}: object without properties")
                props = {}
            for name in node.get("required", []):
                if name not in props:
                    problems.append(f"{where}: required {name!r} is not a property")
            for name, sub in props.items():
                check(sub, f"{where}/properties/{name}")
                target = _resolve(schema, sub) if isinstance(sub, dict) else {}
                if (
                    "type" in target
                    and "null" not in _types(target)
                    and f"{where}/{name}" not in {"#/$defs/Ignition/version"}
                ):
                    problems.append(f"{where}/properties/{name}: null not accepted")
        elif "properties" in node or "additionalProperties" in node:
            problems.append(f"{where}: properties on a non-object")
        if "array" in types:
            if "items" not in node:
                problems.append(f"{where}: array without items")
            else:
                check(node["items"], f"{where}/items")
                target = _resolve(schema, node["items"])
                if "null" not in _types(target):
                    problems.append(f"{where}/items: null not accepted")
        elif "items" in node:
            problems.append(f"{where}: items on a non-array")
        for value in node.get("enum", []):
            kind = {str: "string", bool: "boolean", int: "integer", type(None): "null"}[type(value)]
            if kind not in types:
                problems.append(f"{where}: enum value {value!r} not of the declared type")
        if "integer" in types and "default" in node and not isinstance(node["default"], int):
            problems.append(f"{where}: default not an integer")

    check({k: v for k, v in schema.items() if k != "$defs"}, "#")
    for name, node in schema["$defs"].items():
        check(node, f"#/$defs/{name}")
        if "object" not in _types(node):
            problems.append(f"#/$defs/{name}: a definition that is not an object")
    for name in set(schema["$defs"]) - used_defs:
        problems.append(f"#/$defs/{name}: never referenced")
    assert problems == []


def _schema_paths(schema: dict[str, Any]) -> set[str]:
    """Every property path of the schema, lists written as []."""
    out: set[str] = set()

    def walk(node: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> None:
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            assert name not in seen, f"recursive $ref at {prefix}"
            walk(schema["$defs"][name], prefix, (*seen, name))
            return
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            walk(sub, path, seen)
        if "items" in node:
            walk(node["items"], prefix + "[]", seen)

    walk(schema, "", ())
    return out


def _config_paths(value: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= _config_paths(sub, path)
    elif isinstance(value, list):
        for item in value:
            out |= _config_paths(item, prefix + "[]")
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_full_config_uses_every_field_of_its_version(version: str) -> None:
    # so the reference cross-check below covers every key name of the schema
    assert _config_paths(full_config(version)) == _schema_paths(load(version))


# --- configs against the schemas ------------------------------------------------------------------


@pytest.mark.parametrize(("version", "name"), VALID_CASES)
def test_valid_config_passes(version: str, name: str) -> None:
    assert errors(version, valid_configs(version)[name]) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_valid_config_of_a_version_passes_all_later_versions(version: str) -> None:
    # 3.x has no breaking change: a config upgrades by changing its version string
    for later in VERSIONS[VERSIONS.index(version) :]:
        for name, config in valid_configs(version).items():
            upgraded = copy.deepcopy(config)
            upgraded["ignition"]["version"] = later
            assert errors(later, upgraded) == [], (version, later, name)


# For each step: a config only the later version accepts, and the key (as ignition-validate names
# it in `unused key KEY`) that the earlier version does not have (None: no structural change).
def _step_config(later: str) -> tuple[dict[str, Any], str | None]:
    base: dict[str, Any] = {"ignition": {"version": later}}
    if later == "3.1.0":
        base["storage"] = {
            "filesystems": [
                {
                    "device": "/dev/vdb1",
                    "format": "btrfs",
                    "path": "/var/data",
                    "mountOptions": ["subvolid=5"],
                }
            ]
        }
        return base, "mountOptions"
    if later == "3.2.0":
        base["passwd"] = {"users": [{"name": "core", "shouldExist": False}]}
        return base, "shouldExist"
    if later == "3.3.0":
        base["kernelArguments"] = {"shouldExist": ["console=ttyS0"]}
        return base, "kernelArguments"
    luks: dict[str, Any] = {"name": "data", "device": "/dev/vdb"}
    base["storage"] = {"luks": [luks]}
    if later == "3.4.0":
        luks["discard"] = True
        return base, "discard"
    if later == "3.5.0":
        luks["cex"] = {"enabled": True}
        return base, "cex"
    return base, None


STEPS = list(itertools.pairwise(VERSIONS))


@pytest.mark.parametrize(("earlier", "later"), STEPS)
def test_field_added_in_later_version_fails_earlier_schema(earlier: str, later: str) -> None:
    config, key = _step_config(later)
    assert errors(later, config) == []
    older = copy.deepcopy(config)
    older["ignition"]["version"] = earlier
    found = errors(earlier, older)
    if key is None:
        # 3.6.0 changed semantics only (special mode bits honoured, any clevis pin name)
        assert found == []
        return
    assert len(found) == 1 and f"'{key}' was unexpected" in found[0], found


def test_more_version_steps() -> None:
    # the other additions of each step, field by field (first version that has the field)
    paths = {v: _schema_paths(load(v)) for v in VERSIONS}
    expect = {
        "3.1.0": [
            "ignition.proxy",
            "storage.files[].contents.httpHeaders",
            "ignition.config.merge[].compression",
        ],
        "3.2.0": ["storage.disks[].partitions[].resize", "storage.luks", "passwd.groups[].shouldExist"],
        "3.3.0": ["kernelArguments.shouldNotExist"],
        "3.4.0": ["storage.luks[].openOptions", "storage.luks[].clevis.tang[].advertisement"],
        "3.5.0": ["storage.luks[].cex.enabled"],
    }
    for version, new_paths in expect.items():
        before = VERSIONS[VERSIONS.index(version) - 1]
        for path in new_paths:
            assert path in paths[version] and path not in paths[before], (version, path)
    # nothing was ever removed, and 3.6.0 has exactly the fields of 3.5.0
    for earlier, later in STEPS:
        assert paths[earlier] <= paths[later], (earlier, later)
    assert paths["3.5.0"] == paths["3.6.0"]


def test_enumerations_by_version() -> None:
    def fs(version: str, fmt: str) -> dict[str, Any]:
        return {
            "ignition": {"version": version},
            "storage": {"filesystems": [{"device": "/dev/vdb", "format": fmt}]},
        }

    assert errors("3.3.0", fs("3.3.0", "none")) == []
    assert errors("3.2.0", fs("3.2.0", "none")) != []
    for version in VERSIONS:
        assert errors(version, fs(version, "ntfs")) != []

    def hashed(version: str, hash_: str) -> dict[str, Any]:
        contents = {"source": "data:,hello", "verification": {"hash": hash_}}
        return {
            "ignition": {"version": version},
            "storage": {"files": [{"path": "/a", "contents": contents}]},
        }

    assert errors("3.0.0", hashed("3.0.0", SHA512)) == []
    assert errors("3.0.0", hashed("3.0.0", SHA256)) != []  # sha256 came with 3.1.0
    assert errors("3.1.0", hashed("3.1.0", SHA256)) == []
    assert errors("3.1.0", hashed("3.1.0", "md5-5d41402abc4b2a76b9719d911017c592")) != []
    assert errors("3.1.0", hashed("3.1.0", SHA256[:-2])) != []  # wrong digest length

    compressed = full_config("3.2.0")
    compressed["storage"]["files"][0]["contents"]["compression"] = "bzip2"
    assert errors("3.2.0", compressed) != []
    raid = full_config("3.0.0")
    raid["storage"]["raid"][0]["level"] = "raid7"
    assert errors("3.0.0", raid) != []


def test_version_must_be_exact() -> None:
    config = {"ignition": {"version": "3.2.0"}}
    assert errors("3.1.0", config) != []
    assert errors("3.2.0", {"ignition": {"version": "3.2.0-experimental"}}) != []
    assert errors("3.2.0", {"ignition": {}}) != []
    assert errors("3.2.0", {"storage": {}}) != []


def _wrong_type_cases(version: str) -> dict[str, dict[str, Any]]:
    def with_file(**fields: Any) -> dict[str, Any]:
        return {"ignition": {"version": version}, "storage": {"files": [{"path": "/etc/a", **fields}]}}

    return {
        "string mode": with_file(mode="0644"),
        "float mode": with_file(mode=420.5),
        "integer path": {"ignition": {"version": version}, "storage": {"files": [{"path": 17}]}},
        "object for a list": {"ignition": {"version": version}, "storage": {"files": {"path": "/etc/a"}}},
        "string for a list of strings": {
            "ignition": {"version": version},
            "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": "ssh-rsa AAAA"}]},
        },
        "string for a boolean": {
            "ignition": {"version": version},
            "systemd": {"units": [{"name": "a.service", "enabled": "yes"}]},
        },
        "list for an object": with_file(contents=[{"source": "data:,a"}]),
        "integer for a list item": {
            "ignition": {"version": version},
            "passwd": {"users": [{"name": "core", "groups": [10]}]},
        },
        "string uid": {
            "ignition": {"version": version},
            "passwd": {"users": [{"name": "core", "uid": "1000"}]},
        },
        "boolean timeout": {"ignition": {"version": version, "timeouts": {"httpTotal": True}}},
    }


WRONG_CASES = [(ver, name) for ver in VERSIONS for name in _wrong_type_cases(ver)]


@pytest.mark.parametrize(("version", "name"), WRONG_CASES)
def test_wrong_type_fails(version: str, name: str) -> None:
    assert errors(version, _wrong_type_cases(version)[name]) != []


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_key_fails(version: str) -> None:
    config = full_config(version)
    config["storage"]["files"][0]["contnets"] = {}
    config["passwd"]["users"][0]["sshKeys"] = []
    found = errors(version, config)
    assert len(found) == 2
    assert any("'contnets' was unexpected" in f for f in found)
    assert any("'sshKeys' was unexpected" in f for f in found)


@pytest.mark.parametrize("version", VERSIONS)
def test_mode_range(version: str) -> None:
    def mode(m: int) -> dict[str, Any]:
        return {"ignition": {"version": version}, "storage": {"directories": [{"path": "/d", "mode": m}]}}

    assert errors(version, mode(0o7777)) == []
    assert errors(version, mode(0o10000)) != []
    assert errors(version, mode(-1)) != []


# --- cross-check with the reference implementation ------------------------------------------------


def ignition_validate(tmp_path: Path, config: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "config.ign"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    assert IGNITION_VALIDATE is not None
    proc = subprocess.run(
        [IGNITION_VALIDATE, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def unused_keys(out: str) -> list[str]:
    # `unused key X` ends a warning line (ignition-validate 2.14 capitalizes it; not to be confused
    # with "Unused keys may not be reported")
    return re.findall(r"[Uu]nused key (\S+)$", out, re.MULTILINE)


REFERENCE_CASES = [(ver, name) for ver in REFERENCE_VERSIONS for name in valid_configs(ver)]


@needs_reference
@pytest.mark.conformance
@pytest.mark.parametrize(("version", "name"), REFERENCE_CASES)
@pytest.mark.real_processes
def test_reference_accepts_field_names_and_types(tmp_path: Path, version: str, name: str) -> None:
    rc, out = ignition_validate(tmp_path, valid_configs(version)[name])
    assert unused_keys(out) == []
    assert "cannot unmarshal" not in out
    if name != "nulls":  # nulls decode fine but leave required fields empty
        assert rc == 0, out
        assert "error" not in out, out


@needs_reference
@pytest.mark.conformance
@pytest.mark.parametrize(("earlier", "later"), [s for s in STEPS if s[0] in REFERENCE_VERSIONS])
@pytest.mark.real_processes
def test_reference_agrees_on_version_steps(tmp_path: Path, earlier: str, later: str) -> None:
    config, key = _step_config(later)
    assert key is not None
    older = copy.deepcopy(config)
    older["ignition"]["version"] = earlier
    _, out = ignition_validate(tmp_path, older)
    assert unused_keys(out) == [key], out
    if later in REFERENCE_VERSIONS:
        _, out = ignition_validate(tmp_path, config)
        assert unused_keys(out) == [], out


@needs_reference
@pytest.mark.conformance
@pytest.mark.parametrize(
    ("version", "name"),
    [(ver, name) for ver in REFERENCE_VERSIONS for name in _wrong_type_cases(ver)],
)
@pytest.mark.real_processes
def test_reference_rejects_the_same_wrong_types(tmp_path: Path, version: str, name: str) -> None:
    rc, out = ignition_validate(tmp_path, _wrong_type_cases(version)[name])
    assert rc != 0
    assert "cannot unmarshal" in out, out
