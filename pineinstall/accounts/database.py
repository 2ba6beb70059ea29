"""The account files of a target root together, and what useradd/usermod/userdel/groupadd do to them.

:class:`Accounts` is a transaction: entering it takes the locks and reads ``passwd``, ``shadow``,
``group``, ``gshadow`` (and ``subuid``/``subgid`` when the target has them), the methods change the
entries in memory, :meth:`Accounts.commit` writes the files that changed. As shadow-utils does,
``shadow`` and ``gshadow`` are used only when the target has them (a system without them keeps
hashes in ``passwd``/``group``); a target with no ``passwd`` at all gets all four created.

The field semantics are those of shadow-utils 4.13 as invoked by Ignition (see
``pineinstall.stages.accounts``), checked against Debian's tools in tests/integration.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .dbfile import AccountsError, DbFile, Lock
from .ids import new_id
from .logindefs import LoginDefs, UseraddDefaults
from .names import field_problem, name_problem


def check_name(name: str, what: str) -> None:
    if name_problem(name) is not None:
        raise AccountsError(f"invalid {what} name {name!r}")


def check_field(value: str, what: str) -> None:
    if field_problem(value) is not None:
        raise AccountsError(f"invalid {what} {value!r}: contains ':' or a newline")


def today() -> int:
    """Days since the epoch for the shadow 'last change' field (SOURCE_DATE_EPOCH honoured)."""
    now = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(now) if now and now.isdigit() else int(time.time())
    return seconds // 86400


def _age(n: int) -> str:
    return "" if n < 0 else str(n)


@dataclass(slots=True)
class UserInfo:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str


class Accounts:
    """The account database of one root; use as a context manager, then :meth:`commit`."""

    def __init__(
        self, etc: Path, *, logindefs: LoginDefs | None = None, defaults: UseraddDefaults | None = None
    ) -> None:
        self.etc = etc
        self.defs = logindefs if logindefs is not None else LoginDefs.load(etc / "login.defs")
        self.defaults = (
            defaults if defaults is not None else UseraddDefaults.load(etc / "default" / "useradd")
        )
        self._lock = Lock(etc, ["passwd", "shadow", "group", "gshadow"])
        self.warnings: list[str] = []

    def __enter__(self) -> Accounts:
        self._lock.__enter__()
        try:
            self._load()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.__exit__(None, None, None)

    def _load(self) -> None:
        etc = self.etc
        fresh = not (etc / "passwd").exists()
        self.passwd = DbFile(etc / "passwd", 7)
        self.group = DbFile(etc / "group", 4)
        shadow = DbFile(etc / "shadow", 9, default_mode=0o600)
        gshadow = DbFile(etc / "gshadow", 4, default_mode=0o600)
        # A fresh root gets shadow files too: hashes never land in world-readable files by our doing.
        self.shadow: DbFile | None = shadow if (shadow.exists or fresh) else None
        self.gshadow: DbFile | None = gshadow if (gshadow.exists or fresh) else None
        sub_u, sub_g = DbFile(etc / "subuid", 3), DbFile(etc / "subgid", 3)
        self.subuid: DbFile | None = sub_u if sub_u.exists else None
        self.subgid: DbFile | None = sub_g if sub_g.exists else None

    def commit(self) -> list[str]:
        """Write the files that changed; returns their names."""
        written = []
        for f in (self.passwd, self.shadow, self.group, self.gshadow, self.subuid, self.subgid):
            if f is not None and f.changed:
                f.write()
                written.append(f.path.name)
        if written:
            self._lock.wrote = True
        return written

    # --- lookups ------------------------------------------------------------------------------------

    def user(self, name: str) -> UserInfo | None:
        e = self.passwd.get(name)
        if e is None:
            return None
        return UserInfo(e[0], int(e[2]), int(e[3]), e[4], e[5], e[6])

    def users(self) -> list[UserInfo]:
        out = []
        for e in self.passwd.entries():
            try:
                out.append(UserInfo(e[0], int(e[2]), int(e[3]), e[4], e[5], e[6]))
            except ValueError:
                continue
        return out

    def group_gid(self, name: str) -> int | None:
        e = self.group.get(name)
        return int(e[2]) if e is not None and e[2].isdigit() else None

    def _uids(self) -> set[int]:
        return {int(e[2]) for e in self.passwd.entries() if e[2].isdigit()}

    def _gids(self) -> set[int]:
        return {int(e[2]) for e in self.group.entries() if e[2].isdigit()}

    def resolve_group(self, spec: str) -> tuple[str, int]:
        """A group given by name or number, which must exist (as useradd -g/-G)."""
        for e in self.group.entries():
            if e[0] == spec and e[2].isdigit():
                return e[0], int(e[2])
        if spec.isdigit():
            for e in self.group.entries():
                if e[2] == str(int(spec)):
                    return e[0], int(e[2])
        raise AccountsError(f"group '{spec}' does not exist")

    # --- groups -------------------------------------------------------------------------------------

    def add_group(
        self,
        name: str,
        *,
        gid: int | None = None,
        password: str | None = None,
        system: bool = False,
        preferred: int | None = None,
    ) -> int:
        """groupadd [-g GID] [-p HASH] [-r] NAME; ``password=None`` is groupadd without -p."""
        check_name(name, "group")
        if self.group.get(name) is not None or (self.gshadow and self.gshadow.get(name)):
            raise AccountsError(f"group '{name}' already exists")
        if gid is not None:
            if gid in self._gids():
                raise AccountsError(f"GID '{gid}' already exists")
        else:
            d = self.defs
            lo, hi = (d.sys_gid_min, d.sys_gid_max) if system else (d.gid_min, d.gid_max)
            gid = new_id(self._gids(), lo, hi, system=system, preferred=preferred, kind="GID")
        if password is not None:
            check_field(password, "group password")
        if self.gshadow is not None:
            self.group.append([name, "x", str(gid), ""])
            self.gshadow.append([name, password if password is not None else "!", "", ""])
        else:
            self.group.append([name, password if password is not None else "x", str(gid), ""])
        return gid

    def modify_group(self, name: str, *, gid: int | None = None, password: str | None = None) -> list[str]:
        """groupmod-like update of an existing group; returns what changed."""
        e = self.group.get(name)
        if e is None:
            raise AccountsError(f"group '{name}' does not exist")
        changes = []
        if gid is not None and e[2] != str(gid):
            if gid in self._gids():
                raise AccountsError(f"GID '{gid}' already exists")
            old = e[2]
            e[2] = str(gid)
            # As groupmod -g: users whose primary group it was follow it.
            for u in self.passwd.entries():
                if u[3] == old:
                    u[3] = str(gid)
            changes.append(f"gid {old} -> {gid}")
        if password is not None:
            check_field(password, "group password")
            s = self.gshadow.get(name) if self.gshadow is not None else None
            if s is not None:
                if s[1] != password:
                    s[1] = password
                    changes.append("password")
            elif self.gshadow is not None:
                self.gshadow.append([name, password, "", ",".join(self._members(name))])
                changes.append("password")
            elif e[1] != password:
                e[1] = password
                changes.append("password")
        return changes

    def _members(self, group: str) -> list[str]:
        e = self.group.get(group)
        return [m for m in e[3].split(",") if m] if e else []

    def del_group(self, name: str) -> None:
        """groupdel NAME: refused while it is some user's primary group."""
        gid = self.group_gid(name)
        if gid is None:
            raise AccountsError(f"group '{name}' does not exist")
        for u in self.passwd.entries():
            if u[3] == str(gid):
                raise AccountsError(f"cannot remove the primary group of user '{u[0]}'")
        self.group.remove(name)
        if self.gshadow is not None:
            self.gshadow.remove(name)

    # --- users --------------------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        *,
        uid: int | None = None,
        gecos: str | None = None,
        home: str | None = None,
        primary_group: str | None = None,
        groups: tuple[str, ...] = (),
        no_user_group: bool = False,
        system: bool = False,
        shell: str | None = None,
        password: str | None = None,
    ) -> UserInfo:
        """useradd as Ignition calls it (home directories are the caller's business)."""
        check_name(name, "user")
        for value, what in ((gecos, "comment"), (home, "home directory"), (shell, "shell")):
            if value is not None:
                check_field(value, what)
        if password is not None:
            check_field(password, "password")
        if self.passwd.get(name) is not None or (self.shadow and self.shadow.get(name)):
            raise AccountsError(f"user '{name}' already exists")
        d = self.defs
        supplementary = [self.resolve_group(g)[0] for g in groups]
        make_group = primary_group is None and not no_user_group and d.usergroups_enab
        if primary_group is not None:
            gid = self.resolve_group(primary_group)[1]
        elif make_group:
            if self.group.get(name) is not None:
                raise AccountsError(
                    f"group {name} exists - if you want to add this user to that group, use -g."
                )
            gid = -1
        else:
            try:
                gid = self.resolve_group(self.defaults.group)[1]
            except AccountsError:
                gid = int(self.defaults.group) if self.defaults.group.isdigit() else 100
        if uid is not None:
            if uid in self._uids():
                raise AccountsError(f"UID {uid} is not unique")
        else:
            lo, hi = (d.sys_uid_min, d.sys_uid_max) if system else (d.uid_min, d.uid_max)
            uid = new_id(self._uids(), lo, hi, system=system, kind="UID")
        if make_group:
            gid = self.add_group(name, system=system, preferred=uid)
        if home is None:
            home = self.defaults.home.rstrip("/") + "/" + name
        if shell is None:
            shell = self.defaults.shell or ""
        self.passwd.append(
            [
                name,
                "x" if self.shadow is not None else (password or "!"),
                str(uid),
                str(gid),
                gecos or "",
                home,
                shell,
            ]
        )
        if self.shadow is not None:
            day = today()
            if system:
                ages = ["", "", ""]
            else:
                ages = [_age(d.pass_min_days), _age(d.pass_max_days), _age(d.pass_warn_age)]
            self.shadow.append(
                [
                    name,
                    password if password is not None else "!",
                    str(day) if day else "",
                    *ages,
                    _age(self.defaults.inactive),
                    "",
                    "",
                ]
            )
        for g in supplementary:
            self._add_member(g, name)
        if not system and (uid == 0 or d.uid_min <= uid <= d.uid_max):
            self._add_subordinate(name)
        return UserInfo(name, uid, gid, gecos or "", home, shell)

    def _add_member(self, group: str, user: str) -> bool:
        changed = False
        e = self.group.get(group)
        if e is not None:
            members = [m for m in e[3].split(",") if m]
            if user not in members:
                e[3] = ",".join([*members, user])
                changed = True
        s = self.gshadow.get(group) if self.gshadow is not None else None
        if s is not None:
            members = [m for m in s[3].split(",") if m]
            if user not in members:
                s[3] = ",".join([*members, user])
                changed = True
        return changed

    def _remove_member(self, group: str, user: str, *, admins: bool = False) -> bool:
        changed = False
        targets = [(self.group.get(group), 3)]
        if self.gshadow is not None:
            s = self.gshadow.get(group)
            targets.append((s, 3))
            if admins:
                targets.append((s, 2))
        for e, idx in targets:
            if e is None:
                continue
            members = [m for m in e[idx].split(",") if m]
            if user in members:
                e[idx] = ",".join(m for m in members if m != user)
                changed = True
        return changed

    def _add_subordinate(self, name: str) -> None:
        """Subordinate ID ranges, as useradd gives when the target has /etc/subuid and /etc/subgid."""
        d = self.defs
        for f, lo, hi, count in (
            (self.subuid, d.sub_uid_min, d.sub_uid_max, d.sub_uid_count),
            (self.subgid, d.sub_gid_min, d.sub_gid_max, d.sub_gid_count),
        ):
            if f is None or count <= 0 or f.get(name) is not None:
                continue
            ranges = sorted(
                (int(e[1]), int(e[1]) + int(e[2])) for e in f.entries() if e[1].isdigit() and e[2].isdigit()
            )
            start = lo
            for a, b in ranges:
                if start + count <= a:
                    break
                start = max(start, b)
            if start + count - 1 > hi:
                self.warnings.append(f"no free subordinate IDs for {name} in {f.path.name}")
                continue
            f.append([name, str(start), str(count)])

    def modify_user(
        self,
        name: str,
        *,
        uid: int | None = None,
        gecos: str | None = None,
        home: str | None = None,
        primary_group: str | None = None,
        groups: tuple[str, ...] = (),
        shell: str | None = None,
        password: str | None = None,
    ) -> list[str]:
        """usermod as Ignition calls it; returns the list of changes (empty: nothing to do)."""
        e = self.passwd.get(name)
        if e is None:
            raise AccountsError(f"user '{name}' does not exist")
        changes: list[str] = []
        for value, what in ((gecos, "comment"), (home, "home directory"), (shell, "shell")):
            if value is not None:
                check_field(value, what)
        if uid is not None and e[2] != str(uid):
            if uid in self._uids():
                raise AccountsError(f"UID '{uid}' already exists")
            changes.append(f"uid {e[2]} -> {uid}")
            e[2] = str(uid)
        if primary_group is not None:
            gid = self.resolve_group(primary_group)[1]
            if e[3] != str(gid):
                changes.append(f"gid {e[3]} -> {gid}")
                e[3] = str(gid)
        if gecos is not None and e[4] != gecos:
            e[4] = gecos
            changes.append("comment")
        if home is not None and e[5] != home:
            changes.append(f"home {e[5]} -> {home}")
            e[5] = home
        if shell is not None and e[6] != shell:
            e[6] = shell
            changes.append("shell")
        if password is not None:
            check_field(password, "password")
            s = self.shadow.get(name) if self.shadow is not None else None
            if s is not None and e[1] in ("x", ""):
                # usermod -p stamps the change day even when the hash is the same (Ignition passes it
                # on every run); on the same day a second apply is still byte-identical.
                day = str(today() or "")
                if s[1] != password or s[2] != day:
                    s[1] = password
                    s[2] = day
                    changes.append("password")
            elif e[1] != password:
                e[1] = password
                changes.append("password")
        if groups:
            wanted = [self.resolve_group(g)[0] for g in groups]
            changed = False
            for g in self.group.entries():
                if g[0] in wanted:
                    continue
                if name in g[3].split(","):
                    changed |= self._remove_member(g[0], name)
            if self.gshadow is not None:
                for s in self.gshadow.entries():
                    if s[0] not in wanted and name in s[3].split(","):
                        changed |= self._remove_member(s[0], name)
            for group in wanted:
                changed |= self._add_member(group, name)
            if changed:
                changes.append("groups " + ",".join(wanted))
        return changes

    def del_user(self, name: str) -> UserInfo:
        """userdel NAME (home and mail spool are the caller's business); returns the removed entry."""
        info = self.user(name)
        if info is None:
            raise AccountsError(f"user '{name}' does not exist")
        self.passwd.remove(name)
        if self.shadow is not None:
            self.shadow.remove(name)
        for g in self.group.entries():
            self._remove_member(g[0], name, admins=True)
        if self.gshadow is not None:
            for s in self.gshadow.entries():
                self._remove_member(s[0], name, admins=True)
        for f in (self.subuid, self.subgid):
            if f is not None:
                f.remove(name)
        # The user's own group goes too, as userdel does with USERGROUPS_ENAB, unless it still serves.
        own = self.group.get(name)
        if own is not None and self.defs.usergroups_enab:
            if own[2] != str(info.gid):
                self.warnings.append(
                    f"group {name} not removed because it is not the primary group of user {name}"
                )
            elif [m for m in own[3].split(",") if m]:
                self.warnings.append(f"group {name} not removed because it has other members")
            elif any(u[3] == own[2] for u in self.passwd.entries()):
                self.warnings.append(f"group {name} is the primary group of another user and is not removed")
            else:
                self.group.remove(name)
                if self.gshadow is not None:
                    self.gshadow.remove(name)
        return info
