"""``pineinstall apply --root DIR [--dry-run] [--json] CONFIG|-``: provision a root directory.

CONFIG is read as ``install`` reads it (:mod:`pineinstall.configsrc`): Ignition JSON, or YAML transpiled first.

A thin command over :mod:`pineinstall.engine`: load the config (checked, its references fetched
and merged, unfetchable sources refused: errors end it here, with their places), plan the storage
and fetch every file before the first write, then the stages disks -> mount -> files -> umount
(no kargs: a root directory has no bootloader of its own to edit). Progress goes to stderr; with ``--json`` the result goes to stdout.
Exit status: 0 done, 1 failed (nothing written if the failure was found while checking), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pineinstall import configsrc, engine
from pineinstall.errors import PineError
from pineinstall.stages import Log


def run_apply(
    root: str,
    source: str,
    *,
    dry_run: bool = False,
    as_json: bool = False,
    log: Log | None = None,
    stdin: Any = None,
    stdout: Any = None,
    files_dir: str | None = None,
) -> int:
    """Apply the config at ``source`` (a path, or ``-`` for stdin) to the root ``root``."""
    from pineinstall.target import open_target

    log = log or Log()
    stdout = stdout or sys.stdout
    try:
        _, config = configsrc.load(source, log, stdin, files_dir)
        if dry_run:
            engine.dry_run(config, open_target(root), stdout, as_json=as_json)
            return 0
        check_target(config, root)
        with engine.Engine(config, log) as run:
            run.prepare()
            done = run.run(root)
    except (PineError, OSError) as exc:
        log.error(f"apply failed: {exc}")
        return 1
    result = done.files
    summary = ", ".join(f"{n} {k}" for k, n in sorted(result.created.items())) or "nothing new"
    # with storage, the root as given (its target was opened on the filesystems mounted there)
    target_root = root if run.storage is not None else done.target.root
    log.info(f"apply finished in {result.seconds:.2f} s: {summary}; {result.unchanged} already in place")
    if as_json:
        json.dump(
            {
                "root": str(target_root),
                "created": result.created,
                "unchanged": result.unchanged,
                "files": result.files,
                "result": str(result.result_path),
            },
            stdout,
            indent=2,
            sort_keys=True,
        )
        stdout.write("\n")
    return 0


def check_target(config: Any, root: str) -> None:
    """The config's account names against DIR before the first write, unless the config's storage
    mounts the root itself (DIR is then not yet the target: the files stage checks them)."""
    from pineinstall.target import open_target, preflight

    if any(fs.path and fs.path.rstrip("/") == "" for fs in config.storage.filesystems):
        return
    if preflight.needs_target(config):
        preflight.check(config, open_target(root))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall apply",
        description="Provision a root directory (plain or OSTree sysroot) from an Ignition config"
        " (or pine/fcos YAML, transpiled first).",
    )
    p.add_argument("--root", required=True, help="the root directory (or OSTree sysroot) to provision")
    p.add_argument("--dry-run", action="store_true", help="print the plan; fetch and touch nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    p.add_argument("config", help="the config file (Ignition JSON or pine/fcos YAML), or - for stdin")
    p.add_argument("--files-dir", metavar="DIR", help="a YAML config's local: files are read from DIR (default: the config's own directory)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log = Log(quiet=args.quiet)
    return run_apply(
        args.root, args.config, dry_run=args.dry_run, as_json=args.json, log=log, files_dir=args.files_dir
    )
