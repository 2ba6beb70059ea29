"""The files stage: groups, users, filesystem nodes, services, then the result record.

Two phases, so that nothing is written before everything that can be checked was checked:

``prepare`` (no writes): every resource (``contents``, ``append``) is fetched and verified into
temporary storage; every path is resolved inside the root (two entries resolving to the same place
are an error); owner names are checked against the target's ``/etc/passwd``/``/etc/group`` plus
the accounts this config creates; entries whose place no other entry touches are checked against
what already exists (the refusal cases of Ignition).

``apply_plan`` then writes, in Ignition's order: groups, users, nodes (directories, files and
symlinks sorted by the depth of their resolved path, stable; hard links last, in config order),
services, and ``/etc/.pine-result.json`` (0600).

Node semantics are those of Ignition's files stage, with the deliberate differences of
DESIGN.md: links are followed inside the root only; ownership is set before the mode (so special
bits survive); an existing file whose contents already equal the configured result is not a
conflict (re-running an install is safe).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pineinstall.config import model
from pineinstall.resources import Fetcher, ResourceError
from pineinstall.stages import Log, StageError
from pineinstall.target import Target, TargetError

RESULT_PATH = "/etc/.pine-result.json"
DEFAULT_FILE_MODE = 0o644
DEFAULT_DIR_MODE = 0o755
SPOOL_MAX = 8 << 20
FETCH_THREADS = 4
MAX_HOPS_IN_CONFIG = 40  # fetched data above this size goes to a temporary file, not memory


# --- the plan --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One node to create: its config object, resolved components, and fetched data."""

    kind: str  # "directory" | "file" | "link" | "hardlink"
    node: model.File | model.Directory | model.Link
    comps: list[str]
    data: IO[bytes] | None = None  # for files: contents + appends, fetched and verified
    has_source: bool = False
    sha256: str | None = None  # of ``data``

    @property
    def path(self) -> str:
        return self.node.path

    @property
    def depth(self) -> int:
        return len(self.comps)


@dataclass
class Plan:
    config: model.Config
    entries: list[Entry] = field(default_factory=list)
    config_hash: str = ""

    def close(self) -> None:
        for e in self.entries:
            if e.data is not None:
                e.data.close()


@dataclass
class Result:
    """What the stage did: counts per kind and the files it wrote (path -> sha256)."""

    created: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    files: dict[str, str] = field(default_factory=dict)
    fragments: dict[str, str] = field(default_factory=dict)  # path -> sha256 of appended data
    seconds: float = 0.0
    result_path: Path | None = None

    def count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1


# --- small helpers ---------------------------------------------------------------------------------


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_sha256(data: IO[bytes]) -> str:
    h = hashlib.sha256()
    data.seek(0)
    for chunk in iter(lambda: data.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _same_contents(p: Path, entry: Entry) -> bool:
    assert entry.data is not None
    try:
        st = os.stat(p)
    except OSError:
        return False
    entry.data.seek(0, os.SEEK_END)
    if st.st_size != entry.data.tell():
        return False
    return _file_sha256(p) == entry.sha256


def _depth_key(e: Entry) -> int:
    return e.depth


class _Names:
    """Owner names: the target's passwd/group, re-read after the accounts stage wrote them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.users: dict[str, int] = {}
        self.groups: dict[str, int] = {}
        self.reload()

    @staticmethod
    def _parse(text: str | None) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in (text or "").splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[0] and f[0] not in out:
                with contextlib.suppress(ValueError):
                    out[f[0]] = int(f[2])
        return out

    def reload(self) -> None:
        self.users = self._parse(self.target.read_text("/etc/passwd"))
        self.groups = self._parse(self.target.read_text("/etc/group"))

    def ids(self, node: Any, default_uid: int, default_gid: int) -> tuple[int, int]:
        uid, gid = default_uid, default_gid
        if node.user.id is not None:
            uid = node.user.id
        elif node.user.name:
            if node.user.name not in self.users:
                raise StageError(f"no such user {node.user.name!r} in the target's /etc/passwd")
            uid = self.users[node.user.name]
        if node.group.id is not None:
            gid = node.group.id
        elif node.group.name:
            if node.group.name not in self.groups:
                raise StageError(f"no such group {node.group.name!r} in the target's /etc/group")
            gid = self.groups[node.group.name]
        return uid, gid


# --- phase 1: prepare (no writes) ------------------------------------------------------------------


def _fetch_file_data(f: model.File, fetcher: Fetcher) -> tuple[IO[bytes] | None, bool]:
    """contents followed by the append fragments, each verified; None when there is nothing."""
    has_source = f.contents.source is not None
    if not has_source and not f.append:
        return None, False
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115 - owned by the plan
    try:
        if has_source:
            fetcher.fetch_to(f.contents, out)
        for frag in f.append:
            if frag.source is not None:
                out.seek(0, os.SEEK_END)
                fetcher.fetch_to(frag, out)
    except ResourceError:
        out.close()
        raise
    return out, has_source


def _declared_names(config: model.Config, target: Target) -> tuple[set[str], set[str]]:
    """Users and groups this config creates (they may own nodes before they exist)."""
    users = {u.name for u in config.passwd.users if u.should_exist is not False}
    groups = {g.name for g in config.passwd.groups if g.should_exist is not False}
    try:
        from pineinstall.accounts.logindefs import LoginDefs

        user_groups = LoginDefs.from_text(target.read_text("/etc/login.defs")).usergroups_enab
    except ImportError:
        user_groups = True
    for u in config.passwd.users:
        if user_groups and u.should_exist is not False and not u.no_user_group:
            groups.add(u.name)  # the user's own group (login.defs USERGROUPS_ENAB)
    return users, groups


class Fetched:
    """Every file's data (``contents`` then ``append``), fetched and verified ahead of time, e.g. by
    an installer before it writes a disk; handed to :func:`prepare`, which then fetches nothing."""

    def __init__(self) -> None:
        self.data: dict[int, tuple[IO[bytes] | None, bool, str | None]] = {}

    def take(self, index: int) -> tuple[IO[bytes] | None, bool, str | None] | None:
        return self.data.pop(index, None)

    def close(self) -> None:
        for data, _src, _sha in self.data.values():
            if data is not None:
                data.close()
        self.data.clear()


def fetch_all(config: model.Config, fetcher: Fetcher, log: Log) -> Fetched:
    """Fetch and verify the data of every ``storage.files`` entry; nothing is written anywhere."""
    fetched = Fetched()
    entries = config.storage.files
    remote = [i for i, f in enumerate(entries) if _remote(f)]
    try:
        if len(remote) > 1:
            # several servers (or one slow one): fetch up to FETCH_THREADS at a time
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(remote))) as pool:
                futures = {i: pool.submit(_fetch_one, entries[i], fetcher, log) for i in remote}
            errors = []
            for i, fut in futures.items():
                if fut.exception() is not None:
                    errors.append(fut.exception())
                else:
                    fetched.data[i] = fut.result()
            if errors:
                raise errors[0]  # the first in config order
        for i, f in enumerate(entries):
            if i not in fetched.data:
                fetched.data[i] = _fetch_one(f, fetcher, log)
    except BaseException:
        fetched.close()
        raise
    return fetched


def _fetch_one(f: model.File, fetcher: Fetcher, log: Log) -> tuple[IO[bytes] | None, bool, str | None]:
    with log.op(f"fetching contents of {f.path}") if _remote(f) else _nullctx():
        try:
            data, has_source = _fetch_file_data(f, fetcher)
        except ResourceError as exc:
            raise StageError(f"failed to fetch contents of {f.path}: {exc}") from exc
    return data, has_source, (_data_sha256(data) if data is not None else None)


def prepare(
    config: model.Config, target: Target, log: Log, fetcher: Fetcher, *, fetched: Fetched | None = None
) -> Plan:
    """Everything that can be checked, checked; every resource fetched (unless ``fetched`` holds
    it already). Writes nothing."""
    plan = Plan(config)
    try:
        with target.frozen():
            _collect(plan, target, log, fetcher, fetched)
        _check_owners(plan, target)
        _check_units(config, target)
        _precheck_conflicts(plan, target)
    except BaseException:
        plan.close()
        raise
    # a digest of the whole config, to recognise a re-run of the same config
    plan.config_hash = hashlib.sha256(repr(config).encode()).hexdigest()
    return plan


def _collect(plan: Plan, target: Target, log: Log, fetcher: Fetcher, fetched: Fetched | None) -> None:
    """Resolve every node's path (duplicates refused) and fetch every file's data."""
    st = plan.config.storage
    resolved: dict[tuple[str, ...], str] = {}
    raw: list[tuple[str, Any, int]] = (
        [("directory", d, i) for i, d in enumerate(st.directories)]
        + [("file", f, i) for i, f in enumerate(st.files)]
        + [("hardlink" if lk.hard else "link", lk, i) for i, lk in enumerate(st.links)]
    )
    for kind, node, index in raw:
        try:
            comps = target.components(node.path)
        except TargetError as exc:
            raise StageError(f"{node.path}: {exc}") from exc
        key = tuple(comps)
        if key in resolved:
            label = {"directory": "Directory", "file": "File"}.get(kind, "Link")
            raise StageError(
                f"{label} at {node.path} resolved to /{'/'.join(comps)} after symlink chasing, "
                f"but another entry with path {resolved[key]} also resolves there"
            )
        resolved[key] = node.path
        entry = Entry(kind, node, comps)
        plan.entries.append(entry)  # from here on the plan owns (and closes) the entry's data
        if kind == "file":
            got = fetched.take(index) if fetched is not None else None
            entry.data, entry.has_source, entry.sha256 = got or _fetch_one(node, fetcher, log)


def _remote(f: model.File) -> bool:
    sources = [f.contents.source, *(a.source for a in f.append)]
    return any(s and not s.startswith("data:") for s in sources)


@contextlib.contextmanager
def _nullctx() -> Any:
    yield


def _ordered(entries: list[Entry]) -> list[Entry]:
    """Ignition's creation order: by depth (stable), hard links last in config order."""
    ordered = sorted((e for e in entries if e.kind != "hardlink"), key=_depth_key)
    return ordered + [e for e in entries if e.kind == "hardlink"]


ACCOUNT_FILES = {("etc",): "both", ("etc", "passwd"): "users", ("etc", "group"): "groups"}


def _check_owners(plan: Plan, target: Target) -> None:
    """Owner names resolve when their node is made: against the target's passwd/group, the
    accounts this config creates, and whatever the config's own earlier nodes do to those files
    (names are looked up at each node, as Ignition does). None means "cannot tell": no check."""
    names = _Names(target)
    declared_users, declared_groups = _declared_names(plan.config, target)
    users: set[str] | None = set(names.users) | declared_users
    groups: set[str] | None = set(names.groups) | declared_groups
    for e in _ordered(plan.entries):
        n = e.node
        if users is not None and n.user.id is None and n.user.name and n.user.name not in users:
            raise StageError(f"{n.path}: no such user {n.user.name!r} in the target's /etc/passwd")
        if groups is not None and n.group.id is None and n.group.name and n.group.name not in groups:
            raise StageError(f"{n.path}: no such group {n.group.name!r} in the target's /etc/group")
        which = ACCOUNT_FILES.get(tuple(e.comps))
        if which is None:
            continue
        if which == "both":
            if n.overwrite or e.kind != "directory":
                users, groups = set(), set()  # /etc emptied or replaced
            continue
        if e.kind == "file" and e.data is not None:
            e.data.seek(0)
            found = set(_Names._parse(e.data.read().decode("utf-8", "replace")))
            if which == "users":
                users = found if e.has_source else (users | found if users is not None else None)
            else:
                groups = found if e.has_source else (groups | found if groups is not None else None)
        elif e.kind != "directory" and not (e.kind == "file" and not n.overwrite):
            # a link or a replaced file whose contents are not known here
            users, groups = (None, groups) if which == "users" else (users, None)


def _check_units(config: model.Config, target: Target) -> None:
    if config.systemd.units and target.init_system == "openrc":
        raise StageError(
            "systemd units are configured but the target runs OpenRC (no systemd, /sbin/openrc present)"
        )


def _hard_target_key(
    path: str, by_key: dict[tuple[str, ...], Entry], target: Target
) -> tuple[tuple[str, ...], bool]:
    """Where a hard link's target will be when the link is made (hard links come last): through
    the symlinks this config makes, and whether a directory on the way is emptied (overwrite)."""
    key = tuple(target.components(path))
    for _ in range(MAX_HOPS_IN_CONFIG):
        for n in range(1, len(key)):
            above = by_key.get(key[:n])
            if above is None:
                continue
            if above.kind == "link":
                link_target = above.node.target or ""  # type: ignore[union-attr]
                base = "" if link_target.startswith("/") else "/" + "/".join(key[: n - 1])
                key = tuple(target.components(f"{base}/{link_target}/" + "/".join(key[n:])))
                break
            if above.kind in ("file", "hardlink"):
                raise TargetError(f"/{'/'.join(key[:n])} is a file in this config")
            if above.node.overwrite:
                return key, True
        else:
            return key, False
    raise TargetError("too many levels of symbolic links in this config")


def _precheck_conflicts(plan: Plan, target: Target) -> None:
    """Refusals that can be seen now, for entries whose place nothing else in the config touches."""
    keys = [tuple(e.comps) for e in plan.entries]
    all_keys = set(keys)
    homes = [
        tuple(target.components(u.home_dir or f"/home/{u.name}"))
        for u in plan.config.passwd.users
        if u.should_exist is not False
    ]
    by_key = dict(zip(keys, plan.entries, strict=True))
    for e, key in zip(plan.entries, keys, strict=True):
        # a file of this very config cannot hold other nodes
        for n in range(1, len(key)):
            above = by_key.get(key[:n])
            if above is not None and above.kind in ("file", "hardlink"):
                raise StageError(
                    f"error creating {e.path}: {above.path} is a file in this config, not a directory"
                )
        touched = any(key[:n] in all_keys for n in range(len(key))) or any(key[: len(h)] == h for h in homes)
        if touched:
            continue
        # nor can a file that is already there (resolution left no links among the parents)
        for n in range(1, len(key)):
            st = _lstat(target.host(key[:n]))
            if st is None:
                break
            if not stat.S_ISDIR(st.st_mode):
                raise StageError(f"error creating {e.path}: /{'/'.join(key[:n])} is not a directory")
        if e.node.overwrite or e.kind == "hardlink":
            continue
        _refusal(e, target.host(e.comps), target, dry_run=True)
    # a hard link needs its target: a file that is there, or one this config makes first
    for e in plan.entries:
        if e.kind != "hardlink":
            continue
        link = e.node
        assert isinstance(link, model.Link)
        try:
            tkey, emptied = _hard_target_key(link.target or "", by_key, target)
        except TargetError as exc:
            raise StageError(f"error creating hard link {e.path}: {exc}") from exc
        made = by_key.get(tkey)
        if made is None and emptied:
            raise StageError(f"error creating hard link {e.path}: target {link.target} will not exist")
        if made is e:
            made = None  # a link to itself: the node that is there
        st = _lstat(target.host(tkey))  # for a target the config makes: what is there now
        here = _lstat(target.host(tuple(e.comps)))
        if made is None:
            if st is None:
                raise StageError(f"error creating hard link {e.path}: target {link.target} does not exist")
            if here is not None and (here.st_dev, here.st_ino) == (st.st_dev, st.st_ino):
                continue  # already that very link
            if stat.S_ISDIR(st.st_mode):
                raise StageError(f"error creating hard link {e.path}: {link.target} is a directory")
        elif made.kind == "directory":
            raise StageError(f"error creating hard link {e.path}: {link.target} is a directory")
        key = tuple(e.comps)
        if link.overwrite or any(key[:n] in all_keys for n in range(len(key))):
            continue
        if here is not None and (st is None or (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino)):
            raise StageError(
                f"error creating hard link {e.path}: a file already exists at that path "
                "but is not the target and overwrite is false"
            )
    # the result record is written last, into /etc: nothing in the config may take /etc's place
    record = tuple(target.components(RESULT_PATH))
    for n in range(1, len(record)):
        above = by_key.get(record[:n])
        if above is not None and above.kind != "directory":
            raise StageError(
                f"{above.path} would replace the directory of the result record {RESULT_PATH} "
                f"with a {'file' if above.kind != 'link' else 'symlink'}"
            )


# --- phase 2: apply --------------------------------------------------------------------------------


class _Parents:
    """Creates missing parents 0755 root:root, never through a link. Directories already checked
    are remembered until an entry that may replace one (overwrite, links) runs."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.known: set[tuple[str, ...]] = set()

    def forget(self) -> None:
        self.known.clear()

    def ensure(self, comps: list[str]) -> None:
        for n in range(1, len(comps)):
            key = tuple(comps[:n])
            if key in self.known:
                continue
            p = self.target.host_str(key)
            st = _lstat(Path(p))
            if st is None:
                os.mkdir(p, DEFAULT_DIR_MODE)
                os.chown(p, 0, 0)
                os.chmod(p, DEFAULT_DIR_MODE)  # the umask must not decide
            elif stat.S_ISLNK(st.st_mode):
                # resolution guarantees this cannot happen; refuse rather than follow out of the root
                raise StageError(f"{self.target.config_path(Path(p))} is a symlink in the way")
            self.known.add(key)


def _mkdir_parents(target: Target, comps: list[str]) -> None:
    _Parents(target).ensure(comps)


def _refusal(e: Entry, p: Path, target: Target, *, dry_run: bool = False) -> str | None:
    """Ignition's refusal cases for an existing node (overwrite false). Returns "same" when the
    node is already what the config asks (nothing to write), None when creation may go on."""
    st = _lstat(p)
    if st is None:
        return None
    path = e.path
    if e.kind == "file":
        if not stat.S_ISREG(st.st_mode):
            raise StageError(
                f"error creating file {json.dumps(path)}: A non regular file exists there already and overwrite is false"
            )
        if not e.has_source:
            return None  # existing contents kept (appends, if any, are decided at write time)
        if _same_contents(p, e):
            return "same"
        raise StageError(
            f"error creating file {json.dumps(path)}: A file exists there already and overwrite is false"
        )
    if e.kind == "directory":
        if not stat.S_ISDIR(st.st_mode):
            raise StageError(
                f"error creating directory {path}: A non-directory already exists and overwrite is false"
            )
        return "same"
    link = e.node
    assert isinstance(link, model.Link)
    if e.kind == "hardlink":
        if dry_run:
            return None
        try:
            tst = os.lstat(target.resolve(link.target or ""))
        except (OSError, TargetError) as exc:
            raise StageError(
                f"error creating hard link {path}: target does not exist or stat() returned an err: {exc}"
            ) from exc
        if (tst.st_dev, tst.st_ino) != (st.st_dev, st.st_ino):
            raise StageError(
                f"error creating hard link {path}: a file already exists at that path "
                "but is not the target and overwrite is false"
            )
        return "same"
    if stat.S_ISLNK(st.st_mode):
        current = os.readlink(p)
        if os.path.normpath(current) != os.path.normpath(link.target or ""):
            raise StageError(
                f"error creating symlink {path}: a symlink exists at that path but points to "
                f"{current}, not {link.target} and overwrite is false"
            )
        return "same"
    raise StageError(
        f"error creating symlink {path}: a non-symlink already exists at that path and overwrite is false"
    )


def _already_there(e: Entry, p: Path, target: Target) -> bool:
    """With ``overwrite``, a node that is already exactly what would be written is kept (same
    contents, same link target, same inode), so that a re-run changes nothing."""
    st = _lstat(p)
    if st is None:
        return False
    if e.kind == "file":
        return stat.S_ISREG(st.st_mode) and e.data is not None and e.has_source and _same_contents(p, e)
    if e.kind == "link":
        link = e.node
        return stat.S_ISLNK(st.st_mode) and os.readlink(p) == link.target  # type: ignore[union-attr]
    if e.kind == "hardlink":
        try:
            tst = os.lstat(target.resolve(e.node.target or ""))  # type: ignore[union-attr]
        except (OSError, TargetError):
            return False
        return (tst.st_dev, tst.st_ino) == (st.st_dev, st.st_ino)
    return False  # a directory: overwrite empties it


def _remove(p: Path) -> None:
    st = _lstat(p)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(p)
    else:
        os.unlink(p)


def _write_file(
    e: Entry, p: Path, target: Target, names: _Names, record: dict[str, Any], parents: _Parents
) -> str:
    """Returns "created" or "unchanged"."""
    f = e.node
    assert isinstance(f, model.File)
    st = _lstat(p)
    # with overwrite, a node still here is one _already_there() kept: identical contents
    state = ("same" if st is not None else None) if f.overwrite else _refusal(e, p, target)
    if st is not None and e.has_source and state == "same":
        _set_permissions(p, f.mode, f, names, st)
        return "unchanged"
    if st is not None and not e.has_source:
        # kept contents; appends go on the end, unless these very fragments were already
        # appended and the file is still what that left behind (a re-run)
        if e.data is None or (
            record.get("fragments", {}).get(f.path) == e.sha256
            and record.get("files", {}).get(f.path) == _file_sha256(p)
        ):
            _set_permissions(p, f.mode, f, names, st)
            return "unchanged"
        if e.data is not None:
            with open(p, "ab") as out:
                e.data.seek(0)
                for chunk in iter(lambda: e.data.read(1 << 20), b""):  # type: ignore[union-attr]
                    out.write(chunk)
        _set_permissions(p, f.mode, f, names, os.lstat(p))
        return "created"
    # a new file (or an overwritten one): temp file beside it, owner, mode, rename
    parents.ensure(e.comps)
    uid, gid = names.ids(f, 0, 0)
    mode = f.mode if f.mode is not None else DEFAULT_FILE_MODE
    fd, tmp = tempfile.mkstemp(prefix=".pine-", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            if e.data is not None:
                e.data.seek(0)
                for chunk in iter(lambda: e.data.read(1 << 20), b""):  # type: ignore[union-attr]
                    out.write(chunk)
            os.fchown(out.fileno(), uid, gid)  # ownership first: chown clears set-id bits
            os.fchmod(out.fileno(), mode)
        os.rename(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return "created"


def _set_permissions(p: Path, mode: int | None, node: Any, names: _Names, st: os.stat_result) -> None:
    uid, gid = names.ids(node, st.st_uid, st.st_gid)
    if (uid, gid) != (st.st_uid, st.st_gid):
        os.lchown(p, uid, gid)
    if mode is not None and stat.S_IMODE(os.lstat(p).st_mode) != mode:
        os.chmod(p, mode)


def _write_dir(e: Entry, p: Path, target: Target, names: _Names, parents: _Parents) -> str:
    d = e.node
    st = None if d.overwrite else _lstat(p)
    if st is not None:
        _refusal(e, p, target)
        _set_permissions(p, d.mode, d, names, st)  # type: ignore[arg-type]
        return "unchanged"
    parents.ensure(e.comps)
    os.mkdir(p, DEFAULT_DIR_MODE)
    uid, gid = names.ids(d, 0, 0)
    os.chown(p, uid, gid)
    os.chmod(p, d.mode if d.mode is not None else DEFAULT_DIR_MODE)  # type: ignore[union-attr]
    return "created"


def _write_link(e: Entry, p: Path, target: Target, names: _Names, parents: _Parents) -> str:
    link = e.node
    assert isinstance(link, model.Link)
    if link.overwrite:
        if _lstat(p) is not None:
            return "unchanged"  # kept by _already_there(): the same link
    elif _refusal(e, p, target) == "same":
        return "unchanged"
    parents.ensure(e.comps)
    if e.kind == "hardlink":
        src = target.resolve(link.target or "")
        try:
            os.link(src, p, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise StageError(
                f"failed to create link {link.path!r}: target {link.target} does not exist"
            ) from exc
        return "created"
    os.symlink(link.target or "", p)
    # As Ignition: unless given, a new link takes the owner of what it points to, or root when it
    # dangles. Ignition stats an absolute target in its own namespace (the initramfs, where all is
    # root's), so an absolute target gives root here too; a relative one is looked up inside the root.
    default = (0, 0)
    if not (link.target or "").startswith("/"):
        try:
            pointed = os.stat(target.resolve_all(e.path))
            default = (pointed.st_uid, pointed.st_gid)
        except (OSError, TargetError):
            pass
    uid, gid = names.ids(link, *default)
    os.lchown(p, uid, gid)
    return "created"


def _load_record(target: Target) -> dict[str, Any]:
    text = target.read_text(RESULT_PATH)
    if not text:
        return {}
    try:
        rec = json.loads(text)
    except ValueError:
        return {}
    return rec if isinstance(rec, dict) else {}


def _link_among_parents(target: Target, comps: list[str]) -> bool:
    for n in range(1, len(comps)):
        st = _lstat(Path(target.host_str(comps[:n])))
        if st is None:
            return False
        if stat.S_ISLNK(st.st_mode):
            return True
    return False


def apply_nodes(plan: Plan, target: Target, log: Log, result: Result, record: dict[str, Any]) -> None:
    names = _Names(target)  # after groups and users: names created by this config resolve
    ordered = _ordered(plan.entries)
    # Paths were resolved before anything was written, as Ignition does. Only a symlink made by
    # this config can then stand among a path's parents; such a path is resolved again just
    # before its write, so that the new link is followed inside the root, never by the kernel.
    again = any(e.kind == "link" for e in plan.entries)
    parents = _Parents(target)
    for e in ordered:
        if again and _link_among_parents(target, e.comps):
            e.comps = target.components(e.path)
        if e.node.overwrite or e.kind == "link":
            parents.forget()  # a directory we checked may be replaced by this entry
        p = target.host(e.comps)
        what = {"file": "writing file", "directory": "creating directory"}.get(e.kind, "writing link")
        text = f"{what} {e.path!r}" + (f" -> {e.node.target!r}" if isinstance(e.node, model.Link) else "")
        with log.op(text):
            try:
                if e.node.overwrite and not _already_there(e, p, target):
                    _remove(p)
                if e.kind == "file":
                    outcome = _write_file(e, p, target, names, record, parents)
                    # what we wrote is known: read back only a file we appended to or kept
                    result.files[e.path] = e.sha256 if e.has_source and e.sha256 else _file_sha256(p)
                    if not e.has_source and e.sha256:
                        result.fragments[e.path] = e.sha256
                elif e.kind == "directory":
                    outcome = _write_dir(e, p, target, names, parents)
                else:
                    outcome = _write_link(e, p, target, names, parents)
            except StageError as exc:
                raise StageError(f"error creating {e.path}: {exc}") from exc
            except OSError as exc:
                raise StageError(f"error creating {e.path}: {exc.strerror or exc}") from exc
        if outcome == "created":
            result.count(e.kind)
            if tuple(e.comps) in ACCOUNT_FILES:
                names.reload()  # later names are looked up in what this node made
        else:
            result.unchanged += 1


def write_record(plan: Plan, target: Target, result: Result) -> Path:
    """``/etc/.pine-result.json`` (0600). Unchanged when the same config was applied before."""
    previous = _load_record(target)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if previous.get("configHash") == plan.config_hash and previous.get("provisioningDate"):
        date = previous["provisioningDate"]
    record = {
        "provisioningDate": date,
        "userConfigProvided": True,
        "configHash": plan.config_hash,
        "files": dict(sorted({**previous.get("files", {}), **result.files}.items())),
        "fragments": dict(sorted({**previous.get("fragments", {}), **result.fragments}.items())),
    }
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    comps = target.components(RESULT_PATH)
    p = target.host(comps)
    try:
        if p.read_text() == text and stat.S_IMODE(os.lstat(p).st_mode) == 0o600:
            return p
    except OSError:
        pass
    _mkdir_parents(target, comps)
    fd, tmp = tempfile.mkstemp(prefix=".pine-", dir=p.parent)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        os.fchmod(out.fileno(), 0o600)
    os.rename(tmp, p)
    return p


# --- the seams to accounts and services -------------------------------------------------------------


def _accounts() -> Any:
    try:
        from pineinstall.stages import accounts
    except ImportError:
        return None
    return accounts


def _services() -> Any:
    try:
        from pineinstall.stages import services
    except ImportError:
        return None
    return services


def apply_plan(plan: Plan, target: Target, log: Log) -> Result:
    start = time.perf_counter()
    result = Result()
    cfg = plan.config
    record = _load_record(target)
    if cfg.passwd.groups or cfg.passwd.users:
        accounts = _accounts()
        if accounts is None:
            raise StageError("users and groups are configured but the accounts stage is not available")
        if cfg.passwd.groups:
            accounts.apply_groups(cfg.passwd.groups, target, log)
        if cfg.passwd.users:
            accounts.apply_users(cfg.passwd.users, target, log)
    apply_nodes(plan, target, log, result, record)
    if cfg.systemd.units:
        services = _services()
        if services is None:
            raise StageError("systemd units are configured but the services stage is not available")
        services.apply_units(cfg.systemd.units, target, log)
    if target.init_system == "openrc":
        services = _services()
        if services is not None and hasattr(services, "check_openrc"):
            services.check_openrc(target, log)  # runlevel links whose script is missing: warnings
    with log.op(f"writing result record {RESULT_PATH!r}"):
        result.result_path = write_record(plan, target, result)
    result.seconds = time.perf_counter() - start
    return result


def run(
    config: model.Config,
    target: Target,
    log: Log,
    *,
    fetcher: Fetcher | None = None,
    fetched: Fetched | None = None,
) -> Result:
    """The whole stage: prepare (fetch, check) then apply."""
    own = fetcher is None
    fetcher = fetcher or Fetcher.for_config(config.ignition)
    try:
        with log.stage("files"):
            plan = prepare(config, target, log, fetcher, fetched=fetched)
            try:
                return apply_plan(plan, target, log)
            finally:
                plan.close()
    finally:
        if own:
            fetcher.close()
