"""The target's ``/etc/login.defs`` and ``/etc/default/useradd``, read as shadow-utils reads them.

A key missing from ``login.defs``, or the whole file missing (Alpine and Pine have none), takes
shadow-utils' built-in default, exactly what useradd does then: UIDs/GIDs 1000-60000, system IDs
101-999 counted down, ``USERGROUPS_ENAB`` off (new users get ``/etc/default/useradd``'s GROUP, 100),
ageing fields left empty, UMASK 022 (homes 0755). Configs that want user groups on such a target
name a ``primaryGroup`` or ship a ``login.defs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def _parse(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        value = parts[1].strip() if len(parts) > 1 else ""
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[parts[0]] = value
    return out


def _num(value: str | None, default: int) -> int:
    """strtol(base 0) as getdef_num: ``022`` is octal, ``0x10`` hex; garbage gives the default."""
    if value is None or value == "":
        return default
    v = value.strip()
    neg = v.startswith("-")
    if neg:
        v = v[1:]
    try:
        if v.lower().startswith("0x"):
            n = int(v[2:], 16)
        elif v.startswith("0") and len(v) > 1:
            n = int(v[1:], 8)
        else:
            n = int(v, 10)
    except ValueError:
        return default
    return -n if neg else n


@dataclass(frozen=True, slots=True)
class LoginDefs:
    uid_min: int = 1000
    uid_max: int = 60000
    sys_uid_min: int = 101
    sys_uid_max: int = 999
    gid_min: int = 1000
    gid_max: int = 60000
    sys_gid_min: int = 101
    sys_gid_max: int = 999
    usergroups_enab: bool = False
    umask: int = 0o022
    home_mode: int | None = None
    create_home: bool = False
    pass_min_days: int = -1
    pass_max_days: int = -1
    pass_warn_age: int = -1
    mail_dir: str = "/var/mail"
    sub_uid_min: int = 100000
    sub_uid_max: int = 600100000
    sub_uid_count: int = 65536
    sub_gid_min: int = 100000
    sub_gid_max: int = 600100000
    sub_gid_count: int = 65536
    present: bool = False

    @property
    def new_home_mode(self) -> int:
        """HOME_MODE, else 0777 minus UMASK (what useradd creates a home with)."""
        if self.home_mode is not None:
            return self.home_mode & 0o7777
        return 0o777 & ~self.umask

    @classmethod
    def from_text(cls, text: str | None) -> LoginDefs:
        present = text is not None
        d = _parse(text) if text is not None else {}

        def num(key: str, default: int) -> int:
            return _num(d.get(key), default)

        def boolean(key: str) -> bool:
            return d.get(key, "").lower() == "yes"

        uid_min = num("UID_MIN", 1000)
        gid_min = num("GID_MIN", 1000)
        home_mode = num("HOME_MODE", -1)
        return cls(
            uid_min=uid_min,
            uid_max=num("UID_MAX", 60000),
            sys_uid_min=num("SYS_UID_MIN", 101),
            sys_uid_max=num("SYS_UID_MAX", uid_min - 1),
            gid_min=gid_min,
            gid_max=num("GID_MAX", 60000),
            sys_gid_min=num("SYS_GID_MIN", 101),
            sys_gid_max=num("SYS_GID_MAX", gid_min - 1),
            usergroups_enab=boolean("USERGROUPS_ENAB"),
            umask=num("UMASK", 0o022) & 0o777,
            home_mode=None if home_mode < 0 else home_mode,
            create_home=boolean("CREATE_HOME"),
            pass_min_days=num("PASS_MIN_DAYS", -1),
            pass_max_days=num("PASS_MAX_DAYS", -1),
            pass_warn_age=num("PASS_WARN_AGE", -1),
            mail_dir=d.get("MAIL_DIR") or "/var/mail",
            sub_uid_min=num("SUB_UID_MIN", 100000),
            sub_uid_max=num("SUB_UID_MAX", 600100000),
            sub_uid_count=num("SUB_UID_COUNT", 65536),
            sub_gid_min=num("SUB_GID_MIN", 100000),
            sub_gid_max=num("SUB_GID_MAX", 600100000),
            sub_gid_count=num("SUB_GID_COUNT", 65536),
            present=present,
        )

    @classmethod
    def load(cls, path: Path) -> LoginDefs:
        try:
            text = path.read_text("utf-8", "replace")
        except FileNotFoundError:
            text = None
        return cls.from_text(text)


@dataclass(frozen=True, slots=True)
class UseraddDefaults:
    """``/etc/default/useradd``; missing keys take useradd's built-in defaults."""

    group: str = "100"
    home: str = "/home"
    shell: str | None = None  # None: not configured (see stages.accounts for the fallback)
    skel: str = "/etc/skel"
    inactive: int = -1
    expire: str = ""
    create_mail_spool: bool = False

    @classmethod
    def from_text(cls, text: str | None) -> UseraddDefaults:
        d: dict[str, str] = {}
        for line in (text or "").splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            d[key.strip()] = value.strip().strip('"')
        return cls(
            group=d.get("GROUP") or "100",
            home=d.get("HOME") or "/home",
            shell=d.get("SHELL") or None,
            skel=d.get("SKEL") or "/etc/skel",
            inactive=_num(d.get("INACTIVE"), -1),
            expire=d.get("EXPIRE", ""),
            create_mail_spool=d.get("CREATE_MAIL_SPOOL", "no").lower() == "yes",
        )

    @classmethod
    def load(cls, path: Path) -> UseraddDefaults:
        try:
            text = path.read_text("utf-8", "replace")
        except FileNotFoundError:
            text = None
        return cls.from_text(text)
