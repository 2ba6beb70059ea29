"""Rules of ``passwd``: users and groups are keyed by name; a user's SSH keys and supplementary
groups may not repeat (Ignition's generic duplicate check over every list)."""

from __future__ import annotations

from ..report import Report
from ._common import arr, duplicates, field_key, obj, str_key


def validate(cfg: dict, version: tuple[int, int], report: Report) -> None:
    passwd = obj(cfg.get("passwd"))
    users = arr(passwd.get("users"))
    for i, user in enumerate(users):
        user = obj(user)
        base = ("passwd", "users", i)
        duplicates(report, arr(user.get("sshAuthorizedKeys")), (*base, "sshAuthorizedKeys"), str_key)
        duplicates(report, arr(user.get("groups")), (*base, "groups"), str_key)
    duplicates(report, arr(passwd.get("groups")), ("passwd", "groups"), field_key("name"))
    duplicates(report, users, ("passwd", "users"), field_key("name"))
