"""The engine: the one path from config bytes to a provisioned target, shaped like Ignition's
``internal/exec/engine.go``.

1. :func:`load` -- parse and check the config (errors end it here, with their places), fetch,
   verify and merge the configs it references (``ignition.config.replace``/``merge``), refuse
   sources this build cannot fetch: a typed :class:`~pineinstall.config.model.Config`.
2. :class:`Engine` -- before the first write, the storage plan is computed (devices read, nothing
   changed) and every file's data fetched and verified; then the stages run in Ignition's order,
   :data:`STAGES`: ``disks`` -> ``mount`` -> ``files`` -> ``kargs`` -> ``umount``.
3. a :class:`Result`: what the files stage did, the target, the bootloader change.

Each stage has a dry-run plan that reads and changes nothing (:func:`dry_run`). ``apply``,
``install``, ``firstboot`` and (through ``install``) ``live-install`` are thin commands over this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

from pineinstall.errors import PineError
from pineinstall.stages import Log
from pineinstall.stages.kargs import Kargs
from pineinstall.target import Target

MAX_REFERENCE_DEPTH = 10
STAGES = ("disks", "mount", "files", "kargs", "umount")


class LoadError(PineError):
    """The config (or one it references) cannot be used; nothing was touched."""


# --- load: check, render, refuse -------------------------------------------------------------------


def check(data: bytes, what: str, log: Log) -> dict[str, Any]:
    """The checked config as a 3.6-shaped dict; its findings logged with their places."""
    from pineinstall.config import check as check_config

    checked = check_config(data)
    for entry in checked.report:
        (log.error if entry.is_error else log.warning)(f"{what}: {entry}")
    if not checked.ok or checked.config is None:
        raise LoadError(f"{what} is not a valid config")
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
        raise LoadError(f"config references nest deeper than {MAX_REFERENCE_DEPTH} levels")
    ign = model.from_dict(cfg).ignition
    own = Fetcher.for_config(ign, base=fetcher)
    try:

        def fetch(ref: model.Resource, what: str) -> dict[str, Any]:
            try:
                check_resource(ref)
                with log.op(f"fetching {what} {shown_url(ref.source or '')}"):
                    data = own.fetch(ref)
            except ResourceError as exc:
                raise LoadError(f"{what}: {exc}") from exc
            child = check(data, what, log)
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


def check_sources(config: Any) -> None:
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
            raise LoadError(f"error at {where}: {exc}", place=where) from exc


def load(data: bytes, log: Log) -> Any:
    """Checked, rendered, typed: the :class:`~pineinstall.config.model.Config` to provision."""
    from pineinstall.config import model

    cfg = check(data, "config", log)
    cfg = render(cfg, log)
    config = model.from_dict(cfg)
    check_sources(config)
    return config


def has_storage(config: Any) -> bool:
    st = config.storage
    return bool(st.disks or st.raid or st.luks or st.filesystems)


# --- the dry run -----------------------------------------------------------------------------------


def dry_run(
    config: Any, target: Target, stdout: TextIO, *, as_json: bool = False, kargs: bool = False
) -> None:
    """Every stage's plan, without fetching or touching anything (the devices are only read):
    storage (disks, mount), then files, then (``kargs``) the kernel arguments."""
    from pineinstall.stages import files
    from pineinstall.stages import kargs as kargs_stage

    storage_plan = None
    if has_storage(config):
        from pineinstall.stages import disks

        storage_plan = disks.plan(config.storage)
    plan = files.describe(config, target)
    if as_json:
        out: dict[str, Any] = dict(plan)
        if storage_plan is not None:
            out["storage"] = storage_plan.to_dict()
        json.dump(out, stdout, indent=2)
        stdout.write("\n")
        return
    if storage_plan is not None:
        from pineinstall.stages.plan import render_text

        stdout.write(render_text(storage_plan))
    for key in ("groups", "users", "units"):
        for item in plan[key]:
            stdout.write(f"{key[:-1]}: {item}\n")
    for node in plan["nodes"]:
        stdout.write(f"{node['kind']}: {node['path']} -> {node['host']}\n")
    if kargs:
        for line in kargs_stage.plan_lines(config):
            stdout.write(line + "\n")


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Result:
    """What a run did: the files stage's result, the target it provisioned, and the bootloader
    change of the kargs stage (a :class:`pineinstall.boot.Change`; None when nothing was asked)."""

    files: Any
    target: Target
    kargs: Any = None


class Engine:
    """One provisioning run of a loaded config.

    ``kargs`` says where the kargs stage finds the bootloader (None: the stage does not run, as
    for ``apply``); ``fetch_attempts`` overrides the fetcher's attempts. :meth:`prepare` (or
    :meth:`plan_storage` and :meth:`fetch`) does everything that can fail before a write;
    :meth:`run` then runs the stages. :meth:`close` drops what was fetched.
    """

    def __init__(
        self, config: Any, log: Log, *, kargs: Kargs | None = None, fetch_attempts: int | None = None
    ) -> None:
        from pineinstall.resources import Fetcher

        self.config = config
        self.log = log
        self.kargs = kargs
        extra: dict[str, Any] = {} if fetch_attempts is None else {"max_attempts": fetch_attempts}
        self.fetcher = Fetcher.for_config(config.ignition, log=log.info, **extra)
        self.storage: Any = None  # the StoragePlan, when the config has storage
        self.fetched: Any = None  # every file's data, fetched ahead
        self.applied: Any = None  # what the disks stage made (the LUKS keys)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fetched is not None:
            self.fetched.close()
            self.fetched = None
        self.fetcher.close()

    # --- before the first write --------------------------------------------------------------------

    def plan_storage(self, *, dry_run: bool = False) -> Any:
        """The disks stage's plan (devices read, nothing changed), its warnings logged; None when
        the config has no storage."""
        if not has_storage(self.config):
            return None
        from pineinstall.stages import disks

        self.storage = disks.plan(self.config.storage, disks.Env(fetch=self.fetcher.fetch, dry_run=dry_run))
        for warning in self.storage.warnings:
            self.log.warning(warning)
        return self.storage

    def fetch(self) -> None:
        """Every file's data fetched and verified; nothing is written anywhere."""
        from pineinstall.stages import files

        self.fetched = files.fetch_all(self.config, self.fetcher, self.log)

    def prepare(self) -> None:
        with self.log.stage("disks"):
            self.plan_storage()
        with self.log.stage("fetch"):
            self.fetch()

    # --- the stages --------------------------------------------------------------------------------

    def disks(self) -> None:
        from pineinstall.stages import disks

        with self.log.stage("disks"):
            self.applied = disks.apply(self.storage, self.log)

    def mount(self, root: str | Target) -> None:
        from pineinstall.stages import mount

        with self.log.stage("mount"):
            mount.mount_all(self.storage.filesystems, root, self.log)

    def files(self, target: Target) -> Any:
        from pineinstall.stages import files

        fetched, self.fetched = self.fetched, None  # the files stage owns (and closes) it now
        return files.run(
            self.config, target, self.log, fetcher=self.fetcher, fetched=fetched, luks=self.applied
        )

    def kargs_stage(self, target: Target) -> Any:
        from pineinstall.stages import kargs

        return None if self.kargs is None else kargs.run(self.config, self.kargs, target, self.log)

    def umount(self, root: str | Target) -> None:
        from pineinstall.stages import mount

        with self.log.stage("umount"):
            mount.umount_all(self.storage.filesystems, root, self.log)

    def _opened(self, target: Target) -> Target:
        self.log.info(f"target {target.root} ({target.kind}, init: {target.init_system or 'unknown'})")
        return target

    def run(self, root: str | Target, *, after_files: Any = None, storage_done: bool = False) -> Result:
        """disks -> mount -> files -> kargs -> umount on ``root``: a directory (opened as a target
        once its filesystems are mounted: one of them may be its /) or an opened :class:`Target`.
        ``after_files(target)`` runs after the files stage, before umount. ``storage_done``: the
        caller ran the disks and mount stages itself (and unmounts)."""
        from pineinstall.target import open_target

        if isinstance(root, Target):
            self._opened(root)
        storage = self.storage is not None and not storage_done
        if storage:
            self.disks()
            self.mount(root)
        try:
            target = root if isinstance(root, Target) else self._opened(open_target(root))
            result = Result(self.files(target), target)
            if after_files is not None:
                after_files(target)
            result.kargs = self.kargs_stage(target)
        finally:
            if storage:
                self.umount(root)
        return result
