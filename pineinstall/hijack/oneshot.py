"""The one-shot installer boot (``--takeover boot-once``): the sessions, after the disk was provisioned here.

1. the host's OpenSSH (the probe's login, its key pinned): the installer's kernel and initramfs into
   /boot/pine-hijack, the one-shot entry into /boot/grub/custom.cfg, ``grub-reboot``, checked in
   grubenv, reboot (``bootonce.HOST_SCRIPT``; any failure undoes all of it);
2. the installer's Dropbear (root, the run's key; its host key made here and pinned): the disk found
   by size, serial and table id, then ``write`` (the point of no return, as the RAM path: the same
   ``stage2.sh``), which reboots;
3. the new Pine (:meth:`Takeover.wait_for_pine`).

The installer not reached (its boot failed, its network did not come up, its watchdog rebooted it):
the old system boots again (GRUB spent the entry), the command waits for its sshd (the same pinned
key, a new boot id), removes /boot/pine-hijack and the entry (``bootonce.CLEANUP``) and says the host
is back and unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shlex
import subprocess
import tarfile
import time
from typing import Any

from pineinstall.hijack import bootonce, installer, payload, provision, ssh
from pineinstall.hijack.facts import Facts
from pineinstall.hijack.takeover import Takeover, TakeoverError, _marker, say

INSTALLER_ALIAS = "pine-hijack-installer"
FAIL_ENV = "PINE_HIJACK_TEST_FAIL_INSTALLER"  # tests: the installer reboots at once (bootonce.FAIL_ARG)


def _marks(out: bytes) -> dict[str, str]:
    marks = {}
    for line in out.decode("utf-8", "replace").splitlines():
        m = _marker(line)
        if m:
            marks[m[0]] = m[1]
    return marks


def files_tar(kernel: str, initramfs: str, entry: str) -> bytes:
    """What session 1 unpacks into /boot/pine-hijack: the kernel, the initramfs, the GRUB entry and
    their SHA256SUMS (checked there before anything else changes)."""
    items: list[tuple[str, bytes]] = []
    for name, path in (("vmlinuz", kernel), ("initramfs", initramfs)):
        with open(path, "rb") as fh:
            items.append((name, fh.read()))
    items.append(("entry.cfg", entry.encode()))
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in items)
    items.append(("SHA256SUMS", sums.encode()))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:  # kernel and initramfs: compressed
        for name, data in items:
            info = tarfile.TarInfo(name)
            # 0600: the initramfs holds the installer's private host key (a local user must not read it)
            info.size, info.mode, info.mtime = len(data), 0o600, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class OneShot(Takeover):
    server_alias = INSTALLER_ALIAS
    server_hosts = "known_hosts.installer"

    def __init__(self, target: ssh.Target, run_dir: str, facts: Facts, reboot_timeout: float,
                 doc: dict[str, Any]) -> None:  # fmt: skip
        super().__init__(target, run_dir, facts, reboot_timeout)
        self.doc = doc
        self.sudo = facts.user != "root"
        self.old_boot_id = facts.boot_id

    def _host(self, script: str, stdin: bytes = b"", timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        """A script as root on the old system (its OpenSSH, the probe's pinned key, strictly)."""
        argv = ssh.argv(self.target, self.run_dir, [bootonce.host_command(script, self.sudo)], strict="yes")
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=ssh.env())

    def prepare(self, disk: provision.Provisioned) -> bytes:
        """The installer built here; the files session 1 sends."""
        t0 = time.monotonic()
        port = int(self.doc.get("ssh_port") or self.target.port or 22)
        own = provision.own_dropbear(disk.path, self.run_dir)
        built = installer.build(disk.path, self.run_dir, self.make_run_key(), own,
                                bootonce.net_lines(self.facts.interfaces), port)  # fmt: skip
        with open(os.path.join(self.run_dir, self.server_hosts), "w") as fh:
            fh.write(f"{INSTALLER_ALIAS} {built.host_key_pub}\n")
        fs = bootonce.boot_fs(self.doc)
        assert fs is not None  # bootonce.grub_problem() said so before the plan
        cmdline = (self.doc.get("files") or {}).get("/proc/cmdline") or ""
        entry = bootonce.grub_entry(fs, bootonce.kernel_args(cmdline, fail=bool(os.environ.get(FAIL_ENV))))
        tar = files_tar(built.kernel, built.initramfs, entry)
        self.report.times["installer build"] = time.monotonic() - t0
        say(f"installer: kernel {built.version} {os.path.getsize(built.kernel)} bytes, initramfs "
            f"{os.path.getsize(built.initramfs)} bytes ({len(built.modules)} modules); {len(tar)} bytes to send")  # fmt: skip
        return tar

    def boot(self, tar: bytes) -> None:
        """Session 1: files, entry, grub-reboot, reboot. A failure there was undone on the host."""
        t0 = time.monotonic()
        try:
            proc = self._host(bootonce.HOST_SCRIPT, tar)
        except subprocess.TimeoutExpired as exc:
            raise TakeoverError(f"the host did not finish setting up the one-shot entry: {exc}; "
                                f"{self._cleanup_now()}") from exc  # fmt: skip
        self.report.bytes_sent += len(tar)
        marks = _marks(proc.stdout)
        if "READY" not in marks:
            why = marks.get("RESTORED") or marks.get("FAILED") or proc.stderr.decode("utf-8", "replace").strip()
            raise TakeoverError(f"setting up the one-shot installer boot failed: {why}; "
                                f"{'nothing was changed' if 'RESTORED' in marks else self._cleanup_now()}")  # fmt: skip
        self.old_boot_id = marks.get("BOOT-ID", "").strip() or self.old_boot_id
        self.report.times["one-shot entry"] = time.monotonic() - t0
        say(f"one-shot GRUB entry {bootonce.ENTRY_ID} set, installer in {bootonce.DIR}; the host reboots")

    def _cleanup_now(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if "CLEANED" in _marks(self._host(bootonce.CLEANUP, timeout=120).stdout):
                return f"{bootonce.DIR} and the entry were removed: nothing was changed"
        return f"remove {bootonce.DIR} and the pineinstall block of {bootonce.GRUB_DIR}/custom.cfg by hand"

    def _old_boot_id(self) -> str | None:
        """The boot id of the old system when its sshd (the pinned key) answers, else None."""
        try:
            proc = self._host("cat /proc/sys/kernel/random/boot_id", timeout=60)
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def back(self, why: str) -> TakeoverError:
        """Wait for the old system after the installer boot, remove what the run left; the error to raise."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.reboot_timeout:
            got = self._old_boot_id()
            if got and got != self.old_boot_id:
                try:
                    marks = _marks(self._host(bootonce.CLEANUP, timeout=120).stdout)
                except subprocess.TimeoutExpired:
                    marks = {}
                self.report.times["back to the old system"] = time.monotonic() - t0
                if "CLEANED" in marks:
                    return TakeoverError(f"{why}; the host is back on its old system, unchanged ({bootonce.DIR} "
                                         "and the GRUB entry removed); the disk was not written")  # fmt: skip
                return TakeoverError(f"{why}; the host is back on its old system and the disk was not written, "
                                     f"but removing {bootonce.DIR} failed: {marks.get('FAILED', 'no answer')}")  # fmt: skip
            time.sleep(5)
        return TakeoverError(
            f"{why}; the old system did not answer SSH within {self.reboot_timeout:g} s either. The disk was not "
            "written and GRUB's one-shot entry is spent: a reboot from the provider's panel boots the old system"
        )

    def reach_installer(self) -> str:
        """Session 2a: the installer's Dropbear; the disk's name there. Not reached: back to the old system."""
        d = self.facts.disk
        assert d is not None
        args = [str(d.size), d.serial or "", payload.ptid_hex(d.pttype, d.ptuuid), d.pttype or ""]
        command = shlex.join(["sh", "/stage2.sh", "find", "/dev/null", *args])
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.reboot_timeout:
            try:
                proc = subprocess.run(self._ram_argv(command), capture_output=True, timeout=120, env=ssh.env())
            except subprocess.TimeoutExpired:
                continue
            marks = _marks(proc.stdout)
            if proc.returncode == 0 and "DISK-FOUND" in marks:
                self.report.times["reboot to installer"] = time.monotonic() - t0
                say(f"the installer answers; {d.path} is {marks['DISK-FOUND']} there")
                return marks["DISK-FOUND"].strip()
            if "FAILED" in marks:  # the installer, but not the disk: the old system again, unchanged
                with contextlib.suppress(TakeoverError, subprocess.TimeoutExpired):
                    self._ram("sh /stage2.sh reboot /dev/null", timeout=30)
                raise self.back(f"the installer did not find the disk: {marks['FAILED']}")
            if b"Host key verification failed" in proc.stderr:  # something else answers: the old system?
                got = self._old_boot_id()
                if got and got != self.old_boot_id:
                    raise self.back("the installer did not come up (the old system booted again)")
            time.sleep(5)
        raise self.back(f"the installer was not reached within {self.reboot_timeout:g} s (its watchdog reboots it)")

    def run(self, disk: provision.Provisioned) -> None:
        tar = self.prepare(disk)
        self.boot(tar)
        path = self.reach_installer()
        self.stream(disk, path)
        self.wait_for_pine()
