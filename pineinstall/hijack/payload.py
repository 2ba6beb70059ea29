"""The payload the takeover puts into the host's RAM, and the scripts that run there.

The payload is a gzip'ed tar of a mini-root, unpacked into a tmpfs at ``/run/pine-hijack`` by the
host's own ``tar`` over the first (OpenSSH) session: a static busybox (the controller's
``/bin/busybox``, Debian's busybox-static) with a link per applet, a static Dropbear (the multi-call
binary of ``iso.lib.dropbear``), ``/etc/passwd`` with root alone, root's ``authorized_keys`` holding
the run's own key, and the two scripts below. About 2.5 MiB in RAM.

``STAGE1`` runs on the host's ``sh`` in the first session: it binds ``/dev``, ``/proc`` and ``/sys``
into the tmpfs, makes the RAM server's host key (its public half is printed, so the controller
checks it in the second session), stops the host's sshd listener (sessions survive: Debian's and
Ubuntu's ssh.service kill the listener only) and starts Dropbear chrooted in the tmpfs on the same
port. It then waits for the second session to say it is in; if it does not within the time given,
Dropbear is stopped, the host's sshd started again, and nothing else was changed.

``STAGE2`` runs in the RAM server (busybox ``sh``, chrooted): ``quiesce`` checks the disk by its
size, serial and partition-table id, stops the host's services (the host's own ``systemctl``,
through ``/proc/1/root``), turns swap off, syncs, remounts read-only (sysrq ``s``, ``u``) and sets
every partition of the disk read-only (``blockdev --setro``); ``write`` is the point of no return:
it zeroes the first MiB, then reads the framed stream (``stream.py``) from stdin: each data frame's
gzip member through ``gunzip`` into the disk at its offset (1 MiB O_DIRECT blocks), each zero frame
from /dev/zero, every frame's length and place checked; the first MiB comes last, is held in RAM and
written only when the whole stream arrived for the expected sha256; then it reboots (sysrq ``b``).
"""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from dataclasses import dataclass

from pineinstall.errors import PineError

ROOT = "/run/pine-hijack"
TMPFS_SIZE = "24m"  # busybox 2 MiB, dropbear 0.4 MiB, the first MiB of the disk, the scripts
BUSYBOX = "/bin/busybox"
# Stopped before the disk is written (each one that exists): logs, timers, the bus, the old login
# sessions' manager; sshd's listener is already stopped, the network stays up.
SERVICES = (
    "cron.service", "atd.service", "unattended-upgrades.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "systemd-timesyncd.service", "rsyslog.service", "systemd-logind.service",
    "dbus.socket", "dbus.service", "systemd-journald.socket", "systemd-journald-dev-log.socket",
    "systemd-journald-audit.socket", "systemd-journald.service", "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket", "systemd-udevd.service",
)  # fmt: skip


class PayloadError(PineError):
    """The payload cannot be assembled on the controller (no static busybox or Dropbear)."""


STAGE1 = r"""# pineinstall hijack, stage 1: the host's own sh, as root, in the first SSH session.
set -u
R=/run/pine-hijack port=$1 wait=$2
say() { printf 'PINE-%s\n' "$*"; }
back() { # the way back: the RAM server stopped, the host's sshd started again
	[ -f $R/dropbear.pid ] && kill "$(cat $R/dropbear.pid)" 2>/dev/null
	[ -f $R/memlow.pid ] && kill "$(cat $R/memlow.pid)" 2>/dev/null
	sleep 1
	systemctl start ssh.service 2>/dev/null || service ssh start 2>/dev/null
	umount $R/sys $R/proc $R/dev 2>/dev/null
	umount -l $R 2>/dev/null
	say "RESTORED $*"
	exit 3
}
cd $R || exit 1
mkdir -p dev proc sys etc/dropbear
mount --bind /dev dev && mount -t proc proc proc && mount -t sysfs sysfs sys || back "cannot mount /dev, /proc, /sys"
chroot $R /bin/dropbearkey -t ed25519 -f /etc/dropbear/host_key >/dev/null 2>&1 || back "dropbearkey failed"
say "HOSTKEY $(chroot $R /bin/dropbearkey -y -f /etc/dropbear/host_key | grep '^ssh-')"
# the lowest MemAvailable of the run (kiB), sampled every second from the tmpfs' busybox
# (read, not awk: no fork per sample, which costs under a slow CPU)
chroot $R /bin/setsid /bin/sh -c 'echo $$ >/memlow.pid; low=
	while :; do while read -r k v _; do [ "$k" = MemAvailable: ] && break; done </proc/meminfo
		if [ -z "$low" ] || [ "$v" -lt "$low" ]; then low=$v; echo "$low" >/memlow; fi; sleep 1; done' \
	</dev/null >/dev/null 2>&1 &
systemctl stop ssh.socket 2>/dev/null
systemctl stop ssh.service 2>/dev/null || service ssh stop 2>/dev/null
chroot $R /sbin/dropbear -r /etc/dropbear/host_key -p "$port" -j -k -K 15 -W 1048576 -P /dropbear.pid \
	</dev/null >$R/dropbear.log 2>&1
i=0
while [ ! -s $R/dropbear.pid ]; do i=$((i + 1)); [ $i -gt 30 ] && back "the RAM SSH server did not start: $(tail -c 300 $R/dropbear.log 2>/dev/null | tr "\n" " ")"; sleep 1; done
say READY
i=0
while [ ! -e $R/connected ]; do
	i=$((i + 1)); [ $i -gt "$wait" ] && back "no connection to the RAM SSH server within $wait s"; sleep 1
done
say HANDOVER
"""

STAGE2 = r"""# pineinstall hijack, stage 2: busybox sh in the RAM SSH server (chrooted in the tmpfs).
set -u
export PATH=/bin:/sbin:/usr/bin:/usr/sbin  # the tmpfs has /bin and /sbin; the host root (chroot /proc/1/root) /usr too
say() { printf 'PINE-%s\n' "$*"; }
fail() { say "FAILED $*"; exit 1; }
disk=$2 name=${2#/dev/}
ptid() { # disk pttype: the partition-table id as its bytes on disk, in hex
	case "$2" in
	gpt) dd if="$1" bs=512 skip=1 count=1 2>/dev/null | od -An -tx1 -j56 -N16 | tr -d ' \n' ;;
	dos) dd if="$1" bs=512 count=1 2>/dev/null | od -An -tx1 -j440 -N4 | tr -d ' \n' ;;
	esac
}
finddisk() { # size serial ptid-hex pttype: the one disk that is the probe's (the one-shot installer, whose
	# kernel may name it otherwise); nothing of it is mounted there
	: >/connected
	found=
	for b in /sys/block/*; do
		n=${b##*/}
		case $n in loop* | ram* | zram* | sr* | fd* | dm-* | md* | nbd*) continue ;; esac
		[ "$(($(cat "$b/size") * 512))" = "$1" ] || continue
		if [ -n "$2" ]; then [ "$(cat "$b/serial" 2>/dev/null)" = "$2" ] || continue; fi
		[ "$(ptid "/dev/$n" "$4")" = "$3" ] && found="$found /dev/$n"
	done
	set -- $found
	[ $# = 1 ] && [ -b "$1" ] || fail "no single disk of the probe's size, serial and table id here (found:${found:- none})"
	say "DISK-FOUND $1"
}
quiesce() { # size serial ptid-hex pttype
	: >/connected
	[ -b "$disk" ] || fail "$disk is not a block device"
	[ "$(($(cat /sys/block/$name/size) * 512))" = "$1" ] || fail "$disk: its size is not the probe's $1 bytes"
	if [ -n "$2" ]; then
		[ "$(cat /sys/block/$name/serial 2>/dev/null)" = "$2" ] || fail "$disk: its serial is not the probe's"
	fi
	id=$(ptid "$disk" "$4")
	[ "$id" = "$3" ] || fail "$disk: its partition-table id is not the probe's (is $id)"
	say "DISK-CHECKED $disk"
	for unit in $SERVICES; do timeout 30 chroot /proc/1/root systemctl stop "$unit" >/dev/null 2>&1; done
	say "SERVICES-STOPPED"
	awk 'NR > 1 { print $1 }' /proc/swaps | while read -r swap; do
		swapoff "$swap" || echo "swapoff $swap failed" >/swapfail
	done
	[ -e /swapfail ] && fail "$(cat /swapfail)"
	sync
	echo s >/proc/sysrq-trigger
	echo u >/proc/sysrq-trigger
	sleep 2
	rw=$(awk -v d="$disk" 'index($1, d) == 1 && $4 !~ /^ro/ { print $2 }' /proc/1/mounts)
	[ -z "$rw" ] || fail "still mounted read-write after sysrq u: $rw"
	for part in /sys/block/$name/$name*; do
		[ -e "$part/partition" ] || continue
		blockdev --setro "/dev/${part##*/}" && [ "$(blockdev --getro "/dev/${part##*/}")" = 1 ] ||
			fail "blockdev --setro /dev/${part##*/} failed"
	done
	say QUIESCED
}
records() { # the "N+P" of "records out" in dd's message file $1
	while read -r r _ w; do [ "$w" = out ] && echo "$r"; done <"$1"
}
write() { # size sha256; the framed stream on stdin (pineinstall/hijack/stream.py)
	set -o pipefail
	size=$1 sha=$2
	say "POINT-OF-NO-RETURN $disk"
	# A writer left by a session that was cut (the controller tries again) needs no stopping: it gets
	# nothing more, and what it still writes are the same image's bytes at their own offsets.
	: >/writing
	o=,direct  # O_DIRECT writes, or the page cache where the device refuses them
	dd if=/dev/zero of="$disk" bs=1M count=1 oflag=direct conv=notrunc,fsync 2>/dev/null ||
		{ o=; dd if=/dev/zero of="$disk" bs=1M count=1 conv=notrunc,fsync 2>/dev/null; } ||
		fail "cannot write $disk"
	rm -f /head
	next=1048576 head= end=
	while read -r kind off len clen; do
		[ "$kind" = E ] && { end=$off; break; }
		case "$kind:$off:$len:${clen:-0}" in
		[DZ]:[0-9]*:[1-9]*:[0-9]*) ;;
		*) fail "bad frame header after byte $next: $disk was left without a partition table" ;;
		esac
		case "$off$len$clen" in *[!0-9]*) fail "bad frame header after byte $next" ;; esac
		[ "$kind" = Z ] || [ -n "$clen" ] || fail "bad frame header after byte $next"
		if [ "$off" = 0 ] && [ "$kind" = D ]; then # the first MiB, into RAM until the end
			[ "$next" = "$size" ] && [ "$len" = 1048576 ] || fail "the first MiB came at byte $next"
			dd bs=64k count="$clen" iflag=count_bytes,fullblock 2>/dev/null | gunzip -c >/head ||
				fail "the first MiB's gzip member is corrupt: $disk was left without a partition table"
			[ "$(wc -c </head)" = 1048576 ] || fail "the first MiB is not 1 MiB"
			head=1
			continue
		fi
		[ "$off" = "$next" ] && [ $((off + len)) -le "$size" ] ||
			fail "a frame at byte $off (+$len) where $next was next: $disk was left without a partition table"
		bs=1048576
		while [ $((len % bs)) -ne 0 ]; do bs=$((bs / 2)); done
		f=$o
		[ "$bs" -ge 512 ] || f=
		if [ "$kind" = D ]; then
			dd bs=64k count="$clen" iflag=count_bytes,fullblock 2>/dev/null | gunzip -c |
				dd of="$disk" bs="$bs" seek="$off" iflag=fullblock oflag=seek_bytes$f conv=notrunc 2>/dd.log ||
				fail "the data at byte $off did not arrive whole (gzip CRC or length): $disk was left without a partition table"
		else
			dd if=/dev/zero of="$disk" bs="$bs" count=$((len / bs)) seek="$off" oflag=seek_bytes$f conv=notrunc 2>/dd.log ||
				fail "cannot write zeros at byte $off of $disk"
		fi
		[ "$(records /dd.log)" = "$((len / bs))+0" ] ||
			fail "$(records /dd.log) blocks of $bs bytes at byte $off, not $len bytes: $disk was left without a partition table"
		next=$((off + len))
	done
	[ -n "$end" ] || fail "the stream ended at byte $next of $size: $disk was left without a partition table"
	[ "$end" = "$sha" ] || fail "the stream is of a disk with sha256 $end, not $sha: $disk was left without a partition table"
	[ -n "$head" ] || fail "the stream had no first MiB: $disk was left without a partition table"
	sync
	dd if=/head of="$disk" bs=1M count=1 oflag=direct conv=notrunc,fsync 2>/dev/null ||
		dd if=/head of="$disk" bs=1M count=1 conv=notrunc,fsync 2>/dev/null || fail "cannot write the first MiB"
	sync
	say "WRITTEN $sha"
	say "MEMLOW $(cat /memlow 2>/dev/null)"
	setsid sh -c 'sleep 2; echo b >/proc/sysrq-trigger' </dev/null >/dev/null 2>&1 &
	say REBOOTING
}
case "$1" in
quiesce) shift 2; quiesce "$@" ;;
find) shift 2; finddisk "$@" ;;
write) shift 2; write "$@" ;;
reboot) echo b >/proc/sysrq-trigger ;;
*) fail "unknown step $1" ;;
esac
"""


def ptid_hex(pttype: str | None, ptuuid: str | None) -> str:
    """The partition-table id as its bytes on disk, in hex: a GPT disk GUID at LBA 1 + 56 (mixed-endian),
    an MBR signature at byte 440 (little-endian); "" when the disk has none."""
    if not ptuuid:
        return ""
    if pttype == "gpt":
        return uuid.UUID(ptuuid).bytes_le.hex()
    if pttype == "dos":
        return bytes.fromhex(ptuuid.replace("-", "").rjust(8, "0"))[::-1].hex()
    return ""


def ram_dropbear(own: str | None) -> str:
    """The static Dropbear multi-call binary: PINE_HIJACK_DROPBEAR, else the new disk's own (own), else
    one built from a checkout (once, cached; see iso/lib/dropbear.py)."""
    env = os.environ.get("PINE_HIJACK_DROPBEAR")
    if env:
        return env
    if own:
        return own
    import sys
    from pathlib import Path

    checkout = Path(__file__).resolve().parents[2]  # a checkout (or editable install) has iso/ beside
    if (checkout / "iso" / "lib" / "dropbear.py").exists() and str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        from iso.lib.dropbear import dropbear_binary
    except ImportError as exc:
        raise PayloadError(
            "no static Dropbear: the image has none (usr/sbin/dropbearmulti); set PINE_HIJACK_DROPBEAR to "
            "a static dropbearmulti, or run from the repository (iso/lib/dropbear.py builds one)"
        ) from exc
    try:
        return str(dropbear_binary()[0])
    except (RuntimeError, OSError) as exc:
        raise PayloadError(f"building the static Dropbear failed: {exc}") from exc


def _is_static(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return head[:4] == b"\x7fELF" and b"ld-linux" not in head and b"/lib/ld-musl" not in head


def _applets(busybox: str) -> list[str]:
    from pineinstall.run import run

    return run([busybox, "--list"]).stdout.decode().split()


@dataclass(frozen=True)
class Entry:
    """One file of the mini-root: a directory (data None), a file, or a symlink (link)."""

    name: str
    data: bytes | None = None
    mode: int = 0o644
    link: str | None = None


def entries(run_key_pub: str, dropbear: str) -> list[Entry]:
    """The mini-root (the RAM payload's, and the one-shot installer's): directories first."""
    busybox = os.environ.get("PINE_HIJACK_BUSYBOX", BUSYBOX)
    if not os.path.exists(busybox) or not _is_static(busybox):
        raise PayloadError(f"{busybox}: no static busybox here (apt-get install busybox-static)")
    out = [Entry(d, mode=0o755) for d in ("bin", "sbin", "etc", "etc/dropbear", "tmp", "dev", "proc", "sys")]
    out += [Entry("root", mode=0o700), Entry("root/.ssh", mode=0o700)]
    with open(busybox, "rb") as fh:
        out.append(Entry("bin/busybox", fh.read(), 0o755))
    out += [Entry(f"bin/{a}", link="busybox") for a in _applets(busybox) if a != "busybox" and "/" not in a]
    with open(dropbear, "rb") as fh:
        out.append(Entry("bin/dropbearmulti", fh.read(), 0o755))
    out += [Entry("sbin/dropbear", link="../bin/dropbearmulti"), Entry("bin/dropbearkey", link="dropbearmulti")]
    out += [
        Entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        Entry("etc/shadow", b"root:*:19000:0:99999:7:::\n", 0o600),
        Entry("etc/group", b"root:x:0:\n"),
        Entry("etc/shells", b"/bin/sh\n"),
        Entry("root/.ssh/authorized_keys", (run_key_pub.strip() + "\n").encode(), 0o600),
        Entry("stage1.sh", STAGE1.encode(), 0o755),
    ]
    services = f"SERVICES='{' '.join(SERVICES)}'\n"
    out.append(Entry("stage2.sh", STAGE2.replace("set -u\n", "set -u\n" + services, 1).encode(), 0o755))
    return out


def build(run_key_pub: str, own_dropbear: str | None = None) -> bytes:
    """The mini-root as a gzip'ed tar (all owned by root); own_dropbear: the new disk's Dropbear."""
    files = entries(run_key_pub, ram_dropbear(own_dropbear))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=9) as tar:
        for e in files:
            info = tarfile.TarInfo(e.name)
            info.uid = info.gid = 0
            info.mtime = 0
            if e.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, e.link
                tar.addfile(info)
            elif e.data is None:
                info.type, info.mode = tarfile.DIRTYPE, e.mode
                tar.addfile(info)
            else:
                info.size, info.mode = len(e.data), e.mode
                tar.addfile(info, io.BytesIO(e.data))
    return out.getvalue()


def remote_command(sudo: bool, wait: int) -> str:
    """The first session's command line (for the login shell): the tmpfs, the payload from stdin,
    stage 1. The port is the one this session came in on."""
    body = (
        f'R={ROOT}; grep -q " $R " /proc/mounts && {{ echo \'PINE-FAILED a previous takeover left $R '
        "mounted: reboot the host first'; exit 1; }; "
        f"mkdir -p $R && mount -t tmpfs -o size={TMPFS_SIZE},mode=0700 pine-hijack $R && "
        'tar -xzf - -C $R && exec sh $R/stage1.sh "$1" "$2"'
    )
    quoted = "'" + body.replace("'", "'\\''") + "'"
    prefix = "sudo -n " if sudo else ""
    return f'port=${{SSH_CONNECTION##* }}; exec {prefix}sh -c {quoted} sh "$port" {int(wait)}'
