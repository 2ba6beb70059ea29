"""The ``pine`` variant: fcos's sugar (``variants.fcos``, as fcos 1.6) plus its own sections,
``openrc.services`` and ``network``.

Both become plain Ignition (files and links), so the real Ignition applies them:

- ``openrc.services[]``: ``name``, ``contents`` or ``contents_local`` (the init script),
  ``enabled`` (default true), ``runlevel`` (default ``default``) -> ``/etc/init.d/NAME`` (0755)
  when there is a script, and the link ``/etc/runlevels/LEVEL/NAME -> /etc/init.d/NAME`` when
  enabled (a service without a script enables one the image already ships, e.g. ``sshd``);
- ``network``: ``hostname`` -> ``/etc/hostname``; ``interfaces[]`` (``name``, ``dhcp: true`` or
  ``address`` in CIDR notation, ``gateway``) -> ``/etc/network/interfaces`` in the syntax of
  ifupdown (busybox and ifupdown-ng read it: ``address`` plus ``netmask``); ``dns[]`` ->
  ``/etc/resolv.conf``.

These files exist on every image, so they are written with ``overwrite: true``. The rendered
entries are merged *under* the user's config with Ignition's merge, as Butane does with its own
sugar: an explicit ``storage.files`` entry for the same path wins (a directory or link there
replaces the generated file).
"""

from __future__ import annotations

import re

from ..base.local import read_local
from ..errors import ERR_DUPLICATE, ERR_NAME_REQUIRED, ERR_TOO_MANY_UNIT_SOURCES
from . import fcos

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

    from ..base.translate import Translator


ERR_SERVICE_NAME = "service name must be a file name (letters, digits, '.', '_', '-', '@')"
ERR_RUNLEVEL = "runlevel must be a directory name (letters, digits, '.', '_', '-')"
ERR_HOSTNAME = "invalid hostname: labels of 1-63 letters, digits and '-', 253 characters at most"
ERR_IFACE_NAME = "interface name must be 1-15 characters without '/', ':' or white space"
ERR_DHCP_AND_ADDRESS = "only one of the following can be set: dhcp, address"
ERR_NO_METHOD = "one of the following must be set: dhcp, address"
ERR_ADDRESS = "address must be an IP address with a prefix length (CIDR), e.g. 192.0.2.10/24"
ERR_GATEWAY = "gateway must be an IP address"
ERR_GATEWAY_FAMILY = "gateway and address must be of the same IP version"
ERR_GATEWAY_DHCP = "gateway is ignored with dhcp: the DHCP server provides it"
ERR_DNS = "DNS server must be an IP address"

_SERVICE = r"^[A-Za-z0-9_@][A-Za-z0-9._@-]*$"
_RUNLEVEL = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$"
_LABEL = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
_IFACE = r"^[^/:\s]{1,15}$"


def valid_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(re.match(_LABEL, label) for label in name.rstrip(".").split("."))


def _ip(text: str) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _cidr(text: str) -> Any:
    import ipaddress

    if "/" not in text:
        return None
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


validate_storage = fcos.validate_storage
filters = fcos.filters


def validate(tr: Translator, cfg: dict) -> None:
    """Source checks of fcos's sugar, then of the pine sections; errors make the config invalid."""
    fcos.validate(tr, cfg)
    services = (cfg.get("openrc") or {}).get("services") or []
    seen: set = set()
    for i, svc in enumerate(services):
        base = ("openrc", "services", i)
        name = svc.get("name")
        if not name:
            tr.report.error(ERR_NAME_REQUIRED, (*base, "name"))
        elif not re.match(_SERVICE, name):
            tr.report.error(ERR_SERVICE_NAME, (*base, "name"))
        elif (name, svc.get("runlevel") or "default") in seen:
            tr.report.error(ERR_DUPLICATE, base)
        seen.add((name, svc.get("runlevel") or "default"))
        if "contents" in svc and "contents_local" in svc:
            tr.report.error(ERR_TOO_MANY_UNIT_SOURCES, (*base, "contents_local"))
        runlevel = svc.get("runlevel")
        if runlevel is not None and not re.match(_RUNLEVEL, runlevel):
            tr.report.error(ERR_RUNLEVEL, (*base, "runlevel"))
    net = cfg.get("network") or {}
    if "hostname" in net and not valid_hostname(net["hostname"]):
        tr.report.error(ERR_HOSTNAME, ("network", "hostname"))
    names: set = set()
    for i, iface in enumerate(net.get("interfaces") or []):
        base = ("network", "interfaces", i)
        name = iface.get("name")
        if not name:
            tr.report.error(ERR_NAME_REQUIRED, (*base, "name"))
        elif not re.match(_IFACE, name) or name == "lo":
            tr.report.error(ERR_IFACE_NAME, (*base, "name"))
        elif name in names:
            tr.report.error(ERR_DUPLICATE, base)
        names.add(name)
        dhcp = iface.get("dhcp") is True
        address = iface.get("address")
        if dhcp and address is not None:
            tr.report.error(ERR_DHCP_AND_ADDRESS, (*base, "address"))
        elif not dhcp and address is None:
            tr.report.error(ERR_NO_METHOD, base)
        addr = None
        if address is not None:
            addr = _cidr(address)
            if addr is None:
                tr.report.error(ERR_ADDRESS, (*base, "address"))
        gateway = iface.get("gateway")
        if gateway is not None:
            gw = _ip(gateway)
            if gw is None:
                tr.report.error(ERR_GATEWAY, (*base, "gateway"))
            elif dhcp:
                tr.report.warning(ERR_GATEWAY_DHCP, (*base, "gateway"))
            elif addr is not None and gw.version != addr.version:
                tr.report.error(ERR_GATEWAY_FAMILY, (*base, "gateway"))
    for i, server in enumerate(net.get("dns") or []):
        if _ip(server) is None:
            tr.report.error(ERR_DNS, ("network", "dns", i))


def interfaces_file(interfaces: list[dict]) -> str:
    """/etc/network/interfaces: loopback first, then each interface in the given order."""
    lines = ["# Generated by pine-transpile", "auto lo", "iface lo inet loopback"]
    for iface in interfaces:
        name = iface["name"]
        lines += ["", f"auto {name}"]
        if iface.get("dhcp") is True:
            lines.append(f"iface {name} inet dhcp")
            continue
        addr = _cidr(iface["address"])
        if addr.version == 4:
            lines += [
                f"iface {name} inet static",
                f"\taddress {addr.ip}",
                f"\tnetmask {addr.network.netmask}",
            ]
        else:
            lines += [
                f"iface {name} inet6 static",
                f"\taddress {addr.ip}",
                f"\tnetmask {addr.network.prefixlen}",
            ]
        if iface.get("gateway"):
            lines.append(f"\tgateway {iface['gateway']}")
    return "\n".join(lines) + "\n"


def resolv_conf(servers: list[str]) -> str:
    return "# Generated by pine-transpile\n" + "".join(f"nameserver {s}\n" for s in servers)


def translate(tr: Translator, cfg: dict, out: dict) -> dict:
    out = fcos.translate(tr, cfg, out)
    if "openrc" in cfg or "network" in cfg:
        rendered = _render(tr, cfg)
        if rendered is not None:
            out = tr.origins.merge_under(rendered, out)
    return out


def _render(tr: Translator, cfg: dict) -> dict | None:
    """The files and links of the pine sections, as an Ignition config to merge the user's over."""
    reg = tr.origins.reg
    files: list[dict] = []
    links: list[dict] = []

    def add_file(path: str, data: bytes, mode: int, ypath: tuple) -> None:
        url, comp = tr.data_url(data)
        contents = reg({"compression": comp, "source": url}, ypath)
        files.append(reg({"overwrite": True, "path": path, "contents": contents, "mode": mode}, ypath))

    for i, svc in enumerate((cfg.get("openrc") or {}).get("services") or []):
        ypath = ("openrc", "services", i)
        name = svc["name"]
        script = None
        if "contents" in svc:
            script = svc["contents"].encode("utf-8", "surrogateescape")
        elif "contents_local" in svc:
            script = read_local(tr, svc["contents_local"], (*ypath, "contents_local"))
        if script is not None:
            add_file(f"/etc/init.d/{name}", script, 0o755, ypath)
        if svc.get("enabled", True) is not False:
            level = svc.get("runlevel") or "default"
            links.append(
                reg(
                    {
                        "overwrite": True,
                        "path": f"/etc/runlevels/{level}/{name}",
                        "target": f"/etc/init.d/{name}",
                    },
                    ypath,
                )
            )
    net = cfg.get("network") or {}
    if net.get("hostname"):
        add_file("/etc/hostname", (net["hostname"] + "\n").encode(), 0o644, ("network", "hostname"))
    if net.get("interfaces"):
        add_file(
            "/etc/network/interfaces",
            interfaces_file(net["interfaces"]).encode(),
            0o644,
            ("network", "interfaces"),
        )
    if net.get("dns"):
        add_file("/etc/resolv.conf", resolv_conf(net["dns"]).encode(), 0o644, ("network", "dns"))
    if not files and not links:
        return None
    storage: dict[str, Any] = {}
    if files:
        storage["files"] = reg(files, ())
    if links:
        storage["links"] = reg(links, ())
    return reg({"storage": reg(storage, ())}, ())
