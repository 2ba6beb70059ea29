"""What "the root" is: a plain directory, or an OSTree sysroot.

:meth:`Target.resolve` turns a path from a config into a host path the way Ignition's files stage
does, but without its escapes: every component except the last is followed if it is a symlink, and
the link is interpreted *inside* the root (absolute targets re-rooted, ``..`` clamped at the root),
so the result always lies under the root. The last component is never followed (a config entry
names the node itself, which may be a link).

An OSTree sysroot (``ostree/deploy/OS/deploy/CHECKSUM.SERIAL``) is seen as the running system will
see it: ``/`` is the newest deployment, ``/var`` is the stateroot's ``ostree/deploy/OS/var`` (a
bind mount at boot), so ``/etc`` lands in the deployment's ``etc`` and ``/home`` -> ``var/home``
lands in the stateroot.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pineinstall.errors import PineError

MAX_LINK_HOPS = 40  # what the kernel allows (ELOOP)


class TargetError(PineError):
    """The root, or a path inside it, cannot be used."""


def _split(path: str) -> list[str]:
    return [c for c in path.split("/") if c and c != "."]


class Target:
    """A root directory with path resolution confined to it.

    ``mounts`` maps a path inside the root (a tuple of components, e.g. ``("var",)``) to the host
    directory that appears there, as a bind mount would.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        mounts: dict[tuple[str, ...], Path] | None = None,
        kind: str = "plain",
        sysroot: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.mounts = dict(mounts or {})
        self.kind = kind
        self.sysroot = sysroot if sysroot is not None else self.root
        self._init_system: str | bool | None = False  # False: not computed yet
        self._root_str = str(self.root).rstrip("/") or ""
        self._cache: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"Target({str(self.root)!r}, kind={self.kind!r})"

    # --- mapping components to host paths ----------------------------------------------------------

    def host(self, components: list[str] | tuple[str, ...]) -> Path:
        """The host path of already-resolved components (longest mount prefix wins)."""
        return Path(self.host_str(components))

    def host_str(self, components: list[str] | tuple[str, ...]) -> str:
        """:meth:`host` as a string (the hot path: no pathlib objects)."""
        if self.mounts:
            comps = tuple(components)
            for n in range(len(comps), 0, -1):
                base = self.mounts.get(comps[:n])
                if base is not None:
                    return "/".join([str(base), *comps[n:]])
        return "/".join([self._root_str, *components]) if components else (self._root_str or "/")

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """While nothing writes to the root, remember resolved directories (many entries share
        parents); the memory is dropped on exit."""
        self._cache = {}
        try:
            yield
        finally:
            self._cache = None

    def _follow(self, pending: list[str]) -> list[str]:
        """Resolve every component of ``pending`` (all of them followed) inside the root."""
        current: list[str] = []
        hops = 0
        pending = list(reversed(pending))  # a stack: the next component is at the end
        mounts = self.mounts
        while pending:
            comp = pending.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if current:
                    current.pop()
                continue
            current.append(comp)
            if mounts and tuple(current) in mounts:
                continue  # a mount point is a directory, never a link
            host = self.host_str(current)
            try:
                st = os.lstat(host)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISLNK(st.st_mode):
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise TargetError(f"too many levels of symbolic links resolving {'/' + '/'.join(current)}")
            link = os.readlink(host)
            current.pop()
            if link.startswith("/"):
                current = []  # re-rooted: an absolute link means the target's /, not the host's
            pending.extend(reversed(link.split("/")))
        return current

    def components(self, path: str) -> list[str]:
        """The resolved components of a config path (last component not followed)."""
        if not path.startswith("/"):
            raise TargetError(f"path not absolute: {path!r}")
        parent, _, last = path.rpartition("/")
        if last in ("", ".", ".."):
            # "/a/b/", "/a/." and "/a/.." name a directory: follow everything
            return self._follow(path.split("/"))
        cache = self._cache
        if cache is not None:
            hit = cache.get(parent)
            if hit is None:
                hit = cache[parent] = self._follow(parent.split("/"))
            return [*hit, last]
        return [*self._follow(parent.split("/")), last]

    def resolve(self, path: str) -> Path:
        """Config path -> host path; never outside the root (or its mounts)."""
        return self.host(self.components(path))

    def resolve_all(self, path: str) -> Path:
        """Like :meth:`resolve` but the last component is followed too (for reading files)."""
        if not path.startswith("/"):
            raise TargetError(f"path not absolute: {path!r}")
        return self.host(self._follow(path.split("/")))

    def config_path(self, host_path: Path) -> str:
        """Host path -> the path as seen inside the root (for messages and records)."""
        host_path = Path(host_path)
        best: tuple[int, str] | None = None
        for comps, base in [*self.mounts.items(), ((), self.root)]:
            try:
                rel = host_path.relative_to(base)
            except ValueError:
                continue
            depth = len(base.parts)
            if best is None or depth > best[0]:
                inner = "/".join([*comps, *([] if str(rel) == "." else rel.parts)])
                best = (depth, "/" + inner)
        return best[1] if best else str(host_path)

    # --- facts about the target --------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.resolve(path))

    @property
    def init_system(self) -> str | None:
        """``"systemd"``, ``"openrc"`` or None (neither recognisable, e.g. a bare test root)."""
        if self._init_system is False:
            self._init_system = self._detect_init()
        return self._init_system  # type: ignore[return-value]

    def _detect_init(self) -> str | None:
        systemd = any(
            self.exists(p)
            for p in (
                "/usr/lib/systemd/systemd",
                "/lib/systemd/systemd",
                "/usr/bin/systemctl",
                "/bin/systemctl",
            )
        )
        if systemd:
            return "systemd"
        if self.exists("/sbin/openrc") or self.exists("/usr/sbin/openrc"):
            return "openrc"
        if self.exists("/etc/systemd/system"):
            return "systemd"
        return None

    def read_text(self, path: str) -> str | None:
        """The contents of a file of the target (links followed inside it), None when absent."""
        try:
            return self.resolve_all(path).read_text(encoding="utf-8", errors="surrogateescape")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _ids(self, path: str, name: str) -> int | None:
        text = self.read_text(path)
        if text is None:
            return None
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[0] == name:
                try:
                    return int(fields[2])
                except ValueError:
                    return None
        return None

    def uid_of(self, name: str) -> int | None:
        """A user's uid from the TARGET's /etc/passwd (never the host's)."""
        return self._ids("/etc/passwd", name)

    def gid_of(self, name: str) -> int | None:
        """A group's gid from the TARGET's /etc/group."""
        return self._ids("/etc/group", name)


# --- opening a root --------------------------------------------------------------------------------


def _deployments(sysroot: Path) -> list[tuple[str, Path]]:
    found = []
    deploy = sysroot / "ostree" / "deploy"
    if not deploy.is_dir():
        return []
    for osdir in sorted(deploy.iterdir()):
        ddir = osdir / "deploy"
        if not ddir.is_dir():
            continue
        for dep in sorted(ddir.iterdir()):
            # CHECKSUM.SERIAL directories; the .origin files beside them are not deployments
            if dep.is_dir() and not dep.is_symlink() and "." in dep.name:
                found.append((osdir.name, dep))
    return found


def _booted_by_loader(sysroot: Path) -> Path | None:
    """The deployment of the default boot entry (highest ``version``) in ``boot/loader/entries``."""
    best: tuple[int, Path] | None = None
    entries = sysroot / "boot" / "loader" / "entries"
    if not entries.is_dir():
        return None
    for conf in entries.glob("*.conf"):
        version, ostree_arg = 0, None
        for line in conf.read_text(errors="replace").splitlines():
            key, _, value = line.strip().partition(" ")
            if key == "version":
                with contextlib.suppress(ValueError):
                    version = int(value.strip())
            elif key == "options":
                for arg in value.split():
                    if arg.startswith("ostree="):
                        ostree_arg = arg[len("ostree=") :]
        if ostree_arg is None:
            continue
        # ostree=/ostree/boot.N/OS/BOOTCSUM/SERIAL is a chain of relative links to the deployment
        link = sysroot / ostree_arg.lstrip("/")
        try:
            real = link.resolve(strict=True)
            real.relative_to(sysroot.resolve())
        except (OSError, ValueError):
            continue
        if best is None or version > best[0]:
            best = (version, real)
    return best[1] if best else None


def as_target(root: Target | str | os.PathLike[str]) -> Target:
    """``root`` itself when it is a :class:`Target` (e.g. an OSTree deployment's), else a plain
    one for the directory."""
    return root if isinstance(root, Target) else Target(root)


def open_target(root: str | os.PathLike[str]) -> Target:
    """A :class:`Target` for ``root``: an OSTree sysroot when it holds deployments, else plain."""
    sysroot = Path(root)
    if not sysroot.is_dir():
        raise TargetError(f"root {str(sysroot)!r} is not a directory")
    deps = _deployments(sysroot)
    if not deps:
        return Target(sysroot)
    chosen = _booted_by_loader(sysroot)
    match = [d for d in deps if chosen is not None and d[1].resolve() == chosen]
    if match:
        osname, dep = match[0]
    else:
        # no boot entries (an image being prepared): the most recently deployed one
        osname, dep = max(deps, key=lambda d: (d[1].stat().st_mtime, d[1].name))
    var = sysroot / "ostree" / "deploy" / osname / "var"
    return Target(dep, mounts={("var",): var}, kind="ostree", sysroot=sysroot)
