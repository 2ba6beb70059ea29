"""``pineinstall disk.qcow2 CONFIG …``: a qcow2 disk image as DEST (by its extension or ``--format
qcow2``), the format ALT Container OS's QEMU instructions use.

The install runs as usual into a sparse raw file in a private directory beside DEST; ``qemu-img
convert -O qcow2`` then writes the qcow2 into the same directory and it is renamed over DEST. A failed
run leaves DEST as it was and no half-written qcow2 (the directory is removed).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any

from pineinstall.install import options
from pineinstall.stages import Log


def wanted(opts: options.Options) -> bool:
    return opts.format == "qcow2" or (opts.format is None and opts.dest.lower().endswith(".qcow2"))


def _refusal(opts: options.Options) -> str | None:
    from pineinstall.image import qcow2

    if os.path.exists(opts.dest) and not os.path.isfile(opts.dest):
        return f"{opts.dest}: a qcow2 DEST must be a file, not a device or directory"
    if not qcow2.available():
        return "a qcow2 DEST needs qemu-img (Debian package qemu-utils), which is not installed"
    return None


def _may_replace(opts: options.Options, stdin: Any) -> bool:
    if opts.yes or opts.dry_run or not os.path.exists(opts.dest) or not os.path.getsize(opts.dest):
        return True
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        return False
    sys.stderr.write(f"{opts.dest} exists and will be replaced. Continue? [y/N] ")
    sys.stderr.flush()
    answer = stdin.readline()
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    return answer.strip().lower() in ("y", "yes")


def install(opts: options.Options, log: Log, stdin: Any, run: Callable[[options.Options], int]) -> int:
    """Run ``run`` with a raw DEST beside ``opts.dest``, then convert and rename over it."""
    from pineinstall.image.progress import sized
    from pineinstall.run import CommandError
    from pineinstall.run import run as run_tool

    why = _refusal(opts)
    if why is not None:
        log.error(f"preflight failed, {opts.dest} untouched: {why}")
        return 1
    if not _may_replace(opts, stdin):
        log.error(f"{opts.dest} exists; not replaced (pass --yes to replace it)")
        return 1
    from pineinstall import staging
    from pineinstall.install import rundir

    folder = os.path.dirname(os.path.abspath(opts.dest))
    prefix = f".{os.path.basename(opts.dest)}."
    if not opts.dry_run:  # what a killed run left: its loop devices over the raw file, then the file
        rundir.release_dead(log)
        staging.sweep(folder, prefix, log)
    staged = staging.new_dir(folder, "qcow2out", prefix=prefix)
    work = staged.path
    try:
        raw, out = os.path.join(work, "disk.raw"), os.path.join(work, "disk.qcow2")
        log.info(f"DEST {opts.dest}: qcow2, installed into the raw file {raw} first")
        rc = run(dataclasses.replace(opts, dest=raw, yes=True))
        if rc != 0 or opts.dry_run:
            return rc
        with log.op(f"converting to qcow2: {opts.dest}"):
            try:
                run_tool(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, out])
            except CommandError as exc:
                log.error(f"install failed, {opts.dest} untouched: qemu-img: {exc.stderr.strip() or exc}")
                return 1
            fd = os.open(out, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(out, opts.dest)
        log.info(f"wrote {opts.dest} (qcow2, {sized(os.path.getsize(opts.dest))})")
        return 0
    finally:
        staged.remove()
