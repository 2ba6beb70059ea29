"""The LUKS keys the disks stage made, kept in the target (part of the files stage, as in Ignition):
``/etc/luks/NAME`` (0600, directory 0700) and an ``/etc/crypttab`` line for each volume."""

from __future__ import annotations

import os

from pineinstall.stages import Log
from pineinstall.stages.plan import Applied, LuksKey
from pineinstall.target import Target, as_target

LUKS_KEY_DIR = "/etc/luks"


def crypttab_line(key: LuksKey) -> str:
    options = "luks" + (",discard" if key.discard else "")
    keyfile = "none" if key.clevis else f"{LUKS_KEY_DIR}/{key.name}"
    return f"{key.name} UUID={key.uuid} {keyfile} {options}"


def write_luks_keys(applied: Applied, root: Target | str | os.PathLike[str], log: Log) -> None:
    """Keep each LUKS key at ``/etc/luks/NAME`` (0600, directory 0700) in the target root and give
    it an ``/etc/crypttab`` line. Called after the target's filesystems are mounted."""
    if not applied.luks:
        return
    etc = as_target(root).resolve_all("/etc")  # an OSTree deployment's etc, or the plain root's
    keydir = etc / "luks"
    keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keydir, 0o700)
    crypttab = etc / "crypttab"
    lines = crypttab.read_text().splitlines() if crypttab.exists() else []
    for k in applied.luks:
        if not k.clevis:
            target = keydir / k.name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(k.key)
            os.chmod(target, 0o600)
        lines = [ln for ln in lines if ln.split()[:1] != [k.name]]
        lines.append(crypttab_line(k))
        log.info(f"LUKS volume {k.name}: key kept at {LUKS_KEY_DIR}/{k.name}, crypttab entry written")
    crypttab.write_text("\n".join(lines) + "\n")
