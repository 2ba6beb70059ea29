"""Every piece of Butane sugar, one behaviour per test, through ``butane_like.translate``."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import string
import urllib.parse
from pathlib import Path

import pytest

from butane_like import translate
from butane_like.base import dataurl
from butane_like.base.dataurl import make_data_url
from butane_like.base.mount_units import unit_escape_path


def run(body: str, version: str = "1.5.0", variant: str = "fcos", files_dir: str | None = None):
    return translate(f"variant: {variant}\nversion: {version}\n{body}".encode(), files_dir=files_dir)


def run_local(files_dir: Path, body: str, files: dict[str, str | bytes], version: str = "1.5.0"):
    """run() with local files (name -> contents) written to files_dir first."""
    for name, contents in files.items():
        path = files_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(contents, str):
            path.write_text(contents)
        else:
            path.write_bytes(contents)
    return run(body, version, files_dir=str(files_dir))


def text_of(res: dict) -> bytes:
    url = res["source"]
    meta, _, payload = url[5:].partition(",")
    raw = base64.b64decode(payload) if meta.endswith(";base64") else urllib.parse.unquote_to_bytes(payload)
    return gzip.decompress(raw) if res.get("compression") == "gzip" else raw


def raw_entries(res) -> list[str]:
    return [str(e) for e in res.entries]


# -- data URLs -------------------------------------------------------------------------------
def test_short_ascii_is_percent_encoded() -> None:
    res = run("storage:\n  files:\n    - path: /etc/a\n      contents:\n        inline: 'a b/c'\n")
    assert res.config["storage"]["files"][0]["contents"] == {"compression": "", "source": "data:,a%20b%2Fc"}


def test_unreserved_characters_stay() -> None:
    url, comp = make_data_url(b"AZaz09-_.!~*'()")
    assert (url, comp) == ("data:,AZaz09-_.!~*'()", "")


def test_non_ascii_text_prefers_base64() -> None:
    # The corpus's own example (case 026): base64 is shorter than percent-encoding here...
    url, comp = make_data_url("Grüße aus München — naïve café\n".encode())
    assert url == "data:;base64,R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCUIG5hw692ZSBjYWbDqQo=" and comp == ""
    # ...and not for a short word, where the escapes cost less than base64's prefix.
    assert make_data_url("Grüße".encode()) == ("data:,Gr%C3%BC%C3%9Fe", "")


def test_empty_contents() -> None:
    assert make_data_url(b"") == ("data:,", "")


def test_large_repetitive_text_is_gzipped() -> None:
    data = b"server { listen 443; }\n" * 200
    url, comp = make_data_url(data)
    assert comp == "gzip" and url.startswith("data:;base64,H4sI")
    assert gzip.decompress(base64.b64decode(url.split(",", 1)[1])) == data


def test_user_compression_is_kept_and_not_applied_again() -> None:
    res = run(
        "storage:\n  files:\n    - path: /etc/a\n      contents:\n        compression: gzip\n"
        "        inline: " + "x" * 500 + "\n"
    )
    contents = res.config["storage"]["files"][0]["contents"]
    assert contents["compression"] == "gzip"
    assert contents["source"] == "data:," + "x" * 500


def test_gzip_has_go_header() -> None:
    for size in (10000, dataurl.FAST_GZIP_MIN * 4):  # both compressors (zlib below, ISA-L above)
        url, comp = make_data_url(b"a" * size)
        assert comp == "gzip"
        raw = base64.b64decode(url.split(",", 1)[1])
        assert raw[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        assert gzip.decompress(raw) == b"a" * size


def test_gzip_bytes_are_gos_within_the_budget() -> None:
    """Up to EXACT_MAX and within a translation's budget the gzip bytes are goflate's (Go's);
    past the budget zlib's: the same contents, and a budget spent in the order asked."""
    from butane_like.base import goflate

    data = b"[Service]\nExecStart=/usr/bin/true\n" * 200
    budget = dataurl.ExactBudget(total=len(data) + 10)
    url, comp = make_data_url(data, exact=budget)
    assert comp == "gzip" and base64.b64decode(url.split(",", 1)[1]) == goflate.gzip(data)
    assert budget.left == 10
    url2, comp2 = make_data_url(data, exact=budget)  # budget spent: zlib's bytes, same contents
    raw2 = base64.b64decode(url2.split(",", 1)[1])
    assert comp2 == "gzip" and raw2 != goflate.gzip(data) and gzip.decompress(raw2) == data
    big = data * ((dataurl.EXACT_MAX // len(data)) + 1)  # past EXACT_MAX: never Go's bytes
    assert make_data_url(big, exact=True) == make_data_url(big, exact=False)


def _contents(kind: str, size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if kind == "random":  # unreserved letters, a newline every 76: gzip and escaping nearly tie
        body = "".join(rng.choices(string.ascii_letters + string.digits + "-_.~", k=size))
        return "\n".join(body[i : i + 76] for i in range(0, size, 76)).encode()
    if kind == "config":  # repetitive: gzip wins by far
        return "".join(
            f"option_{rng.randrange(40)} = {rng.randrange(10)}\n" for _ in range(size // 14)
        ).encode()
    if kind == "binary":  # incompressible bytes: base64
        return rng.randbytes(size)
    return b'<a href="x?y=1&z=2"> {} [] % # ; / \\ </a>\n' * (size // 40)  # escapes triple it


@pytest.mark.parametrize("kind", ["random", "config", "binary", "reserved"])
@pytest.mark.parametrize("size", [3000, dataurl.FAST_GZIP_MIN + 1, 200_000])
def test_encoding_is_the_shortest(kind: str, size: int) -> None:
    """Butane's rule, whatever the compressor: gzip+base64 only when strictly shorter (counting
    the "gzip" of the compression field), else base64 only when shorter than percent-encoding."""
    data = _contents(kind, size, size)
    url, comp = make_data_url(data)
    pct = "data:," + urllib.parse.quote(data, safe="!~*'()")
    b64 = "data:;base64," + base64.b64encode(data).decode()
    plain = b64 if len(b64) < len(pct) else pct
    if comp == "gzip":
        assert len(url) + len("gzip") < len(plain)
        assert gzip.decompress(base64.b64decode(url.split(",", 1)[1])) == data
    else:
        assert comp == "" and url == plain
        gz = "data:;base64," + base64.b64encode(dataurl.gzip_any(data)).decode()
        assert len(gz) + len("gzip") >= len(plain)


def test_many_large_files_compressed_in_parallel_decode_back() -> None:
    # Several large inline contents go through the parallel prefetch; each result must be the
    # one the direct encoder gives and decode to the text.
    texts = [
        _contents(kind, 40_000, i).decode() for i, kind in enumerate(["random", "config", "reserved"] * 3)
    ]
    body = "storage:\n  files:\n" + "".join(
        f"    - path: /f{i}\n      contents:\n        inline: {json.dumps(t)}\n" for i, t in enumerate(texts)
    )
    res = run(body)
    files = res.config["storage"]["files"]
    assert [text_of(f["contents"]) for f in files] == [t.encode() for t in texts]
    budget = dataurl.ExactBudget()  # Go's exact bytes until the translation's budget is spent
    assert sum(map(len, texts)) > budget.left
    for f, t in zip(files, texts, strict=True):
        url, comp = make_data_url(t.encode(), exact=budget)
        assert (f["contents"]["compression"], len(f["contents"]["source"])) == (comp, len(url))
    assert files[1]["contents"]["compression"] == "gzip"  # the repetitive one


# -- local files -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "name", "contents", "where"),
    [
        (
            "storage:\n  files:\n    - path: /etc/motd\n      contents:\n        local: motd\n",
            "motd",
            b"hello\n",
            ("storage", "files", 0, "contents"),
        ),
        (
            "ignition:\n  config:\n    merge:\n      - local: next.ign\n",
            "next.ign",
            b'{"ignition":{"version":"3.4.0"}}',
            ("ignition", "config", "merge", 0),
        ),
        (
            "ignition:\n  security:\n    tls:\n      certificate_authorities:\n        - local: ca.pem\n",
            "ca.pem",
            b"-----BEGIN CERTIFICATE-----\n",
            ("ignition", "security", "tls", "certificateAuthorities", 0),
        ),
    ],
    ids=["file contents", "config merge", "tls certificate authority"],
)
def test_local_becomes_a_data_url(
    body: str, name: str, contents: bytes, where: tuple, tmp_path: Path
) -> None:
    node = run_local(tmp_path, body, {name: contents}).config
    for key in where:
        node = node[key]
    assert text_of(node) == contents


def test_append_local_and_inline(tmp_path: Path) -> None:
    res = run_local(
        tmp_path,
        'storage:\n  files:\n    - path: /etc/x\n      append:\n        - inline: "one\\n"\n        - local: tail\n',
        {"tail": b"two\n"},
    )
    append = res.config["storage"]["files"][0]["append"]
    assert [text_of(a) for a in append] == [b"one\n", b"two\n"]


def test_local_without_files_dir() -> None:
    res = run("storage:\n  files:\n    - path: /etc/x\n      contents:\n        local: x\n")
    assert res.error == "source config is invalid"
    assert raw_entries(res) == [
        "error at $.storage.files.0.contents.local, line 7 col 16: local file paths are relative to a files "
        "directory that must be specified with -d/--files-dir"
    ]


def test_local_cannot_escape_files_dir(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("x")
    (tmp_path / "files").mkdir()
    res = run(
        "storage:\n  files:\n    - path: /etc/x\n      contents:\n        local: ../secret\n",
        files_dir=str(tmp_path / "files"),
    )
    assert [e.message for e in res.entries] == ["local file path traverses outside the files directory"]


def test_local_missing_file_message_is_gos(tmp_path: Path) -> None:
    res = run(
        "storage:\n  files:\n    - path: /etc/x\n      contents:\n        local: nope\n",
        files_dir=str(tmp_path),
    )
    assert [e.message for e in res.entries] == [f"open {tmp_path}/nope: no such file or directory"]


def test_inline_and_local_together(tmp_path: Path) -> None:
    res = run(
        "storage:\n  files:\n    - path: /etc/x\n      contents:\n        inline: a\n        source: https://e/x\n",
        files_dir=str(tmp_path),
    )
    assert raw_entries(res) == [
        "error at $.storage.files.0.contents.source, line 8 col 17: only one of the following can be set: "
        "inline, local, source"
    ]


def test_inline_merge_of_another_version_warns() -> None:
    res = run('ignition:\n  config:\n    replace:\n      inline: \'{"ignition":{"version":"3.0.0"}}\'\n')
    assert res.ok
    assert raw_entries(res) == [
        "warning at $.ignition.config.replace.version, line 6 col 7: skipping validation for the "
        "merge/replace ignition config due to an unkown version"
    ]


# -- trees ---------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "files" / "t"
    (root / "bin").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\n")
    os.chmod(root / "bin" / "run", 0o755)
    (root / "conf").write_text("k=v\n")
    os.symlink("conf", root / "link")
    return tmp_path / "files"


def test_tree_files_modes_links_and_order(tree: Path) -> None:
    res = run("storage:\n  trees:\n    - local: t\n      path: /opt/t\n", files_dir=str(tree))
    assert res.ok, raw_entries(res)
    files = res.config["storage"]["files"]
    assert [(f["path"], f["mode"]) for f in files] == [("/opt/t/bin/run", 0o755), ("/opt/t/conf", 0o644)]
    assert res.config["storage"]["links"] == [{"path": "/opt/t/link", "target": "conf"}]
    assert "directories" not in res.config["storage"]  # empty directories are not carried


def test_tree_defaults_to_root(tree: Path) -> None:
    res = run("storage:\n  trees:\n    - local: t\n", files_dir=str(tree))
    assert res.config["storage"]["files"][1]["path"] == "/conf"


def test_tree_entry_overridden_by_explicit_file(tree: Path) -> None:
    res = run(
        "storage:\n  files:\n    - path: /opt/t/conf\n      mode: 0600\n  trees:\n    - local: t\n      path: /opt/t\n",
        files_dir=str(tree),
    )
    conf = res.config["storage"]["files"][0]
    assert conf["path"] == "/opt/t/conf" and conf["mode"] == 0o600 and text_of(conf["contents"]) == b"k=v\n"


def test_tree_conflict_with_contents(tree: Path) -> None:
    res = run(
        "storage:\n  files:\n    - path: /opt/t/conf\n      contents:\n        inline: x\n"
        "  trees:\n    - local: t\n      path: /opt/t\n",
        files_dir=str(tree),
    )
    assert raw_entries(res) == [
        "error at $.storage.trees.0, line 9 col 7: matching filesystem node has existing contents or different type"
    ]


def test_tree_must_be_a_directory(tree: Path) -> None:
    res = run("storage:\n  trees:\n    - local: t/conf\n", files_dir=str(tree))
    assert [e.message for e in res.entries] == ["root of tree must be a directory"]


def test_tree_needs_local() -> None:
    res = run("storage:\n  trees:\n    - path: /x\n", files_dir="/tmp")
    assert [e.message for e in res.entries] == ["local is required"]


# -- passwd and systemd -------------------------------------------------------------------------
def test_ssh_keys_local_split_crlf_and_blank_lines(tmp_path: Path) -> None:
    res = run_local(
        tmp_path,
        "passwd:\n  users:\n    - name: core\n      ssh_authorized_keys: [ssh-rsa CCC inline]\n"
        "      ssh_authorized_keys_local: [k]\n",
        {"k": b"ssh-ed25519 AAA one\r\n\r\nssh-ed25519 BBB two\n\n"},
    )
    keys = res.config["passwd"]["users"][0]["sshAuthorizedKeys"]
    assert keys == ["ssh-rsa CCC inline", "ssh-ed25519 AAA one", "ssh-ed25519 BBB two"]


def test_ssh_keys_local_is_from_15() -> None:
    res = run("passwd:\n  users:\n    - name: core\n      ssh_authorized_keys_local: [k]\n", version="1.4.0")
    assert raw_entries(res) == [
        "warning at $.passwd.users.0.ssh_authorized_keys_local, line 6 col 7: unused key ssh_authorized_keys_local"
    ]


def test_unit_and_dropin_contents_local(tmp_path: Path) -> None:
    res = run_local(
        tmp_path,
        "systemd:\n  units:\n    - name: a.service\n      contents_local: a.service\n"
        "      dropins:\n        - name: 10.conf\n          contents_local: 10.conf\n",
        {"a.service": "[Service]\nExecStart=/bin/true\n", "10.conf": "[Service]\nNice=5\n"},
    )
    unit = res.config["systemd"]["units"][0]
    assert unit["contents"] == "[Service]\nExecStart=/bin/true\n"
    assert unit["dropins"] == [{"contents": "[Service]\nNice=5\n", "name": "10.conf"}]


def test_unit_both_contents_is_an_error(tmp_path: Path) -> None:
    res = run(
        "systemd:\n  units:\n    - name: a.service\n      contents: x\n      contents_local: y\n",
        files_dir="/",
    )
    assert [e.message for e in res.entries] == [
        "only one of the following can be set: contents, contents_local"
    ]


# -- mount units -----------------------------------------------------------------------------------
def test_mount_unit_generated_first_with_escaped_name() -> None:
    res = run(
        "storage:\n  filesystems:\n    - device: /dev/disk/by-label/my-data\n      path: /var/lib/my-data\n"
        "      format: xfs\n      mount_options: [noatime]\n      with_mount_unit: true\n"
        "systemd:\n  units:\n    - name: other.service\n      mask: true\n"
    )
    units = res.config["systemd"]["units"]
    assert [u["name"] for u in units] == ["var-lib-my\\x2ddata.mount", "other.service"]
    assert units[0]["enabled"] is True
    assert units[0]["contents"] == (
        "# Generated by Butane\n[Unit]\nRequires=systemd-fsck@dev-disk-by\\x2dlabel-my\\x2ddata.service\n"
        "After=systemd-fsck@dev-disk-by\\x2dlabel-my\\x2ddata.service\n\n[Mount]\nWhere=/var/lib/my-data\n"
        "What=/dev/disk/by-label/my-data\nType=xfs\nOptions=noatime\n\n[Install]\nRequiredBy=local-fs.target"
    )
    assert "withMountUnit" not in res.config["storage"]["filesystems"][0]


def test_swap_unit() -> None:
    res = run(
        "storage:\n  filesystems:\n    - device: /dev/vdb1\n      format: swap\n      with_mount_unit: true\n"
    )
    unit = res.config["systemd"]["units"][0]
    assert unit["name"] == "dev-vdb1.swap"
    assert (
        unit["contents"]
        == "# Generated by Butane\n[Swap]\nWhat=/dev/vdb1\n\n[Install]\nRequiredBy=swap.target"
    )


def test_mount_unit_on_tang_luks_is_remote() -> None:
    res = run(
        "storage:\n  luks:\n    - name: db\n      device: /dev/vdb\n      clevis:\n        tang:\n"
        "          - url: http://tang\n            thumbprint: abc\n"
        "  filesystems:\n    - device: /dev/mapper/db\n      path: /var/db\n      format: xfs\n      with_mount_unit: true\n"
    )
    contents = res.config["systemd"]["units"][0]["contents"]
    assert "Options=_netdev\n" in contents and contents.endswith("RequiredBy=remote-fs.target")


def test_user_unit_merges_into_generated_one() -> None:
    res = run(
        "storage:\n  filesystems:\n    - device: /dev/vdb\n      path: /var/b\n      format: ext4\n      with_mount_unit: true\n"
        "systemd:\n  units:\n    - name: var-b.mount\n      enabled: false\n"
    )
    units = res.config["systemd"]["units"]
    assert len(units) == 1 and units[0]["enabled"] is False and units[0]["contents"].startswith("# Generated")


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("/", "-"),
        ("/var/lib/a b", "var-lib-a\\x20b"),
        ("/var/.x", "var-.x"),
        ("/.x", "\\x2ex"),
        ("/ü", "\\xc3\\xbc"),
    ],
)
def test_unit_path_escaping(path: str, escaped: str) -> None:
    assert unit_escape_path(path) == escaped


def test_user_duplicates_stay_duplicates_when_sugar_is_merged() -> None:
    # Ignition's merge appends the child's entries the parent lacks, duplicates and all.
    res = run(
        "storage:\n  filesystems:\n    - device: /dev/sdb\n      path: /var/x\n      format: ext4\n"
        "      with_mount_unit: true\nsystemd:\n  units:\n    - name: a.service\n"
        "    - name: a.service\n      enabled: true\n"
    )
    assert res.error == "config generated was invalid"
    assert raw_entries(res) == ["error at $.systemd.units.1, line 12 col 7: duplicate entry defined"]


def test_mount_unit_needs_format_then_path() -> None:
    res = run("storage:\n  filesystems:\n    - device: /dev/a\n      with_mount_unit: true\n")
    assert [e.message for e in res.entries] == ["format is required if with_mount_unit is true"]
    res = run(
        "storage:\n  filesystems:\n    - device: /dev/a\n      format: xfs\n      with_mount_unit: true\n"
    )
    assert [e.message for e in res.entries] == [
        "path is required if with_mount_unit is true and format is not swap"
    ]


def test_mount_unit_outside_etc_var_from_16() -> None:
    body = "storage:\n  filesystems:\n    - device: /dev/a\n      path: /srv\n      format: xfs\n      with_mount_unit: true\n"
    assert run(body, version="1.5.0").ok
    assert [e.message for e in run(body, version="1.6.0").entries] == [
        "path must be under /etc or /var if with_mount_unit is true"
    ]


# -- boot device ---------------------------------------------------------------------------------------
def test_boot_device_luks_tang_and_tpm2() -> None:
    res = run(
        "boot_device:\n  luks:\n    tpm2: true\n    threshold: 2\n    tang:\n      - url: https://t\n        thumbprint: x\n"
    )
    luks = res.config["storage"]["luks"][0]
    assert luks["clevis"] == {"tang": [{"thumbprint": "x", "url": "https://t"}], "threshold": 2, "tpm2": True}
    assert luks["device"] == "/dev/disk/by-partlabel/root" and luks["name"] == "root"
    assert res.config["storage"]["filesystems"] == [
        {"device": "/dev/mapper/root", "format": "xfs", "label": "root", "wipeFilesystem": True}
    ]


@pytest.mark.parametrize(
    ("layout", "first", "second"),
    [("x86_64", "bios-1", "esp-1"), ("aarch64", "reserved-1", "esp-1"), ("ppc64le", "prep-1", "reserved-1")],
)
def test_mirror_layouts(layout: str, first: str, second: str) -> None:
    res = run(f"boot_device:\n  layout: {layout}\n  mirror:\n    devices: [/dev/sda, /dev/sdb]\n")
    disks = res.config["storage"]["disks"]
    assert [p["label"] for p in disks[0]["partitions"]] == [first, second, "boot-1", "root-1"]
    assert [r["name"] for r in res.config["storage"]["raid"]] == ["md-boot", "md-root"]
    assert res.config["storage"]["filesystems"][-1]["device"] == "/dev/md/md-root"


@pytest.mark.parametrize(
    ("layout", "device", "luks"),
    [("s390x-eckd", "/dev/dasda", "/dev/dasda2"), ("s390x-zfcp", "/dev/sdb", "/dev/sdb4")],
)
def test_s390x_luks_device(layout: str, device: str, luks: str) -> None:
    res = run(
        f"boot_device:\n  layout: {layout}\n  luks:\n    device: {device}\n    tpm2: true\n", version="1.6.0"
    )
    assert res.ok and res.config["storage"]["luks"][0]["device"] == luks


def test_s390x_layouts_are_from_16() -> None:
    res = run("boot_device:\n  layout: s390x-virt\n  luks:\n    tpm2: true\n", version="1.5.0")
    assert [e.message for e in res.entries] == ["layout must be one of: aarch64, ppc64le, x86_64"]


def test_boot_device_is_from_13_and_not_flatcar() -> None:
    assert [e.message for e in run("boot_device: {}\n", version="1.2.0").entries] == [
        "unused key boot_device"
    ]
    assert run("boot_device: {}\n", version="1.3.0").entries == []


def test_user_disk_entries_follow_the_rendered_ones() -> None:
    res = run(
        "boot_device:\n  mirror:\n    devices: [/dev/sda, /dev/sdb]\n"
        "storage:\n  disks:\n    - device: /dev/sdc\n      wipe_table: true\n"
    )
    assert [d["device"] for d in res.config["storage"]["disks"]] == ["/dev/sda", "/dev/sdb", "/dev/sdc"]


# -- grub, kernel arguments, modes, sizes ----------------------------------------------------------------
def test_grub_users() -> None:
    res = run("grub:\n  users:\n    - name: root\n      password_hash: grub.pbkdf2.sha512.X\n")
    f = res.config["storage"]["files"][0]
    assert f["path"] == "/boot/grub2/user.cfg"
    assert text_of(f["append"][0]) == (
        b'# Generated by Butane\n\nset superusers="root"\npassword_pbkdf2 root grub.pbkdf2.sha512.X\n'
    )
    assert res.config["storage"]["filesystems"] == [
        {"device": "/dev/disk/by-label/boot", "format": "ext4", "path": "/boot"}
    ]


def test_grub_user_needs_password() -> None:
    res = run("grub:\n  users:\n    - name: root\n")
    assert [e.message for e in res.entries] == ['field "password_hash" is required']


def test_kernel_arguments() -> None:
    res = run("kernel_arguments:\n  should_exist: [a]\n  should_not_exist: [b]\n", version="1.4.0")
    assert res.config["kernelArguments"] == {"shouldExist": ["a"], "shouldNotExist": ["b"]}


@pytest.mark.parametrize(
    ("mode", "value"), [("0644", 0o644), ("0o750", 0o750), ("0x1a4", 0o644), ("420", 420)]
)
def test_mode_spellings(mode: str, value: int) -> None:
    res = run(f"storage:\n  directories:\n    - path: /d\n      mode: {mode}\n")
    assert res.config["storage"]["directories"][0]["mode"] == value


def test_decimal_mode_warning() -> None:
    res = run("storage:\n  files:\n    - path: /f\n      mode: 644\n", version="1.7.0")
    assert raw_entries(res) == [
        "warning at $.storage.files.0.mode, line 6 col 13: unreasonable mode would be reasonable if specified "
        "in octal; remember to add a leading zero"
    ]


def test_quoted_mode_is_a_type_error() -> None:
    res = run("storage:\n  files:\n    - path: /f\n      mode: '0644'\n")
    assert res.error == "yaml: unmarshal errors:\n  line 6: cannot unmarshal !!str `0644` into int"


def test_snake_case_and_mib() -> None:
    res = run(
        "storage:\n  disks:\n    - device: /dev/sdb\n      wipe_table: true\n      partitions:\n"
        "        - label: a\n          size_mib: 100\n          start_mib: 1\n          type_guid: 0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
    )
    assert res.config["storage"]["disks"][0] == {
        "device": "/dev/sdb",
        "partitions": [
            {"label": "a", "sizeMiB": 100, "startMiB": 1, "typeGuid": "0FC63DAF-8483-4772-8E79-3D69D8477DE4"}
        ],
        "wipeTable": True,
    }


def test_yaml11_booleans_only_for_bool_fields() -> None:
    res = run(
        "passwd:\n  users:\n    - name: 'on'\n      system: on\n      no_create_home: yes\n      gecos: yes\n"
    )
    user = res.config["passwd"]["users"][0]
    assert user == {"gecos": "yes", "name": "on", "noCreateHome": True, "system": True}


def test_flatcar_refuses_clevis() -> None:
    res = run(
        "storage:\n  luks:\n    - name: d\n      device: /dev/sdb\n      clevis:\n        tpm2: true\n",
        variant="flatcar",
        version="1.0.0",
    )
    assert raw_entries(res) == [
        "error at $.storage.luks.0.clevis, line 8 col 9: clevis is not supported in this spec version"
    ]


def test_reserved_label_at_another_number_warns_in_every_version() -> None:
    body = (
        "storage:\n  disks:\n    - device: /dev/disk/by-id/coreos-boot-disk\n      partitions:\n"
        "        - label: root\n          number: 5\n"
    )
    for version in ("1.0.0", "1.2.0", "1.5.0", "1.6.0", "1.7.0"):
        assert raw_entries(run(body, version=version)) == [
            "warning at $.storage.disks.0.partitions.0.label, line 7 col 18: incorrect partition number; "
            "a new partition will be created using reserved label"
        ], version
    assert run(body, variant="flatcar", version="1.1.0").entries == []


def test_root_sizes_against_the_layout_from_13() -> None:
    constrained = (
        "storage:\n  disks:\n    - device: /dev/vdb\n      wipe_table: true\n      partitions:\n"
        "        - label: root\n          number: 4\n        - label: swap\n          size_mib: 512\n"
    )
    assert run(constrained, version="1.2.0").entries == []
    assert raw_entries(run(constrained, version="1.3.0")) == [
        "warning at $.storage.disks.0.partitions.0.label, line 8 col 18: root partition cannot expand; "
        "it is set to fill available space but is followed by an auto-positioned partition"
    ]
    small = constrained.replace(
        "        - label: swap\n          size_mib: 512\n", "          size_mib: 4096\n"
    )
    assert [e.message for e in run(small, version="1.4.0").entries] == [
        "root should have 8GiB of space assigned"
    ]


def test_mirror_disks_may_reuse_partitions_by_label() -> None:
    body = (
        "boot_device:\n  layout: x86_64\n  mirror:\n    devices: [/dev/sda, /dev/sdb]\n"
        "storage:\n  disks:\n    - device: /dev/sda\n      partitions:\n        - label: var-1\n"
        "    - device: /dev/sdc\n      partitions:\n        - label: data\n"
    )
    assert [e.path for e in run(body, version="1.6.0").entries] == [
        ("storage", "disks", 1, "partitions", 0, "number")
    ]


def test_mirror_without_layout_warns_until_16_and_fails_from_17() -> None:
    body = "boot_device:\n  mirror:\n    devices: [/dev/sda, /dev/sdb]\n"
    msg = "boot_device.layout should be specified when boot_device.mirror is specified"
    assert [(e.kind, e.message) for e in run(body, version="1.6.0").entries] == [("warning", msg)]
    assert [(e.kind, e.message) for e in run(body, version="1.7.0").entries] == [("error", msg)]


def test_null_struct_is_reported_as_a_tree_mismatch() -> None:
    res = run("storage:\n  files:\n    - path: /etc/a\n      contents:\n")
    assert raw_entries(res) == [
        "warning at $.storage.files.0.contents, line 6 col 16: context tree does not match content tree at "
        "$.storage.files.0.contents. Line and column reporting may be inconsistent. Unused keys may not be "
        "reported"
    ]


def test_swap_units_are_from_14() -> None:
    body = (
        "storage:\n  filesystems:\n    - device: /dev/vdb1\n      format: swap\n      with_mount_unit: true\n"
    )
    assert [e.message for e in run(body, version="1.3.0").entries] == [
        "path is required if with_mount_unit is true and format is not swap"
    ]
    assert run(body, version="1.4.0").config["systemd"]["units"][0]["name"] == "dev-vdb1.swap"


@pytest.mark.parametrize(
    ("base", "rel", "joined"),
    [
        ("files", "a/b", "files/a/b"),
        ("files/", "../", "."),
        ("files", "/etc/passwd", "files/etc/passwd"),
        ("", "x", "x"),
    ],
)
def test_go_join(base: str, rel: str, joined: str) -> None:
    from butane_like.base.local import go_join

    assert go_join(base, rel) == joined


def test_absolute_local_path_stays_in_files_dir(tmp_path: Path) -> None:
    res = run_local(
        tmp_path,
        "storage:\n  files:\n    - path: /etc/motd\n      contents:\n        local: /etc/motd\n",
        {"etc/motd": "inside\n"},
    )
    assert text_of(res.config["storage"]["files"][0]["contents"]) == b"inside\n"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 100, 65535, 65536, 65537, 300_001])
def test_base64_of_any_size_is_standard(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert dataurl.b64(data) == base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "alphabet", [b"abc%\n", b"xyz \n%25", bytes(range(256)), b"ab\n", b"%%%", b"a!~*()'-_.", b"a\n\t %#?&=+"]
)
@pytest.mark.parametrize("size", [0, 1, 255, 256, 5000])
def test_percent_escape_is_rfc2396(alphabet: bytes, size: int) -> None:
    data = bytes(random.Random(size).choices(alphabet, k=size))
    assert dataurl.percent_escape(data) == urllib.parse.quote(data, safe="!~*'()")


@pytest.mark.parametrize("declared_first", [False, True])
def test_aliased_text_with_and_without_declared_compression(declared_first: bool) -> None:
    # The same text object in two resources (a YAML alias), one declaring its compression: the
    # parallel encoding made for the plain one must not be used for the declared one.
    big = "x" * 6000
    plain = f"    - path: /plain\n      contents:\n        inline: {'*big' if declared_first else '&big ' + big}\n"
    declared = (
        "    - path: /declared\n      contents:\n        compression: gzip\n"
        f"        inline: {'&big ' + big if declared_first else '*big'}\n"
    )
    other = "    - path: /other\n      contents:\n        inline: " + "y" * 7000 + "\n"
    body = "storage:\n  files:\n" + (declared + plain if declared_first else plain + declared) + other
    res = run(body)
    files = {f["path"]: f["contents"] for f in res.config["storage"]["files"]}
    assert files["/declared"]["compression"] == "gzip"
    assert files["/declared"]["source"] == "data:," + big  # encoded as it is, not compressed again
    assert files["/plain"]["compression"] == "gzip" and text_of(files["/plain"]) == big.encode()
    assert text_of(files["/other"]) == b"y" * 7000


def test_inline_merges_are_duplicates_only_when_their_data_urls_are() -> None:
    # (a version Ignition parses but does not know: Butane only warns and skips their check)
    ign = '"ignition": {"version": "3.9.0"}'
    body = f"ignition:\n  config:\n    merge:\n      - inline: '{{{ign}, \"a\": 1}}'\n      - inline: '{{{ign}, \"b\": 2}}'\n"
    dup = "duplicate entry defined"
    assert dup not in [e.message for e in run(body).entries]
    same = body.replace('"b": 2', '"a": 1')
    assert same != body
    assert [e.path for e in run(same).entries if e.message == dup] == [("ignition", "config", "merge", 1)]


def test_fcos17_trees_set_owners_and_modes(tmp_path) -> None:
    tree = tmp_path / "t"
    (tree / "sub").mkdir(parents=True)
    (tree / "a").write_text("hi\n")
    (tree / "sub" / "b").write_text("x\n")
    (tree / "l").symlink_to("a")
    body = (
        "storage:\n  trees:\n    - local: t\n      path: /opt/t\n      user:\n        name: core\n"
        "      file_mode: 0600\n      dir_mode: 0700\n"
    )
    storage = run(body, version="1.7.0", files_dir=str(tmp_path)).config["storage"]
    core = {"name": "core"}
    assert [(d["path"], d["mode"], d["user"]) for d in storage["directories"]] == [
        ("/opt/t", 0o700, core),
        ("/opt/t/sub", 0o700, core),
    ]
    assert [(f["path"], f["mode"], f["user"]) for f in storage["files"]] == [
        ("/opt/t/a", 0o600, core),
        ("/opt/t/sub/b", 0o600, core),
    ]
    assert storage["links"] == [{"path": "/opt/t/l", "user": core, "target": "a"}]
    older = run(body, version="1.6.0", files_dir=str(tmp_path))
    assert "directories" not in older.config["storage"]
    assert [e.message for e in older.entries][:1] == ["unused key user"]


def test_partition_number_zero_is_left_out() -> None:
    """Ignition's partition number is a plain Go int with omitempty: Butane leaves 0 ("the next
    free number") out of its output (Butane v0.29.0's answer for this config, byte for byte)."""
    from butane_like.gojson import encode

    res = run(
        "storage:\n  disks:\n    - device: /dev/vda\n      partitions:\n        - label: data\n          number: 0\n"
    )
    assert encode(res.config) == (
        b'{"ignition":{"version":"3.4.0"},"storage":{"disks":[{"device":"/dev/vda","partitions":[{"label":"data"}]}]}}'
    )
    res = run("storage:\n  disks:\n    - device: /dev/vda\n      partitions:\n        - number: 3\n")
    assert b'"partitions":[{"number":3}]' in encode(res.config)
