"""Rules of ``passwd``: users and groups are keyed by name; a user's SSH keys and supplementary
groups may not repeat (Ignition's generic duplicate check over every list).

Our own warning (Ignition has none): a ``passwordHash`` that is not a crypt(3) hash, most likely a
password given in plain text, which would land in ``/etc/shadow`` as is and never match at login.
"""

from __future__ import annotations

import re

from ..report import Report
from ._common import arr, duplicates, field_key, obj, str_key

WARN_NOT_CRYPT = "passwordHash is not a crypt(3) hash; was it given in plain text?"

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


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    passwd = obj(cfg.get("passwd"))
    users = arr(passwd.get("users"))
    for i, user in enumerate(users):
        user = obj(user)
        base = ("passwd", "users", i)
        duplicates(report, arr(user.get("sshAuthorizedKeys")), (*base, "sshAuthorizedKeys"), str_key)
        duplicates(report, arr(user.get("groups")), (*base, "groups"), str_key)
        _check_hash(report, user, base)
    for i, group in enumerate(arr(passwd.get("groups"))):
        _check_hash(report, obj(group), ("passwd", "groups", i))
    duplicates(report, arr(passwd.get("groups")), ("passwd", "groups"), field_key("name"))
    duplicates(report, users, ("passwd", "users"), field_key("name"))
