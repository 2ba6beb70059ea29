"""The files stage's first phase, :func:`prepare` (no writes): every path resolved inside the root
(two entries resolving to the same place are an error), every file's data fetched, owner names
checked against the target's accounts plus those this config creates, and the entries whose place
no other entry touches checked against what already exists (Ignition's refusal cases)."""

from __future__ import annotations

import hashlib
import stat
from typing import Any

from pineinstall.config import model
from pineinstall.resources import Fetcher
from pineinstall.stages import Log, StageError
from pineinstall.stages.files.fetch import Fetched, fetch_one
from pineinstall.stages.files.nodes import (
    ACCOUNT_FILES,
    MAX_HOPS_IN_CONFIG,
    RESULT_PATH,
    Entry,
    FilesPlan,
    OwnerIds,
    hard_target,
    in_creation_order,
    lstat,
    refusal,
)
from pineinstall.target import Target, TargetError


def prepare(
    config: model.Config, target: Target, log: Log, fetcher: Fetcher, *, fetched: Fetched | None = None
) -> FilesPlan:
    """Everything that can be checked, checked; every resource fetched (unless ``fetched`` holds
    it already). Writes nothing."""
    plan = FilesPlan(config)
    try:
        with target.frozen():
            _collect(plan, target, log, fetcher, fetched)
        _check_owners(plan, target)
        _check_units(config, target)
        _precheck_conflicts(plan, target)
    except BaseException:
        plan.close()
        raise
    # a digest of the whole config, to recognise a re-run of the same config
    plan.config_hash = hashlib.sha256(repr(config).encode()).hexdigest()
    return plan


def _collect(plan: FilesPlan, target: Target, log: Log, fetcher: Fetcher, fetched: Fetched | None) -> None:
    """Resolve every node's path (duplicates refused) and fetch every file's data."""
    st = plan.config.storage
    resolved: dict[tuple[str, ...], str] = {}
    raw: list[tuple[str, Any, int]] = (
        [("directory", d, i) for i, d in enumerate(st.directories)]
        + [("file", f, i) for i, f in enumerate(st.files)]
        + [("hardlink" if lk.hard else "link", lk, i) for i, lk in enumerate(st.links)]
    )
    for kind, node, index in raw:
        try:
            comps = target.components(node.path)
        except TargetError as exc:
            raise StageError(f"{node.path}: {exc}") from exc
        key = tuple(comps)
        if key in resolved:
            label = {"directory": "Directory", "file": "File"}.get(kind, "Link")
            raise StageError(
                f"{label} at {node.path} resolved to /{'/'.join(comps)} after symlink chasing, "
                f"but another entry with path {resolved[key]} also resolves there"
            )
        resolved[key] = node.path
        entry = Entry(kind, node, comps)
        plan.entries.append(entry)  # from here on the plan owns (and closes) the entry's data
        if kind == "file":
            got = fetched.take(index) if fetched is not None else None
            entry.data, entry.has_source, entry.sha256 = got or fetch_one(node, fetcher, log)


def declared_names(config: model.Config, target: Target) -> tuple[set[str], set[str]]:
    """Users and groups this config creates (they may own nodes before they exist)."""
    users = {u.name for u in config.passwd.users if u.should_exist is not False}
    groups = {g.name for g in config.passwd.groups if g.should_exist is not False}
    from pineinstall.accounts.logindefs import LoginDefs

    user_groups = LoginDefs.from_text(target.read_text("/etc/login.defs")).usergroups_enab
    for u in config.passwd.users:
        if user_groups and u.should_exist is not False and not u.no_user_group:
            groups.add(u.name)  # the user's own group (login.defs USERGROUPS_ENAB)
    return users, groups


def _check_owners(plan: FilesPlan, target: Target) -> None:
    """Owner names resolve when their node is made: against the target's passwd/group, the
    accounts this config creates, and whatever the config's own earlier nodes do to those files
    (names are looked up at each node, as Ignition does). None means "cannot tell": no check."""
    names = OwnerIds(target)
    declared_users, declared_groups = declared_names(plan.config, target)
    users: set[str] | None = set(names.users) | declared_users
    groups: set[str] | None = set(names.groups) | declared_groups
    for e in in_creation_order(plan.entries):
        n = e.node
        hard = e.kind == "hardlink"  # its owner is its target's: Ignition does not look it up
        if not hard and users is not None and n.user.id is None and n.user.name and n.user.name not in users:
            raise StageError(f"{n.path}: no such user {n.user.name!r} in the target's /etc/passwd")
        if (
            not hard
            and groups is not None
            and n.group.id is None
            and n.group.name
            and n.group.name not in groups
        ):
            raise StageError(f"{n.path}: no such group {n.group.name!r} in the target's /etc/group")
        which = ACCOUNT_FILES.get(tuple(e.comps))
        if which is None:
            continue
        if which == "both":
            if n.overwrite or e.kind != "directory":
                users, groups = set(), set()  # /etc emptied or replaced
            continue
        if e.kind == "file" and e.data is not None:
            e.data.seek(0)
            found = set(OwnerIds.parse(e.data.read().decode("utf-8", "replace")))
            if which == "users":
                users = found if e.has_source else (users | found if users is not None else None)
            else:
                groups = found if e.has_source else (groups | found if groups is not None else None)
        elif e.kind != "directory" and not (e.kind == "file" and not n.overwrite):
            # a link or a replaced file whose contents are not known here
            users, groups = (None, groups) if which == "users" else (users, None)


def _check_units(config: model.Config, target: Target) -> None:
    if config.systemd.units and target.init_system == "openrc":
        raise StageError(
            "systemd units are configured but the target runs OpenRC (no systemd, /sbin/openrc present)"
        )


def _hard_target_key(
    path: str, by_key: dict[tuple[str, ...], Entry], target: Target
) -> tuple[tuple[str, ...], bool]:
    """Where a hard link's target will be when the link is made (hard links come last): through
    the symlinks this config makes, and whether a directory on the way is emptied (overwrite)."""
    key = tuple(target.components(path))
    for _ in range(MAX_HOPS_IN_CONFIG):
        for n in range(1, len(key)):
            above = by_key.get(key[:n])
            if above is None:
                continue
            if above.kind == "link":
                link_target = above.node.target or ""  # type: ignore[union-attr]
                base = "" if link_target.startswith("/") else "/" + "/".join(key[: n - 1])
                key = tuple(target.components(f"{base}/{link_target}/" + "/".join(key[n:])))
                break
            if above.kind in ("file", "hardlink"):
                raise TargetError(f"/{'/'.join(key[:n])} is a file in this config")
            if above.node.overwrite:
                return key, True
        else:
            return key, False
    raise TargetError("too many levels of symbolic links in this config")


def _precheck_conflicts(plan: FilesPlan, target: Target) -> None:
    """Refusals that can be seen now, for entries whose place nothing else in the config touches."""
    keys = [tuple(e.comps) for e in plan.entries]
    all_keys = set(keys)
    homes = [
        tuple(target.components(u.home_dir or f"/home/{u.name}"))
        for u in plan.config.passwd.users
        if u.should_exist is not False
    ]
    by_key = dict(zip(keys, plan.entries, strict=True))
    for e, key in zip(plan.entries, keys, strict=True):
        # a file of this very config cannot hold other nodes
        for n in range(1, len(key)):
            above = by_key.get(key[:n])
            if above is not None and above.kind in ("file", "hardlink"):
                raise StageError(
                    f"error creating {e.path}: {above.path} is a file in this config, not a directory"
                )
        touched = any(key[:n] in all_keys for n in range(len(key))) or any(key[: len(h)] == h for h in homes)
        if touched:
            continue
        # nor can a file that is already there (resolution left no links among the parents)
        for n in range(1, len(key)):
            st = lstat(target.host(key[:n]))
            if st is None:
                break
            if not stat.S_ISDIR(st.st_mode):
                raise StageError(f"error creating {e.path}: /{'/'.join(key[:n])} is not a directory")
        if e.node.overwrite or e.kind == "hardlink":
            continue
        refusal(e, target.host(e.comps), target, dry_run=True)
    # a hard link needs its target: a file that is there, or one this config makes first
    for e in plan.entries:
        if e.kind != "hardlink":
            continue
        link = e.node
        assert isinstance(link, model.Link)
        try:
            tkey, emptied = _hard_target_key(hard_target(link), by_key, target)
        except TargetError as exc:
            raise StageError(f"error creating hard link {e.path}: {exc}") from exc
        made = by_key.get(tkey)
        if made is None and emptied:
            raise StageError(f"error creating hard link {e.path}: target {link.target} will not exist")
        if made is e:
            if link.overwrite:  # Ignition removes what is at the path first: the target goes with it
                raise StageError(
                    f"error creating hard link {e.path}: its target is the link itself, removed first (overwrite)"
                )
            made = None  # a link to itself: the node that is there
        st = lstat(target.host(tkey))  # for a target the config makes: what is there now
        here = lstat(target.host(tuple(e.comps)))
        if made is None:
            if st is None:
                raise StageError(f"error creating hard link {e.path}: target {link.target} does not exist")
            if here is not None and (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino):
                continue  # already that very link
            if stat.S_ISDIR(st.st_mode):
                raise StageError(f"error creating hard link {e.path}: {link.target} is a directory")
        elif made.kind == "directory":
            raise StageError(f"error creating hard link {e.path}: {link.target} is a directory")
        key = tuple(e.comps)
        if link.overwrite or any(key[:n] in all_keys for n in range(len(key))):
            continue
        if here is not None and (st is None or (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino)):
            raise StageError(
                f"error creating hard link {e.path}: a file already exists at that path "
                "but is not the target and overwrite is false"
            )
    # the result record is written last, into /etc: nothing in the config may take /etc's place
    record = tuple(target.components(RESULT_PATH))
    for n in range(1, len(record)):
        above = by_key.get(record[:n])
        if above is not None and above.kind != "directory":
            raise StageError(
                f"{above.path} would replace the directory of the result record {RESULT_PATH} "
                f"with a {'file' if above.kind != 'link' else 'symlink'}"
            )
