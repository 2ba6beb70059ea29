"""The first-boot service in a target: the systemd unit or the OpenRC init script (shipped as package
data in ``units/``), written and enabled offline. Used by ``pineinstall install --stash-config`` and
by the test images.

systemd: ``/etc/systemd/system/pine-firstboot.service`` (0644) enabled into ``multi-user.target``;
OpenRC: ``/etc/init.d/pine-firstboot`` (0755) linked into the ``boot`` runlevel (it runs before the
network and the SSH server, which start with what it wrote). The command they
run is the target's own ``pineinstall`` (looked for on the usual PATH); without one the service
would fail at boot, which is a warning here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pineinstall.stages import StageError

UNIT = "pine-firstboot.service"
OPENRC = "pine-firstboot"
MARKER = "/etc/.pine-firstboot-done"
OPENRC_RUNLEVEL = "boot"  # before networking (boot) and the SSH server (default)
DEFAULT_EXEC = "/usr/bin/pineinstall"  # what the shipped files name; replaced by what the target has
SEARCH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
UNITS_DIR = Path(__file__).resolve().parent / "units"
FILES = {"systemd": "pine-firstboot.service", "openrc": "pine-firstboot.openrc"}


class FirstbootServiceError(StageError):
    """The first-boot service cannot be installed in the target."""


def template(kind: str) -> str:
    return (UNITS_DIR / FILES[kind]).read_text(encoding="utf-8")


def render(kind: str, exe: str = DEFAULT_EXEC) -> str:
    """The unit (``systemd``) or init script (``openrc``) running ``exe firstboot``."""
    text = template(kind)
    if exe != DEFAULT_EXEC:
        text = text.replace(f"{DEFAULT_EXEC} firstboot", f"{exe} firstboot")
    return text


def find_pineinstall(target: Any) -> str | None:
    """The path (inside the target) of an executable ``pineinstall`` on the usual PATH, or None."""
    for d in SEARCH:
        path = f"{d}/pineinstall"
        try:
            st = os.stat(target.resolve_all(path))
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return path
    return None


def install_unit(target: Any, log: Any) -> dict[str, Any]:
    """Write and enable the first-boot service matching the target's init; what was done, as a dict."""
    from pineinstall.services import openrc, systemd

    init = target.init_system or "systemd"  # a bare root: systemd, as the services stage assumes
    exe = find_pineinstall(target)
    if exe is None:
        log.warning(
            f"the target has no pineinstall (looked in {', '.join(SEARCH)}): the first-boot service "
            f"will fail until {DEFAULT_EXEC} exists"
        )
    info: dict[str, Any] = {"init": init, "exec": exe or DEFAULT_EXEC}
    try:
        if init == "openrc":
            path = f"{openrc.INIT_D}/{OPENRC}"
            with log.op(f"installing the first-boot service {path!r} (OpenRC, runlevel {OPENRC_RUNLEVEL})"):
                systemd.write_file(target, path, render("openrc", info["exec"]), 0o755)
                openrc.enable(target, OPENRC, OPENRC_RUNLEVEL)
            info.update(service=path, links=[f"{openrc.RUNLEVELS}/{OPENRC_RUNLEVEL}/{OPENRC}"])
        else:
            path = f"{systemd.CONFIG_DIR}/{UNIT}"
            with log.op(f"installing the first-boot unit {path!r} (systemd)"):
                systemd.write_file(target, path, render("systemd", info["exec"]))
                changes = systemd.enable(target, UNIT)
            info.update(service=path, links=[c.split(" -> ")[0] for c in changes.created])
    except (systemd.SystemdError, openrc.OpenRCError, OSError) as exc:
        raise FirstbootServiceError(f"cannot install the first-boot service: {exc}") from exc
    return info
