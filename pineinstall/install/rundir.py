"""A run's own directory, so that the next run can release what a killed one left behind.

Every install keeps its mount points and scratch files in ``RUNS/<pid>/`` (on the tmpfs ``/run``:
it is gone after a reboot, as the loop devices and mounts are) and records DEST there before it
attaches or mounts anything. A run that starts looks for directories of runs that are no longer
alive and, for each: unmounts what is mounted under it (deepest first), detaches the loop devices
over its DEST or over one of its files (partition loops, the scratch table) that nothing else holds,
and removes it. A live run's directory is never touched, so installs to other disks may run at the
same time. ``kill -9`` cannot be caught: this is how a rerun needs no manual cleanup.
``PINE_RUN_DIR`` moves ``RUNS`` (a test's killed runs are then released by its own reruns only, not
by other installs going on on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from pineinstall.block import busy, sysfs
from pineinstall.install.dest import detach_loop
from pineinstall.run import pid_alive, run
from pineinstall.stages import Log

RUNS = os.environ.get("PINE_RUN_DIR") or "/run/pineinstall"
DEST_FILE = "dest"  # the realpath of the run's DEST
USERS_TIMEOUT = 120.0  # seconds a killed run's tools get to finish


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below ``directory``, deepest first."""
    prefix = directory.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            points = [busy.unescape_mount_field(line.split()[4]) for line in f if len(line.split()) > 4]
    except OSError:
        return []
    return sorted({p for p in points if p.startswith(prefix) or p == directory}, key=len, reverse=True)


def loops_over(paths: set[str], under: str | None = None) -> list[str]:
    """Loop devices (``/dev/loopN``) whose backing file is one of ``paths`` or lies below ``under``."""
    out = []
    for name in sysfs.all_names():
        if not name.startswith("loop") or sysfs.is_partition(name):
            continue
        backing = sysfs.attribute(name, "loop/backing_file")
        if not backing:
            continue
        real = os.path.realpath(backing.removesuffix(" (deleted)"))
        if real in paths or (under is not None and real.startswith(under.rstrip("/") + "/")):
            out.append(f"/dev/{name}")
    return out


def _users(paths: set[str]) -> list[int]:
    """Processes (other than this one) with one of ``paths`` open."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            fds = f"/proc/{entry}/fd"
            if any(os.readlink(f"{fds}/{fd}") in paths for fd in os.listdir(fds)):
                pids.append(int(entry))
    return pids


def wait_for_users(paths: set[str], timeout: float = USERS_TIMEOUT) -> None:
    """A killed run's tools (e2fsck, resize2fs, mount) outlive it and still write through its loop
    devices: they are let finish before the devices go (they always end on their own)."""
    deadline = time.monotonic() + timeout
    while paths and _users(paths) and time.monotonic() < deadline:
        time.sleep(0.1)


def release(directory: str, log: Log | None = None) -> None:
    """Unmount, detach and remove what the run of ``directory`` left (its process is gone)."""
    try:
        with open(os.path.join(directory, DEST_FILE), encoding="utf-8") as f:
            dest = f.read().strip()
    except OSError:
        dest = ""
    for point in mounts_under(directory):
        if run(["umount", point], check=False).returncode != 0:
            run(["umount", "-l", point], check=False)  # busy: detached now, freed when released
        if log is not None:
            log.info(f"unmounted {point}, left by an earlier run")
    loops = loops_over({dest} if dest else set(), under=directory)
    wait_for_users(set(loops))
    for dev in loops:
        if not busy.reasons(dev):
            detach_loop(dev)
            if log is not None:
                log.info(f"detached {dev}, left by an earlier run")
    shutil.rmtree(directory, ignore_errors=True)


def release_dead(log: Log | None = None) -> None:
    """Release every run directory whose process is no longer alive."""
    try:
        names = os.listdir(RUNS)
    except OSError:
        return
    for name in names:
        if name.isdigit() and (int(name) == os.getpid() or not pid_alive(int(name))):
            release(os.path.join(RUNS, name), log)


class RunDir:
    """This run's directory: created with DEST recorded in it, released by :meth:`close`."""

    def __init__(self, dest: str) -> None:
        os.makedirs(RUNS, mode=0o700, exist_ok=True)
        self.path = os.path.join(RUNS, str(os.getpid()))
        if os.path.exists(self.path):  # a dead run had this pid
            release(self.path)
        os.mkdir(self.path, 0o700)
        with open(os.path.join(self.path, DEST_FILE), "w", encoding="utf-8") as f:
            f.write(os.path.realpath(dest) + "\n")

    def subdir(self, name: str) -> str:
        path = os.path.join(self.path, name)
        os.makedirs(path, exist_ok=True)
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError):
            release(self.path)
