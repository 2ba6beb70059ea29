"""pineinstall.hijack: the probe's document, its parsers, the refusals and the carry-over, from
recorded real outputs (tests/unit/data/hijack/).

Recordings: ``host-*`` are this machine's ``ip -d -j addr``, ``ip -j route``, ``ip -j -6 route`` and
``lsblk -J``; ``netns-*`` a network namespace built for them, whose veth NICs had
ens3 = 203.0.113.5/32 with the on-link gateway 172.31.1.1 (host route, then default) and
2001:db8:1::5/64 via fe80::1; ens4 = 198.51.100.20/24 with a finite lifetime (a lease's) and the
static 192.0.2.7/24; and a bridge docker0 = 172.17.0.1/16.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from pineinstall.config import check
from pineinstall.hijack import carry, facts, netconf, probe, refusals
from pineinstall.hijack.facts import MIB, Address, Gateway

DATA = Path(__file__).parent / "data" / "hijack"
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
MEMINFO = "MemTotal:         100000 kB\nMemFree:           20000 kB\nMemAvailable:      40000 kB\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyFakeKeyFakeKeyFakeKeyFakeKeyFakeKe me@laptop"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def document(prefix: str = "netns", files: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "probe": 1,
        "user": "root",
        "home": "/root",
        "hostname": "vps1",
        "virt": "none",
        "markers": {},
        "efi": False,
        "secure_boot": "",
        "lsblk": load("host-lsblk.json"),
        "by_id": [["virtio-disk0", "/dev/vda"]],
        "ip_addr": load(f"{prefix}-ip-addr.json"),
        "ip_route": load(f"{prefix}-ip-route.json"),
        "ip6_route": load(f"{prefix}-ip6-route.json"),
        "files": {"/etc/os-release": DEBIAN, "/proc/meminfo": MEMINFO, **(files or {})},
    }
    doc.update(extra)
    return doc


IFUPDOWN = """\
auto lo
iface lo inet loopback
# the provider's static setup
auto ens3
iface ens3 inet static
    address 203.0.113.5/32
iface ens3 inet6 static
    address 2001:db8:1::5/64
"""
DHCLIENT_LEASE = 'lease {\n  interface "ens4";\n  fixed-address 198.51.100.20;\n}\n'


# --- the probe script, run for real -------------------------------------------------------------------


@pytest.mark.real_processes
def test_the_probe_runs_here_and_its_strings_survive_json(tmp_path: Path) -> None:
    ssh = tmp_path / ".ssh"
    ssh.mkdir()
    tricky = KEY + ' "quoted" back\\slash\ttab'
    (ssh / "authorized_keys").write_text(f"# a comment\n{tricky}\n\n{KEY}\n")
    out = subprocess.run(
        ["sh", "-s"], input=probe.SCRIPT, capture_output=True, text=True, env={"HOME": str(tmp_path)}
    )
    doc = probe.parse_output(out.stdout)
    assert doc["home"] == str(tmp_path)
    found = facts.parse(doc)
    assert found.authorized_keys == (tricky, KEY)
    assert found.os is not None and found.os.id == "debian"
    assert found.mem_total is not None and found.mem_total > 0
    assert isinstance(doc["ip_addr"], list) and isinstance(doc["lsblk"], dict)


def test_a_document_of_another_version_is_refused() -> None:
    with pytest.raises(probe.ProbeError, match="another version"):
        probe.parse_output('{"probe": 99}')
    with pytest.raises(probe.ProbeError, match="no JSON"):
        probe.parse_output("Welcome to my VPS!\n{")


# --- facts ----------------------------------------------------------------------------------------------


def test_static_v4_onlink_and_v6_via_link_local_dhcp_from_a_lease_and_no_bridge() -> None:
    found = facts.parse(
        document(
            files={"/etc/network/interfaces": IFUPDOWN, "/var/lib/dhcp/dhclient.ens4.leases": DHCLIENT_LEASE}
        )
    )
    ens3, ens4 = found.interfaces
    assert (ens3.name, ens3.mac, ens3.kind) == ("ens3", "52:54:00:12:34:56", "veth")
    assert ens3.v4 == (Address("203.0.113.5/32", False),)
    assert ens3.gateway4 == Gateway("172.31.1.1", onlink=True)
    assert ens3.v6 == (Address("2001:db8:1::5/64", False),)
    assert ens3.gateway6 == Gateway("fe80::1", onlink=False)
    assert (ens3.method4, ens3.method6) == ("static", "static")
    assert (ens4.name, ens4.mac, ens4.method4, ens4.method6) == ("ens4", "52:54:00:ab:cd:ef", "dhcp", None)
    assert ens4.v4 == (Address("198.51.100.20/24", True), Address("192.0.2.7/24", False))
    assert ens4.gateway4 is None  # only a route to 10.9.0.0/16: no default


def test_without_configuration_files_virtual_links_are_left_and_lifetimes_decide() -> None:
    found = facts.parse(document())
    assert found.interfaces == ()  # veths and a bridge the host made: nothing the provider configured
    host = facts.parse(document("host"))
    (eth0,) = host.interfaces  # the ifb links: virtual, unconfigured
    assert (eth0.name, eth0.method4, eth0.method6) == ("eth0", "static", "static")
    assert eth0.v4 == (Address("192.0.2.2/24", False),) and eth0.gateway4 == Gateway("192.0.2.1", False)
    assert eth0.gateway6 == Gateway("fd00::1", False)


def test_a_multipath_default_route_gives_its_first_hop() -> None:
    # ip -j -6 route of "default proto static metric 1024 pref medium
    #   nexthop via 2a01:db8:262:4940::2 dev ens3 weight 1 onlink  nexthop via fe80::5054:ff:fed4:5286 dev ens3 weight 1"
    multipath = [{"dst": "default", "protocol": "static", "metric": 1024, "flags": [], "pref": "medium",
                  "nexthops": [{"gateway": "2a01:db8:262:4940::2", "dev": "ens3", "weight": 1, "flags": ["onlink"]},
                               {"gateway": "fe80::5054:ff:fed4:5286", "dev": "ens3", "weight": 1, "flags": []}]}]  # fmt: skip
    found = facts.parse(document(files={"/etc/network/interfaces": IFUPDOWN}, ip6_route=multipath))
    assert found.interfaces[0].gateway6 == Gateway("2a01:db8:262:4940::2", onlink=True)


def test_a_physical_nic_with_a_leased_address_is_dhcp() -> None:
    doc = document()
    for link in doc["ip_addr"]:
        link.pop("linkinfo", None)  # as a real NIC shows: no link kind
    by_name = {i.name: i for i in facts.parse(doc).interfaces}
    assert by_name["ens4"].method4 == "dhcp"
    assert by_name["ens3"].method4 == "static"
    assert by_name["docker0"].method4 == "static"  # a bridge without kind is indistinguishable from a NIC


def test_the_boot_disk_is_found_through_its_partitions_with_its_ids() -> None:
    lsblk = {
        "blockdevices": [
            {"name": "sr0", "path": "/dev/sr0", "type": "rom", "size": 1},
            {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 10 << 30, "serial": "QM0001",
             "ptuuid": "8d5e8e4c", "pttype": "dos", "mountpoint": None,
             "children": [{"name": "sda1", "path": "/dev/sda1", "type": "part", "mountpoint": None,
                           "children": [{"name": "vg-root", "type": "lvm", "mountpoint": "/"}]}]},
            {"name": "sdb", "path": "/dev/sdb", "type": "disk", "size": 1 << 30, "mountpoint": None},
        ]
    }  # fmt: skip
    by_id = [["ata-QEMU_HARDDISK_QM0001", "/dev/sda"], ["ata-QEMU_HARDDISK_QM0001-part1", "/dev/sda1"]]
    disk = facts.boot_disk({"lsblk": lsblk, "by_id": by_id})
    assert disk == facts.Disk(
        "/dev/sda", 10 << 30, "QM0001", "dos", "8d5e8e4c", ("ata-QEMU_HARDDISK_QM0001",)
    )
    host = facts.boot_disk(document())  # this machine: a whole-disk filesystem at /
    assert host is not None and host.path == "/dev/vda" and host.by_id == ("virtio-disk0",)
    assert facts.boot_disk({"lsblk": {"blockdevices": [{"name": "x", "type": "disk"}]}}) is None


@pytest.mark.parametrize(
    ("virt", "markers", "expected"),
    [
        ("none", {}, None),
        ("", {"proc_vz": True, "user_beancounters": True}, "openvz"),
        ("", {"proc_vz": True}, None),  # the OpenVZ host node itself
        ("lxc", {}, "lxc"),
        ("", {"pid1_container": "lxc"}, "lxc"),
        ("", {"systemd_container": "podman\n"}, "podman"),
        ("", {"dockerenv": True}, "docker"),
        ("", {"containerenv": True}, "podman"),
    ],
)
def test_containers(virt: str, markers: dict[str, Any], expected: str | None) -> None:
    assert facts.container({"virt": virt, "markers": markers}) == expected


def test_firmware_memory_dns_and_keys() -> None:
    assert facts.secure_boot({"efi": True, "secure_boot": "   6   0   0   0   1"}) is True
    assert facts.secure_boot({"efi": True, "secure_boot": "   6   0   0   0   0"}) is False
    assert facts.secure_boot({"efi": False, "secure_boot": ""}) is None
    assert facts.meminfo({"/proc/meminfo": MEMINFO}) == (100000 * 1024, 40000 * 1024)
    stub = {"/etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0\n",
            "/run/systemd/resolve/resolv.conf": "nameserver 9.9.9.9\nnameserver 2620:fe::fe\n"}  # fmt: skip
    assert facts.nameservers({}, stub) == ("9.9.9.9", "2620:fe::fe")
    plain = {"/etc/resolv.conf": "search example.com\nnameserver 192.0.2.53\n"}
    assert facts.nameservers({}, plain) == ("192.0.2.53",)
    keys = {"/home/debian/.ssh/authorized_keys": f"{KEY}\n", "/home/debian/.ssh/authorized_keys2": f"{KEY}\n"}
    assert facts.authorized_keys({"home": "/home/debian"}, keys) == (KEY,)


# --- how the host configures its interfaces ------------------------------------------------------------


def test_netplan_networkd_and_leases() -> None:
    netplan = """\
network:
  version: 2
  ethernets:
    eth0:
      match: {macaddress: "52:54:00:12:34:56"}
      set-name: ens3
      addresses: [203.0.113.5/32, "2001:db8:1::5/64"]
    ens4:
      dhcp4: true
      dhcp6: yes
"""
    files = {
        "/etc/netplan/50-cloud-init.yaml": netplan,
        "/etc/systemd/network/10-wired.network": "[Match]\nName=en*\n[Network]\nDHCP=ipv4\n",
        "/var/lib/dhcpcd/ens6.lease": "binary",
        "/run/systemd/netif/leases/7": "ADDRESS=10.0.0.7\n",
    }
    got = netconf.configured(files, {3: "ens3", 4: "ens4", 5: "ens5", 7: "eth7"})
    assert got == {
        "ens3": {"inet": "static", "inet6": "static"},
        "ens4": {"inet": "dhcp", "inet6": "dhcp"},
        "ens5": {"inet": "dhcp"},
        "ens6": {"inet": "dhcp"},
        "eth7": {"inet": "dhcp"},
    }
    assert netconf.configured({"/etc/netplan/bad.yaml": "network: [\n"}, {}) == {}


def test_ifupdown_files_come_first() -> None:
    files = {"/etc/network/interfaces.d/ens3": "iface ens3 inet dhcp\niface ens3 inet6 auto\n",
             "/var/lib/dhcp/dhclient6.ens3.leases": 'lease6 {\n  interface "ens3";\n}\n'}  # fmt: skip
    assert netconf.configured(files, {}) == {"ens3": {"inet": "dhcp", "inet6": "auto"}}
    assert netconf.method(None, [True], family=6) == "auto"
    assert netconf.method(None, [], family=4) is None


# --- refusals -------------------------------------------------------------------------------------------


def test_a_debian_vm_passes_and_each_refusal_says_why() -> None:
    good = facts.parse(document("host"))
    assert refusals.refusals(good) == []
    ubuntu = 'ID=ubuntu\nPRETTY_NAME="Ubuntu 24.04 LTS"\n'
    assert refusals.refusals(facts.parse(document("host", {"/etc/os-release": ubuntu}))) == []
    alpine = facts.parse(
        document("host", {"/etc/os-release": 'ID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n', "/proc/meminfo": "MemTotal: 30000 kB\nMemAvailable: 9000 kB\n"},
                 virt="openvz", lsblk={"blockdevices": []})
    )  # fmt: skip
    assert refusals.refusals(alpine) == [
        "the system is Alpine Linux v3.20, not Debian or Ubuntu",
        "the system runs in a container (openvz): it has no disk or kernel of its own to replace",
        "no single disk holds the root filesystem (lsblk): no disk to write Pine to",
        "29 MiB of RAM: the RAM pivot needs a machine of at least 128 MiB",
        "8 MiB of RAM available: at least 24 MiB are needed",
    ]
    assert refusals.MIN_MEM_TOTAL == 64 * MIB


def test_the_ram_a_host_needs_depends_on_the_takeover_path() -> None:
    """The 112 MiB Debian guest (MemTotal 62 MiB, 20 MiB available, measured): too small for the RAM
    pivot, enough for the one-shot installer boot, which asks the old system only to write 5 MiB."""
    small = facts.parse(document("host", {"/proc/meminfo": "MemTotal: 63516 kB\nMemAvailable: 19584 kB\n"}))
    assert refusals.refusals(small, method="ram") == [
        "62 MiB of RAM: the RAM pivot needs a machine of at least 128 MiB",
        "19 MiB of RAM available: at least 24 MiB are needed",
    ]
    assert refusals.refusals(small, method="boot-once") == []
    starved = facts.parse(document("host", {"/proc/meminfo": "MemTotal: 63516 kB\nMemAvailable: 12000 kB\n"}))
    assert refusals.refusals(starved, method="boot-once") == ["11 MiB of RAM available: at least 16 MiB are needed"]


# --- the carry-over -------------------------------------------------------------------------------------


def contents(config: dict[str, Any], path: str) -> str | None:
    for f in config.get("storage", {}).get("files", []):
        if f["path"] == path:
            return unquote(f["contents"]["source"].removeprefix("data:,"))
    return None


def carried_netns(config: dict[str, Any] | None = None) -> carry.Carried:
    files = {
        "/etc/network/interfaces": IFUPDOWN,
        "/var/lib/dhcp/dhclient.ens4.leases": DHCLIENT_LEASE,
        "/etc/resolv.conf": "nameserver 192.0.2.53\nnameserver 2001:db8::53\n",
        "/root/.ssh/authorized_keys": KEY + "\n",
    }
    found = facts.parse(document(files=files))
    return carry.carry(found, config or {"ignition": {"version": "3.4.0"}}, "vps1.example")


def test_static_stays_static_dhcp_stays_dhcp_on_link_gateways_get_a_host_route() -> None:
    got = carried_netns()
    assert contents(got.merged, "/etc/network/interfaces") == (
        "# Carried over from vps1.example by pineinstall hijack\n"
        "auto lo\niface lo inet loopback\n\n"
        "auto ens3\n"
        "iface ens3 inet static\n\tpre-up nameif ens3 52:54:00:12:34:56\n"
        "\taddress 203.0.113.5\n\tnetmask 255.255.255.255\n"
        "\tpost-up ip route add 172.31.1.1 dev ens3\n\tpost-up ip route add default via 172.31.1.1 dev ens3\n"
        "iface ens3 inet6 static\n\taddress 2001:db8:1::5\n\tnetmask 64\n\tgateway fe80::1\n\n"
        "auto ens4\niface ens4 inet dhcp\n\tpre-up nameif ens4 52:54:00:ab:cd:ef\n"
    )
    assert contents(got.merged, "/etc/mactab") == "ens3 52:54:00:12:34:56\nens4 52:54:00:ab:cd:ef\n"
    assert contents(got.merged, "/etc/resolv.conf") == "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"
    assert contents(got.merged, "/etc/hostname") == "vps1\n"
    assert got.merged["passwd"]["users"] == [{"name": "root", "sshAuthorizedKeys": [KEY]}]
    assert got.kept[0] == (
        "network ens3 (52:54:00:12:34:56): static 203.0.113.5/32 via 172.31.1.1 (on-link); "
        "static 2001:db8:1::5/64 via fe80::1"
    )
    assert not check(json.dumps(got.merged)).report.has_errors


def test_static_routes_beside_the_default_are_carried_on_static_interfaces_only() -> None:
    # netns: "10.9.0.0/16 via 198.51.100.1 dev ens4" (proto boot: ip -j leaves it out), the kernel's
    # subnet routes, and ens3's host route to its on-link gateway (carried with that gateway already)
    static4 = IFUPDOWN + "auto ens4\niface ens4 inet static\n    address 198.51.100.20/24\n"
    found = facts.parse(document(files={"/etc/network/interfaces": static4}))
    ens3, ens4 = found.interfaces
    assert ens3.routes4 == () and ens3.routes6 == ()
    assert ens4.routes4 == (facts.Route("10.9.0.0/16", "198.51.100.1"),)
    text = carry.interfaces_file(found.interfaces, "h")
    assert text.count("route add 172.31.1.1 ") == 1
    assert "\tpost-up ip route add 10.9.0.0/16 via 198.51.100.1 dev ens4\n" in text
    assert "route 10.9.0.0/16 via 198.51.100.1" in carry.describe(ens4)
    # the same route on a DHCP interface comes back from its lease (dhclient adds it): not carried
    leased = facts.parse(document(files={"/etc/network/interfaces": IFUPDOWN, "/var/lib/dhcp/dhclient.ens4.leases": DHCLIENT_LEASE}))
    assert "10.9.0.0" not in carry.interfaces_file(leased.interfaces, "h")
    # a lease's, a router advertisement's or the kernel's routes are never taken for static ones
    routes = [{"dst": "10.8.0.0/16", "gateway": "198.51.100.1", "dev": "ens4", "protocol": p, "flags": []}
              for p in ("dhcp", "ra", "kernel")] + [{"dst": "10.7.0.0/16", "dev": "ens4", "protocol": "static", "flags": []}]  # fmt: skip
    found = facts.parse(document(files={"/etc/network/interfaces": static4}, ip_route=routes))
    assert found.interfaces[1].routes4 == (facts.Route("10.7.0.0/16", None),)
    assert "\tpost-up ip route add 10.7.0.0/16 dev ens4\n" in carry.interfaces_file(found.interfaces, "h")


def test_several_static_addresses_of_a_family_stay() -> None:
    iface = facts.Interface("ens4", "52:54:00:ab:cd:ef", None, (Address("192.0.2.7/24", False), Address("192.0.2.8/24", False)),
                            (), Gateway("192.0.2.1", False), None, "static", None)  # fmt: skip
    text = carry.interfaces_file((iface,), "h")
    assert (
        "\taddress 192.0.2.7\n\tnetmask 255.255.255.0\n\tpost-up ip addr add 192.0.2.8/24 dev ens4\n\tgateway 192.0.2.1\n"
        in text
    )


def test_the_config_wins() -> None:
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther admin"
    config = {
        "ignition": {"version": "3.2.0"},
        "storage": {"files": [{"path": "/etc/hostname", "overwrite": True, "contents": {"source": "data:,pine1%0A"}},
                              {"path": "/etc/network/interfaces", "contents": {"source": "data:,auto%20lo%0A"}}]},
        "passwd": {"users": [{"name": "root", "sshAuthorizedKeys": [other]}, {"name": "core"}]},
    }  # fmt: skip
    got = carried_netns(config)
    assert contents(got.merged, "/etc/hostname") == "pine1\n"
    assert contents(got.merged, "/etc/network/interfaces") == "auto lo\n"
    assert contents(got.merged, "/etc/resolv.conf") is not None  # the config does not state it: carried
    assert got.merged["ignition"]["version"] == "3.2.0"
    root, core = got.merged["passwd"]["users"]
    assert root == {"name": "root", "sshAuthorizedKeys": [KEY, other]}
    assert core == {"name": "core"}
    assert got.overridden == (
        "/etc/network/interfaces: the config's own wins",
        "/etc/hostname: the config's own wins",
    )
    assert not check(json.dumps(got.merged)).report.has_errors


def test_nothing_to_carry_is_an_empty_fragment() -> None:
    found = facts.parse({"probe": 1, "files": {}})
    got = carry.carry(found, {"ignition": {"version": "3.4.0"}}, "h")
    assert got.fragment == {"ignition": {"version": "3.4.0"}} and got.kept == ()


def test_the_recordings_are_small() -> None:
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 16 << 10
    assert all(os.path.getsize(p) < 8 << 10 for p in DATA.iterdir())


# --- the command line -----------------------------------------------------------------------------------


def test_the_command_line_needs_one_image(capsys: pytest.CaptureFixture[str]) -> None:
    from pineinstall import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["hijack", "root@h", "c.ign"])
    assert exc.value.code == 2
    assert "one of the arguments --image-file --image-url is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["hijack", "root@h", "c.ign", "--image-file", "a", "--image-url", "http://x/a"])
    assert exc.value.code == 2


def test_targets() -> None:
    from pineinstall.hijack.ssh import SshError, Target, argv

    t = Target.parse("debian@[2001:db8::5]", 2222, "/k")
    assert (t.user, t.host, str(t)) == ("debian", "2001:db8::5", "debian@2001:db8::5:2222")
    assert Target.parse("vps.example", None, None) == Target(None, "vps.example", None, None)
    with pytest.raises(SshError):
        Target.parse("@host", None, None)
    command = argv(t, "/run/x", ["sh", "-s"])
    assert command[-4:] == ["--", "2001:db8::5", "sh", "-s"]
    assert "UserKnownHostsFile=/run/x/known_hosts" in command and "BatchMode=yes" in command
    assert command[command.index("-i") + 1] == "/k" and command[command.index("-l") + 1] == "debian"
