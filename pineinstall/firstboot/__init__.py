"""``pineinstall firstboot [--root DIR] [--dry-run] [--no-reboot] [--force]``: provision the booted
system once, as Ignition does on Fedora CoreOS's first boot.

The config is the first found among (``pineinstall.providers``):

1. the kernel command line: ``pine.config.url=URL`` (preferred) or ``ignition.config.url=URL``,
   fetched over http(s), tftp or data: with the resource layer's retries;
2. QEMU fw_cfg ``opt/com.coreos/config`` (the ``qemu_fw_cfg`` module loaded when needed);
3. the stash ``/boot/ignition/config.ign`` left by ``pineinstall install --stash-config``.

No config at all: "no config: nothing to provision", marked done, exit 0 (as Ignition).

Then, with :mod:`pineinstall.engine`: the whole config is checked (a broken one is
refused with ``error at $.path, line L col C: ...``), its references rendered, every resource
fetched, then the stages run on the root; the kargs stage edits the running system's bootloader
(``/boot``, or ``/sysroot/boot`` on a booted OSTree system). After success: ``/etc/.pine-result.json``
gets a ``firstboot`` entry (provider, time, what changed; never the config's contents), the marker
``/etc/.pine-firstboot-done`` is written (the systemd unit has ``ConditionPathExists=!`` on it, the
OpenRC script checks it), the stash is removed. On the live system (``--root /``) the new hostname is
set, systemd reloads and starts the units the config enabled (OpenRC: ``rc-service NAME start``; run
from OpenRC's boot runlevel, services linked into a later runlevel are left to OpenRC, which starts
them on entering it, this same boot),
and the machine reboots when the default entry's kernel arguments changed (not with ``--no-reboot``).

A failure is printed on stderr (the unit sends it to the console too), exits 1, and leaves no
marker: the next boot tries again. ``--dry-run`` prints which config would be used and the plan.

Paths are injectable for tests: ``--root``; ``--cmdline FILE`` (``PINE_FIRSTBOOT_CMDLINE``) instead of
``/proc/cmdline``; ``--fw-cfg DIR`` (``PINE_FIRSTBOOT_FW_CFG``) instead of ``/sys/firmware/qemu_fw_cfg``.
Exit status: 0 provisioned (or nothing to do), 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pineinstall.atomicfile import replace_file
from pineinstall.errors import PineError
from pineinstall.firstboot.service import MARKER, UNIT
from pineinstall.stages import Log
from pineinstall.stages.kargs import Kargs

RESULT_PATH = "/etc/.pine-result.json"


class FirstbootError(PineError):
    """First boot cannot go on; the message is for the console."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- finding the config -----------------------------------------------------------------------------


def find_config(args: argparse.Namespace, log: Log) -> Any:
    """The first config found (``providers.Found``), or None. ProviderError when one is found but
    cannot be read or fetched."""
    from pineinstall import providers
    from pineinstall.providers import cmdline, fwcfg, stash

    return providers.first(
        [
            ("cmdline", lambda: cmdline.fetch(args.cmdline, log=log.info)),
            ("fwcfg", lambda: fwcfg.fetch(args.fw_cfg, log=log.info)),
            ("stash", lambda: stash.fetch(args.root)),
        ]
    )


# --- the record and the marker ----------------------------------------------------------------------


def _write_private(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text.encode(), mode)


def record_result(target: Any, entry: dict[str, Any]) -> Path:
    """Add ``firstboot`` to ``/etc/.pine-result.json`` (0600), keeping what the files stage wrote."""
    path = Path(target.resolve(RESULT_PATH))
    record: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            record = loaded
    record["firstboot"] = entry
    _write_private(path, json.dumps(record, indent=2, sort_keys=True) + "\n", 0o600)
    return path


def mark_done(target: Any, what: str) -> Path:
    path = Path(target.resolve(MARKER))
    _write_private(path, f"{_now()} {what}\n", 0o644)
    return path


def is_done(root: str) -> bool:
    from pineinstall.target import TargetError, open_target

    try:
        return open_target(root).exists(MARKER)
    except TargetError:
        return False


# --- kernel arguments -------------------------------------------------------------------------------


def boot_root(root: str) -> str | None:
    """Where the running system's bootloader configuration is: the root's /boot, or (a booted
    OSTree system) /sysroot's."""
    from pineinstall.boot import BootError, detect

    for candidate in (root, os.path.join(root, "sysroot")):
        if not os.path.isdir(candidate):
            continue
        try:
            detect(candidate)
        except BootError:
            continue
        return candidate
    return None


def kargs_stage(root: str) -> Kargs:
    """The kargs stage on the running system's bootloader (see :func:`boot_root`)."""

    def where(_target: Any) -> str:
        found = boot_root(root)
        if found is None:
            raise FirstbootError(
                f"kernel arguments are configured but no bootloader configuration was found under {root}/boot"
                f" or {os.path.join(root, 'sysroot')}/boot"
            )
        return found

    return Kargs(boot_root=where)


def kargs_entry(change: Any) -> dict[str, Any] | None:
    """The result record's ``kargs``: the bootloader, the arguments before and after."""
    if change is None:
        return None
    return {
        "bootloader": change.bootloader,
        "before": change.before,
        "after": change.after,
        "changed": list(change.before) != list(change.after),
    }


# --- the live system --------------------------------------------------------------------------------


def _live(root: str) -> bool:
    return os.path.realpath(root) == "/"


def _live_init() -> str | None:
    if os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.isdir("/run/openrc"):
        return "openrc"
    return None


def _openrc_services(config: Any) -> list[tuple[str, str]]:
    """(runlevel, service) of each link the config makes into a runlevel (the pine variant's
    openrc.services)."""
    found = []
    for link in config.storage.links:
        parts = link.path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["etc", "runlevels"]:
            found.append((parts[2], parts[3]))
    return found


# OpenRC's boot order: a runlevel later than the one being entered is read when OpenRC enters it.
OPENRC_EARLY = ("sysinit", "boot")


def _openrc_runlevel() -> str | None:
    """The runlevel OpenRC is entering or in: RC_RUNLEVEL (set for the scripts it runs), else
    /run/openrc/softlevel."""
    level = os.environ.get("RC_RUNLEVEL")
    if level:
        return level
    try:
        return Path("/run/openrc/softlevel").read_text().strip() or None
    except OSError:
        return None


def openrc_split(services: list[tuple[str, str]], current: str | None) -> tuple[list[str], list[str]]:
    """(to start now, left to OpenRC): during sysinit or boot (first boot runs in boot, before the
    network), a service linked into a later runlevel (default) is started by OpenRC itself when it
    enters that runlevel, after the network, as on every later boot; one in the current or an
    earlier runlevel would be missed, so it is started now."""
    now, later = [], []
    for level, name in services:
        if current in OPENRC_EARLY and level not in OPENRC_EARLY[: OPENRC_EARLY.index(current) + 1]:
            later.append(name)
        else:
            now.append(name)
    return now, later


def live_actions(config: Any, hostname: tuple[str | None, str | None], log: Log) -> dict[str, Any]:
    """On the running system: the new hostname, and the services the config enabled started (init
    computed its boot transaction before we ran, so it would not start them this boot)."""
    import socket

    from pineinstall.run import CommandError, run

    done: dict[str, Any] = {}
    before, after = hostname
    if after and after != before:
        try:
            socket.sethostname(after)
            done["hostname"] = after
            log.info(f"hostname set to {after}")
        except OSError as exc:
            log.warning(f"cannot set the hostname to {after}: {exc.strerror or exc}")
    init = _live_init()
    started = []
    try:
        if init == "systemd" and config.systemd.units:
            run(["systemctl", "daemon-reload"])
            units = [u.name for u in config.systemd.units if u.enabled and not u.mask and u.name != UNIT]
            if units:
                run(["systemctl", "start", "--no-block", *units])
                started = units
        elif init == "openrc":
            now, later = openrc_split(_openrc_services(config), _openrc_runlevel())
            for name in now:
                run(["rc-service", name, "start"], check=False)
                started.append(name)
            if later:
                log.info(f"OpenRC starts {', '.join(later)} when it enters their runlevel")
                done["left_to_openrc"] = later
    except CommandError as exc:
        log.warning(f"starting the configured services: {exc}")
    if started:
        log.info(f"started: {', '.join(started)}")
        done["started"] = started
    return done


def reboot(log: Log) -> None:
    from pineinstall.run import CommandError, run

    log.info("kernel arguments changed: rebooting")
    try:
        run(["systemctl", "reboot"] if _live_init() == "systemd" else ["reboot"])
    except CommandError as exc:
        log.error(f"cannot reboot: {exc}; reboot to use the new kernel arguments")


# --- the run -----------------------------------------------------------------------------------------


def _hostname(target: Any) -> str | None:
    text = target.read_text("/etc/hostname")
    return text.strip() if text is not None else None


def provision(args: argparse.Namespace, found: Any, log: Log) -> dict[str, Any]:
    """Check, provision (the engine's stages, kargs included), record, mark, unstash; the result entry."""
    from pineinstall import engine
    from pineinstall.providers import stash
    from pineinstall.target import open_target

    t0 = time.monotonic()
    config = engine.load(found.data, log)  # the whole check first: nothing is touched on error
    before = _hostname(open_target(args.root))
    with engine.Engine(config, log, kargs=kargs_stage(args.root)) as run:
        run.prepare()
        done = run.run(args.root)
    result, target = done.files, done.target
    kargs = kargs_entry(done.kargs)
    after = _hostname(target)
    entry: dict[str, Any] = {
        "ok": True,
        "provider": found.provider,
        "source": found.source,
        "time": _now(),
        "seconds": round(time.monotonic() - t0, 2),
        "created": result.created,
        "unchanged": result.unchanged,
        "files": sorted(result.files),
        "users": [u.name for u in config.passwd.users],
        "groups": [g.name for g in config.passwd.groups],
        "units": [u.name for u in config.systemd.units],
        "hostname": after if after != before else None,
        "kargs": kargs,
    }
    if _live(args.root):
        entry.update(live_actions(config, (before, after), log))
    with log.op(f"recording the result in {RESULT_PATH!r} and marking first boot done ({MARKER})"):
        record_result(target, entry)
        mark_done(target, found.provider)
    removed = stash.remove(args.root)
    for path in removed:
        log.info(f"removed the stashed config {path}")
    return entry


def dry_run(args: argparse.Namespace, found: Any, log: Log) -> int:
    from pineinstall import engine
    from pineinstall.target import open_target

    sys.stdout.write(f"config: {found.provider} ({found.source}), {len(found.data)} bytes\n")
    config = engine.load(found.data, log)
    engine.dry_run(config, open_target(args.root), sys.stdout, kargs=True)
    return 0


def run(args: argparse.Namespace, log: Log) -> int:
    from pineinstall.target import TargetError, open_target

    if not args.dry_run and not args.force and is_done(args.root):
        log.info(f"first boot already done ({MARKER} exists); nothing to do")
        return 0
    found = None
    try:
        found = find_config(args, log)
        if found is None:
            log.info("no config: nothing to provision")
            if args.dry_run:
                sys.stdout.write("config: none\n")
                return 0
            target = open_target(args.root)
            record_result(target, {"ok": True, "provider": None, "time": _now(), "message": "no config"})
            mark_done(target, "no config")
            return 0
        log.info(f"config from {found.provider}: {found.source} ({len(found.data)} bytes)")
        if args.dry_run:
            return dry_run(args, found, log)
        entry = provision(args, found, log)
    except (PineError, OSError) as exc:
        what = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error(f"first boot failed: {what}")
        if not args.dry_run:
            log.error(f"the system is NOT provisioned ({MARKER} not written); the next boot tries again")
            with contextlib.suppress(OSError, TargetError):
                record_result(
                    open_target(args.root),
                    {
                        "ok": False,
                        "provider": found.provider if found else None,
                        "time": _now(),
                        "error": what,
                    },
                )
        return 1
    created = ", ".join(f"{n} {k}" for k, n in sorted(entry["created"].items())) or "nothing new"
    log.info(f"first boot done in {entry['seconds']} s from {found.provider}: {created}")
    kargs = entry.get("kargs")
    if kargs and kargs["changed"]:
        if _live(args.root) and not args.no_reboot:
            reboot(log)
        else:
            log.info("kernel arguments changed: a reboot is needed to use them")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall firstboot",
        description="Provision the booted system once from the kernel command line's config URL, "
        "QEMU fw_cfg, or the stashed /boot/ignition/config.ign.",
    )
    p.add_argument("--root", default="/", help="the root to provision (default: /, the running system)")
    p.add_argument("--dry-run", action="store_true", help="print which config would be used and the plan")
    p.add_argument("--no-reboot", action="store_true", help="do not reboot when kernel arguments changed")
    p.add_argument("--force", action="store_true", help="run even when first boot is marked done")
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    # For tests: the kernel command line and fw_cfg's sysfs directory of a fake machine.
    p.add_argument("--cmdline", default=os.environ.get("PINE_FIRSTBOOT_CMDLINE", "/proc/cmdline"),
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--fw-cfg", default=os.environ.get("PINE_FIRSTBOOT_FW_CFG", "/sys/firmware/qemu_fw_cfg"),
                   help=argparse.SUPPRESS)  # fmt: skip
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log = Log(sys.stderr, quiet=args.quiet, prefix="firstboot")
    return run(args, log)
