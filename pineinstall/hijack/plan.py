"""The plan ``pineinstall hijack`` prints before anything changes: the host's facts, the refusals,
what is carried over, and where the point of no return lies."""

from __future__ import annotations

from dataclasses import dataclass

from pineinstall.hijack.bootonce import BOOT_ONCE, Choice
from pineinstall.hijack.carry import Carried
from pineinstall.hijack.drivers import KernelDrivers, describe
from pineinstall.hijack.facts import MIB, Facts
from pineinstall.resources import shown_url

STEPS = (
    "provision the new disk here: install writes the image and the merged config into a sparse file of "
    "{disk}'s exact size (needs root and loop devices here); refused there, before the host changes, when "
    "its kernel lacks a driver the host's kernel uses for the disk or a carried NIC (listed above)",
    "copy the payload (static busybox and Dropbear, the scripts, about 1.2 MiB) into a tmpfs on the host; stop "
    "the host's sshd listener (sessions stay) and start that Dropbear from RAM on the same port; if it does not "
    "answer, the host's sshd is started again",
    "in a session to the RAM server: check {disk} by size, serial and table id; stop services, swap off, "
    "remount read-only, blockdev --setro its partitions",
    "POINT OF NO RETURN: the first write to {disk}; before it a failure leaves the disk untouched and the "
    "host reachable (a reboot restores its services)",
    "stream the provisioned disk's data gzip'ed over SSH, its holes written as zeros by the host, every frame "
    "checked (place, CRC, length), the first MiB written last; "
    "reboot; wait for SSH as root with your key and read the result record",
)


BOOT_ONCE_STEPS = (
    STEPS[0],
    "build the installer here: the new disk's kernel and an initramfs with busybox, Dropbear (a host key made "
    "here), the run's key and the carried network; copy both into /boot/pine-hijack on the host, add a one-shot "
    "entry to /boot/grub/custom.cfg, grub-reboot it and reboot; if any of it fails, all of it is undone",
    "the installer boots once (GRUB spends the entry): no session within its watchdog, or a panic, and it reboots "
    "into the old system; the command then waits for the old system, removes /boot/pine-hijack and the entry, "
    "and says the host is back and unchanged",
    "in a session to the installer (its host key pinned): find {disk} by size, serial and table id; nothing "
    "of it is mounted there",
    "POINT OF NO RETURN: the first write to {disk}; before it a failure leaves the disk untouched, and the "
    "installer reboots into the old system",
    STEPS[4],
)


@dataclass(frozen=True)
class Image:
    source: str
    sha256: str
    pinned: bool  # given with --image-sha256 (else computed here, for the user to pin)


def size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n // MIB} MiB"


def render(target: str, host_keys: list[str], facts: Facts, image: Image, config: str, carried: Carried,
           refused: list[str], choice: Choice | None = None, kernel: KernelDrivers | None = None) -> str:  # fmt: skip
    lines = [f"host {target}"]
    lines += [f"  host key: {k}" for k in host_keys]
    os = facts.os
    lines.append(f"  system: {os.pretty_name or os.id if os else 'unknown (no os-release)'}")
    lines.append(f"  container: {facts.container or 'none'}")
    firmware = "UEFI" if facts.efi else "BIOS"
    if facts.efi:
        firmware += {True: ", Secure Boot on", False: ", Secure Boot off", None: ", Secure Boot unknown"}[
            facts.secure_boot
        ]
    lines.append(f"  firmware: {firmware}")
    d = facts.disk
    if d is None:
        lines.append("  boot disk: not found")
    else:
        ids = [f"table {d.pttype or 'none'}" + (f" {d.ptuuid}" if d.ptuuid else "")]
        if d.serial:
            ids.append(f"serial {d.serial}")
        lines.append(f"  boot disk: {d.path}, {size(d.size)}, {', '.join(ids)}")
        lines += [f"    /dev/disk/by-id/{name}" for name in d.by_id]
        lines.append(f"    drivers: {describe(d.drivers)}")
    lines += [f"  NIC {i.name} drivers: {describe(i.drivers)}" for i in facts.interfaces]
    total = f"{facts.mem_total // MIB} MiB" if facts.mem_total is not None else "unknown"
    avail = f"{facts.mem_available // MIB} MiB" if facts.mem_available is not None else "unknown"
    lines.append(f"  RAM: {total} total, {avail} available")
    lines.append(f"  login user: {facts.user}, {len(facts.authorized_keys)} authorized key(s)")
    lines.append(f"image {shown_url(image.source)}")  # no credentials or token of a URL
    lines.append(
        f"  sha256 {image.sha256} ({'verified' if image.pinned else 'computed; pass --image-sha256 to pin it'})"
    )
    if kernel is not None:
        lines.append(f"  its kernel: {kernel.release}, {len(kernel.modules)} drivers (read from the image)")
    else:
        lines.append("  its kernel's drivers: read after the provisioning here (a remote or compressed image, "
                     "not root here, or no modules.builtin)")  # fmt: skip
    lines.append(f"config {config}: checked")
    lines.append("carried into the new system (under the config: the config wins)")
    lines += [f"  {k}" for k in carried.kept] or ["  nothing"]
    lines += [f"  overridden: {o}" for o in carried.overridden]
    lines += [f"  not carried: {n}" for n in facts.notes]
    if refused:
        lines.append("REFUSED: the takeover cannot go on")
        lines += [f"  {r}" for r in refused]
    else:
        once = choice is not None and choice.method == BOOT_ONCE
        if choice is not None:
            lines.append(f"takeover: {choice.method} ({choice.reason})")
        lines.append("takeover steps")
        disk = d.path if d else "the disk"
        lines += [f"  {n}. {s.format(disk=disk)}" for n, s in enumerate(BOOT_ONCE_STEPS if once else STEPS, 1)]
    return "\n".join(lines) + "\n"
