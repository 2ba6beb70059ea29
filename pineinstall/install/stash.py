"""What the installer leaves in the target besides the config's own files: the stashed config for a
first-boot run and the first-boot service that reads it (``--stash-config``), and
(``--copy-network``) this host's network configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pineinstall.atomicfile import replace_file
from pineinstall.providers.stash import STASH_DIR, STASH_FILE
from pineinstall.stages import Log

# Network configuration carried by --copy-network: (directory under the host root, file patterns).
NETWORK_SOURCES = (
    ("etc/NetworkManager/system-connections", ("*",)),
    ("etc/systemd/network", ("*.network", "*.netdev", "*.link")),
    ("etc/network", ("interfaces",)),
    ("etc/network/interfaces.d", ("*",)),
)


def stash_config(boot_root: str | os.PathLike[str], data: bytes, log: Log) -> Path:
    """``/boot/ignition/config.ign`` on the boot filesystem (directory 0700, file 0600): secrets in a
    config must not be world-readable."""
    directory = Path(boot_root) / STASH_DIR
    with log.op(f"stashing the config at /{STASH_DIR}/{STASH_FILE}"):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / STASH_FILE
        replace_file(path, data, 0o600)
    return path


def enable_firstboot(target: Any, log: Log) -> dict[str, Any]:
    """The first-boot service (systemd unit or OpenRC script, by the target's init) installed and
    enabled, so that the stashed config is applied on the first boot; warns when the target has no
    ``pineinstall`` to run it."""
    from pineinstall.firstboot.service import install_unit

    return install_unit(target, log)


def network_files(source_root: str) -> list[tuple[Path, str]]:
    """(host file, path in the target) of every network configuration file found on this host."""
    found = []
    root = Path(source_root)
    for rel, patterns in NETWORK_SOURCES:
        d = root / rel
        if not d.is_dir():
            continue
        for pattern in patterns:
            for f in sorted(d.glob(pattern)):
                if f.is_file() and not f.is_symlink():
                    found.append((f, "/" + f"{rel}/{f.name}"))
    return found


def copy_network(source_root: str, target: Any, log: Log) -> list[str]:
    """Copy the host's network configuration into the target's /etc (modes kept: NetworkManager
    keyfiles hold secrets and are 0600)."""
    copied = []
    for src, inside in network_files(source_root):
        dst = target.resolve(inside)
        with log.op(f"copying network configuration {inside}"):
            dst.parent.mkdir(parents=True, exist_ok=True)
            mode = src.stat().st_mode & 0o7777
            data = src.read_bytes()
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
            try:
                os.fchmod(fd, mode)
                os.write(fd, data)
            finally:
                os.close(fd)
        copied.append(inside)
    if not copied:
        log.warning(f"--copy-network: no network configuration found under {source_root}")
    return copied
