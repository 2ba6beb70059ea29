"""How the host configures each interface: DHCP or static, per address family, from its own files.

Read in this order, the first that names an interface wins: ifupdown (``/etc/network/interfaces`` and
``interfaces.d``), netplan (``/etc/netplan/*.yaml``), systemd-networkd (``*.network``); then the
leases (dhclient, dhcpcd, networkd) say DHCP for an interface no file names. When nothing is known, the
addresses decide: one with a finite lifetime came from a lease (or router advertisements for IPv6).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import Any

UNSUPPORTED_KINDS = {
    "bond",
    "vlan",
    "bridge",
    "macvlan",
    "ipvlan",
    "team",
    "wireguard",
    "vxlan",
    "gre",
    "tun",
}

Methods = dict[str, dict[str, str]]  # interface name -> {"inet"|"inet6": "dhcp"|"static"|"auto"}

TRUE = (True, "true", "yes", "on")
IFUPDOWN_METHODS = {
    "dhcp": "dhcp",
    "static": "static",
    "manual": "static",
    "auto": "auto",
    "v4tunnel": "static",
}


def _note(out: Methods, name: str, family: str, method: str) -> None:
    out.setdefault(name, {}).setdefault(family, method)


def ifupdown(text: str, out: Methods) -> None:
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 4 and parts[0] == "iface" and parts[3] != "loopback":
            method = IFUPDOWN_METHODS.get(parts[3])
            if method and parts[2] in ("inet", "inet6"):
                _note(out, parts[1], parts[2], method)


def netplan(text: str, out: Methods) -> None:
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return
    network = doc.get("network") if isinstance(doc, dict) else None
    for section in ("ethernets", "wifis"):
        for key, conf in ((network or {}).get(section) or {}).items():
            if not isinstance(conf, dict):
                continue
            name = str(conf.get("set-name") or key)
            addrs = [str(a) for a in conf.get("addresses") or []]
            v4 = [a for a in addrs if ":" not in a]
            v6 = [a for a in addrs if ":" in a]
            for family, dhcp_key, static in (("inet", "dhcp4", v4), ("inet6", "dhcp6", v6)):
                if conf.get(dhcp_key) in TRUE:
                    _note(out, name, family, "dhcp")
                elif static:
                    _note(out, name, family, "static")
            if conf.get("accept-ra") in TRUE:
                _note(out, name, "inet6", "auto")


def networkd(text: str, names: Sequence[str], out: Methods) -> None:
    """A ``.network`` file: [Match] Name= (globs); DHCP= and Address= of [Network]."""
    section = ""
    patterns: list[str] = []
    dhcp = ""
    addresses: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = (s.strip() for s in line.partition("="))
        if section == "Match" and key == "Name":
            patterns += value.split()
        elif section == "Network" and key == "DHCP":
            dhcp = value.lower()
        elif (section == "Network" and key == "Address") or (section == "Address" and key == "Address"):
            addresses.append(value)
    for name in names:
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        if dhcp in ("yes", "true", "both", "ipv4"):
            _note(out, name, "inet", "dhcp")
        if dhcp in ("yes", "true", "both", "ipv6"):
            _note(out, name, "inet6", "dhcp")
        if any(":" not in a for a in addresses):
            _note(out, name, "inet", "static")
        if any(":" in a for a in addresses):
            _note(out, name, "inet6", "static")


def leases(files: dict[str, str], ifindex: dict[Any, Any], out: Methods) -> None:
    for path, text in files.items():
        base = path.rsplit("/", 1)[-1]
        if path.startswith(("/var/lib/dhcp/", "/var/lib/dhclient/")):
            family = "inet6" if "dhclient6" in base else "inet"
            for name in re.findall(r'^\s*interface\s+"([^"]+)"', text, re.M):
                _note(out, name, family, "dhcp")
        elif path.startswith(("/var/lib/dhcpcd/", "/var/lib/dhcpcd5/")):
            name = base.removesuffix(".lease").removesuffix(".lease6").split("-")[0]
            _note(out, name, "inet6" if base.endswith(".lease6") else "inet", "dhcp")
        elif path.startswith("/run/systemd/netif/leases/") and base.isdigit():
            name = ifindex.get(int(base))
            if name:
                _note(out, name, "inet", "dhcp")


def configured(files: dict[str, str], ifindex: dict[Any, Any]) -> Methods:
    """Interface -> family -> method, as the host's own configuration states it."""
    out: Methods = {}
    names = [n for n in ifindex.values() if n]
    for path in sorted(files):
        if path == "/etc/network/interfaces" or path.startswith("/etc/network/interfaces.d/"):
            ifupdown(files[path], out)
    for path in sorted(files):
        if path.startswith("/etc/netplan/"):
            netplan(files[path], out)
    for path in sorted(files):
        if path.endswith(".network"):
            networkd(files[path], names, out)
    leases(files, ifindex, out)
    return out


def method(configured: str | None, dynamic: Sequence[bool], *, family: int) -> str | None:
    """The method carried: the configured one, else what the addresses show (``dynamic``: each one's
    lifetime is finite), None without addresses."""
    if configured is not None:
        return configured
    if not dynamic:
        return None
    if any(dynamic):
        return "dhcp" if family == 4 else "auto"
    return "static"
