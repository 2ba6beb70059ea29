"""The one-shot installer boot path of ``pineinstall hijack`` (``--takeover boot-once``): its pure pieces.

Instead of pivoting into RAM on the live host, the host boots once into a Pine installer environment:
Pine's own kernel and an initramfs holding the same mini-root as the RAM payload (busybox, Dropbear,
``stage2.sh``). GRUB's one-shot entry (``grub-reboot``: grubenv's ``next_entry``, which GRUB clears
before it boots the entry) makes a failed installer boot fall back to the old system at the next
reboot; the installer's watchdog and ``panic=10`` make it reboot when it is not reached.

Here: which path a host gets (:func:`choose`), the GRUB entry (:func:`grub_entry`), the host's side
(``HOST_SCRIPT``: files into /boot/pine-hijack, the entry into /boot/grub/custom.cfg, grub-reboot;
``CLEANUP``: all of it removed) and the installer's ``/init`` with its settings (:func:`init_conf`).
:mod:`.installer` builds the initramfs; :mod:`.takeover` runs the sessions.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from pineinstall.hijack.facts import MIB, Facts, Interface

RAM, BOOT_ONCE, AUTO = "ram", "boot-once", "auto"
CHOICES = (AUTO, RAM, BOOT_ONCE)
ENTRY_ID = "pine-hijack"
DIR = "/boot/pine-hijack"
GRUB_DIR = "/boot/grub"
BEGIN = "### BEGIN pineinstall hijack: a one-shot installer entry (removed when it is not reached) ###"
END = "### END pineinstall hijack ###"
# The installer holds Pine's kernel, its unpacked initramfs (~6 MiB) and the first MiB of the disk, and
# Pine's kernel reserves ~30 MiB less than the old system's: the installer's lowest MemAvailable was
# 77 MiB on a 112 MiB guest whose Debian had MemTotal 62 MiB, 52 MiB at 128 MiB (docs/hijack.md,
# "Measured"). Below this MemTotal of the old system, nothing was measured.
MIN_MEM_TOTAL = 48 * MIB
# Filesystems whose grubenv GRUB rewrites in place when it boots the one-shot entry (save_env):
# not on LVM, RAID or btrfs, where GRUB cannot write and next_entry would boot the installer forever.
ENV_FSTYPES = ("ext2", "ext3", "ext4")
WATCHDOG = 300  # s: the installer reboots (into the old system) when no session has come by then
KERNEL_ARGS = ("panic=10",)  # a panic reboots too: into the old system, the entry being spent
FAIL_ARG = "pine_hijack.fail"  # tests: the installer's /init reboots at once (the way back, for real)


@dataclass(frozen=True)
class Choice:
    method: str  # RAM or BOOT_ONCE
    reason: str
    refused: str | None = None  # --takeover boot-once on a host that cannot do it


@dataclass(frozen=True)
class BootFs:
    """The filesystem that holds /boot (where the installer's files go) and its place for GRUB."""

    target: str  # its mount point: "/" or "/boot"
    source: str
    fstype: str
    uuid: str
    avail: int | None  # bytes


def boot_fs(doc: dict[str, Any]) -> BootFs | None:
    """``findmnt -J -b -o TARGET,SOURCE,FSTYPE,UUID,AVAIL -T /boot`` from the probe."""
    found = (doc.get("boot_fs") or {}).get("filesystems") or []
    if not found:
        return None
    f = found[0]
    avail = f.get("avail")
    return BootFs(f.get("target") or "", f.get("source") or "", f.get("fstype") or "", f.get("uuid") or "",
                  int(avail) if avail is not None else None)  # fmt: skip


def grub_problem(doc: dict[str, Any], facts: Facts) -> str | None:
    """Why this host cannot boot a one-shot GRUB entry, or None when it can."""
    files = doc.get("files") or {}
    cfg = files.get(f"{GRUB_DIR}/grub.cfg")
    if not isinstance(cfg, str):
        return f"no readable {GRUB_DIR}/grub.cfg (not booted by GRUB?)"
    if "next_entry" not in cfg or "save_env next_entry" not in cfg:
        return f"{GRUB_DIR}/grub.cfg has no one-shot entry (next_entry, as grub-mkconfig writes it)"
    if "custom.cfg" not in cfg:
        return f"{GRUB_DIR}/grub.cfg does not read custom.cfg (grub-mkconfig's 41_custom)"
    env = files.get(f"{GRUB_DIR}/grubenv")
    if not isinstance(env, str) or not env.startswith("# GRUB Environment Block"):
        return f"no {GRUB_DIR}/grubenv (GRUB can rewrite an existing one only)"
    if not (doc.get("grub_tools") or {}).get("editenv"):
        return "no grub-editenv on the host"
    fs = boot_fs(doc)
    disk = facts.disk.path if facts.disk else None
    if fs is None or not fs.uuid:
        return "the filesystem of /boot is unknown (findmnt)"
    if fs.fstype not in ENV_FSTYPES or not disk or not fs.source.startswith(disk):
        return (f"/boot is {fs.fstype or '?'} on {fs.source or '?'}: GRUB could not clear its one-shot entry "
                f"there (it writes grubenv on ext2/3/4 on a partition of {disk or 'the disk'} only)")  # fmt: skip
    if fs.avail is not None and fs.avail < 64 * MIB:
        return f"{fs.avail // MIB} MiB free on /boot: the installer's kernel and initramfs need up to 64 MiB"
    return None


def choose(requested: str, doc: dict[str, Any], facts: Facts) -> Choice:
    """The takeover path: auto takes the one-shot boot where GRUB can and RAM allows, else the pivot."""
    if requested == RAM:
        return Choice(RAM, "--takeover ram")
    problem = grub_problem(doc, facts)
    low = facts.mem_total is not None and facts.mem_total < MIN_MEM_TOTAL
    if problem is None and low:
        problem = (f"{(facts.mem_total or 0) // MIB} MiB of RAM: the installer boot wants {MIN_MEM_TOTAL // MIB} "
                   "MiB (MemTotal)")  # fmt: skip
    if requested == BOOT_ONCE:
        if problem:
            return Choice(BOOT_ONCE, "--takeover boot-once", refused=f"--takeover boot-once: {problem}")
        return Choice(BOOT_ONCE, "--takeover boot-once")
    if problem:
        return Choice(RAM, f"auto: {problem}; the RAM pivot instead")
    return Choice(BOOT_ONCE, "auto: GRUB boots a one-shot entry here and the RAM allows it")


def kernel_args(cmdline: str, fail: bool = False) -> str:
    """The installer's command line: the host's console= arguments (its console stays where the
    provider shows it), panic=10, and the test switch that makes /init reboot at once."""
    consoles = [a for a in cmdline.split() if a.startswith("console=")]
    return " ".join([*consoles, *KERNEL_ARGS, *([FAIL_ARG] if fail else [])])


def grub_entry(fs: BootFs, args: str) -> str:
    """The menuentry appended to custom.cfg; the files found by the filesystem's UUID, at their path
    inside that filesystem (/boot its own filesystem or not)."""
    rel = DIR[len(fs.target.rstrip("/")):] if fs.target not in ("", "/") else DIR
    return "\n".join([
        BEGIN,
        f"menuentry 'Pine installer (pineinstall hijack, boots once)' --id {ENTRY_ID} {{",
        "\tinsmod part_gpt", "\tinsmod part_msdos", f"\tinsmod {fs.fstype if fs.fstype == 'xfs' else 'ext2'}",
        f"\tsearch --no-floppy --fs-uuid --set=root {fs.uuid}",
        f"\tlinux {rel}/vmlinuz {args}".rstrip(),
        f"\tinitrd {rel}/initramfs",
        "}",
        END,
    ]) + "\n"  # fmt: skip


# The host's side, in the first session (the host's sh as root; the files as a gzip'ed tar on stdin:
# vmlinuz, initramfs, entry.cfg, SHA256SUMS). Every failure undoes what was done and says RESTORED.
_COMMON = rf"""set -u
D={DIR} G={GRUB_DIR} ID={ENTRY_ID}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() {{ printf 'PINE-%s\n' "$*"; }}
clean() {{ # the host as it was: the files, the entry, the one-shot variable
	if [ -f $D/custom.cfg.orig ]; then cp -p $D/custom.cfg.orig $G/custom.cfg
	elif [ -e $D/custom.cfg.none ] || grep -q '^### BEGIN pineinstall hijack' $G/custom.cfg 2>/dev/null; then
		sed -i '/^### BEGIN pineinstall hijack/,/^### END pineinstall hijack/d' $G/custom.cfg
		[ -s $G/custom.cfg ] || rm -f $G/custom.cfg
	fi
	# ours, or the empty one GRUB leaves when it spent ours (when the host had none before)
	next=$(grub-editenv $G/grubenv list 2>/dev/null | sed -n 's/^next_entry=//p')
	if [ "$next" = $ID ] || {{ [ -z "$next" ] && [ -e $D/next_entry.none ]; }}; then
		grub-editenv $G/grubenv unset next_entry
	fi
	rm -rf $D $G/custom.cfg.pine-new
	sync
}}
"""

SETUP = _COMMON + r"""undo() { clean; say "RESTORED $*"; exit 3; }
[ -e $D ] && clean  # an earlier run that stopped half-way: its leftovers first
mkdir -p -m 700 $D && chmod 700 $D || undo "cannot make $D"
tar -xzf - -C $D || undo "cannot unpack the installer into $D (space on /boot?)"
(cd $D && sha256sum -c --quiet SHA256SUMS) || undo "the installer's files in $D are not what was sent"
if [ -f $G/custom.cfg ]; then cp -p $G/custom.cfg $D/custom.cfg.orig || undo "cannot keep $G/custom.cfg"
else : >$D/custom.cfg.none; fi
{ [ -f $G/custom.cfg ] && cat $G/custom.cfg; cat $D/entry.cfg; } >$G/custom.cfg.pine-new &&
	mv $G/custom.cfg.pine-new $G/custom.cfg || undo "cannot write $G/custom.cfg"
grub-editenv $G/grubenv list | grep -q '^next_entry=' || : >$D/next_entry.none
if command -v grub-reboot >/dev/null; then grub-reboot $ID; else grub-editenv $G/grubenv set next_entry=$ID; fi ||
	undo "grub-reboot $ID failed"
[ "$(grub-editenv $G/grubenv list | sed -n 's/^next_entry=//p')" = $ID ] ||
	undo "$G/grubenv does not hold next_entry=$ID after grub-reboot"
sync
say "BOOT-ID $(cat /proc/sys/kernel/random/boot_id)"
say READY
"""
HOST_SCRIPT = SETUP + "setsid sh -c 'sleep 2; systemctl reboot || reboot' </dev/null >/dev/null 2>&1 &\n"

CLEANUP = _COMMON + r"""clean
[ -e $D ] && { say "FAILED $D is still there"; exit 1; }
grep -q '^### BEGIN pineinstall hijack' $G/custom.cfg 2>/dev/null && { say "FAILED the entry is still in $G/custom.cfg"; exit 1; }
say "CLEANED $(cat /proc/sys/kernel/random/boot_id)"
"""


def host_command(script: str, sudo: bool) -> str:
    """A script for the login shell: run by sh as root (sudo -n for another user), stdin passed on."""
    return f"{'sudo -n ' if sudo else ''}sh -c {shlex.quote(script)}"


def _words(values: list[str]) -> str:
    return ",".join(values) or "-"


def net_lines(interfaces: tuple[Interface, ...]) -> str:
    """One line per carried interface for /init: MAC, then per family method, addresses, gateway,
    on-link (1/0); "-" where there is none."""
    out = []
    for i in interfaces:
        fields = [i.mac]
        for method, addrs, gw in ((i.method4, i.v4, i.gateway4), (i.method6, i.v6, i.gateway6)):
            fields += [method or "-", _words([a.cidr for a in addrs]), gw.address if gw else "-",
                       "1" if gw and gw.onlink else "0"]  # fmt: skip
        out.append(" ".join(fields))
    return "\n".join(out) + "\n"


def init_conf(port: int, watchdog: int = WATCHDOG) -> str:
    return f"PORT={int(port)}\nWATCHDOG={int(watchdog)}\n"


# The installer's /init (busybox sh, PID 1). Settings: /etc/pine-hijack/conf (PORT, WATCHDOG),
# /etc/pine-hijack/net (net_lines), /modules.list (the modules in load order, dependencies first).
INIT = r"""#!/bin/sh
export PATH=/bin:/sbin
log() { echo "pine-hijack installer: $*" >/dev/console; }
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run; mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
. /etc/pine-hijack/conf
log "started (watchdog $WATCHDOG s)"
if grep -qw pine_hijack.fail /proc/cmdline; then
	log "pine_hijack.fail: rebooting at once"; sleep 1; echo b >/proc/sysrq-trigger
fi
# no session by then, or none that started writing: reboot (GRUB's one-shot entry is spent: the old system)
(sleep "$WATCHDOG"; [ -e /connected ] || { log "no session within $WATCHDOG s: reboot"; echo b >/proc/sysrq-trigger; }
	sleep "$WATCHDOG"; [ -e /writing ] || { log "no write within $WATCHDOG s: reboot"; echo b >/proc/sysrq-trigger; }) &
while read -r m; do [ -n "$m" ] && insmod "/lib/modules/$m" 2>/dev/null; done </modules.list
( low=; while :; do while read -r k v _; do [ "$k" = MemAvailable: ] && break; done </proc/meminfo
	if [ -z "$low" ] || [ "$v" -lt "$low" ]; then low=$v; echo "$low" >/memlow; fi; sleep 1; done ) &
ip link set lo up
while read -r mac m4 a4 g4 o4 m6 a6 g6 o6; do
	dev= i=0
	while [ -z "$dev" ] && [ $i -lt 20 ]; do
		for d in /sys/class/net/*; do [ "$(cat "$d/address" 2>/dev/null)" = "$mac" ] && dev=${d##*/}; done
		[ -n "$dev" ] || { i=$((i + 1)); sleep 1; }
	done
	[ -n "$dev" ] || { log "no interface with MAC $mac"; continue; }
	ip link set "$dev" up
	case $m4 in
	static)
		for a in $(echo "$a4" | tr , ' '); do ip addr add "$a" dev "$dev"; done
		if [ "$g4" != - ]; then
			[ "$o4" = 1 ] && ip route add "$g4" dev "$dev"
			ip route add default via "$g4" dev "$dev"
		fi ;;
	dhcp) udhcpc -b -i "$dev" -s /etc/pine-hijack/udhcpc.script >/dev/null 2>&1 ;;
	esac
	case $m6 in
	static)
		for a in $(echo "$a6" | tr , ' '); do ip -6 addr add "$a" dev "$dev"; done
		if [ "$g6" != - ]; then
			[ "$o6" = 1 ] && ip -6 route add "$g6" dev "$dev"
			ip -6 route add default via "$g6" dev "$dev"
		fi ;;
	esac  # auto and dhcp: the kernel's router advertisements give the address and the route
	log "$dev ($mac) up: $(ip -o addr show dev "$dev" | awk '{print $4}' | tr '\n' ' ')"
done </etc/pine-hijack/net
dropbear -r /etc/dropbear/host_key -p "$PORT" -j -k -K 15 -W 1048576 -P /dropbear.pid </dev/null
log "SSH server on port $PORT"
while :; do sleep 3600; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route add default via "$r" dev "$interface" && break; done ;;
esac
"""
