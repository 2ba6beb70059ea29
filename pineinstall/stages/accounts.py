"""Groups and users of the files stage, with Ignition's semantics and no shadow-utils.

Ignition runs ``groupadd``, ``useradd``/``usermod``/``userdel`` against the target root; we do the
same edits ourselves (``pineinstall.accounts``) so busybox targets work. Per field:

- a new user is created as ``useradd --create-home`` (or ``--no-create-home``) would, with
  ``--password *`` when no hash is given (password logins off); ``passwordHash: ""`` also means ``*``;
- an existing user is changed as ``usermod`` would for the fields given (``homeDir`` moves the
  home, ``groups`` *replaces* the supplementary groups, ``uid`` re-owns the home's files); fields
  not given are left alone, and a user that already matches is not touched at all;
- ``shouldExist: false`` deletes the user as ``userdel --remove`` (its entries, its memberships,
  its own group when nothing else uses it, its home and mail spool when it owns them);
- groups: ``groupadd`` with ``--password *`` unless a hash is given. Deliberate difference: a group
  that already exists is not an error (Ignition's groupadd fails) — its gid/hash are updated when
  given and differ (``groupmod`` semantics), so applying a config twice succeeds and changes nothing.

SSH keys go to ``~/.ssh/authorized_keys`` in a marked block (``pineinstall.accounts.sshkeys``).
Database edits for all entries are done in memory and written once (locked, atomic, ``-`` backups);
homes and keys follow. Errors stop the stage with the entry's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypedDict

from pineinstall.accounts import homes, sshkeys
from pineinstall.accounts.database import Accounts, UserInfo
from pineinstall.accounts.dbfile import AccountsError
from pineinstall.stages import Log, StageError
from pineinstall.target import Target

__all__ = ["apply_groups", "apply_users"]


def _etc(target: Target) -> Path:
    return target.resolve_all("/etc")


# --- groups ------------------------------------------------------------------------------------------


def apply_groups(groups: tuple[Any, ...], target: Target, log: Log) -> None:
    """Create, update or delete ``passwd.groups`` in the target's group files."""
    if not groups:
        return
    with log.op(f"creating groups ({len(groups)})"):
        try:
            with Accounts(_etc(target)) as db:
                for g in groups:
                    try:
                        _one_group(db, g, log)
                    except AccountsError as exc:
                        verb = "delete" if g.should_exist is False else "create"
                        raise StageError(f"failed to {verb} group {g.name!r}: {exc}") from exc
                written = db.commit()
                for w in db.warnings:
                    log.warning(w)
        except AccountsError as exc:
            raise StageError(str(exc)) from exc
        log.info(f"account files written: {', '.join(written) or 'none (no change)'}")


def _one_group(db: Accounts, g: Any, log: Log) -> None:
    exists = db.group.get(g.name) is not None
    if g.should_exist is False:
        if exists:
            db.del_group(g.name)
            log.info(f"group {g.name!r}: deleted")
        return
    password = g.password_hash if g.password_hash else "*"
    if exists:
        changes = db.modify_group(g.name, gid=g.gid, password=g.password_hash or None)
        log.info(
            f"group {g.name!r}: exists, " + (", ".join(changes) + " updated" if changes else "unchanged")
        )
    else:
        gid = db.add_group(g.name, gid=g.gid, password=password, system=bool(g.system))
        log.info(f"group {g.name!r}: created with gid {gid}")


# --- users -------------------------------------------------------------------------------------------


def _default_shell(db: Accounts, target: Target) -> str:
    """/etc/default/useradd's SHELL, else useradd's built-in /bin/bash — except on a target that has a
    /bin/sh and no /bin/bash (Alpine, Pine: busybox), where /bin/sh: sshd refuses users whose shell
    does not exist. A bare root with neither gets /bin/bash, as useradd gives.
    """
    if db.defaults.shell:
        return db.defaults.shell
    has = {s: os.path.lexists(Path(target.resolve(s))) for s in ("/bin/bash", "/bin/sh")}
    return "/bin/sh" if has["/bin/sh"] and not has["/bin/bash"] else "/bin/bash"


def apply_users(users: tuple[Any, ...], target: Target, log: Log) -> None:
    """Create, modify or delete ``passwd.users``; then their homes and SSH keys."""
    if not users:
        return
    actions: list[tuple[str, Any, UserInfo | None, UserInfo | None]] = []
    with log.op(f"creating or modifying users ({len(users)})"):
        try:
            with Accounts(_etc(target)) as db:
                shell = _default_shell(db, target)
                for u in users:
                    try:
                        actions.append(_one_user(db, u, shell, log))
                    except AccountsError as exc:
                        verb = "delete" if u.should_exist is False else "create"
                        raise StageError(f"failed to {verb} user {u.name!r}: {exc}") from exc
                written = db.commit()
                for w in db.warnings:
                    log.warning(w)
                defs, defaults = db.defs, db.defaults
                remaining_homes = {u.home.rstrip("/") for u in db.users()}
                # The target's own group entries decide the mail spool group (as useradd).
                mail_gid = db.group_gid("mail")
        except AccountsError as exc:
            raise StageError(str(exc)) from exc
        log.info(f"account files written: {', '.join(written) or 'none (no change)'}")
    for kind, u, old, new in actions:
        try:
            if kind == "create" and new is not None:
                _new_home(target, u, new, defs, defaults, mail_gid, log)
            elif kind == "modify" and old is not None and new is not None:
                _changed_home(target, old, new, log)
            elif kind == "delete" and old is not None:
                _removed_home(target, old, defs, log, remaining_homes)
            if kind != "delete" and new is not None and u.ssh_authorized_keys:
                with log.op(f"adding ssh keys to user {u.name!r}"):
                    home = target.resolve_all(new.home)
                    keys = sshkeys.key_lines(u.ssh_authorized_keys)
                    changed = sshkeys.write_authorized_keys(home, new.uid, new.gid, keys)
                    log.info(
                        f"{new.home}/.ssh/authorized_keys: {len(keys)} key(s), "
                        + ("written" if changed else "unchanged"),
                    )
        except AccountsError as exc:
            raise StageError(f"user {u.name!r}: {exc}") from exc
        except OSError as exc:
            raise StageError(f"user {u.name!r}: {exc.strerror or exc}: {exc.filename or ''}") from exc


class _UserFields(TypedDict):
    uid: int | None
    gecos: str | None
    home: str | None
    primary_group: str | None
    groups: tuple[str, ...]


def _one_user(
    db: Accounts, u: Any, shell: str, log: Log
) -> tuple[str, Any, UserInfo | None, UserInfo | None]:
    old = db.user(u.name)
    if u.should_exist is False:
        if old is None:
            return ("absent", u, None, None)
        db.del_user(u.name)
        log.info(f"user {u.name!r}: deleted")
        return ("delete", u, old, None)
    # What useradd and usermod both set; Ignition passes "" as "not given" (appendIfStringSet).
    fields: _UserFields = {
        "uid": u.uid,
        "gecos": u.gecos or None,
        "home": u.home_dir or None,
        "primary_group": u.primary_group or None,
        "groups": tuple(u.groups or ()),
    }
    user_shell = u.shell or None
    if old is None:
        password = u.password_hash if u.password_hash else "*"
        new = db.add_user(
            u.name,
            **fields,
            no_user_group=bool(u.no_user_group),
            system=bool(u.system),
            shell=user_shell or shell,
            password=password,
        )
        log.info(f"user {u.name!r}: created with uid {new.uid}, gid {new.gid}, home {new.home}")
        return ("create", u, None, new)
    password = None if u.password_hash is None else (u.password_hash or "*")
    changes = db.modify_user(u.name, **fields, shell=user_shell, password=password)
    updated = db.user(u.name)
    log.info(f"user {u.name!r}: exists, " + (", ".join(changes) + " updated" if changes else "unchanged"))
    return ("modify", u, old, updated)


def _new_home(
    target: Target, u: Any, new: UserInfo, defs: Any, defaults: Any, mail_gid: int | None, log: Log
) -> None:
    if not u.no_create_home:
        home = Path(target.resolve(new.home))
        skel = target.resolve_all(defaults.skel)
        with log.op(f"creating home directory {new.home!r} for {u.name!r}"):
            if not homes.create_home(home, new.uid, new.gid, defs.new_home_mode, skel):
                log.warning(
                    f"the home directory {new.home} already exists; not copying any file from "
                    f"{defaults.skel} into it",
                )
    if defaults.create_mail_spool:
        spool = Path(target.resolve(defs.mail_dir.rstrip("/") + "/" + new.name))
        if not os.path.lexists(spool) and spool.parent.is_dir():
            fd = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.fchown(fd, new.uid, mail_gid if mail_gid is not None else new.gid)
                os.fchmod(fd, 0o660 if mail_gid is not None else 0o600)
            finally:
                os.close(fd)


def _changed_home(target: Target, old: UserInfo, new: UserInfo, log: Log) -> None:
    home = new.home
    if old.home != new.home:
        with log.op(f"moving home of {new.name!r} from {old.home!r} to {new.home!r}"):
            moved = homes.move_home(Path(target.resolve(old.home)), Path(target.resolve(new.home)))
            if not moved:
                log.info(f"no previous home {old.home} to move")
    if old.uid != new.uid or old.gid != new.gid:
        with log.op(f"changing ownership of {home!r} to {new.uid}:{new.gid}"):
            homes.chown_tree(
                target.resolve_all(home),
                old.uid,
                new.uid,
                old.gid if old.gid != new.gid else None,
                new.gid if old.gid != new.gid else None,
            )


def _removed_home(target: Target, old: UserInfo, defs: Any, log: Log, remaining: set[str]) -> None:
    with log.op(f"removing home directory {old.home!r} of deleted user {old.name!r}"):
        # Never a shared or top-level directory: "/" or one component ("/home") is not a user's home.
        if old.home.strip("/").count("/") < 1 or old.uid == 0:
            log.warning(f"{old.home} looks like a system directory, not removing")
        elif old.home.rstrip("/") in remaining:
            log.warning(f"{old.home} is also another user's home, not removing")
        else:
            msg = homes.remove_home(target.resolve_all(old.home), old.uid)
            if msg:
                log.warning(msg)
        spool = target.resolve_all(defs.mail_dir.rstrip("/") + "/" + old.name)
        msg = homes.remove_mail_spool(spool, old.uid)
        if msg:
            log.warning(msg)
