"""Services of the files stage: ``systemd.units`` written and enabled offline.

Order, so that the result does not depend on the order of units in the config:

1. every unit's drop-ins (``/etc/systemd/system/NAME.d/DROPIN``, those with contents, ``""``
   included) and its file (``/etc/systemd/system/NAME``, only when contents are non-empty), 0644,
   as Ignition writes them;
2. ``mask: true`` replaces ``/etc/systemd/system/NAME`` with a link to ``/dev/null`` (the unit file
   just written goes, as with Ignition); ``mask: false`` removes such a link and nothing else;
3. ``enabled: true/false`` creates/removes the unit's ``[Install]`` links, as
   ``systemctl --root enable/disable`` would — Ignition writes a preset line instead, which
   systemd turns into the same links on first boot; Pine also boots without presets. A masked unit
   is not enabled (systemd's preset skips it too); a unit with no ``[Install]`` or that exists
   nowhere in the target (nor an ``Also=`` unit that is masked or exists nowhere) is a warning, not an error
   (Ignition's preset would be silently ignored; its files stage succeeds).

On an OpenRC target (no systemd, ``/sbin/openrc``), any ``systemd.units`` entry is an error that
says so. Pine's OpenRC services come as plain files and links (``/etc/init.d/NAME`` 0755,
``/etc/runlevels/LEVEL/NAME``) that the files stage writes; after the nodes, :func:`check_openrc`
warns about runlevel links whose script is missing or not executable.
"""

from __future__ import annotations

from typing import Any

from pineinstall.services import openrc, systemd
from pineinstall.stages import Log, StageError
from pineinstall.target import Target

__all__ = ["apply_units", "check_openrc"]


def apply_units(units: tuple[Any, ...], target: Target, log: Log) -> None:
    """Write, mask/unmask and enable/disable ``systemd.units`` in the target."""
    if not units:
        return
    if target.init_system == "openrc":
        names = ", ".join(u.name for u in units)
        raise StageError(
            f"systemd units are configured ({names}) but the target runs OpenRC (no systemd, /sbin/openrc "
            "present); ship an init script /etc/init.d/NAME and a link /etc/runlevels/LEVEL/NAME instead "
            "(the pine variant's openrc.services)"
        )
    try:
        for u in units:
            systemd.check_name(u.name)
            for d in u.dropins:
                if "/" in d.name or d.name in ("", ".", ".."):
                    raise StageError(f"unit {u.name!r}: invalid drop-in name {d.name!r}")
        for u in units:
            _write(u, target, log)
        for u in units:
            if u.mask is True:
                with log.op(f"masking unit {u.name!r}"):
                    systemd.mask(target, u.name)
            elif u.mask is False and systemd.is_masked(target, u.name):
                with log.op(f"unmasking unit {u.name!r}"):
                    systemd.unmask(target, u.name)
        for u in units:
            if u.enabled is None:
                continue
            if u.enabled and systemd.is_masked(target, u.name):
                log.warning(f"unit {u.name!r} is masked; not enabling it")
                continue
            verb = "enabling" if u.enabled else "disabling"
            with log.op(f"{verb} unit {u.name!r}"):
                if u.enabled:
                    if systemd.find_unit(target, u.name) is None:
                        log.warning(f"unit {u.name!r} does not exist in the target; not enabling it")
                        continue
                    changes = systemd.enable(target, u.name)
                else:
                    changes = systemd.disable(target, u.name)
                for line in changes.created:
                    log.info(f"created symlink {line}")
                for line in changes.removed:
                    log.info(f"removed symlink {line}")
                for w in changes.warnings:
                    log.warning(w)
    except systemd.SystemdError as exc:
        raise StageError(str(exc)) from exc
    except OSError as exc:
        raise StageError(f"{exc.strerror or exc}: {exc.filename or ''}") from exc


def _write(u: Any, target: Target, log: Log) -> None:
    for d in u.dropins:
        if d.contents is None:
            continue
        path = f"{systemd.CONFIG_DIR}/{u.name}.d/{d.name}"
        with log.op(f"writing systemd drop-in {d.name!r} at {path!r}"):
            systemd.write_file(target, path, d.contents)
    if u.contents:
        path = f"{systemd.CONFIG_DIR}/{u.name}"
        with log.op(f"writing unit {u.name!r} at {path!r}"):
            systemd.write_file(target, path, u.contents)


def check_openrc(target: Target, log: Log) -> list[str]:
    """Warn about OpenRC runlevel links that would fail at boot; returns the problems."""
    if target.init_system != "openrc":
        return []
    problems = openrc.check(target)
    for p in problems:
        log.warning(p)
    return problems
