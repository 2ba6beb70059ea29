"""The typed model: names, None-for-absent, tuples, enums, objects held by value, round trips."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pineinstall.config import model
from pineinstall.config.fields import camel

FULL = {
    "ignition": {
        "version": "3.6.0",
        "config": {
            "merge": [{"source": "http://x/m.ign", "verification": {"hash": "sha512-AB"}}],
            "replace": {"source": "data:,{}", "compression": "gzip"},
        },
        "timeouts": {"httpResponseHeaders": 5, "httpTotal": 0},
        "security": {"tls": {"certificateAuthorities": [{"source": "data:,ca", "httpHeaders": [{"name": "A", "value": "b"}]}]}},
        "proxy": {"httpProxy": "http://p:3128", "httpsProxy": "http://p:3129", "noProxy": ["a", ".b"]},
    },
    "kernelArguments": {"shouldExist": ["quiet"], "shouldNotExist": ["rhgb"]},
    "passwd": {
        "users": [
            {
                "name": "core",
                "passwordHash": "$6$x",
                "sshAuthorizedKeys": ["ssh-ed25519 A"],
                "uid": 1000,
                "gecos": "Core",
                "homeDir": "/var/home/core",
                "noCreateHome": False,
                "primaryGroup": "core",
                "groups": ["wheel"],
                "noUserGroup": True,
                "noLogInit": True,
                "shell": "/bin/sh",
                "shouldExist": True,
                "system": False,
            }
        ],
        "groups": [{"name": "ops", "gid": 3000, "passwordHash": "!", "shouldExist": False, "system": True}],
    },
    "storage": {
        "disks": [
            {
                "device": "/dev/vda",
                "wipeTable": True,
                "partitions": [
                    {"label": "root", "number": 4, "sizeMiB": 0, "startMiB": 100, "typeGuid": "T", "guid": "G",
                     "wipePartitionEntry": True, "shouldExist": True, "resize": True}
                ],
            }
        ],
        "raid": [{"name": "md0", "level": "raid1", "devices": ["/dev/a", "/dev/b"], "spares": 1, "options": ["--x"]}],
        "filesystems": [
            {"device": "/dev/md0", "format": "xfs", "path": "/var", "wipeFilesystem": True, "label": "var",
             "uuid": "U", "options": ["-f"], "mountOptions": ["noatime"]},
            {"device": "/dev/sdb", "format": ""},
        ],
        "files": [
            {"path": "/etc/f", "overwrite": True, "mode": 0o600, "user": {"id": 0}, "group": {"name": "wheel"},
             "contents": {"source": "data:,x"}, "append": [{"source": "data:,y", "compression": ""}]}
        ],
        "directories": [{"path": "/d", "mode": 0o755}],
        "links": [{"path": "/l", "target": "/t", "hard": False}],
        "luks": [
            {"name": "root", "device": "/dev/vda4", "keyFile": {"source": "data:,k"}, "label": "L", "uuid": "U",
             "options": ["--o"], "discard": True, "openOptions": ["--p"], "wipeVolume": True,
             "clevis": {"tang": [{"url": "http://t", "thumbprint": "T", "advertisement": "{}"}], "tpm2": True,
                        "threshold": 2, "custom": {"pin": "sss", "config": "{}", "needsNetwork": True}},
             "cex": {"enabled": False}}
        ],
    },
    "systemd": {
        "units": [
            {"name": "a.service", "enabled": True, "mask": False, "contents": "[Unit]\n",
             "dropins": [{"name": "10.conf", "contents": "[Service]\n"}]}
        ]
    },
}  # fmt: skip


def test_every_field_is_read() -> None:
    c = model.from_dict(FULL)
    u = c.passwd.users[0]
    assert (u.name, u.password_hash, u.ssh_authorized_keys, u.uid, u.gecos, u.home_dir) == (
        "core", "$6$x", ("ssh-ed25519 A",), 1000, "Core", "/var/home/core",
    )  # fmt: skip
    assert (u.no_create_home, u.primary_group, u.groups, u.no_user_group, u.no_log_init) == (
        False, "core", ("wheel",), True, True,
    )  # fmt: skip
    assert (u.shell, u.should_exist, u.system) == ("/bin/sh", True, False)
    g = c.passwd.groups[0]
    assert (g.name, g.gid, g.password_hash, g.should_exist, g.system) == ("ops", 3000, "!", False, True)
    p = c.storage.disks[0].partitions[0]
    assert (p.size_mib, p.start_mib, p.type_guid, p.wipe_partition_entry, p.resize) == (
        0,
        100,
        "T",
        True,
        True,
    )
    assert c.storage.raid[0].level is model.RaidLevel.RAID1
    assert c.storage.filesystems[0].format is model.FilesystemFormat.XFS
    assert c.storage.filesystems[0].mount_options == ("noatime",)
    assert c.storage.filesystems[1].format is None  # "" is unset, as in Go
    f = c.storage.files[0]
    assert f.contents.source == "data:,x" and f.append[0].compression is None
    assert f.group.name == "wheel" and f.user.id == 0 and f.user.name is None
    lk = c.storage.luks[0]
    assert lk.key_file.source == "data:,k" and lk.open_options == ("--p",)
    assert lk.clevis.custom is not None and lk.clevis.custom.needs_network is True
    assert lk.clevis.tang[0].advertisement == "{}" and lk.cex.enabled is False
    unit = c.systemd.units[0]
    assert (unit.name, unit.enabled, unit.mask, unit.dropins[0].name) == ("a.service", True, False, "10.conf")
    ign = c.ignition
    assert ign.config.merge[0].verification.hash_function is model.HashFunction.SHA512
    assert ign.config.merge[0].verification.hash_sum == "ab"
    assert ign.config.replace is not None and ign.config.replace.compression is model.Compression.GZIP
    assert ign.timeouts.http_response_headers == 5 and ign.timeouts.http_total == 0
    assert ign.security.tls.certificate_authorities[0].http_headers[0] == model.HTTPHeader("A", "b")
    assert ign.proxy.no_proxy == ("a", ".b")
    assert c.kernel_arguments.should_not_exist == ("rhgb",)


def test_absent_is_none_lists_are_empty_tuples_objects_are_present() -> None:
    c = model.from_dict({"ignition": {"version": "3.6.0"}, "passwd": {"users": [{"name": "u"}]}})
    u = c.passwd.users[0]
    assert u.uid is None and u.no_create_home is None and u.should_exist is None
    assert u.groups == () and u.ssh_authorized_keys == ()
    assert c.storage.files == () and c.systemd.units == ()
    assert c.ignition.config.replace is None  # held by pointer in Ignition
    assert c.ignition.timeouts.http_total is None
    assert c.ignition.proxy.no_proxy == ()


def test_null_is_absent() -> None:
    c = model.from_dict({"passwd": {"users": [{"name": "u", "uid": None, "groups": None}]}, "storage": None})
    assert c.passwd.users[0].uid is None and c.passwd.users[0].groups == ()
    assert c.storage == model.Storage()


def test_false_and_zero_are_not_none() -> None:
    c = model.from_dict({"passwd": {"users": [{"name": "u", "uid": 0, "system": False, "gecos": ""}]}})
    u = c.passwd.users[0]
    assert u.uid == 0 and u.system is False and u.gecos == ""


def test_frozen_and_slotted() -> None:
    c = model.from_dict(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.passwd.users[0].name = "x"  # type: ignore[misc]
    assert not hasattr(c.passwd.users[0], "__dict__")
    hash(c)  # tuples all the way down: hashable


def test_bad_enum_value_is_an_error() -> None:
    with pytest.raises(ValueError):
        model.from_dict({"storage": {"raid": [{"name": "m", "level": "raid7"}]}})


def test_round_trip() -> None:
    c = model.from_dict(FULL)
    again = model.from_dict(json.loads(json.dumps(model.to_dict(c))))
    assert again == c


def test_every_key_of_the_36_schema_has_a_field() -> None:
    """The model covers the whole spec: each property in our 3.6.0 schema maps to a field."""
    schema_path = Path(__file__).parents[2] / "schemas" / "ignition" / "3.6.0.json"
    if not schema_path.exists():
        pytest.skip("schema not generated")
    schema = json.loads(schema_path.read_text())
    defs = schema.get("$defs", {})
    missing: list[str] = []

    def fields_of(cls: type) -> set[str]:
        return {camel(f.name) for f in dataclasses.fields(cls)}

    def walk(node: dict, cls: type, where: str) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        props = node.get("properties", {})
        hints = {f.name: f for f in dataclasses.fields(cls)}
        for key, sub in props.items():
            if key not in fields_of(cls):
                missing.append(f"{where}.{key}")
                continue
            f = hints[next(n for n in hints if camel(n) == key)]
            inner = f.metadata.get("obj") or f.metadata.get("ptr") or f.metadata.get("list")
            if inner is not None and dataclasses.is_dataclass(inner):
                if "$ref" in sub:
                    sub = defs[sub["$ref"].split("/")[-1]]
                walk(sub.get("items", sub), inner, f"{where}.{key}")

    walk(schema, model.Config, "$")
    assert missing == []
