"""``pineinstall apply --root DIR [--dry-run] [--json] CONFIG|-``: provision a root directory.

Order: read and check the config (errors end it here, with their places); fetch, verify and merge
the configs it references (``ignition.config.replace``/``merge``); refuse sources this build
cannot fetch; open the target; then the files stage, which itself fetches and checks everything
before its first write. Progress goes to stderr; with ``--json`` the result goes to stdout.
Exit status: 0 done, 1 failed (nothing written if the failure was found while checking), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pineinstall.errors import PineError
from pineinstall.stages import Log, StageError

MAX_REFERENCE_DEPTH = 10


class ApplyError(PineError):
    """The config (or one it references) cannot be used."""


def _check(data: bytes, what: str, log: Log) -> dict[str, Any]:
    from pineinstall.config import check

    checked = check(data)
    for entry in checked.report:
        (log.error if entry.is_error else log.warning)(f"{what}: {entry}")
    if not checked.ok or checked.config is None:
        raise ApplyError(f"{what} is not a valid config")
    return checked.config


def render(cfg: dict[str, Any], log: Log, *, fetcher: Any = None, depth: int = 0) -> dict[str, Any]:
    """The config with its references resolved as Ignition does: a ``replace`` config takes the
    place of this one; ``merge`` configs are applied on top, in order. Each referenced config is
    fetched with this level's network options, verified, checked, and rendered in turn."""
    from pineinstall.config import merge as merging
    from pineinstall.config import model
    from pineinstall.resources import Fetcher, ResourceError, check_resource, shown_url

    refs = (cfg.get("ignition") or {}).get("config") or {}
    replace = refs.get("replace") or {}
    merges = refs.get("merge") or []
    if not (replace.get("source") or any(m.get("source") for m in merges)):
        return cfg
    if depth >= MAX_REFERENCE_DEPTH:
        raise ApplyError(f"config references nest deeper than {MAX_REFERENCE_DEPTH} levels")
    ign = model.from_dict(cfg).ignition
    own = Fetcher.for_config(ign, base=fetcher)
    try:

        def fetch(ref: model.Resource, what: str) -> dict[str, Any]:
            try:
                check_resource(ref)
                with log.op(f"fetching {what} {shown_url(ref.source or '')}"):
                    data = own.fetch(ref)
            except ResourceError as exc:
                raise ApplyError(f"{what}: {exc}") from exc
            child = _check(data, what, log)
            return render(child, log, fetcher=own, depth=depth + 1)

        if ign.config.replace is not None and ign.config.replace.source:
            return fetch(ign.config.replace, "replacement config")
        result = cfg
        for i, ref in enumerate(ign.config.merge):
            if ref.source:
                result = merging.merge(result, fetch(ref, f"merged config {i}"))
        return result
    finally:
        own.close()


def _check_sources(config: Any) -> None:
    """Schemes this build cannot fetch are refused before anything is done."""
    from pineinstall.resources import ResourceError, check_resource

    resources = [
        *((f"$.storage.files.{i}.contents", f.contents) for i, f in enumerate(config.storage.files)),
        *(
            (f"$.storage.files.{i}.append.{j}", a)
            for i, f in enumerate(config.storage.files)
            for j, a in enumerate(f.append)
        ),
        *(
            (f"$.ignition.security.tls.certificateAuthorities.{i}", c)
            for i, c in enumerate(config.ignition.security.tls.certificate_authorities)
        ),
        *((f"$.storage.luks.{i}.keyFile", lk.key_file) for i, lk in enumerate(config.storage.luks)),
    ]
    for where, res in resources:
        try:
            check_resource(res)
        except ResourceError as exc:
            raise ApplyError(f"error at {where}: {exc}") from exc


def load(data: bytes, log: Log) -> Any:
    """Checked, rendered, typed: the :class:`~pineinstall.config.model.Config` to apply."""
    from pineinstall.config import model

    cfg = _check(data, "config", log)
    cfg = render(cfg, log)
    config = model.from_dict(cfg)
    _check_sources(config)
    return config


def run_apply(
    root: str,
    source: str,
    *,
    dry_run: bool = False,
    as_json: bool = False,
    log: Log | None = None,
    stdin: Any = None,
    stdout: Any = None,
) -> int:
    """Apply the config at ``source`` (a path, or ``-`` for stdin) to the root ``root``."""
    from pineinstall.resources import ResourceError
    from pineinstall.run import CommandError
    from pineinstall.target import TargetError, open_target

    log = log or Log()
    stdout = stdout or sys.stdout
    try:
        if source == "-":
            data = (stdin or sys.stdin.buffer).read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as exc:
        log.error(f"cannot read {source}: {exc.strerror}")
        return 1
    try:
        config = load(data, log)
        if dry_run:
            return _dry_run(config, open_target(root), as_json, stdout, log)
        result, target = _provision(config, root, log)
    except (ApplyError, StageError, ResourceError, TargetError, CommandError, OSError) as exc:
        log.error(f"apply failed: {exc}")
        return 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(result.created.items())) or "nothing new"
    target_root = target.root if target is not None else root
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


def _has_storage(config: Any) -> bool:
    st = config.storage
    return bool(st.disks or st.raid or st.luks or st.filesystems)


def _provision(config: Any, root: str, log: Log) -> tuple[Any, Any]:
    """Ignition's stage order: disks -> mount -> files -> umount. Before the first write, the
    storage plan is computed (devices read, nothing changed) and every file's data is fetched and
    verified; the target is opened once its filesystems are mounted (one of them may be its /)."""
    from pineinstall.resources import Fetcher
    from pineinstall.stages import files
    from pineinstall.target import open_target

    fetcher = Fetcher.for_config(config.ignition, log=log.info)
    fetched = None
    try:
        storage_plan = None
        if _has_storage(config):
            from pineinstall.stages import disks

            with log.stage("disks"):
                storage_plan = disks.plan(config.storage, disks.Env(fetch=fetcher.fetch))
                for warning in storage_plan.warnings:
                    log.warning(warning)
        with log.stage("fetch"):
            fetched = files.fetch_all(config, fetcher, log)
        if storage_plan is None:
            target = open_target(root)
            log.info(f"target {target.root} ({target.kind}, init: {target.init_system or 'unknown'})")
            return files.run(config, target, log, fetcher=fetcher, fetched=fetched), target
        return _with_storage(config, storage_plan, root, log, fetcher, fetched), None
    finally:
        if fetched is not None:
            fetched.close()
        fetcher.close()


def _with_storage(config: Any, storage_plan: Any, root: str, log: Log, fetcher: Any, fetched: Any) -> Any:
    from pineinstall.stages import disks, files, mount
    from pineinstall.target import open_target

    with log.stage("disks"):
        applied = disks.apply(storage_plan, log)
    with log.stage("mount"):
        mount.mount_all(storage_plan.filesystems, root, log)
    try:
        target = open_target(root)
        log.info(f"target {target.root} ({target.kind}, init: {target.init_system or 'unknown'})")
        result = files.run(config, target, log, fetcher=fetcher, fetched=fetched)
        with log.stage("files"):
            disks.write_luks_keys(applied, target, log)
        return result
    finally:
        with log.stage("umount"):
            mount.umount_all(storage_plan.filesystems, root, log)


def _dry_run(config: Any, target: Any, as_json: bool, stdout: Any, log: Log) -> int:
    """The plan, without fetching or touching anything (the devices are only read)."""
    storage_plan = None
    if _has_storage(config):
        from pineinstall.stages import disks

        storage_plan = disks.plan(config.storage)
    plan: dict[str, list[Any]] = {
        "groups": [g.name for g in config.passwd.groups],
        "users": [u.name for u in config.passwd.users],
        "nodes": [],
        "units": [u.name for u in config.systemd.units],
    }
    for kind, nodes in (
        ("directory", config.storage.directories),
        ("file", config.storage.files),
        ("link", config.storage.links),
    ):
        for n in nodes:
            plan["nodes"].append({"kind": kind, "path": n.path, "host": str(target.resolve(n.path))})
    if as_json:
        out: dict[str, Any] = dict(plan)
        if storage_plan is not None:
            out["storage"] = storage_plan.to_dict()
        json.dump(out, stdout, indent=2)
        stdout.write("\n")
        return 0
    if storage_plan is not None:
        from pineinstall.stages.plan import render_text

        stdout.write(render_text(storage_plan))
    for key in ("groups", "users", "units"):
        for item in plan[key]:
            stdout.write(f"{key[:-1]}: {item}\n")
    for node in plan["nodes"]:
        stdout.write(f"{node['kind']}: {node['path']} -> {node['host']}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall apply",
        description="Provision a root directory (plain or OSTree sysroot) from an Ignition config.",
    )
    p.add_argument("--root", required=True, help="the root directory (or OSTree sysroot) to provision")
    p.add_argument("--dry-run", action="store_true", help="print the plan; fetch and touch nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    p.add_argument("config", help="the config file, or - for stdin")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log = Log(quiet=args.quiet)
    return run_apply(args.root, args.config, dry_run=args.dry_run, as_json=args.json, log=log)
