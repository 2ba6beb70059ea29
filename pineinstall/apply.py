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

from pineinstall.stages import Log, StageError

MAX_REFERENCE_DEPTH = 10


class ApplyError(Exception):
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
        target = open_target(root)
        log.info(f"target {target.root} ({target.kind}, init: {target.init_system or 'unknown'})")
        if dry_run:
            return _dry_run(config, target, as_json, stdout)
        from pineinstall.resources import Fetcher
        from pineinstall.stages import files

        fetcher = Fetcher.for_config(config.ignition, log=log.info)
        try:
            result = files.run(config, target, log, fetcher=fetcher)
        finally:
            fetcher.close()
    except (ApplyError, StageError, ResourceError, TargetError, CommandError) as exc:
        log.error(f"apply failed: {exc}")
        return 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(result.created.items())) or "nothing new"
    log.info(f"apply finished in {result.seconds:.2f} s: {summary}; {result.unchanged} already in place")
    if as_json:
        json.dump(
            {
                "root": str(target.root),
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


def _dry_run(config: Any, target: Any, as_json: bool, stdout: Any) -> int:
    """The plan, without fetching or touching anything."""
    plan: dict[str, list[Any]] = {"groups": [], "users": [], "nodes": [], "units": []}
    plan["groups"] = [g.name for g in config.passwd.groups]
    plan["users"] = [u.name for u in config.passwd.users]
    for kind, nodes in (
        ("directory", config.storage.directories),
        ("file", config.storage.files),
        ("link", config.storage.links),
    ):
        for n in nodes:
            plan["nodes"].append({"kind": kind, "path": n.path, "host": str(target.resolve(n.path))})
    plan["units"] = [u.name for u in config.systemd.units]
    if as_json:
        json.dump(plan, stdout, indent=2)
        stdout.write("\n")
    else:
        for key, items in plan.items():
            for item in items:
                stdout.write(
                    f"{key[:-1]}: {item}\n"
                    if not isinstance(item, dict)
                    else (f"{item['kind']}: {item['path']} -> {item['host']}\n")
                )
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
