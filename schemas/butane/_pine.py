"""The pine variant's extras: OpenRC services and basic networking."""

from __future__ import annotations

from _builder import Schema, boolean, ref, refs, string
from _spec import Field, exclusive, obj, strings


def pine_defs() -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    d["OpenrcService"] = obj(
        "An OpenRC service: written to /etc/init.d/NAME (mode 0755) and, when enabled, linked "
        "from /etc/runlevels/RUNLEVEL/NAME.",
        [
            (
                True,
                "name",
                {
                    "type": "string",
                    "description": "Service name (file name under /etc/init.d).",
                    "pattern": "^[A-Za-z0-9_.@+-]+$",
                },
            ),
            (
                True,
                "contents",
                string("Text of the init script (`#!/sbin/openrc-run` ...). Excludes `contents_local`."),
            ),
            (
                True,
                "contents_local",
                string(
                    "Path of a file with the init script, relative to `--files-dir`. Excludes `contents`."
                ),
            ),
            (True, "enabled", boolean("Add the service to `runlevel`.", default=True)),
            (
                True,
                "runlevel",
                string(
                    "Runlevel the service is added to.",
                    pattern="^[A-Za-z0-9_.-]+$",
                    default="default",
                    examples=["default", "boot", "sysinit", "shutdown", "nonetwork"],
                ),
            ),
        ],
        required=("name",),
        **exclusive("contents", "contents_local"),
    )
    cidr = (
        r"^(([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])"
        r"|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$"
    )
    ip = r"^(([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"
    d["Interface"] = {
        **obj(
            "A network interface, written to /etc/network/interfaces: either `dhcp: true` or a "
            "static `address`.",
            [
                (
                    True,
                    "name",
                    {
                        "type": "string",
                        "description": "Interface name, e.g. `eth0`.",
                        "pattern": "^[^/\\s]{1,15}$",
                    },
                ),
                (True, "dhcp", boolean("Configure the interface with DHCP.", default=False)),
                (
                    True,
                    "address",
                    string(
                        "Static address in CIDR form, e.g. `192.0.2.10/24` or `2001:db8::10/64`.",
                        pattern=cidr,
                    ),
                ),
                (True, "gateway", string("Default gateway for a static address.", pattern=ip)),
            ],
            required=("name",),
        ),
        # dhcp: true and a static address are exclusive; one of them must be there
        "anyOf": [
            {"required": ["dhcp"], "properties": {"dhcp": {"const": True}}},
            {"required": ["address"], "properties": {"address": {"type": "string"}}},
        ],
        "if": {"required": ["dhcp"], "properties": {"dhcp": {"const": True}}},
        "then": {
            "properties": {"address": {"type": "null"}, "gateway": {"type": "null"}},
        },
    }
    d["Interface"]["type"] = "object"
    d["Network"] = obj(
        "Basic networking for ifupdown/busybox: /etc/hostname, /etc/network/interfaces and /etc/resolv.conf.",
        [
            (
                True,
                "hostname",
                string(
                    "Host name, written to /etc/hostname.",
                    pattern="^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$",
                ),
            ),
            (True, "interfaces", refs("Interface", "Interfaces to configure (distinct names).")),
            (
                True,
                "dns",
                strings(
                    "Name servers, written to /etc/resolv.conf.",
                    "IP address of a name server.",
                    pattern=ip,
                ),
            ),
        ],
    )
    return d


def pine_fields() -> list[Field]:
    fields: list[Field] = []
    fields.append(
        (
            True,
            "openrc",
            obj(
                "OpenRC services (Pine runs OpenRC, not systemd).",
                [(True, "services", refs("OpenrcService", "Services (distinct names)."))],
            ),
        )
    )
    fields.append((True, "network", ref("Network", "Hostname, interfaces and DNS.")))
    return fields
