"""The takeover, after the plan: provision here, hand over to a RAM SSH server, quiesce, stream, reboot,
and wait for the new Pine (docs/hijack.md, "What happens").

Sessions:

1. the host's OpenSSH (the probe's login): the payload into a tmpfs, stage 1 (``payload.STAGE1``)
   stops sshd's listener and starts Dropbear in the tmpfs on the same port; its host key is printed
   and pinned for the next session;
2. the RAM Dropbear, as root with the run's own key: ``quiesce`` (disk identity, services, swap,
   read-only) then ``write`` (the point of no return): the provisioned disk as framed stream on stdin;
3. after the reboot: the new Pine's SSH (root, the user's key: the carried keys and the config's),
   which prints ``/etc/.pine-result.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from pineinstall.errors import PineError
from pineinstall.hijack import bootonce, payload, provision, ssh
from pineinstall.hijack.facts import Facts
from pineinstall.hijack.stream import frames

HANDOVER_WAIT = 90  # s: stage 1 restores the host's sshd when the RAM server is not reached by then
RAM_ALIAS = "pine-hijack-ram"
PINE_ALIAS = "pine-hijack-new"
RESULT_PATH = "/etc/.pine-result.json"
STREAM_TRIES = 3  # write sessions before giving up (each one from the start)
STREAM_PAUSE = 10  # s between them


class TakeoverError(PineError):
    """The takeover stopped; the message says in what state it left the host."""


@dataclass
class Report:
    """What the summary prints: seconds per phase, bytes sent over SSH, the host's lowest MemAvailable."""

    times: dict[str, float] = field(default_factory=dict)
    bytes_sent: int = 0
    disk_bytes: int = 0
    mem_low_kib: int | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = ["takeover done: the new Pine answers SSH and its result record is there"]
        out += [f"  {k}: {v:.1f} s" for k, v in self.times.items()]
        out.append(f"  sent over SSH: {self.bytes_sent} bytes (the disk: {self.disk_bytes} bytes)")
        if self.mem_low_kib is not None:
            out.append(f"  lowest MemAvailable on the host: {self.mem_low_kib // 1024} MiB")
        out.append(f"  result record: configHash {self.record.get('configHash', '?')}, "
                   f"provisioned {self.record.get('provisioningDate', '?')}")  # fmt: skip
        return out


def say(text: str) -> None:
    sys.stderr.write(f"pineinstall hijack: {text}\n")
    sys.stderr.flush()


def _lines(stream: IO[bytes]) -> Any:
    for raw in iter(stream.readline, b""):
        yield raw.decode("utf-8", "replace").rstrip("\n")


def _marker(line: str) -> tuple[str, str] | None:
    if not line.startswith("PINE-"):
        return None
    word, _, rest = line[5:].partition(" ")
    return word, rest


class Takeover:
    server_alias = RAM_ALIAS  # the name the server's pinned key is stored under, and its file
    server_hosts = "known_hosts.ram"

    def __init__(self, target: ssh.Target, run_dir: str, facts: Facts, reboot_timeout: float) -> None:
        self.target = target
        self.run_dir = run_dir
        self.facts = facts
        self.reboot_timeout = reboot_timeout
        self.report = Report()
        self.run_key = os.path.join(run_dir, "run_key")
        self.ram = dataclasses.replace(target, user="root", identity=self.run_key)

    # --- sessions ---------------------------------------------------------------------------------

    def _ram_argv(self, command: str) -> list[str]:
        return ssh.argv(
            self.ram, self.run_dir, [command], hosts=self.server_hosts, alias=self.server_alias, strict="yes"
        )

    def _ram(self, command: str, timeout: float = 900) -> dict[str, str]:
        """A command in the RAM server; its PINE- markers (word -> rest). TakeoverError on FAILED."""
        proc = subprocess.run(self._ram_argv(command), capture_output=True, timeout=timeout, env=ssh.env())
        marks = {}
        for line in proc.stdout.decode("utf-8", "replace").splitlines():
            m = _marker(line)
            if m:
                marks[m[0]] = m[1]
        if "FAILED" in marks:
            raise TakeoverError(marks["FAILED"])
        if proc.returncode != 0:
            raise TakeoverError(f"ssh to the RAM server: {proc.stderr.decode('utf-8', 'replace').strip()}")
        return marks

    # --- steps ------------------------------------------------------------------------------------

    def make_run_key(self) -> str:
        """The run's own key pair (root's key in the RAM server and the installer); its public line."""
        from pineinstall.run import run

        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "pineinstall-hijack-run",
                "-f",
                self.run_key,
            ]
        )
        with open(self.run_key + ".pub") as fh:
            return fh.read()

    def handover(self, own_dropbear: str | None) -> None:
        """Session 1: the payload, stage 1, the RAM server's key pinned. Any failure: nothing changed."""
        t0 = time.monotonic()
        tarball = payload.build(self.make_run_key(), own_dropbear)
        self.report.bytes_sent += len(tarball)
        command = payload.remote_command(self.facts.user != "root", HANDOVER_WAIT)
        self.first = subprocess.Popen(
            ssh.argv(self.target, self.run_dir, [command]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ssh.env(),
        )  # fmt: skip
        assert self.first.stdin is not None and self.first.stdout is not None
        try:
            self.first.stdin.write(tarball)
            self.first.stdin.close()
        except BrokenPipeError:
            pass
        hostkey = None
        for line in _lines(self.first.stdout):
            m = _marker(line)
            if m is None:
                continue
            word, rest = m
            if word == "HOSTKEY":
                hostkey = rest
            elif word == "READY":
                break
            elif word in ("FAILED", "RESTORED"):
                raise TakeoverError(f"{rest}; nothing was changed (the host's sshd runs again)")
        else:
            err = self.first.stderr.read().decode("utf-8", "replace").strip() if self.first.stderr else ""
            raise TakeoverError(
                f"the first session ended before the RAM SSH server was ready: {err or 'no reason given'}"
            )
        if not hostkey:
            raise TakeoverError("the RAM SSH server's host key was not printed")
        with open(os.path.join(self.run_dir, "known_hosts.ram"), "w") as fh:
            fh.write(f"{RAM_ALIAS} {hostkey}\n")
        self.report.times["handover"] = time.monotonic() - t0
        say("the RAM SSH server is up (payload in /run/pine-hijack)")

    def quiesce(self) -> None:
        d = self.facts.disk
        assert d is not None
        args = [str(d.size), d.serial or "", payload.ptid_hex(d.pttype, d.ptuuid), d.pttype or ""]
        t0 = time.monotonic()
        try:
            marks = self._ram(shlex.join(["sh", "/stage2.sh", "quiesce", d.path, *args]))
        except (TakeoverError, subprocess.TimeoutExpired) as exc:
            self._first_done()
            stopped = self._restore()
            raise TakeoverError(f"quiesce failed: {exc}; {stopped}") from exc
        self._first_done()
        if "QUIESCED" not in marks:
            raise TakeoverError(f"quiesce did not finish; {self._restore()}")
        self.report.times["quiesce"] = time.monotonic() - t0
        say(f"services stopped, filesystems read-only, partitions of {d.path} set read-only")

    def _first_done(self) -> None:
        try:
            self.first.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.first.kill()

    def _restore(self) -> str:
        """Before the point of no return: the host back as it was (a reboot, since services were stopped)."""
        with contextlib.suppress(TakeoverError, subprocess.TimeoutExpired):
            self._ram("sh /stage2.sh reboot /dev/null", timeout=30)
        return "the disk was not written; the host was rebooted into its old system"

    def stream(self, disk: provision.Provisioned, path: str | None = None) -> None:
        """Session 2b: the point of no return. The disk as framed stream (stream.py): data gzip'ed,
        holes as zero frames written on the host. path: the disk's name where the writer runs (the
        one-shot installer's kernel may name it otherwise). A session that ends before the writer's
        verdict (a network cut, the host frozen past the keepalives) is tried again from the start:
        the server runs from RAM, and the first MiB is held back, so the disk has no table meanwhile."""
        d = self.facts.disk
        assert d is not None
        path = path or d.path
        say(f"POINT OF NO RETURN: writing {path} on the host now")
        t0 = time.monotonic()
        for attempt in range(1, STREAM_TRIES + 1):
            marks, ended = self._send(disk, path)
            if "FAILED" in marks:
                raise TakeoverError(f"after the point of no return: {marks['FAILED']}")
            if "REBOOTING" in marks:
                break
            if attempt == STREAM_TRIES:
                raise TakeoverError(
                    f"after the point of no return, the write did not finish in {STREAM_TRIES} sessions "
                    f"(the last: {ended}): {d.path} may hold part of the image and no partition table "
                    "(docs/hijack.md: recovery)"
                )
            say(f"the write session ended ({ended}); writing again from the start in {STREAM_PAUSE} s "
                f"(try {attempt + 1} of {STREAM_TRIES})")  # fmt: skip
            time.sleep(STREAM_PAUSE)
        self.report.disk_bytes = disk.size
        self.report.times["stream"] = time.monotonic() - t0
        if marks.get("MEMLOW", "").strip().isdigit():
            self.report.mem_low_kib = int(marks["MEMLOW"])
        say(f"written and checked (sha256 {disk.sha256}); the host reboots")

    def _send(self, disk: provision.Provisioned, path: str) -> tuple[dict[str, str], str]:
        """One write session: the writer's markers, and how the session ended (ssh's last words)."""
        proc = subprocess.Popen(
            self._ram_argv(shlex.join(["sh", "/stage2.sh", "write", path, str(disk.size), disk.sha256])),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ssh.env(),
        )  # fmt: skip
        sent = [0]

        def feed() -> None:
            assert proc.stdin is not None
            try:
                for out in frames(disk.path, disk.size, disk.sha256):
                    proc.stdin.write(out)
                    sent[0] += len(out)
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        assert proc.stdout is not None and proc.stderr is not None
        marks: dict[str, str] = {}
        for line in _lines(proc.stdout):
            m = _marker(line)
            if m:
                marks[m[0]] = m[1]
        proc.wait()
        feeder.join(timeout=10)
        self.report.bytes_sent += sent[0]
        err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
        return marks, (err[-1] if err else f"ssh exit status {proc.returncode}")

    def wait_for_pine(self) -> None:
        """Session 3: root with the user's key, the new host key learnt (never the user's known_hosts)."""
        t0 = time.monotonic()
        time.sleep(5)  # the RAM server answers for 2 s more
        pine = dataclasses.replace(self.target, user="root")
        hosts = os.path.join(self.run_dir, "known_hosts.pine")
        last = ""
        while time.monotonic() - t0 < self.reboot_timeout:
            argv = ssh.argv(
                pine, self.run_dir, [f"cat {RESULT_PATH}"], hosts="known_hosts.pine", alias=PINE_ALIAS
            )
            try:
                proc = subprocess.run(argv, capture_output=True, timeout=60, env=ssh.env())
            except subprocess.TimeoutExpired:
                proc = None
            if proc is not None and proc.returncode == 0:
                try:
                    record = json.loads(proc.stdout)
                except ValueError:
                    record = None
                if isinstance(record, dict) and record.get("configHash"):
                    self.report.record = record
                    self.report.times["reboot to SSH"] = time.monotonic() - t0
                    return
                last = f"{RESULT_PATH} is not a result record"
            elif proc is not None:
                last = proc.stderr.decode("utf-8", "replace").strip()
            if os.path.exists(hosts):  # the key of whatever answered before Pine is not kept
                os.unlink(hosts)
            time.sleep(5)
        raise TakeoverError(
            f"the disk was written, but no Pine answered SSH as root within {self.reboot_timeout:g} s "
            f"({last or 'no answer'}): see the host's console (docs/hijack.md: recovery)"
        )


def check_drivers(facts: Facts, disk: str, run_dir: str, times: dict[str, float]) -> None:
    """The host's disk and NIC drivers against the provisioned disk's kernel, before the host changes."""
    from pineinstall.hijack import drivers, refusals

    t0 = time.monotonic()
    have = provision.on_partitions(disk, run_dir, drivers.image_drivers)
    times["driver check"] = time.monotonic() - t0
    refused = refusals.drivers(facts, have)
    if refused:
        raise TakeoverError("refused, nothing was changed on the host: " + "; ".join(refused))
    if have is None:
        say("the image carries no modules.builtin: the host's disk and NIC drivers are not checked against "
            "its kernel")  # fmt: skip
    else:
        say(f"Pine's kernel {have.release} has the drivers of the host's disk and NICs")


def run(target: ssh.Target, run_dir: str, facts: Facts, merged: dict[str, Any], image: str, sha256: str,
        reboot_timeout: float, times: dict[str, float], method: str, doc: dict[str, Any],
        drivers_checked: bool = False) -> Report:  # fmt: skip
    """Everything after the confirmation. TakeoverError says in what state the host is. method: the
    path :func:`bootonce.choose` picked (the one-shot installer boot, :mod:`.oneshot`, reads the probe's
    document ``doc``; else the RAM pivot). drivers_checked: the image's drivers were read and
    compared before the plan (provisioning changes no kernel: not read again)."""
    d = facts.disk
    if d is None:
        raise TakeoverError("no boot disk in the probe")
    t0 = time.monotonic()
    say(f"provisioning the new {d.path} here ({d.size} bytes, sparse)")
    disk = provision.provision(merged, image, sha256, d.size, run_dir)
    times["provision"] = time.monotonic() - t0
    if not drivers_checked:
        check_drivers(facts, disk.path, run_dir, times)
    if method == bootonce.BOOT_ONCE:
        from pineinstall.hijack.oneshot import OneShot

        once = OneShot(target, run_dir, facts, reboot_timeout, doc)
        once.report.times.update(times)
        once.run(disk)
        return once.report
    take = Takeover(target, run_dir, facts, reboot_timeout)
    take.report.times.update(times)
    # the probe's known_hosts (same run_dir): the host key is checked, not learnt again
    take.handover(provision.own_dropbear(disk.path, run_dir))
    take.quiesce()
    take.stream(disk)
    take.wait_for_pine()
    return take.report
