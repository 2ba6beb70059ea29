"""The carry-over: what the host had that the new Pine keeps, as an Ignition fragment merged *under*
the user's config (Ignition's merge, the config as the child: every path and value it states wins).

The fragment states the network in the files the ``pine`` variant's ``network:`` section writes
(``/etc/network/interfaces`` in ifupdown syntax, ``/etc/hostname``, ``/etc/resolv.conf``), so a config
with its own ``network:`` replaces the carried file as a whole, never half of it. It goes beyond that
section where a VPS needs it: both families on one interface, several addresses, on-link gateways
(a host route to the gateway first, then the default route through it). ``/etc/mactab`` binds each
carried name to its MAC, and each interface's first stanza renames the NIC with that MAC to the carried
name (``pre-up nameif``): Pine's kernel names NICs eth0, eth1... where the host's udev said ens3.

The login user's authorized keys go to ``root``: whoever could log in to the old system, as root or as
a sudo user, could already do anything there, and root is the one account every Pine has. Ignition
merges key lists as sets, so the config's own keys for root are kept too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pineinstall.hijack.facts import Address, Facts, Gateway, Interface, Route

KEYS_USER = "root"
HEADER = "# Carried over from {host} by pineinstall hijack"


@dataclass(frozen=True)
class Carried:
    fragment: dict[str, Any]  # an Ignition config (the user's version) holding only what is carried
    merged: dict[str, Any]  # the user's config over the fragment: what the new Pine gets
    kept: tuple[str, ...]  # one line per carried fact, for the plan
    overridden: tuple[str, ...]  # carried facts the config replaces


def _static(
    lines: list[str], name: str, family: str, addrs: tuple[Address, ...], gw: Gateway | None,
    routes: tuple[Route, ...],
) -> None:
    first = ipaddress.ip_interface(addrs[0].cidr)
    netmask = first.network.netmask if first.version == 4 else first.network.prefixlen
    lines += [f"iface {name} {family} static", f"\taddress {first.ip}", f"\tnetmask {netmask}"]
    ip = "ip" if first.version == 4 else "ip -6"
    lines += [f"\tpost-up {ip} addr add {a.cidr} dev {name}" for a in addrs[1:]]
    if gw is not None and gw.onlink:
        lines += [
            f"\tpost-up {ip} route add {gw.address} dev {name}",
            f"\tpost-up {ip} route add default via {gw.address} dev {name}",
        ]
    elif gw is not None:
        lines.append(f"\tgateway {gw.address}")
    for r in routes:
        lines.append(f"\tpost-up {ip} route add {r.dst}" + (f" via {r.via}" if r.via else "") + f" dev {name}")


def interfaces_file(ifaces: tuple[Interface, ...], host: str) -> str:
    """``/etc/network/interfaces`` (ifupdown syntax, as the pine variant writes it): loopback, then one
    stanza per family of each interface."""
    lines = [HEADER.format(host=host), "auto lo", "iface lo inet loopback"]
    for iface in ifaces:
        lines += ["", f"auto {iface.name}"]
        first = len(lines) + 1  # after the interface's first stanza line, whichever family it is
        if iface.method4 == "dhcp":
            lines.append(f"iface {iface.name} inet dhcp")
        elif iface.method4 == "static" and iface.v4:
            _static(lines, iface.name, "inet", iface.v4, iface.gateway4, iface.routes4)
        if iface.method6 in ("dhcp", "auto"):
            lines.append(f"iface {iface.name} inet6 {iface.method6}")
        elif iface.method6 == "static" and iface.v6:
            _static(lines, iface.name, "inet6", iface.v6, iface.gateway6, iface.routes6)
        if iface.mac and len(lines) >= first:  # a stanza was written
            # Pine's kernel names NICs in probe order (eth0...), not as the host's udev did (ens3...):
            # the NIC with this MAC gets the carried name before it is configured (a no-op when it has it)
            lines.insert(first, f"\tpre-up nameif {iface.name} {iface.mac}")
    return "\n".join(lines) + "\n"


def _file(path: str, text: str, mode: int = 0o644) -> dict[str, Any]:
    return {
        "path": path,
        "overwrite": True,
        "mode": mode,
        "contents": {"source": "data:," + quote(text, safe="")},
    }


def fragment(facts: Facts, version: str, host: str) -> tuple[dict[str, Any], list[str]]:
    """(the Ignition fragment, a line per carried fact)."""
    files: list[dict[str, Any]] = []
    kept: list[str] = []
    if facts.interfaces:
        files.append(_file("/etc/network/interfaces", interfaces_file(facts.interfaces, host)))
        mactab = "".join(f"{i.name} {i.mac}\n" for i in facts.interfaces if i.mac)
        files.append(_file("/etc/mactab", mactab))
        for i in facts.interfaces:
            kept.append(f"network {i.name} ({i.mac}): {describe(i)}")
    if facts.dns:
        files.append(_file("/etc/resolv.conf", "".join(f"nameserver {s}\n" for s in facts.dns)))
        kept.append(f"DNS: {', '.join(facts.dns)}")
    if facts.hostname:
        files.append(_file("/etc/hostname", facts.hostname + "\n"))
        kept.append(f"hostname: {facts.hostname}")
    out: dict[str, Any] = {"ignition": {"version": version}}
    if files:
        out["storage"] = {"files": files}
    if facts.authorized_keys:
        out["passwd"] = {"users": [{"name": KEYS_USER, "sshAuthorizedKeys": list(facts.authorized_keys)}]}
        kept.append(f"{len(facts.authorized_keys)} authorized key(s) of {facts.user} -> {KEYS_USER}")
    return out, kept


def describe(iface: Interface) -> str:
    parts = []
    for method, addrs, gw, routes in (
        (iface.method4, iface.v4, iface.gateway4, iface.routes4),
        (iface.method6, iface.v6, iface.gateway6, iface.routes6),
    ):
        if method is None:
            continue
        if method != "static":
            parts.append(method if method != "auto" else "IPv6 autoconfiguration")
            continue
        text = "static " + " ".join(a.cidr for a in addrs)
        if gw is not None:
            text += f" via {gw.address}" + (" (on-link)" if gw.onlink else "")
        text += "".join(f", route {r.dst}" + (f" via {r.via}" if r.via else "") for r in routes)
        parts.append(text)
    return "; ".join(parts) or "no address"


def _paths(config: dict[str, Any]) -> set[str]:
    storage = config.get("storage") or {}
    return {e.get("path") for kind in ("files", "directories", "links") for e in storage.get(kind) or []}


def carry(facts: Facts, config: dict[str, Any], host: str) -> Carried:
    from pineinstall.config.merge import merge

    version = (config.get("ignition") or {}).get("version", "3.4.0")
    frag, kept = fragment(facts, version, host)
    stated = _paths(config)
    overridden = tuple(
        f"{f['path']}: the config's own wins"
        for f in (frag.get("storage") or {}).get("files", [])
        if f["path"] in stated
    )
    return Carried(frag, merge(frag, config), tuple(kept), overridden)
