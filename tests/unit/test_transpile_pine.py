"""The ``pine`` variant: OpenRC services and network settings as plain Ignition 3.5.0."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from butane_like import translate
from pineinstall.config import check

REPO = Path(__file__).resolve().parents[2]
HEAD = "variant: pine\nversion: 1.0.0\n"


def run(body: str, files_dir: str | None = None):
    return translate((HEAD + body).encode(), files_dir=files_dir)


def data(res: dict) -> str:
    """The text a resource carries (data URL decoded, gunzipped when compressed)."""
    import base64
    import gzip

    url = res["source"]
    assert url.startswith("data:")
    meta, _, payload = url[5:].partition(",")
    raw = base64.b64decode(payload) if meta.endswith(";base64") else urllib.parse.unquote_to_bytes(payload)
    if res.get("compression") == "gzip":
        raw = gzip.decompress(raw)
    return raw.decode()


def file_at(cfg: dict, path: str) -> dict:
    found = [f for f in cfg["storage"].get("files", []) if f["path"] == path]
    assert len(found) == 1, path
    return found[0]


def link_at(cfg: dict, path: str) -> dict | None:
    found = [lk for lk in cfg["storage"].get("links", []) if lk["path"] == path]
    return found[0] if found else None


def errors(res) -> list[str]:
    return [f"{e.kind} {'.'.join(map(str, e.path))} {e.line}:{e.col} {e.message}" for e in res.entries]


def test_output_is_ignition_350() -> None:
    res = run("")
    assert res.ok and res.output == b'{"ignition":{"version":"3.5.0"}}'


def test_service_with_script_gets_init_file_and_runlevel_link() -> None:
    res = run('openrc:\n  services:\n    - name: myapp\n      contents: "#!/sbin/openrc-run\\n"\n')
    assert res.ok, errors(res)
    f = file_at(res.config, "/etc/init.d/myapp")
    assert f["mode"] == 0o755 and f["overwrite"] is True
    assert data(f["contents"]) == "#!/sbin/openrc-run\n"
    assert link_at(res.config, "/etc/runlevels/default/myapp")["target"] == "/etc/init.d/myapp"


def test_disabled_service_has_no_link() -> None:
    res = run("openrc:\n  services:\n    - name: chronyd\n      enabled: false\n      contents: x\n")
    assert res.ok
    assert file_at(res.config, "/etc/init.d/chronyd")
    assert "links" not in res.config["storage"]


def test_runlevel_chooses_the_directory() -> None:
    res = run("openrc:\n  services:\n    - name: hwclock\n      runlevel: boot\n")
    assert link_at(res.config, "/etc/runlevels/boot/hwclock")["target"] == "/etc/init.d/hwclock"
    assert link_at(res.config, "/etc/runlevels/default/hwclock") is None


def test_service_without_script_only_enables() -> None:
    res = run("openrc:\n  services:\n    - name: sshd\n")
    assert res.ok
    assert "files" not in res.config["storage"]
    assert link_at(res.config, "/etc/runlevels/default/sshd")


def test_service_contents_local(tmp_path: Path) -> None:
    (tmp_path / "svc.init").write_text("#!/sbin/openrc-run\ncommand=/bin/true\n")
    res = run("openrc:\n  services:\n    - name: svc\n      contents_local: svc.init\n", str(tmp_path))
    assert res.ok, errors(res)
    assert data(file_at(res.config, "/etc/init.d/svc")["contents"]).endswith("command=/bin/true\n")


def test_service_contents_local_needs_files_dir() -> None:
    res = run("openrc:\n  services:\n    - name: svc\n      contents_local: svc.init\n")
    assert res.error == "source config is invalid"
    assert errors(res) == [
        "error openrc.services.0.contents_local 6:23 local file paths are relative to a files directory "
        "that must be specified with -d/--files-dir"
    ]


def test_service_both_sources_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    res = run(
        "openrc:\n  services:\n    - name: a\n      contents: x\n      contents_local: a\n", str(tmp_path)
    )
    assert not res.ok
    assert "only one of the following can be set: contents, contents_local" in errors(res)[0]


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
def test_service_name_must_be_a_file_name(name: str) -> None:
    res = run(f"openrc:\n  services:\n    - name: '{name}'\n")
    assert res.error == "source config is invalid"
    assert errors(res)[0].startswith("error openrc.services.0.name 5:13 ")


def test_runlevel_must_be_a_name() -> None:
    res = run("openrc:\n  services:\n    - name: a\n      runlevel: ../x\n")
    assert errors(res) == [
        "error openrc.services.0.runlevel 6:17 "
        + "runlevel must be a directory name (letters, digits, '.', '_', '-')"
    ]


def test_same_service_twice_is_an_error() -> None:
    res = run("openrc:\n  services:\n    - name: a\n    - name: a\n")
    assert errors(res) == ["error openrc.services.1 6:7 duplicate entry defined"]


def test_hostname_file() -> None:
    res = run("network:\n  hostname: pine-01.example.net\n")
    f = file_at(res.config, "/etc/hostname")
    assert data(f["contents"]) == "pine-01.example.net\n"
    assert f["mode"] == 0o644 and f["overwrite"] is True


@pytest.mark.parametrize("name", ["-bad", "a..b", "x" * 64, "under_score", "sp ace"])
def test_invalid_hostname(name: str) -> None:
    res = run(f"network:\n  hostname: '{name}'\n")
    assert res.error == "source config is invalid"
    assert errors(res)[0].startswith("error network.hostname 4:13 invalid hostname")


def _interfaces(res) -> str:
    return data(file_at(res.config, "/etc/network/interfaces")["contents"])


def test_dhcp_interface() -> None:
    res = run("network:\n  interfaces:\n    - name: eth0\n      dhcp: true\n")
    assert _interfaces(res) == (
        "# Generated by pine-transpile\nauto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"
    )


def test_static_ipv4_interface() -> None:
    res = run(
        "network:\n  interfaces:\n    - name: eth1\n      address: 192.0.2.10/24\n      gateway: 192.0.2.1\n"
    )
    assert _interfaces(res).endswith(
        "auto eth1\niface eth1 inet static\n\taddress 192.0.2.10\n\tnetmask 255.255.255.0\n\tgateway 192.0.2.1\n"
    )


def test_static_ipv6_interface() -> None:
    res = run("network:\n  interfaces:\n    - name: eth2\n      address: 2001:db8::10/64\n")
    assert _interfaces(res).endswith("iface eth2 inet6 static\n\taddress 2001:db8::10\n\tnetmask 64\n")


def test_interfaces_keep_their_order() -> None:
    res = run(
        "network:\n  interfaces:\n    - name: wan\n      dhcp: true\n    - name: lan\n      address: 10.0.0.1/8\n"
    )
    text = _interfaces(res)
    assert text.index("auto wan") < text.index("auto lan")


def test_dhcp_and_address_conflict() -> None:
    res = run("network:\n  interfaces:\n    - name: eth0\n      dhcp: true\n      address: 10.0.0.2/8\n")
    assert errors(res) == [
        "error network.interfaces.0.address 7:16 only one of the following can be set: dhcp, address"
    ]


def test_interface_needs_a_method() -> None:
    res = run("network:\n  interfaces:\n    - name: eth0\n")
    assert errors(res) == ["error network.interfaces.0 5:7 one of the following must be set: dhcp, address"]


@pytest.mark.parametrize("address", ["192.0.2.10", "192.0.2.300/24", "not-an-ip/8"])
def test_address_must_be_cidr(address: str) -> None:
    res = run(f"network:\n  interfaces:\n    - name: eth0\n      address: {address}\n")
    assert errors(res)[0].startswith("error network.interfaces.0.address 6:16 address must be an IP address")


def test_gateway_family_must_match() -> None:
    res = run(
        "network:\n  interfaces:\n    - name: e\n      address: 10.0.0.2/8\n      gateway: 2001:db8::1\n"
    )
    assert "gateway and address must be of the same IP version" in errors(res)[0]


def test_gateway_with_dhcp_is_a_warning() -> None:
    res = run("network:\n  interfaces:\n    - name: e\n      dhcp: true\n      gateway: 10.0.0.1\n")
    assert res.ok and res.entries[0].kind == "warning"
    assert res.failed(strict=True)


def test_loopback_is_ours() -> None:
    res = run("network:\n  interfaces:\n    - name: lo\n      dhcp: true\n")
    assert not res.ok


def test_dns_servers() -> None:
    res = run("network:\n  dns: [192.0.2.53, '2001:db8::53']\n")
    text = data(file_at(res.config, "/etc/resolv.conf")["contents"])
    assert text == "# Generated by pine-transpile\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"


def test_bad_dns_server() -> None:
    res = run("network:\n  dns:\n    - 192.0.2.53\n    - dns.example.net\n")
    assert errors(res) == ["error network.dns.1 6:7 DNS server must be an IP address"]


def test_explicit_file_wins_over_generated() -> None:
    res = run(
        "network:\n  hostname: generated\n"
        "storage:\n  files:\n    - path: /etc/hostname\n      contents:\n        inline: mine\n"
    )
    f = file_at(res.config, "/etc/hostname")
    assert data(f["contents"]) == "mine"
    assert f["overwrite"] is True  # the rendered entry's fields stay where the user gave none


def test_pine_has_fcos_16_sugar() -> None:
    res = run("boot_device:\n  luks:\n    tpm2: true\nkernel_arguments:\n  should_exist: [quiet]\n")
    assert res.ok and res.config["kernelArguments"] == {"shouldExist": ["quiet"]}
    assert res.config["storage"]["luks"][0]["device"] == "/dev/disk/by-partlabel/root"


def test_pine_sections_are_unknown_to_fcos() -> None:
    res = translate(b"variant: fcos\nversion: 1.6.0\nopenrc: {}\nnetwork:\n  hostname: x\n")
    assert [(e.kind, e.message, e.line, e.col) for e in res.entries] == [
        ("warning", "unused key openrc", 3, 1),
        ("warning", "unused key network", 4, 1),
    ]


def test_pine_key_unknown_field_is_a_warning() -> None:
    res = run("network:\n  hostname: h\n  mtu: 9000\n")
    assert [str(e) for e in res.entries] == ["warning at $.network.mtu, line 5 col 3: unused key mtu"]


def test_errors_in_generated_files_point_at_the_section() -> None:
    # A rendered file lies under the user's link: reported at the YAML that made it.
    res = run("network:\n  hostname: h\nstorage:\n  links:\n    - path: /etc\n      target: /x\n")
    assert res.error == "config generated was invalid"
    assert [str(e) for e in res.entries] == [
        "error at $.network.hostname, line 4 col 13: file path includes link in config"
    ]


def test_user_node_of_another_kind_replaces_the_generated_file() -> None:
    # Ignition's merge: files, directories and links share one key space (the path).
    res = run("network:\n  hostname: h\nstorage:\n  directories:\n    - path: /etc/hostname\n")
    assert res.ok and not res.entries
    assert res.config["storage"] == {"directories": [{"path": "/etc/hostname"}]}


def _example(name: str) -> bytes:
    res = translate((REPO / "examples" / name).read_bytes(), files_dir=str(REPO / "examples" / "files"))
    assert res.ok and not res.entries, res.format(name)
    return res.output


@pytest.mark.parametrize("name", ["pine-host.bu", "pine-dhcp-minimal.bu"])
def test_examples_pass_our_validation(name: str) -> None:
    checked = check(_example(name))
    assert checked.ok and not list(checked.report), str(checked.report)
    assert checked.version == "3.5.0"


@pytest.mark.skipif(shutil.which("ignition-validate") is None, reason="ignition-validate not installed")
@pytest.mark.parametrize("name", ["pine-host.bu", "pine-dhcp-minimal.bu"])
@pytest.mark.real_processes
def test_examples_pass_the_real_ignition(name: str, tmp_path: Path) -> None:
    # Debian's Ignition 2.14 knows specs up to 3.3.0; the pine output uses nothing newer, so the
    # same config declared as 3.3.0 is what the reference can judge.
    cfg = json.loads(_example(name))
    cfg["ignition"]["version"] = "3.3.0"
    path = tmp_path / "c.ign"
    path.write_text(json.dumps(cfg))
    p = subprocess.run(["ignition-validate", str(path)], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr


@pytest.mark.skipif(shutil.which("ignition-validate") is None, reason="ignition-validate not installed")
@pytest.mark.real_processes
def test_real_ignition_rejects_what_we_reject(tmp_path: Path) -> None:
    # The reference check above can fail: a relative link path is refused by both.
    cfg = json.loads(_example("pine-dhcp-minimal.bu"))
    cfg["ignition"]["version"] = "3.3.0"
    cfg["storage"]["links"] = [{"path": "etc/x", "target": "/y"}]
    path = tmp_path / "c.ign"
    path.write_text(json.dumps(cfg))
    p = subprocess.run(["ignition-validate", str(path)], capture_output=True, text=True)
    assert p.returncode == 1 and "path not absolute" in p.stdout + p.stderr
    assert not check(json.dumps(cfg).encode()).ok


IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"


@pytest.mark.integration
@pytest.mark.skipif(
    not (os.access(IGNITION, os.X_OK) and os.geteuid() == 0), reason="needs root and Debian's ignition binary"
)
@pytest.mark.real_processes
def test_real_ignition_applies_pine_output(tmp_path: Path) -> None:
    """Debian's Ignition 2.14 files stage writes what the pine sections describe."""
    root = tmp_path / "root"
    (root / "etc" / "selinux").mkdir(parents=True)
    (root / "etc" / "selinux" / "config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nwheel:x:10:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\nwheel:*::\n")
    (root / "etc" / "hostname").write_text("localhost\n")  # every image has one: overwritten
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "setfiles").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "setfiles").chmod(0o755)
    cfg = json.loads(_example("pine-host.bu"))
    cfg["ignition"]["version"] = "3.4.0"  # the newest final spec 2.14 knows; nothing newer is used
    # Accounts are not what this test is about (and Ignition writes keys as the user, who cannot
    # traverse pytest's 0700 temporary directories).
    del cfg["passwd"]
    cache = tmp_path / "config.json"
    cache.write_text(json.dumps(cfg))
    p = subprocess.run(
        [IGNITION, "-platform", "file", "-stage", "files", "-root", str(root)]
        + ["-config-cache", str(cache), "-log-to-stdout"],
        env={"PATH": f"{bindir}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "HOME": "/root"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    init = root / "etc" / "init.d" / "myapp"
    assert init.read_text().startswith("#!/sbin/openrc-run\n") and init.stat().st_mode & 0o777 == 0o755
    assert os.readlink(root / "etc" / "runlevels" / "default" / "myapp") == "/etc/init.d/myapp"
    assert os.readlink(root / "etc" / "runlevels" / "default" / "sshd") == "/etc/init.d/sshd"
    assert (root / "etc" / "hostname").read_text() == "pine-01.example.net\n"
    assert (
        "\taddress 192.0.2.10\n\tnetmask 255.255.255.0\n\tgateway 192.0.2.1\n"
        in (root / "etc" / "network" / "interfaces").read_text()
    )
    assert (root / "etc" / "resolv.conf").read_text().endswith("nameserver 2001:db8::53\n")
