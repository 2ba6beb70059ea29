"""systemd units offline: writing units and drop-ins, masking, and what ``systemctl --root enable``
and ``disable`` do with a unit's ``[Install]`` section.

Enabling creates, under ``/etc/systemd/system``: ``TARGET.wants/NAME`` for each ``WantedBy=``,
``TARGET.requires/NAME`` for ``RequiredBy=`` (``UpheldBy=`` is ignored, as systemd 252 does), and a link
``ALIAS`` for each ``Alias=``, all pointing at the unit file's path inside the root; ``Also=`` units
are enabled too. Templates: enabling ``foo@bar.service`` uses ``foo@.service``'s file and names the
links ``foo@bar.service``; enabling ``foo@.service`` uses ``DefaultInstance=``. Specifiers ``%n %N
%p %i %j %%`` are expanded. Disabling removes every link in ``/etc/systemd/system`` named like the
unit (and its ``Also=`` units) or, for a non-instance, pointing at its file. Masks (links to
``/dev/null``) are left to :func:`mask`/:func:`unmask`. The link sets are checked against Debian's
``systemctl --root`` in tests/integration/test_services_systemctl.py.

Paths are config paths resolved through the target, so nothing lands outside the root.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pineinstall.atomicfile import replace_file
from pineinstall.errors import PineError
from pineinstall.target import Target

CONFIG_DIR = "/etc/systemd/system"
# The unit search path of the system manager, as Debian's systemctl --root walks it (runtime dirs
# are empty in an offline root; its split-usr build looks in /lib before /usr/lib, and names links
# after /lib even when /lib is a link to usr/lib).
SEARCH_PATH = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
UNIT_SUFFIXES = (
    ".service", ".socket", ".device", ".mount", ".automount", ".swap", ".target", ".path", ".timer",
    ".slice", ".scope",
)  # fmt: skip


class SystemdError(PineError):
    """A unit cannot be written, enabled or masked as asked."""


# --- names ---------------------------------------------------------------------------------------------


def split_name(name: str) -> tuple[str, str | None, str]:
    """``foo@bar.service`` -> (``foo``, ``bar``, ``.service``); instance None for non-templates, ""
    for a bare template."""
    dot = name.rfind(".")
    if dot <= 0 or name[dot:] not in UNIT_SUFFIXES:
        raise SystemdError(f"invalid unit name {name!r}")
    stem, suffix = name[:dot], name[dot:]
    if "@" in stem:
        prefix, _, instance = stem.partition("@")
        return prefix, instance, suffix
    return stem, None, suffix


def template_of(name: str) -> str | None:
    prefix, instance, suffix = split_name(name)
    return None if instance is None else f"{prefix}@{suffix}"


def with_instance(name: str, instance: str) -> str:
    prefix, _, suffix = split_name(name)
    return f"{prefix}@{instance}{suffix}"


def check_name(name: str) -> None:
    split_name(name)
    if "/" in name or name in (".", ".."):
        raise SystemdError(f"invalid unit name {name!r}")


# --- [Install] -------------------------------------------------------------------------------------


@dataclass
class InstallInfo:
    wanted_by: list[str] = field(default_factory=list)
    required_by: list[str] = field(default_factory=list)
    alias: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    default_instance: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.wanted_by or self.required_by or self.alias or self.also)


_LIST_KEYS = {"WantedBy": "wanted_by", "RequiredBy": "required_by", "Alias": "alias", "Also": "also"}


def parse_install(text: str) -> InstallInfo:
    """The ``[Install]`` section of a unit file (continuations, comments, empty-resets handled)."""
    info = InstallInfo()
    section = None
    logical: list[str] = []
    pending = ""
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if pending:
            stripped = line.lstrip()
            if stripped.startswith(("#", ";")):
                continue  # comment lines inside a continuation are skipped, as systemd does
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        logical.append(line)
    if pending:
        logical.append(pending)
    for line in logical:
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
            continue
        if section != "Install" or "=" not in s:
            continue
        key, _, value = s.partition("=")
        key, value = key.strip(), value.strip()
        if key in _LIST_KEYS:
            attr = _LIST_KEYS[key]
            if value == "":
                setattr(info, attr, [])
            else:
                getattr(info, attr).extend(value.split())
        elif key == "DefaultInstance":
            info.default_instance = value or None
    return info


def expand(value: str, name: str) -> str:
    """Unit specifiers systemctl expands in ``[Install]``: %n %N %p %i %j %%."""
    prefix, instance, suffix = split_name(name)
    stem = name[: -len(suffix)]
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c != "%" or i + 1 >= len(value):
            out.append(c)
            i += 1
            continue
        spec = value[i + 1]
        i += 2
        if spec == "%":
            out.append("%")
        elif spec == "n":
            out.append(name)
        elif spec == "N":
            out.append(stem)
        elif spec == "p":
            out.append(prefix)
        elif spec == "i":
            out.append(instance or "")
        elif spec == "j":
            out.append(prefix.rsplit("-", 1)[-1])
        else:
            raise SystemdError(f"{name}: specifier %{spec} in [Install] is not supported offline")
    return "".join(out)


# --- finding unit files --------------------------------------------------------------------------------


def _host(target: Target, path: str) -> Path:
    return Path(target.resolve(path))


def _resolve_all(target: Target, path: str) -> Path:
    return target.resolve_all(path)


def find_unit(target: Target, name: str) -> tuple[str, Path] | None:
    """(config path, host path of its contents) of the unit file systemd would load for ``name``.

    An instance without a file of its own uses its template's. A link to ``/dev/null`` is returned
    as is (the caller sees a mask).
    """
    candidates = [name]
    tmpl = template_of(name)
    if tmpl is not None and tmpl != name:
        candidates.append(tmpl)
    for cand in candidates:
        for d in SEARCH_PATH:
            path = f"{d}/{cand}"
            host = _host(target, path)
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISLNK(st.st_mode):
                if os.readlink(host) == "/dev/null":
                    return path, host
                real = _resolve_all(target, path)
                if real.is_file():
                    return path, real
                continue
            if stat.S_ISREG(st.st_mode):
                return path, host
    return None


def is_masked(target: Target, name: str) -> bool:
    host = _host(target, f"{CONFIG_DIR}/{name}")
    return host.is_symlink() and os.readlink(host) == "/dev/null"


# --- writing ------------------------------------------------------------------------------------------


def _mkdirs(target: Target, path: str) -> None:
    """Create the directories of ``path`` (a config path) 0755 root:root, inside the root."""
    comps = [c for c in path.split("/") if c]
    for n in range(1, len(comps) + 1):
        p = "/" + "/".join(comps[:n])
        host = _resolve_all(target, p)  # a link on the way is followed inside the root
        if host.is_dir():
            continue
        if os.path.lexists(host):
            raise SystemdError(f"{p} exists and is not a directory")
        # A dangling link on the way may name several missing directories (inside the root).
        os.makedirs(host, 0o755, exist_ok=True)
        os.chmod(host, 0o755)


def write_file(target: Target, path: str, contents: str, mode: int = 0o644) -> bool:
    """Write a unit or drop-in file (temp + rename); False when it already is exactly that."""
    data = contents.encode("utf-8")
    _mkdirs(target, path.rsplit("/", 1)[0])
    host = _host(target, path)
    try:
        st = os.lstat(host)
        if (
            stat.S_ISREG(st.st_mode)
            and stat.S_IMODE(st.st_mode) == mode
            and (st.st_uid, st.st_gid) == (0, 0)
            and host.read_bytes() == data
        ):
            return False
        if stat.S_ISDIR(st.st_mode):
            raise SystemdError(f"{path} is a directory")
    except FileNotFoundError:
        pass
    replace_file(host, data, mode, owner=(0, 0))
    return True


def _remove_any(host: Path) -> None:
    if host.is_dir() and not host.is_symlink():
        import shutil

        shutil.rmtree(host)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(host)


def mask(target: Target, name: str) -> bool:
    """``/etc/systemd/system/NAME`` -> ``/dev/null`` (whatever was there is removed, as Ignition)."""
    check_name(name)
    if is_masked(target, name):
        return False
    _mkdirs(target, CONFIG_DIR)
    host = _host(target, f"{CONFIG_DIR}/{name}")
    _remove_any(host)
    os.symlink("/dev/null", host)
    return True


def unmask(target: Target, name: str) -> bool:
    """Remove our ``/dev/null`` link; anything else at that place is left alone."""
    check_name(name)
    if not is_masked(target, name):
        return False
    os.unlink(_host(target, f"{CONFIG_DIR}/{name}"))
    return True


# --- enable / disable ----------------------------------------------------------------------------------


@dataclass
class Changes:
    created: list[str] = field(default_factory=list)  # "link -> target"
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _link(target: Target, link: str, dest: str, changes: Changes) -> None:
    host = _host(target, link)
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode) and os.readlink(host) == dest:
            return
        if stat.S_ISLNK(st.st_mode):
            changes.warnings.append(f"{link} pointed to {os.readlink(host)}; now {dest}")
            os.unlink(host)
        else:
            raise SystemdError(f"cannot link {link} -> {dest}: a file exists there")
    _mkdirs(target, link.rsplit("/", 1)[0])
    os.symlink(dest, host)
    changes.created.append(f"{link} -> {dest}")


def enable(
    target: Target, name: str, changes: Changes | None = None, _seen: set[str] | None = None
) -> Changes:
    """What ``systemctl --root=ROOT enable NAME`` does; warnings (not errors) for nothing to do."""
    changes = changes if changes is not None else Changes()
    seen = _seen if _seen is not None else set()
    if name in seen:
        return changes
    seen.add(name)
    check_name(name)
    found = find_unit(target, name)
    if found is None:
        raise SystemdError(f"unit {name} does not exist in the target's unit directories")
    path, host = found
    if host.is_symlink() and os.readlink(host) == "/dev/null":
        raise SystemdError(f"unit {name} is masked")
    info = parse_install(host.read_text("utf-8", "surrogateescape"))
    _, instance, suffix = split_name(name)
    link_name = name
    if instance == "" and info.default_instance:  # a bare template: DefaultInstance names the links
        link_name = with_instance(name, info.default_instance)
    if info.empty and not (instance == "" and info.default_instance):
        changes.warnings.append(
            f"unit {name} has no installation config (WantedBy=, RequiredBy=, Also=, Alias= in "
            "[Install]); it is not meant to be enabled, nothing done"
        )
        return changes
    link_instance = split_name(link_name)[1]
    for attr, dirsuffix in (("wanted_by", ".wants"), ("required_by", ".requires")):
        for dst in getattr(info, attr):
            dst = expand(dst, link_name)
            _, dinstance, _ = split_name(dst)
            if link_instance == "" and dinstance is None:
                raise SystemdError(f"cannot enable {name}: destination unit {dst} is a non-template unit")
            _link(target, f"{CONFIG_DIR}/{dst}{dirsuffix}/{link_name}", path, changes)
    for alias in info.alias:
        alias = expand(alias, link_name)
        _, ainstance, asuffix = split_name(alias)
        if asuffix != suffix:
            raise SystemdError(f"{name}: alias {alias} must have the same type ({suffix})")
        if (instance is None) != (ainstance is None):
            raise SystemdError(f"cannot alias {name} as {alias}")
        if instance and ainstance == "":
            alias = with_instance(alias, instance)
        if alias == name:
            continue
        _link(target, f"{CONFIG_DIR}/{alias}", path, changes)
    for also in info.also:
        also = expand(also, link_name)
        if find_unit(target, also) is None:  # as for the unit itself (services.py): a warning, Ignition's
            changes.warnings.append(f"unit {name}: Also={also} does not exist in the target; not enabling it")
            continue  # preset line for it would be ignored at boot, its files stage succeeds
        if is_masked(target, also):  # systemd's preset skips a masked unit
            changes.warnings.append(f"unit {name}: Also={also} is masked; not enabling it")
            continue
        enable(target, also, changes, seen)
    return changes


def disable(target: Target, name: str, changes: Changes | None = None) -> Changes:
    """What ``systemctl --root=ROOT disable NAME`` does (masks are left alone)."""
    changes = changes if changes is not None else Changes()
    names: set[str] = set()
    paths: set[str] = set()
    pending = [name]
    while pending:
        n = pending.pop()
        if n in names:
            continue
        check_name(n)
        names.add(n)
        found = find_unit(target, n)
        if found is None:
            continue
        path, host = found
        if host.is_symlink() and os.readlink(host) == "/dev/null":
            continue
        if split_name(n)[1] is None or split_name(n)[1] == "":
            paths.add(path)  # instances are matched by name only, as systemctl does
        try:
            info = parse_install(host.read_text("utf-8", "surrogateescape"))
        except OSError:
            continue
        pending.extend(expand(a, n) for a in info.also)
    top = _host(target, CONFIG_DIR)
    if not top.is_dir():
        return changes
    for dirpath, dirnames, filenames in os.walk(top):
        for fname in sorted([*filenames, *dirnames]):
            p = Path(dirpath) / fname
            if not p.is_symlink():
                continue
            dest = os.readlink(p)
            if dest == "/dev/null":
                continue  # a mask, not an enablement
            if fname in names or dest in paths:
                os.unlink(p)
                changes.removed.append(f"{target_path(target, p)}")
                _rmdir_empty_parents(p.parent, top)
    return changes


def _rmdir_empty_parents(d: Path, top: Path) -> None:
    """systemctl removes the .wants/.requires directories it empties (never the config dir)."""
    while d != top and top in d.parents:
        try:
            os.rmdir(d)
        except OSError:
            return
        d = d.parent


def target_path(target: Target, host: Path) -> str:
    return target.config_path(host)


def enabled_links(target: Target) -> set[tuple[str, str]]:
    """Every (link, destination) under /etc/systemd/system except masks: the 'enabled' facts."""
    top = _host(target, CONFIG_DIR)
    out: set[tuple[str, str]] = set()
    if not top.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(top):
        for fname in [*filenames, *dirnames]:
            p = Path(dirpath) / fname
            if p.is_symlink() and os.readlink(p) != "/dev/null":
                out.add((str(p.relative_to(top)), os.readlink(p)))
    return out
