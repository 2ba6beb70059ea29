"""Rules of ``passwd``: users and groups are keyed by name; a user's SSH keys and supplementary
groups may not repeat (Ignition's generic duplicate check over every list).

Our own warning (Ignition has none): a ``passwordHash`` that is not a crypt(3) hash, most likely a
password given in plain text, which would land in ``/etc/shadow`` as is and never match at login.
"""

from __future__ import annotations

from ..report import Report
from ._common import arr, duplicates, field_key, obj, str_key

WARN_NOT_CRYPT = "passwordHash is not a crypt(3) hash; was it given in plain text?"

# The ``$id$`` prefixes of libxcrypt's methods: yescrypt, gost-yescrypt, scrypt, bcrypt, sha512crypt,
# sha256crypt, sha1crypt, SunMD5, md5crypt, NT.
CRYPT_IDS = frozenset(("y", "gy", "7", "2a", "2b", "2x", "2y", "6", "5", "sha1", "md5", "1", "3"))


def is_crypt_hash(value: str) -> bool:
    """A crypt(3) hash of a known method, or a locked/disabled form (``*``, ``!``, ``!!``, ``!<hash>``, empty)."""
    value = value.lstrip("!")
    if value in ("", "*") or value.startswith("*"):
        return True
    parts = value.split("$")
    # "$id$rest": SunMD5 writes "$md5,rounds=N$", the others "$id$".
    return len(parts) >= 3 and parts[0] == "" and parts[1].split(",")[0] in CRYPT_IDS


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
