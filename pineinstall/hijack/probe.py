"""The remote facts probe: one POSIX sh script, sent over one SSH session, that only reads and prints
one JSON document (``SCRIPT``); :func:`parse_output` turns what came back into that document.

The script leaves parsing to the controller: it prints the raw files (os-release, meminfo, resolv.conf,
the network configuration and leases, the login user's authorized_keys) and the JSON of ``ip -j`` and
``lsblk -J``, and the sysfs drivers of every disk and NIC (:mod:`.drivers`);
:mod:`pineinstall.hijack.facts` reads them. Needs only sh, sed, awk, tr, od, readlink and
util-linux/iproute2, which every Debian and Ubuntu has.
"""

from __future__ import annotations

import json
from typing import Any

from pineinstall.errors import PineError

VERSION = 1  # the document's "probe" field: a controller refuses a document it does not know

SCRIPT = r"""
# pineinstall hijack: the facts probe. Reads only; prints one JSON document on stdout.
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
js() { # stdin -> a JSON string (control characters other than tab and newline dropped)
	tr -d '\000-\010\013-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' |
		awk 'BEGIN{printf "\""} {printf "%s%s", (NR>1 ? "\\n" : ""), $0} END{printf "\""}'
}
str() { printf '%s' "$1" | js; }
file() { if [ -r "$1" ] && [ -f "$1" ]; then js <"$1"; else printf null; fi; }
cmd() { # a command's JSON output, or null when it is missing or fails
	out=$("$@" 2>/dev/null) && [ -n "$out" ] && printf '%s' "$out" || printf null
}
has() { [ -e "$1" ] && printf true || printf false; }
printf '{"probe":1,\n"user":%s,\n"home":%s,\n"hostname":%s,\n' "$(str "$(id -un)")" "$(str "$HOME")" \
	"$(str "$(cat /proc/sys/kernel/hostname 2>/dev/null)")"
printf '"ssh_port":%s,\n' "$(str "${SSH_CONNECTION##* }")"
printf '"virt":%s,\n' "$(str "$(systemd-detect-virt -c 2>/dev/null)")"
printf '"markers":{"proc_vz":%s,"user_beancounters":%s,"dockerenv":%s,"containerenv":%s,' \
	"$(has /proc/vz)" "$(has /proc/user_beancounters)" "$(has /.dockerenv)" "$(has /run/.containerenv)"
printf '"systemd_container":%s,"pid1_container":%s},\n' "$(file /run/systemd/container)" \
	"$(str "$( (tr '\000' '\n' </proc/1/environ) 2>/dev/null | sed -n 's/^container=//p')")"
printf '"efi":%s,\n"secure_boot":%s,\n' "$(has /sys/firmware/efi)" "$(str "$(od -An -tu1 \
	/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e3e9f2e37a75 2>/dev/null)")"
printf '"lsblk":%s,\n' "$(cmd lsblk -J -b -o NAME,PATH,TYPE,SIZE,SERIAL,PTUUID,PTTYPE,MOUNTPOINT)"
printf '"by_id":['
sep=
for link in /dev/disk/by-id/*; do
	[ -L "$link" ] || continue
	printf '%s[%s,%s]' "$sep" "$(str "${link##*/}")" "$(str "$(readlink -f "$link")")"
	sep=,
done
printf '],\n"ip_addr":%s,\n' "$(cmd ip -d -j addr)"
printf '"ip_route":%s,\n"ip6_route":%s,\n' "$(cmd ip -j route)" "$(cmd ip -j -6 route)"
printf '"resolv_conf_link":%s,\n' "$(str "$(readlink /etc/resolv.conf)")"
printf '"boot_fs":%s,\n' "$(cmd findmnt -J -b -o TARGET,SOURCE,FSTYPE,UUID,AVAIL -T /boot)"
printf '"grub_tools":{"editenv":%s,"reboot":%s},\n' "$(str "$(command -v grub-editenv)")" \
	"$(str "$(command -v grub-reboot)")"
name() { # a kernel name as a JSON string without a process ("?" for one with other characters)
	case $1 in *[!A-Za-z0-9_.:+-]*) printf '"?"' ;; *) printf '"%s"' "$1" ;; esac
}
drivers() { # a sysfs device's drivers and its parents' up to the bus adapter: [bus,driver,module],...
	d=$(readlink -f "$1") s=
	while [ -n "$d" ] && [ "$d" != /sys/devices ] && [ "$d" != /sys ] && [ "$d" != / ]; do
		if [ -L "$d/driver" ]; then
			bus=$(readlink "$d/subsystem") drv=$(readlink "$d/driver") mod=$(readlink "$d/driver/module")
			printf '%s[%s,%s,%s]' "$s" "$(name "${bus##*/}")" "$(name "${drv##*/}")" "$(name "${mod##*/}")"
			s=,
			case ${bus##*/} in scsi | virtio) ;; *) break ;; esac # virtio and SCSI sit on an adapter
		fi
		d=${d%/*}
	done
}
devices() { # a JSON object: each sysfs device of $1 (a class directory) -> its drivers
	sep=
	for dev in "$1"/*/device; do
		[ -e "$dev" ] || continue
		dev_name=${dev%/device}
		printf '%s%s:[%s]' "$sep" "$(name "${dev_name##*/}")" "$(drivers "$dev")"
		sep=,
	done
}
printf '"drivers":{"block":{%s},"net":{%s}},\n' "$(devices /sys/block)" "$(devices /sys/class/net)"
printf '"files":{'
sep=
for path in /etc/os-release /usr/lib/os-release /proc/meminfo /proc/sys/kernel/random/boot_id /proc/cmdline \
	/boot/grub/grub.cfg /boot/grub/grubenv /etc/hostname /etc/resolv.conf \
	/run/systemd/resolve/resolv.conf /etc/network/interfaces /etc/network/interfaces.d/* \
	/etc/netplan/*.yaml /etc/systemd/network/*.network /run/systemd/network/*.network \
	/var/lib/dhcp/*.leases /var/lib/dhclient/*.leases /var/lib/dhcpcd/*.lease /var/lib/dhcpcd5/*.lease \
	/run/systemd/netif/leases/* "$HOME/.ssh/authorized_keys" "$HOME/.ssh/authorized_keys2"; do
	[ -f "$path" ] && [ -r "$path" ] || continue
	printf '%s\n%s:%s' "$sep" "$(str "$path")" "$(file "$path")"
	sep=,
done
printf '}}\n'
"""


class ProbeError(PineError):
    """The probe's output is not the document it prints."""


def parse_output(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ProbeError(f"the probe printed no JSON document ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("probe") != VERSION:
        raise ProbeError("the probe printed a document of another version")
    return doc
