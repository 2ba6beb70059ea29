"""Why a host cannot be taken over: each refusal is one sentence a person can act on."""

from __future__ import annotations

from pineinstall.hijack.bootonce import RAM
from pineinstall.hijack.drivers import Driver, KernelDrivers, missing
from pineinstall.hijack.facts import MIB, Facts

SUPPORTED = ("debian", "ubuntu")
# The RAM pivot runs beside the old system: the RAM root, the payload and the stream buffers. Measured
# (docs/hijack.md, "Measured"): 128 MiB (MemTotal 78 MiB) works with 31 MiB to spare; 112 MiB (MemTotal 62,
# 22 available) is below these.
MIN_MEM_TOTAL = 64 * MIB
MIN_AVAILABLE = 24 * MIB
# The one-shot installer boot asks of the old system only to receive 5 MiB of files and run grub-reboot
# (done with 19.5 MiB available at 112 MiB); its own RAM floor is bootonce.MIN_MEM_TOTAL.
BOOT_ONCE_MIN_AVAILABLE = 16 * MIB


def local_boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def refusals(facts: Facts, controller_boot_id: str | None = None, method: str = RAM) -> list[str]:
    """method: the takeover path chosen (bootonce.choose); the RAM it needs depends on it."""
    out = []
    if facts.boot_id is not None and facts.boot_id == controller_boot_id:
        out.append("the host is this machine itself (the same boot id): it cannot overwrite its own disk")
    os = facts.os
    if os is None:
        out.append("no /etc/os-release: not a Debian or Ubuntu system")
    elif os.id not in SUPPORTED and not set(os.id_like) & set(SUPPORTED):
        out.append(f"the system is {os.pretty_name or os.id or 'unknown'}, not Debian or Ubuntu")
    if facts.container is not None:
        out.append(
            f"the system runs in a container ({facts.container}): it has no disk or kernel of its own to replace"
        )
    if facts.disk is None:
        out.append("no single disk holds the root filesystem (lsblk): no disk to write Pine to")
    if facts.mem_total is None:
        out.append("the RAM could not be read (/proc/meminfo)")
    elif method == RAM and facts.mem_total < MIN_MEM_TOTAL:
        out.append(f"{facts.mem_total // MIB} MiB of RAM: the RAM pivot needs a machine of at least 128 MiB")
    need = MIN_AVAILABLE if method == RAM else BOOT_ONCE_MIN_AVAILABLE
    if facts.mem_available is not None and facts.mem_available < need:
        out.append(f"{facts.mem_available // MIB} MiB of RAM available: at least {need // MIB} MiB are needed")
    if facts.secure_boot:
        out.append("Secure Boot is on: Pine's boot loader is not signed; turn it off in the firmware first")
    return out


def drivers(facts: Facts, have: KernelDrivers | None) -> list[str]:
    """One sentence per device the new Pine needs (the target disk, every carried NIC) whose drivers,
    as the host's kernel binds them, are not all in the image's kernel, or whose driver the probe found
    nowhere (a network block device...). have None: the image carries no module lists (built otherwise):
    nothing to compare with, nothing refused."""
    if have is None:
        return []
    devices: list[tuple[str, str, tuple[Driver, ...] | None]] = []
    if facts.disk is not None:
        devices.append(("disk", facts.disk.path, facts.disk.drivers))
    devices += [("NIC", i.name, i.drivers) for i in facts.interfaces]
    out = []
    for kind, name, found in devices:
        if found is None:
            continue  # no sysfs device (a bridge, a VLAN), or a probe without the drivers part
        listed = ", ".join(have.shown(kind)) or "none"
        lacks = missing(found, have)
        if not found:
            out.append(f"{kind} {name}: no driver for it in the host's sysfs (not a local device?); "
                       f"Pine's kernel {have.release} has for {kind}s: {listed}")  # fmt: skip
        elif lacks:
            out.append(
                f"{kind} {name}: the host's kernel drives it with {', '.join(map(str, found))}; Pine's kernel "
                f"{have.release} lacks {', '.join(d.wanted for d in lacks)} (it has for {kind}s: {listed}), "
                f"so the new Pine would not find its {'root' if kind == 'disk' else 'network'}"
            )
    return out
