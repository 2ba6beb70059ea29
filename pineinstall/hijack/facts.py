"""Typed facts of the host to take over, read from the probe's JSON document.

Every reader takes the part of the document it needs and tolerates what a host may lack (no ``ip``,
no ``lsblk``, unreadable files): a missing fact is None or empty, and :mod:`.refusals` decides
whether the takeover can go on without it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from pineinstall.hijack import netconf
from pineinstall.hijack.drivers import Driver, chains

MIB = 1 << 20


@dataclass(frozen=True)
class OsRelease:
    id: str
    id_like: tuple[str, ...]
    version_id: str
    pretty_name: str


@dataclass(frozen=True)
class Disk:
    """The disk under /: its name changes between kernels, so it is also named by its table and ids."""

    path: str
    size: int
    serial: str | None
    pttype: str | None
    ptuuid: str | None
    by_id: tuple[str, ...]
    drivers: tuple[Driver, ...] | None = None  # sysfs, nearest first; None: no sysfs device or not probed


@dataclass(frozen=True)
class Address:
    cidr: str  # "192.0.2.10/24"
    dynamic: bool  # a lease's address (finite valid lifetime)


@dataclass(frozen=True)
class Gateway:
    address: str
    onlink: bool  # outside every subnet of the interface: reached through a host route


@dataclass(frozen=True)
class Route:
    dst: str  # "10.9.0.0/16"
    via: str | None  # the next hop; None for a route straight onto the link


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    kind: str | None  # ip -d's linkinfo kind (bridge, veth, vlan...); None for a physical NIC
    v4: tuple[Address, ...]
    v6: tuple[Address, ...]  # global ones; link-local addresses are made by the kernel
    gateway4: Gateway | None
    gateway6: Gateway | None
    method4: str | None  # "dhcp" | "static" | None (no IPv4)
    method6: str | None  # "dhcp" | "auto" | "static" | None (no IPv6)
    routes4: tuple[Route, ...] = ()  # static routes other than the default and the gateway's host route
    routes6: tuple[Route, ...] = ()
    drivers: tuple[Driver, ...] | None = None  # sysfs, nearest first; None: no device (a bridge) or not probed


@dataclass(frozen=True)
class Facts:
    user: str
    hostname: str
    os: OsRelease | None
    container: str | None  # "openvz", "lxc", "docker", "podman", ... or None
    efi: bool
    secure_boot: bool | None  # None: not UEFI, or the variable cannot be read
    disk: Disk | None
    mem_total: int | None  # bytes
    mem_available: int | None
    interfaces: tuple[Interface, ...]
    dns: tuple[str, ...]
    authorized_keys: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())  # what was seen and not carried
    boot_id: str | None = None  # the running kernel's boot id: tells the controller itself apart


def key_values(text: str) -> dict[str, str]:
    """os-release: KEY=value lines, values maybe quoted."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[key] = value
    return out


def os_release(files: dict[str, str]) -> OsRelease | None:
    text = files.get("/etc/os-release") or files.get("/usr/lib/os-release")
    if text is None:
        return None
    kv = key_values(text)
    return OsRelease(
        kv.get("ID", ""),
        tuple(kv.get("ID_LIKE", "").split()),
        kv.get("VERSION_ID", ""),
        kv.get("PRETTY_NAME", ""),
    )


def container(doc: dict[str, Any]) -> str | None:
    markers = doc.get("markers") or {}
    if markers.get("proc_vz") and markers.get("user_beancounters"):
        return "openvz"  # /proc/vz alone is also on the OpenVZ host node itself
    virt = (doc.get("virt") or "").strip()
    if virt and virt != "none":
        return virt
    for key in ("systemd_container", "pid1_container"):
        value = (markers.get(key) or "").strip()
        if value:
            return value
    if markers.get("dockerenv"):
        return "docker"
    if markers.get("containerenv"):
        return "podman"
    return None


def secure_boot(doc: dict[str, Any]) -> bool | None:
    """The SecureBoot efivar: 4 attribute bytes, then 1 (on) or 0."""
    values = (doc.get("secure_boot") or "").split()
    if not doc.get("efi") or len(values) < 5:
        return None
    return values[4] == "1"


def meminfo(files: dict[str, str]) -> tuple[int | None, int | None]:
    kv = {}
    for line in (files.get("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kv[key] = int(parts[0]) * 1024
    return kv.get("MemTotal"), kv.get("MemAvailable")


def boot_disk(doc: dict[str, Any]) -> Disk | None:
    """The disk whose tree holds the filesystem mounted at / (through partitions, LVM, RAID...)."""

    def holds_root(node: dict[str, Any]) -> bool:
        return node.get("mountpoint") == "/" or any(holds_root(c) for c in node.get("children") or [])

    disks = [d for d in (doc.get("lsblk") or {}).get("blockdevices") or [] if d.get("type") == "disk"]
    found = [d for d in disks if holds_root(d)]
    if len(found) != 1:
        return None  # none (overlay, network root) or several (RAID across disks): no single target
    d = found[0]
    path = d.get("path") or f"/dev/{d['name']}"
    by_id = tuple(sorted(name for name, target in doc.get("by_id") or [] if target == path))
    # a disk without a sysfs device (nbd, a ramdisk) has no driver: () where the probe looked
    found_drivers = chains(doc, "block").get(d.get("name") or "", ()) if doc.get("drivers") is not None else None
    return Disk(path, int(d.get("size") or 0), d.get("serial"), d.get("pttype"), d.get("ptuuid"), by_id,
                found_drivers)  # fmt: skip


def nameservers(doc: dict[str, Any], files: dict[str, str]) -> tuple[str, ...]:
    """resolv.conf's servers; systemd-resolved's upstream list when resolv.conf is its local stub."""

    def servers(text: str) -> list[str]:
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(parts[1])
        return out

    local = servers(files.get("/etc/resolv.conf") or "")
    upstream = servers(files.get("/run/systemd/resolve/resolv.conf") or "")
    stub = not local or all(ipaddress.ip_address(s.split("%")[0]).is_loopback for s in local)
    chosen = upstream if stub and upstream else local
    return tuple(s for s in chosen if not ipaddress.ip_address(s.split("%")[0]).is_loopback)


def authorized_keys(doc: dict[str, Any], files: dict[str, str]) -> tuple[str, ...]:
    home = doc.get("home") or ""
    keys: list[str] = []
    for name in ("authorized_keys", "authorized_keys2"):
        for line in (files.get(f"{home}/.ssh/{name}") or "").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and line not in keys:
                keys.append(line)
    return tuple(keys)


def _flat(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Multipath routes (``nexthops``: a v6 default through a global and a link-local router) as one
    route per next hop."""
    out = []
    for r in routes:
        for hop in r.get("nexthops") or [{}]:
            out.append({**r, **hop, "flags": (r.get("flags") or []) + (hop.get("flags") or [])})
    return out


def _default_gateway(routes: list[dict[str, Any]], dev: str, own: list[str]) -> Gateway | None:
    """The interface's default route's gateway (the lowest metric), on-link when no subnet of the
    interface holds it or the kernel says so."""
    best = None
    for r in _flat(routes):
        usable = r.get("dst") == "default" and r.get("dev") == dev and r.get("gateway")
        if usable and (best is None or r.get("metric", 0) < best.get("metric", 0)):
            best = r
    if best is None:
        return None
    gw = ipaddress.ip_address(best["gateway"])
    inside = gw.is_link_local or any(gw in ipaddress.ip_interface(c).network for c in own)
    return Gateway(str(gw), "onlink" in (best.get("flags") or []) or not inside)


def _static_routes(routes: list[dict[str, Any]], dev: str, gateway: Gateway | None) -> tuple[Route, ...]:
    """The routes the host's configuration added to ``dev`` (protocol boot, which ``ip -j`` leaves out,
    or static): not the kernel's subnet routes, not a lease's or a router advertisement's, not the
    default route and not the host route to an on-link gateway (carried with the gateway)."""
    out = []
    for r in _flat(routes):
        if r.get("dev") != dev or r.get("dst") in (None, "default") or r.get("type", "unicast") != "unicast":
            continue
        if r.get("protocol", "boot") not in ("boot", "static"):
            continue
        if gateway is not None and not r.get("gateway") and r["dst"].split("/")[0] == gateway.address:
            continue
        out.append(Route(r["dst"], r.get("gateway")))
    return tuple(out)


def interfaces(doc: dict[str, Any], files: dict[str, str]) -> tuple[tuple[Interface, ...], tuple[str, ...]]:
    """The interfaces worth carrying, and notes on those that are not carried."""
    configured = netconf.configured(
        files, {i.get("ifindex"): i.get("ifname") for i in doc.get("ip_addr") or []}
    )
    out: list[Interface] = []
    notes: list[str] = []
    nics = chains(doc, "net")
    for link in doc.get("ip_addr") or []:
        name = link.get("ifname") or ""
        kind = (link.get("linkinfo") or {}).get("info_kind")
        if name == "lo" or link.get("link_type") != "ether":
            continue
        v4 = [
            Address(f"{a['local']}/{a['prefixlen']}", a.get("dynamic", False))
            for a in link.get("addr_info") or []
            if a.get("family") == "inet" and a.get("scope") == "global"
        ]
        v6 = [
            Address(f"{a['local']}/{a['prefixlen']}", a.get("dynamic", False))
            for a in link.get("addr_info") or []
            if a.get("family") == "inet6" and a.get("scope") == "global"
        ]
        methods = configured.get(name, {})
        if kind is not None and not methods:
            continue  # a bridge, veth, tunnel the host made for itself (docker0...): not the provider's
        if kind in netconf.UNSUPPORTED_KINDS:
            notes.append(f"{name}: a {kind} interface is not carried; state it in the config")
            continue
        if not v4 and not v6 and not methods:
            continue
        gw4 = _default_gateway(doc.get("ip_route") or [], name, [a.cidr for a in v4])
        gw6 = _default_gateway(doc.get("ip6_route") or [], name, [a.cidr for a in v6])
        out.append(
            Interface(
                name,
                (link.get("address") or "").lower(),
                kind,
                tuple(v4),
                tuple(v6),
                gw4,
                gw6,
                netconf.method(methods.get("inet"), [a.dynamic for a in v4], family=4),
                netconf.method(methods.get("inet6"), [a.dynamic for a in v6], family=6),
                _static_routes(doc.get("ip_route") or [], name, gw4),
                _static_routes(doc.get("ip6_route") or [], name, gw6),
                nics.get(name),
            )
        )
    return tuple(out), tuple(notes)


def parse(doc: dict[str, Any]) -> Facts:
    files = {k: v for k, v in (doc.get("files") or {}).items() if isinstance(v, str)}
    total, available = meminfo(files)
    ifaces, notes = interfaces(doc, files)
    return Facts(
        user=doc.get("user") or "",
        hostname=(doc.get("hostname") or "").strip(),
        os=os_release(files),
        container=container(doc),
        efi=bool(doc.get("efi")),
        secure_boot=secure_boot(doc),
        disk=boot_disk(doc),
        mem_total=total,
        mem_available=available,
        interfaces=ifaces,
        dns=nameservers(doc, files),
        authorized_keys=authorized_keys(doc, files),
        notes=notes,
        boot_id=(files.get("/proc/sys/kernel/random/boot_id") or "").strip() or None,
    )
