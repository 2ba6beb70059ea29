"""The files stage: groups, users, filesystem nodes, services, then the result record.

Two phases, so that nothing is written before everything that can be checked was checked:

:func:`prepare` (no writes, :mod:`.check`): every resource (``contents``, ``append``) is fetched and verified into
temporary storage; every path is resolved inside the root (two entries resolving to the same place
are an error); owner names are checked against the target's ``/etc/passwd``/``/etc/group`` plus
the accounts this config creates; entries whose place no other entry touches are checked against
what already exists (the refusal cases of Ignition).

:func:`apply_plan` then writes (:mod:`.write`), in Ignition's order: groups, users, nodes (directories, files and
symlinks sorted by the depth of their resolved path, stable; hard links last, in config order),
services, and ``/etc/.pine-result.json`` (0600).

Node semantics are those of Ignition's files stage, with the deliberate differences of
DESIGN.md: links are followed inside the root only; ownership is set before the mode (so special
bits survive); an existing file whose contents already equal the configured result is not a
conflict (re-running an install is safe).
"""

from __future__ import annotations

import time
from typing import Any

from pineinstall.config import model
from pineinstall.resources import Fetcher
from pineinstall.stages import Log, accounts, services
from pineinstall.stages.files.check import prepare
from pineinstall.stages.files.fetch import Fetched, fetch_all
from pineinstall.stages.files.luks_keys import write_luks_keys
from pineinstall.stages.files.nodes import RESULT_PATH, Entry, FilesPlan, Result
from pineinstall.stages.files.write import apply_nodes, load_record, write_record
from pineinstall.stages.plan import Applied
from pineinstall.target import Target

__all__ = [
    "RESULT_PATH",
    "Entry",
    "Fetched",
    "FilesPlan",
    "Result",
    "apply_plan",
    "describe",
    "fetch_all",
    "prepare",
    "run",
]


def describe(config: model.Config, target: Target) -> dict[str, list[Any]]:
    """The dry-run plan: groups, users, nodes (with the host path each resolves to) and units.
    Nothing is fetched or read besides the paths' links."""
    nodes: list[Any] = []
    for kind, entries in (
        ("directory", config.storage.directories),
        ("file", config.storage.files),
        ("link", config.storage.links),
    ):
        for n in entries:
            nodes.append({"kind": kind, "path": n.path, "host": str(target.resolve(n.path))})
    return {
        "groups": [g.name for g in config.passwd.groups],
        "users": [u.name for u in config.passwd.users],
        "nodes": nodes,
        "units": [u.name for u in config.systemd.units],
    }


def apply_plan(plan: FilesPlan, target: Target, log: Log) -> Result:
    start = time.perf_counter()
    result = Result()
    cfg = plan.config
    record = load_record(target)
    if cfg.passwd.groups:
        accounts.apply_groups(cfg.passwd.groups, target, log)
    if cfg.passwd.users:
        accounts.apply_users(cfg.passwd.users, target, log)
    apply_nodes(plan, target, log, result, record)
    if cfg.systemd.units:
        services.apply_units(cfg.systemd.units, target, log)
    if target.init_system == "openrc":
        services.check_openrc(target, log)  # runlevel links whose script is missing: warnings
    with log.op(f"writing result record {RESULT_PATH!r}"):
        result.result_path = write_record(plan, target, result)
    result.seconds = time.perf_counter() - start
    return result


def run(
    config: model.Config,
    target: Target,
    log: Log,
    *,
    fetcher: Fetcher | None = None,
    fetched: Fetched | None = None,
    luks: Applied | None = None,
) -> Result:
    """The whole stage: prepare (fetch, check) then apply; last, the keys of the LUKS volumes the
    disks stage made (``luks``) are kept in the target."""
    own = fetcher is None
    fetcher = fetcher or Fetcher.for_config(config.ignition)
    try:
        with log.stage("files"):
            plan = prepare(config, target, log, fetcher, fetched=fetched)
            try:
                result = apply_plan(plan, target, log)
            finally:
                plan.close()
            if luks is not None:
                write_luks_keys(luks, target, log)
            return result
    finally:
        if own:
            fetcher.close()
