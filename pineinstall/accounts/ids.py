"""Choosing a new UID or GID the way shadow-utils' find_new_uid/find_new_gid do.

Regular accounts take one more than the highest ID in use inside [MIN, MAX] (or MIN when none is),
falling back to the lowest free ID when that overflows. System accounts count down: one less than
the lowest ID in use inside [SYS_MIN, SYS_MAX] (SYS_MAX when none is), falling back to the highest
free one. A preferred ID (a user group takes its user's UID as GID) wins when it is inside the range
and free.
"""

from __future__ import annotations

from collections.abc import Iterable

from .dbfile import AccountsError


def new_id(
    used: Iterable[int], lo: int, hi: int, *, system: bool, preferred: int | None = None, kind: str = "UID"
) -> int:
    if lo > hi:
        raise AccountsError(f"invalid {kind} range {lo}-{hi} in login.defs")
    all_used = set(used)
    taken = {i for i in all_used if lo <= i <= hi}
    if preferred is not None and lo <= preferred <= hi and preferred not in all_used:
        return preferred
    if system:
        candidate = min(taken) - 1 if taken else hi
        if candidate >= lo and candidate not in taken:
            return candidate
        for i in range(hi, lo - 1, -1):
            if i not in taken:
                return i
    else:
        candidate = max(taken) + 1 if taken else lo
        if candidate <= hi and candidate not in taken:
            return candidate
        for i in range(lo, hi + 1):
            if i not in taken:
                return i
    raise AccountsError(f"no free {kind} left in {lo}-{hi}")
