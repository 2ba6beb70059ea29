"""The network ``pineinstall hijack`` carries, brought up by Pine's own ifupdown-ng (the Alpine root of
iso/lib/alpine.py, chrooted) in a network namespace whose NIC the kernel named ``eth0`` while the old
host called it ``ens3``: the carried file renames the NIC by its MAC, then configures it. Every result
is read from the host with ``ip -n``.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pineinstall.hijack import carry
from pineinstall.hijack.facts import Address, Gateway, Interface, Route

pytestmark = [pytest.mark.slow, pytest.mark.needs("zstd", "tar", "unshare", "ip")]

MAC = "52:54:00:c4:12:07"


@pytest.fixture(scope="module")
def alpine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from iso.lib.alpine import alpine_root

    root = tmp_path_factory.mktemp("alpine")
    subprocess.run(["tar", "--zstd", "-xpf", str(alpine_root()), "-C", str(root)], check=True)
    return root


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace holding one veth end named as Pine's kernel names a NIC (eth0), the old host's MAC."""
    name = f"pine-carry-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip = ["ip", "-n", name, "link"]
        subprocess.run([*ip, "add", "eth0", "address", MAC, "type", "veth", "peer", "name", "peer0"], check=True)
        subprocess.run([*ip, "set", "peer0", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ifup(root: Path, ns: str, interfaces: str) -> subprocess.CompletedProcess:
    (root / "tmp/interfaces").write_text(interfaces)
    script = (
        f"mount -t proc proc {root}/proc && mount -t sysfs sys {root}/sys && "
        f"exec chroot {root} /sbin/ifup -i /tmp/interfaces -S /tmp/ifstate -a"
    )
    return subprocess.run(
        ["ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )


def ip_json(ns: str, *argv: str) -> Any:
    return json.loads(subprocess.run(["ip", "-n", ns, "-j", *argv], capture_output=True, text=True, check=True).stdout)


def test_the_carried_static_network_renames_the_nic_by_its_mac_and_comes_up(alpine: Path, netns: str) -> None:
    ens3 = Interface(
        "ens3", MAC, None, (Address("203.0.113.5/32", False), Address("203.0.113.6/32", False)), (),
        Gateway("172.31.1.1", onlink=True), None, "static", None, (Route("10.9.0.0/16", "172.31.1.1"),),
    )  # fmt: skip
    text = carry.interfaces_file((ens3,), "vps1")
    done = ifup(alpine, netns, text)
    assert done.returncode == 0, done.stderr + done.stdout
    (link,) = [i for i in ip_json(netns, "addr") if i["ifname"] not in ("lo", "peer0")]
    assert (link["ifname"], link["address"]) == ("ens3", MAC)
    v4 = sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"] if a["family"] == "inet")
    assert v4 == ["203.0.113.5/32", "203.0.113.6/32"]
    routes = {(r["dst"], r.get("gateway"), r["dev"]) for r in ip_json(netns, "route")}
    assert {
        ("default", "172.31.1.1", "ens3"),
        ("172.31.1.1", None, "ens3"),
        ("10.9.0.0/16", "172.31.1.1", "ens3"),
    } <= routes


def test_a_nic_that_already_has_the_carried_name_is_left_as_it_is(alpine: Path, netns: str) -> None:
    eth0 = Interface("eth0", MAC, None, (Address("10.0.2.15/24", False),), (), Gateway("10.0.2.2", False), None,
                     "static", None)  # fmt: skip
    done = ifup(alpine, netns, carry.interfaces_file((eth0,), "vps1"))
    assert done.returncode == 0, done.stderr + done.stdout
    routes = {(r["dst"], r.get("gateway"), r["dev"]) for r in ip_json(netns, "route")}
    assert ("default", "10.0.2.2", "eth0") in routes
