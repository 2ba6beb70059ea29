"""Running QEMU guests (TCG): a command in the harness guest, or booting a disk image as it is.

One guest at a time on this machine (a global flock): two TCG guests on two cores halve each other's
speed and make every timeout unreliable.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from iso.lib.cache import file_lock

from .image import cache_dir, ensure_guest_image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]  # the checkout the tests run from (not necessarily /work/main)

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
ROOT_SERIAL = "pine-guest-root"
# panic=-1 with -no-reboot: a kernel panic ends QEMU at once instead of waiting for the timeout.
# PINE_VM_APPEND adds arguments (e.g. "loglevel=7" to see the whole boot).
KERNEL_CMDLINE = "console=ttyS0,115200n8 panic=-1 quiet loglevel=4 random.trust_cpu=on mitigations=off"


class GuestError(RuntimeError):
    """The guest did not produce a result; the message carries the serial console's tail."""

    def __init__(self, message: str, serial_log: str = "", output: str = "") -> None:
        self.serial_log = serial_log
        self.output = output
        parts = [message]
        if output:
            parts.append("--- command output (tail) ---\n" + _tail(output))
        if serial_log:
            parts.append("--- serial console (tail) ---\n" + _tail(serial_log))
        super().__init__("\n".join(parts))


class GuestTimeout(GuestError):
    """The guest was still running when the hard timeout hit; QEMU was killed."""


@dataclass(frozen=True)
class DiskSpec:
    """An extra virtio-blk disk, seen in the guest as /dev/disk/by-id/virtio-NAME.

    path None: a fresh sparse scratch file of `size`, deleted after the run. path given: that file
    is created with `size` if missing and used as it is otherwise (to inspect it afterwards or boot it
    again). format "raw" or "qcow2"; bootindex for disks firmware should boot from.
    """

    name: str
    size: int | str = "1G"
    path: Path | None = None
    format: str = "raw"
    bootindex: int | None = None
    readonly: bool = False
    snapshot: bool = False


@dataclass(frozen=True)
class GuestResult:
    rc: int
    output: str  # the command's stdout and stderr, interleaved
    serial_log: str  # kernel and init messages from the serial console
    seconds: float  # QEMU start to exit
    boot_seconds: float | None = None  # guest uptime when the command started

    def check(self) -> GuestResult:
        """Raise GuestError unless rc is 0; returns self for chaining."""
        if self.rc != 0:
            raise GuestError(f"guest command failed with rc {self.rc}", self.serial_log, self.output)
        return self


@dataclass(frozen=True)
class BootResult:
    serial: str  # everything the guest wrote to its serial console
    marker_seen: bool  # `until` appeared (QEMU was then stopped)
    powered_off: bool  # QEMU exited by itself (power-off, or reboot under -no-reboot)
    seconds: float
    exit_code: int | None = field(default=None)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", size, re.IGNORECASE)
    if not m:
        raise ValueError(f"bad disk size {size!r}")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


def qemu_binary() -> str | None:
    return shutil.which("qemu-system-x86_64")


def _disk_args(disks: Sequence[DiskSpec], workdir: Path, first_index: int) -> list[str]:
    args: list[str] = []
    for i, disk in enumerate(disks, start=first_index):
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", disk.name):
            raise ValueError(f"disk name {disk.name!r}: 1-20 of [A-Za-z0-9_.-] (virtio serial limit)")
        path = disk.path
        if path is None:
            path = workdir / f"disk-{disk.name}.{disk.format}"
        if not path.exists():
            if disk.format == "raw":
                with open(path, "wb") as fh:
                    fh.truncate(parse_size(disk.size))
            else:
                subprocess.run(
                    ["qemu-img", "create", "-q", "-f", disk.format, str(path), str(parse_size(disk.size))],
                    check=True,
                )
        drive = f"if=none,id=d{i},file={path},format={disk.format},cache=unsafe,discard=unmap"
        if disk.readonly:
            drive += ",readonly=on"
        if disk.snapshot:
            drive += ",snapshot=on"
        dev = f"virtio-blk-pci,drive=d{i},serial={disk.name}"
        if disk.bootindex is not None:
            dev += f",bootindex={disk.bootindex}"
        args += ["-drive", drive, "-device", dev]
    return args


def _common_args(
    memory: str,
    serial_log: Path,
    fw_cfg: Mapping[str, Path],
    iso: Path | None,
    net: bool,
    net_forwards: Mapping[int, int | str],
    iso_bootindex: int | None = None,
    console_input: bool = False,
    smp: int = 2,
    user_net: str = "",
) -> list[str]:
    binary = qemu_binary()
    if binary is None:
        raise GuestError("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    args = [
        binary,
        "-machine", "q35",
        "-accel", "tcg,thread=multi" if smp > 1 else "tcg",
        "-cpu", "max",
        "-smp", str(smp),
        "-m", memory,
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-vga", "none",
        "-monitor", "none",
        "-no-reboot",
        "-device", "virtio-rng-pci",
    ]  # fmt: skip
    if console_input:
        # QEMU's pipe backend writes to BASE.out (here a plain file: the log) and reads BASE.in (a FIFO).
        if serial_log.suffix != ".out":
            raise ValueError(f"{serial_log}: a console with input logs to BASE.out")
        os.mkfifo(serial_log.with_suffix(".in"))
        serial_log.touch()
        args += ["-chardev", f"pipe,id=ser0,path={serial_log.with_suffix('')}", "-serial", "chardev:ser0"]
    else:
        args += ["-serial", f"file:{serial_log}"]
    for name, path in fw_cfg.items():
        if "," in name or "," in str(path):
            raise ValueError(f"fw_cfg {name}: commas are not allowed in names or paths")
        args += ["-fw_cfg", f"name={name},file={path}"]
    if iso is not None:
        dev = "ide-cd,drive=cd0"
        if iso_bootindex is not None:
            dev += f",bootindex={iso_bootindex}"
        args += ["-drive", f"if=none,id=cd0,file={iso},media=cdrom,readonly=on", "-device", dev]
    if net or net_forwards:
        netdev = "user,id=n0"
        if user_net:
            for option in user_net.split(","):
                if not re.fullmatch(r"(net|host|dns|dhcpstart)=[0-9./]+", option):
                    raise ValueError(
                        f"user_net {option!r}: only net=, host=, dns=, dhcpstart= with addresses"
                    )
            netdev += "," + user_net
        for host_port, guest in net_forwards.items():
            # Bound to 127.0.0.1 only: nothing outside this machine reaches a test guest.
            netdev += f",hostfwd=tcp:127.0.0.1:{int(host_port)}-{_guest_end(guest)}"
        args += ["-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    return args


def _guest_end(guest: int | str) -> str:
    """A forward's guest end: a port (the guest's DHCP address) or "ADDR:PORT" (a static address)."""
    if isinstance(guest, int):
        return f":{guest}"
    if not re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}", guest):
        raise ValueError(f"net_forwards: guest end {guest!r} is not a port or ADDR:PORT")
    return guest


def _detach_but_die_with_parent() -> None:
    """In the child before exec: own process group (killed as one), and SIGKILL when the test process
    dies (a killed pytest must not leave a guest running without its timeout)."""
    os.setsid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _Qemu:
    """A QEMU process with a hard deadline; killed (whole process group) on timeout or error."""

    def __init__(
        self, argv: list[str], workdir: Path, *, stdout: Path | None = None, cwd: Path | None = None
    ) -> None:
        self.stderr_path = workdir / "qemu.stderr"
        self.started = time.monotonic()
        with open(self.stderr_path, "wb") as err, open(stdout or os.devnull, "wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdout else subprocess.DEVNULL,  # -nographic reads keys from stdin
                stdout=out if stdout else err,
                stderr=err,
                cwd=cwd,
                preexec_fn=_detach_but_die_with_parent,
            )

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextmanager
def guest_lock():
    """The machine-wide "one guest at a time" lock (an flock in the cache directory)."""
    with file_lock(cache_dir() / "qemu.lock", waiting="[vm] another QEMU guest is running; waiting for it"):
        yield


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _wait_for_command(qemu: _Qemu, serial_path: Path, timeout: float, command_timeout: float | None) -> str:
    """Wait for QEMU to exit; the limit that ran out ("" when it exited in time)."""
    if command_timeout is None:
        try:
            qemu.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"guest did not finish within {timeout:g} s"
        return ""
    started: float | None = None  # the command's start, on the host's clock
    while qemu.proc.poll() is None:
        if started is None and "PINE-GUEST-START" in _read(serial_path):
            started = time.monotonic()
        if started is not None and time.monotonic() - started > command_timeout:
            return f"command did not finish within {command_timeout:g} s of its start"
        if qemu.elapsed() > timeout:
            return f"guest did not finish within {timeout:g} s"
        time.sleep(0.25)
    return ""


def run_in_guest(
    command: str | Sequence[str],
    *,
    disks: Sequence[DiskSpec] = (),
    fw_cfg: Mapping[str, Path] | None = None,
    iso: Path | None = None,
    net: bool = False,
    net_forwards: Mapping[int, int] | None = None,
    share: Path | None = None,
    env: Mapping[str, str] | None = None,
    repo: Path | None = REPO,
    cwd: str = "/repo",
    timeout: float = 120,
    command_timeout: float | None = None,
    memory: str = "512M",
) -> GuestResult:
    """Boot the harness guest, run `command` as root, power off; return its rc and output.

    command: a shell string (run by bash) or an argv list. The repository `repo` is mounted read-only
    at /repo with PYTHONPATH=/repo (`pineinstall`, `pine-transpile` wrappers on PATH); `share`, when
    given, is a host directory mounted read-write at /mnt/share. disks: extra virtio disks (udev runs,
    so /dev/disk/by-id/virtio-NAME exists). fw_cfg: name -> file (e.g. "opt/com.coreos/config").
    iso: attached as a CD-ROM (/dev/sr0). net / net_forwards: user networking (guest 10.0.2.15, the
    host's 127.0.0.1 is 10.0.2.2 in the guest), forwards host 127.0.0.1:HOST -> guest GUEST.
    timeout: hard limit in seconds for the whole QEMU run (boot included), then GuestTimeout.
    command_timeout: a limit for the command alone, counted from its start (PINE-GUEST-START).
    A nonzero rc is returned, not raised (use .check()).
    """
    image = ensure_guest_image()
    with tempfile.TemporaryDirectory(prefix="pine-vm-") as tmp:
        workdir = Path(tmp)
        rundir = workdir / "run"
        rundir.mkdir()
        shutil.copy(HERE / "stage2_boot.sh", rundir / "boot.sh")
        script = command if isinstance(command, str) else shlex.join(command)
        (rundir / "cmd.sh").write_text(script + "\n")
        settings = {
            "PINE_NET": "1" if (net or net_forwards) else "0",
            "PINE_REPO": "1" if repo is not None else "0",
            "PINE_SHARE": "1" if share is not None else "0",
            "PINE_ISO": "1" if iso is not None else "0",
            "PINE_CWD": cwd,
        }
        exports = {"PYTHONPATH": "/repo", "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}
        lines = [f"{k}={shlex.quote(v)}" for k, v in settings.items()]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
        (rundir / "settings.sh").write_text("\n".join(lines) + "\n")

        serial_path = workdir / "serial.log"
        argv = _common_args(memory, serial_path, fw_cfg or {}, iso, net, net_forwards or {})
        argv += [
            "-kernel", str(image.kernel),
            "-initrd", str(image.initrd),
            "-append", f"{KERNEL_CMDLINE} {os.environ.get('PINE_VM_APPEND', '')}".strip(),
            "-drive", f"if=none,id=root,file={image.rootfs},format=raw,snapshot=on,cache=unsafe",
            "-device", f"virtio-blk-pci,drive=root,serial={ROOT_SERIAL}",
            "-virtfs", f"local,path={rundir},mount_tag=pinerun,security_model=none",
        ]  # fmt: skip
        if repo is not None:
            argv += ["-virtfs", f"local,path={repo},mount_tag=repo,security_model=none,readonly=on"]
        if share is not None:
            argv += ["-virtfs", f"local,path={share},mount_tag=share,security_model=none"]
        argv += _disk_args(disks, workdir, first_index=1)

        with guest_lock():
            qemu = _Qemu(argv, workdir)
            try:
                limit = _wait_for_command(qemu, serial_path, timeout, command_timeout)
            finally:
                qemu.kill()
        if limit:
            raise GuestTimeout(
                f"{limit} (QEMU killed); command: {script!r}", _read(serial_path), _read(rundir / "output")
            )
        seconds = qemu.elapsed()
        serial = _read(serial_path)
        output = _read(rundir / "output")
        rc_text = _read(rundir / "rc").strip()
        if not rc_text.isdigit():
            raise GuestError(
                f"guest stopped without a result (QEMU exit {qemu.proc.returncode}; "
                f"stderr: {qemu.stderr().strip()[-2000:]!r})",
                serial,
                output,
            )
        m = re.search(r"PINE-GUEST-START ([\d.]+)", serial)
        return GuestResult(
            rc=int(rc_text),
            output=output,
            serial_log=serial,
            seconds=round(seconds, 2),
            boot_seconds=float(m.group(1)) if m else None,
        )


def boot_disk(
    image: Path,
    *,
    firmware: str = "bios",
    fw_cfg: Mapping[str, Path] | None = None,
    until: str | re.Pattern[str] | None = None,
    timeout: float = 180,
    disks: Sequence[DiskSpec] = (),
    iso: Path | None = None,
    boot_iso: bool = False,
    image_format: str = "raw",
    snapshot: bool = False,
    uefi_vars: Path | None = None,
    net: bool = False,
    net_forwards: Mapping[int, int] | None = None,
    memory: str = "512M",
    kernel_args: Sequence[str] = (),
    keys: Sequence[tuple[str, bytes]] = (),
) -> BootResult:
    """Boot `image` with its own bootloader (SeaBIOS or OVMF) and capture the serial console.

    Returns when `until` (a substring or compiled regex) appears on the serial console (QEMU is then
    stopped), or when the guest powers off or reboots (-no-reboot). Raises GuestTimeout after
    `timeout` seconds otherwise. The image is written to unless snapshot=True. It is attached as
    virtio-blk with serial "boot" and bootindex 0 (the ISO gets bootindex 0 instead with boot_iso).
    UEFI uses q35 + OVMF_CODE_4M with a copy of OVMF_VARS_4M (kept at uefi_vars when given, so boot
    entries survive between boots). kernel_args: extra QEMU arguments (e.g. -kernel for experiments).
    keys: console input, in order: each (text, data) sends data to the serial port once text has
    appeared on the console (e.g. ("Rescue shell", b"\x1b[B\r") picks a menu's second entry).
    """
    if not image.exists():
        raise FileNotFoundError(f"boot_disk: {image} does not exist")
    if firmware not in ("bios", "uefi"):
        raise ValueError(f"firmware must be 'bios' or 'uefi', not {firmware!r}")
    with tempfile.TemporaryDirectory(prefix="pine-boot-") as tmp:
        workdir = Path(tmp)
        serial_path = workdir / "serial.out"
        argv = _common_args(
            memory,
            serial_path,
            fw_cfg or {},
            iso,
            net,
            net_forwards or {},
            iso_bootindex=0 if (iso is not None and boot_iso) else None,
            console_input=bool(keys),
        )
        if firmware == "uefi":
            vars_path = uefi_vars or workdir / "OVMF_VARS.fd"
            if not vars_path.exists():
                shutil.copy(OVMF_VARS, vars_path)
            argv += [
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={vars_path}",
            ]  # fmt: skip
        boot = DiskSpec(
            "boot", path=image, format=image_format, bootindex=None if boot_iso else 0, snapshot=snapshot
        )
        argv += _disk_args([boot], workdir, first_index=0)
        argv += _disk_args(disks, workdir, first_index=1)
        argv += list(kernel_args)

        with guest_lock():
            qemu = _Qemu(argv, workdir)
            return _watch(qemu, serial_path, until, timeout, f"booting {image} ({firmware})", keys)


def run_command_line(
    argv: Sequence[str], *, cwd: Path, until: str | re.Pattern[str], timeout: float
) -> BootResult:
    """Run a QEMU command line as a user would type it (e.g. a README's, with -nographic: the serial
    console on stdout) in `cwd`, under the guest lock; returns when `until` appears on stdout or QEMU
    exits, GuestTimeout after `timeout` seconds."""
    with tempfile.TemporaryDirectory(prefix="pine-cmdline-") as tmp:
        console = Path(tmp) / "console.log"
        with guest_lock():
            qemu = _Qemu(list(argv), Path(tmp), stdout=console, cwd=cwd)
            return _watch(qemu, console, until, timeout, shlex.join(argv))


def _watch(
    qemu: _Qemu,
    serial_path: Path,
    until: str | re.Pattern[str] | None,
    timeout: float,
    what: str,
    keys: Sequence[tuple[str, bytes]] = (),
) -> BootResult:
    """Follow the serial console until `until` appears or QEMU exits, typing `keys` (see boot_disk) on
    the way; QEMU is killed in any case."""
    pattern = re.compile(re.escape(until)) if isinstance(until, str) else until
    pending = list(keys)
    typing = os.open(serial_path.with_suffix(".in"), os.O_RDWR) if keys else None  # RDWR: never blocks
    try:
        while True:
            done = qemu.proc.poll() is not None
            serial = _read(serial_path)
            while pending and typing is not None and pending[0][0] in serial:
                os.write(typing, pending.pop(0)[1])
            if pattern is not None and pattern.search(serial):
                return BootResult(serial, True, False, round(qemu.elapsed(), 2))
            if done:
                if qemu.proc.returncode != 0:
                    raise GuestError(f"QEMU failed (exit {qemu.proc.returncode}): {qemu.stderr()}", serial)
                return BootResult(serial, False, True, round(qemu.elapsed(), 2), qemu.proc.returncode)
            if qemu.elapsed() > timeout:
                raise GuestTimeout(
                    f"{what} did not "
                    + (f"print {until!r}" if until else "power off")
                    + f" within {timeout:g} s (QEMU killed)",
                    serial,
                )
            time.sleep(0.25)
    finally:
        qemu.kill()
        if typing is not None:
            os.close(typing)


@dataclass(frozen=True)
class RunningGuest:
    """A guest booted by running_disk or running_command_line: its serial console so far, its age,
    and whether QEMU still runs."""

    serial_path: Path
    started: float
    proc: subprocess.Popen[bytes] | None = None

    def serial(self) -> str:
        return _read(self.serial_path)

    def running(self) -> bool:
        """QEMU still runs (a reboot ends it: -no-reboot)."""
        return self.proc is None or self.proc.poll() is None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None


@contextmanager
def running_disk(
    image: Path,
    *,
    firmware: str = "bios",
    memory: str = "512M",
    net_forwards: Mapping[int, int | str] | None = None,
    user_net: str = "",
    snapshot: bool = False,
    smp: int = 1,
    fw_cfg: Mapping[str, Path] | None = None,
    locked: bool = True,
):
    """Boot `image` as boot_disk does (virtio-blk, bootindex 0, user networking with net_forwards
    bound to 127.0.0.1, fw_cfg: name -> file) and keep it running for the block (to talk to it over
    SSH); killed after (power it off first when its disk must be clean for a second boot).
    user_net: QEMU user-network options ("net=192.0.2.0/24,host=192.0.2.1,dns=192.0.2.53") for a
    guest with a static address, forwarded to as {HOST_PORT: "192.0.2.10:22"}.

    One vCPU by default: Alpine's 6.18 kernel oopses (int3 in patched code) at ~3 s under
    multi-threaded TCG with two vCPUs (QEMU serves a stale translation of code the kernel just
    patched with text_poke); a small VPS has one vCPU anyway. locked=False: the caller already holds
    guest_lock() (several boots in a row, e.g. a guest that reboots into another system)."""
    with tempfile.TemporaryDirectory(prefix="pine-run-") as tmp:
        workdir = Path(tmp)
        serial_path = workdir / "serial.log"
        argv = _common_args(
            memory, serial_path, fw_cfg or {}, None, True, net_forwards or {}, smp=smp, user_net=user_net
        )
        if firmware == "uefi":
            shutil.copy(OVMF_VARS, workdir / "OVMF_VARS.fd")
            argv += [
                "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,unit=1,file={workdir / 'OVMF_VARS.fd'}",
            ]  # fmt: skip
        argv += _disk_args([DiskSpec("boot", path=image, bootindex=0, snapshot=snapshot)], workdir, 0)
        with guest_lock() if locked else nullcontext():
            qemu = _Qemu(argv, workdir)
            try:
                yield RunningGuest(serial_path, qemu.started, qemu.proc)
            finally:
                qemu.kill()


@contextmanager
def running_command_line(argv: Sequence[str], *, cwd: Path) -> Iterator[RunningGuest]:
    """Run a QEMU command line as a user types it (see run_command_line: the console is its stdout)
    and keep it running for the block, under the guest lock; killed after."""
    with tempfile.TemporaryDirectory(prefix="pine-cmdline-") as tmp:
        console = Path(tmp) / "console.log"
        with guest_lock():
            qemu = _Qemu(list(argv), Path(tmp), stdout=console, cwd=cwd)
            try:
                yield RunningGuest(console, qemu.started, qemu.proc)
            finally:
                qemu.kill()
