"""Rules of ``passwd``: users and groups are keyed by name; a user's SSH keys and supplementary
groups may not repeat (Ignition's generic duplicate check over every list).

Our own warning (Ignition has none): a ``passwordHash`` that is not a crypt(3) hash, most likely a
password given in plain text, which would land in ``/etc/shadow`` as is and never match at login.

Our own errors (Ignition leaves them to useradd, after the disk is written): a user or group name,
or a field written into an account file (gecos, home, shell, hash), that would corrupt it -- a ``:``
or a newline makes a second field or a whole passwd line of the config's choosing. A warning: ``uid:
0`` for a user other than root (a new user cannot take root's uid; the installer refuses it once it
has read the target).
"""

from __future__ import annotations

import re

from ...accounts.names import field_problem, name_problem, plainly_good_name
from ..report import Report
from ._common import arr, duplicates, field_key, obj, str_key, text

WARN_NOT_CRYPT = "passwordHash is not a crypt(3) hash; was it given in plain text?"
WARN_UID_0 = "uid 0 is root's: a new user cannot have it (only an existing uid-0 user may be given it)"

# Fields written into passwd/shadow (users) and group/gshadow (groups) as they are.
USER_FIELDS = ("gecos", "homeDir", "shell", "passwordHash")
GROUP_FIELDS = ("passwordHash",)

# DES crypt: 13 characters of crypt's alphabet (an old but real hash).
_DES = re.compile(r"[./0-9A-Za-z]{13}")


def is_crypt_hash(value: str) -> bool:
    """A crypt(3) hash or a locked/disabled form (``*``, ``!``, ``!!``, ``!<hash>``, empty).

    Anything that starts with ``$`` counts as a hash, of a method we may not know: Ignition takes
    such values without a word, and real configs carry placeholders like ``$superSecret...``
    (ignition-validate's answers for them have no warning, and ours must match). Plain text that
    begins with ``$`` is rare; plain text that does not is what this rule is for.
    """
    value = value.lstrip("!")
    return value == "" or value.startswith(("*", "$")) or _DES.fullmatch(value) is not None


def _check_hash(report: Report, item: dict, path: tuple) -> None:
    value = item.get("passwordHash")
    if isinstance(value, str) and not is_crypt_hash(value):
        report.warning(WARN_NOT_CRYPT, (*path, "passwordHash"))


def name_error(kind: str, name: str) -> str | None:
    """An empty name is left to the account database: ignition-validate accepts it (and a null
    list item), and our answers for them must match."""
    problem = name_problem(name) if name else None
    return None if problem is None else f"{kind} name {problem}"


def _check_account(report: Report, item: dict, path: tuple, kind: str, fields: tuple[str, ...]) -> None:
    """Name and the fields that go into the account files as they are."""
    msg = name_error(kind, text(item.get("name")))
    if msg:
        report.error(msg, (*path, "name"))
    for name in fields:
        value = item.get(name)
        problem = field_problem(value) if value is not None and isinstance(value, str) else None
        if problem:
            report.error(f"{name} {problem}", (*path, name))


def _check_safety(report: Report, user: dict, i: int, good_groups: set[str]) -> None:
    """Our rules beyond Ignition's for user ``i``: fields that would break a passwd line, group
    names useradd refuses, uid 0 for someone other than root. ``good_groups``: group names already
    found fine (most users share a few groups). (Half a million users: the place is built only
    for a finding.)"""
    name = user.get("name")
    if name and isinstance(name, str) and plainly_good_name(name) is None and (problem := name_problem(name)):
        report.error(f"user name {problem}", ("passwd", "users", i, "name"))
    for field in USER_FIELDS:
        # (most users have few of these fields: ``in``, not a get each)
        if field in user and isinstance(value := user[field], str) and (problem := field_problem(value)):
            report.error(f"{field} {problem}", ("passwd", "users", i, field))
    if "primaryGroup" in user:
        primary = user["primaryGroup"]
        if isinstance(primary, str) and (msg := name_error("group", primary)):
            report.error(msg, ("passwd", "users", i, "primaryGroup"))
    groups = user.get("groups")
    if groups:
        for j, group in enumerate(arr(groups)):
            if not isinstance(group, str) or group in good_groups:
                continue
            msg = name_error("group", group)
            if msg:
                report.error(msg, ("passwd", "users", i, "groups", j))
            elif len(good_groups) < 4096:
                good_groups.add(group)
    if "uid" in user and user["uid"] == 0 and type(user["uid"]) is int and text(user.get("name")) != "root":
        report.warning(WARN_UID_0, ("passwd", "users", i, "uid"))


def validate(cfg: dict, version: tuple[int, int], report: Report, safety: bool = True) -> None:
    passwd = obj(cfg.get("passwd"))
    users = arr(passwd.get("users"))
    good_groups: set[str] = set()
    for i, user in enumerate(users):
        if type(user) is not dict:
            user = {}
        if safety:
            _check_safety(report, user, i, good_groups)
        # a list of one item cannot repeat (most users': tested here, half a million calls less)
        items = user.get("sshAuthorizedKeys")
        if type(items) is list and len(items) > 1:
            duplicates(report, items, ("passwd", "users", i, "sshAuthorizedKeys"), str_key)
        items = user.get("groups")
        if type(items) is list and len(items) > 1:
            duplicates(report, items, ("passwd", "users", i, "groups"), str_key)
        value = user.get("passwordHash")
        # ("$...", most hashes, is one: no call)
        if value is not None and isinstance(value, str) and value[:1] != "$" and not is_crypt_hash(value):
            report.warning(WARN_NOT_CRYPT, ("passwd", "users", i, "passwordHash"))
    for i, group in enumerate(arr(passwd.get("groups"))):
        if safety:
            _check_account(report, obj(group), ("passwd", "groups", i), "group", GROUP_FIELDS)
        _check_hash(report, obj(group), ("passwd", "groups", i))
    duplicates(report, arr(passwd.get("groups")), ("passwd", "groups"), field_key("name"))
    duplicates(report, users, ("passwd", "users"), field_key("name"))
