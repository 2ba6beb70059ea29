"""Checks of a config against its target before the first write: ``pineinstall install`` runs them
on the image's own root (read-only, :mod:`pineinstall.install.imageroot`), ``apply --root DIR`` on
DIR. The target is what is provisioned, never the host.

What is checked: every owner name of a file, directory or link, every supplementary and primary
group of a user, exists in the target's ``/etc/passwd``/``/etc/group`` or is created by the config
itself; ``uid: 0`` is given only to a user that is uid 0 in the target already (a new user cannot
take root's uid). The files stage checks owner names again when it runs (after this config's own
nodes changed ``/etc/passwd`` or ``/etc/group``, which this check leaves to it).

Where we differ from Ignition on purpose: Ignition looks owner names up when it writes each node
and fails there, half way through the files stage; a missing group of ``useradd --groups`` fails
the users stage. We refuse before anything is written.
"""

from __future__ import annotations

from pineinstall.config import model
from pineinstall.errors import PineError
from pineinstall.target import Target


class TargetCheckError(PineError):
    """The config does not fit its target; nothing was written."""


def needs_target(config: model.Config) -> bool:
    """Whether the config names accounts the target must have (else there is nothing to read)."""
    named = any(any(owner_names(n)) for _, entries in _nodes(config) for n in entries)
    return named or any(
        u.should_exist is not False and bool(u.groups or u.primary_group or u.uid == 0)
        for u in config.passwd.users
    )


Node = model.File | model.Directory | model.Link


def _nodes(config: model.Config) -> tuple[tuple[str, tuple[Node, ...]], ...]:
    """(name of the list, its entries) of the storage nodes."""
    st = config.storage
    return (("directories", st.directories), ("files", st.files), ("links", st.links))


def owner_names(node: Node) -> tuple[str | None, str | None]:
    """(user name, group name) of a node, each None when given by id or not at all; none for a hard
    link, whose owner Ignition neither looks up nor applies (it is its target's inode)."""
    if isinstance(node, model.Link) and node.hard:
        return None, None
    user = node.user.name if node.user.id is None and node.user.name else None
    group = node.group.name if node.group.id is None and node.group.name else None
    return user, group


def _writes_account_files(config: model.Config) -> bool:
    """Whether the config's own nodes replace /etc, /etc/passwd or /etc/group (the files stage
    follows such changes node by node; this check does not)."""
    from pineinstall.stages.files.nodes import ACCOUNT_FILES

    return any(
        tuple(c for c in n.path.split("/") if c) in ACCOUNT_FILES
        for kind, entries in _nodes(config)
        for n in entries
        if kind != "directories" or n.overwrite
    )


def problems(config: model.Config, target: Target) -> list[str]:
    """Every mismatch between the config and the target, each as ``error at $.PATH: message``."""
    from pineinstall.stages.files.check import declared_names
    from pineinstall.stages.files.nodes import OwnerIds

    found = OwnerIds(target)
    declared_users, declared_groups = declared_names(config, target)
    users, groups = set(found.users) | declared_users, set(found.groups) | declared_groups
    out: list[str] = []
    for i, u in enumerate(config.passwd.users):
        if u.should_exist is False:
            continue
        at = f"$.passwd.users.{i}"
        if u.uid == 0 and found.users.get(u.name) != 0:
            what = "a new user" if u.name not in found.users else f"uid {found.users[u.name]} in the target"
            out.append(
                f"error at {at}.uid: uid 0 for user {u.name!r} ({what}): only root's account has uid 0"
            )
        if u.primary_group and u.primary_group not in groups:
            out.append(
                f"error at {at}.primaryGroup: no such group {u.primary_group!r} in the target's /etc/group"
            )
        for j, g in enumerate(u.groups):
            if g not in groups:
                out.append(f"error at {at}.groups.{j}: no such group {g!r} in the target's /etc/group")
    if _writes_account_files(config):
        return out
    for kind, entries in _nodes(config):
        for i, n in enumerate(entries):
            at = f"$.storage.{kind}.{i}"
            user, group = owner_names(n)
            if user is not None and user not in users:
                out.append(f"error at {at}.user.name: no such user {user!r} in the target's /etc/passwd")
            if group is not None and group not in groups:
                out.append(f"error at {at}.group.name: no such group {group!r} in the target's /etc/group")
    return out


def check(config: model.Config, target: Target) -> None:
    """Raise :class:`TargetCheckError` listing every problem; nothing is written either way."""
    found = problems(config, target)
    if found:
        raise TargetCheckError("the config does not fit its target:\n  " + "\n  ".join(found))
