"""The files stage's second phase: nodes written in Ignition's order (directories, files and
symlinks by the depth of their resolved path, hard links last), then the result record
``/etc/.pine-result.json`` (0600)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pineinstall.config import model
from pineinstall.stages import Log, StageError
from pineinstall.stages.files.nodes import (
    ACCOUNT_FILES,
    DEFAULT_DIR_MODE,
    DEFAULT_FILE_MODE,
    RESULT_PATH,
    Entry,
    FilesPlan,
    OwnerIds,
    Result,
    file_sha256,
    hard_target,
    in_creation_order,
    lstat,
    refusal,
    same_contents,
)
from pineinstall.target import Target, TargetError
from pineinstall.target.hardlinks import unshare


class Parents:
    """Creates missing parents 0755 root:root (in a setgid directory: its group, and 2755, as
    Ignition leaves them), never through a link. Directories already checked
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
            st = lstat(Path(p))
            if st is None:
                gid, mode = _new_dir_defaults(Path(p).parent)
                os.mkdir(p, DEFAULT_DIR_MODE)
                os.chown(p, 0, gid)
                os.chmod(p, mode)  # the umask must not decide
            elif stat.S_ISLNK(st.st_mode):
                # resolution guarantees this cannot happen; refuse rather than follow out of the root
                raise StageError(f"{self.target.config_path(Path(p))} is a symlink in the way")
            self.known.add(key)


def _mkdir_parents(target: Target, comps: list[str]) -> None:
    Parents(target).ensure(comps)


def _already_there(e: Entry, p: Path, target: Target) -> bool:
    """With ``overwrite``, a node that is already exactly what would be written is kept (same
    contents, same link target, same inode), so that a re-run changes nothing."""
    st = lstat(p)
    if st is None:
        return False
    if e.kind == "file":
        return stat.S_ISREG(st.st_mode) and e.data is not None and e.has_source and same_contents(p, e)
    if e.kind == "link":
        link = e.node
        return stat.S_ISLNK(st.st_mode) and os.readlink(p) == link.target  # type: ignore[union-attr]
    if e.kind == "hardlink":
        try:
            tst = os.lstat(target.resolve(hard_target(e.node)))  # type: ignore[arg-type]
        except (OSError, TargetError):
            return False
        return (tst.st_dev, tst.st_ino) == (st.st_dev, st.st_ino)
    return False  # a directory: overwrite empties it


def _remove(p: Path) -> None:
    st = lstat(p)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(p)
    else:
        os.unlink(p)


def _write_file(
    e: Entry, p: Path, target: Target, names: OwnerIds, record: dict[str, Any], parents: Parents
) -> str:
    """Returns "created" or "unchanged"."""
    f = e.node
    assert isinstance(f, model.File)
    st = lstat(p)
    # with overwrite, a node still here is one _already_there() kept: identical contents
    state = ("same" if st is not None else None) if f.overwrite else refusal(e, p, target)
    if st is not None and e.has_source and state == "same":
        _set_permissions(p, f.mode, f, names, st)
        return "unchanged"
    if st is not None and not e.has_source:
        # kept contents; appends go on the end, unless these very fragments were already
        # appended and the file is still what that left behind (a re-run)
        if e.data is None or (
            record.get("fragments", {}).get(f.path) == e.sha256
            and record.get("files", {}).get(f.path) == file_sha256(p)
        ):
            _set_permissions(p, f.mode, f, names, st)
            return "unchanged"
        if e.data is not None:
            unshare(p, st)  # appended to this name only
            with open(p, "ab") as out:
                e.data.seek(0)
                for chunk in iter(lambda: e.data.read(1 << 20), b""):  # type: ignore[union-attr]
                    out.write(chunk)
        _set_permissions(p, f.mode, f, names, os.lstat(p))
        return "created"
    # a new file (or an overwritten one): temp file beside it, owner, mode, rename
    parents.ensure(e.comps)
    uid, gid = names.ids(f, 0, _new_gid(p.parent))
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


def _new_gid(parent: Path) -> int:
    """The group of a new node given none: root's, or its directory's when that one is setgid (the
    kernel's rule; Ignition leaves it so, checked against Ignition v2.26.0)."""
    st = os.stat(parent)
    return st.st_gid if st.st_mode & stat.S_ISGID else 0


def _new_dir_defaults(parent: Path) -> tuple[int, int]:
    """(group, mode) of a new directory given neither: in a setgid directory it inherits the group
    and the setgid bit (the kernel's rule, which Ignition keeps when no mode is given), else 0, 0755."""
    st = os.stat(parent)
    if st.st_mode & stat.S_ISGID:
        return st.st_gid, DEFAULT_DIR_MODE | stat.S_ISGID
    return 0, DEFAULT_DIR_MODE


def _set_permissions(p: Path, mode: int | None, node: Any, names: OwnerIds, st: os.stat_result) -> None:
    uid, gid = names.ids(node, st.st_uid, st.st_gid)
    changes = (uid, gid) != (st.st_uid, st.st_gid) or (mode is not None and stat.S_IMODE(st.st_mode) != mode)
    if changes:
        st = unshare(p, st)
    if (uid, gid) != (st.st_uid, st.st_gid):
        os.lchown(p, uid, gid)
    if mode is not None and stat.S_IMODE(os.lstat(p).st_mode) != mode:
        os.chmod(p, mode)


def _write_dir(e: Entry, p: Path, target: Target, names: OwnerIds, parents: Parents) -> str:
    d = e.node
    assert isinstance(d, model.Directory)
    st = None if d.overwrite else lstat(p)
    if st is not None:
        refusal(e, p, target)
        _set_permissions(p, d.mode, d, names, st)
        return "unchanged"
    parents.ensure(e.comps)
    os.mkdir(p, DEFAULT_DIR_MODE)
    default_gid, default_mode = _new_dir_defaults(p.parent)
    uid, gid = names.ids(d, 0, default_gid)
    os.chown(p, uid, gid)
    os.chmod(p, d.mode if d.mode is not None else default_mode)
    return "created"


def _write_link(e: Entry, p: Path, target: Target, names: OwnerIds, parents: Parents) -> str:
    link = e.node
    assert isinstance(link, model.Link)
    if link.overwrite:
        if lstat(p) is not None:
            return "unchanged"  # kept by _already_there(): the same link
    elif refusal(e, p, target) == "same":
        return "unchanged"
    parents.ensure(e.comps)
    if e.kind == "hardlink":
        src = target.resolve(hard_target(link))
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


def load_record(target: Target) -> dict[str, Any]:
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
        st = lstat(Path(target.host_str(comps[:n])))
        if st is None:
            return False
        if stat.S_ISLNK(st.st_mode):
            return True
    return False


def apply_nodes(plan: FilesPlan, target: Target, log: Log, result: Result, record: dict[str, Any]) -> None:
    names = OwnerIds(target)  # after groups and users: names created by this config resolve
    ordered = in_creation_order(plan.entries)
    # Paths were resolved before anything was written, as Ignition does. Only a symlink made by
    # this config can then stand among a path's parents; such a path is resolved again just
    # before its write, so that the new link is followed inside the root, never by the kernel.
    again = any(e.kind == "link" for e in plan.entries)
    parents = Parents(target)
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
                    result.files[e.path] = e.sha256 if e.has_source and e.sha256 else file_sha256(p)
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


def write_record(plan: FilesPlan, target: Target, result: Result) -> Path:
    """``/etc/.pine-result.json`` (0600). Unchanged when the same config was applied before."""
    previous = load_record(target)
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
