"""What may go into an account file: the one definition shared by the config rules (``pineinstall
validate``, no target needed) and the account database (the last guard, at write time).

Imports nothing: the rules run on the start-up path of ``pineinstall validate`` and ``pine-transpile``.
"""

from __future__ import annotations

import re  # (loaded at start-up anyway: json imports it)

# Characters that would corrupt a colon file, a group's member list or a home path. Otherwise as
# permissive as Debian's useradd (digits-only, upper case, '.', '@', '$' are accepted there; 33+
# characters and a leading '-', '+' or '~' are not).
BAD_NAME_CHARS = frozenset(":,\n\r\t /\\")
MAX_NAME = 32
# ':' or a line break: a second field or a second line. Tested with ``isdisjoint`` (C speed: a
# 500,000-user config is checked in tenths of a second rather than seconds).
_FIELD_BREAKERS = frozenset(":\n\r")


# The names name_problem has nothing to say about, in one C call (the names of a large config):
# the same rules, a regular expression; tests/unit/test_account_names.py holds the two together.
_BAD = re.escape("".join(sorted(BAD_NAME_CHARS)))
plainly_good_name = re.compile(rf"(?!\.\.?\Z)[^-+~{_BAD}][^{_BAD}]{{0,{MAX_NAME - 1}}}").fullmatch


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user or group name, or None when it can."""
    if not name:
        return "is empty"
    if not _FIELD_BREAKERS.isdisjoint(name):
        return "contains ':' or a newline (it would be read as several passwd fields or lines)"
    if name in (".", "..") or not BAD_NAME_CHARS.isdisjoint(name):
        return "contains a character not allowed in an account name (',', '/', '\\\\' or white space) or is . or .."
    if name[0] in "-+~":
        return "starts with '-', '+' or '~'"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    return None


def field_problem(value: str) -> str | None:
    """Why ``value`` cannot be a field of an account file (gecos, home, shell, hash), or None."""
    if ":" in value or "\n" in value or "\r" in value:  # three memchr: faster than a set per character
        return "contains ':' or a newline (it would be read as several passwd fields or lines)"
    return None
