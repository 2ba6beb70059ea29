"""The files stage's nodes: what one entry is, the plan that holds them, the result, and the
rules every phase shares (Ignition's refusal cases, its creation order, owner names)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pineinstall.config import model
from pineinstall.stages import StageError
from pineinstall.target import Target, TargetError

RESULT_PATH = "/etc/.pine-result.json"


DEFAULT_FILE_MODE = 0o644


DEFAULT_DIR_MODE = 0o755


MAX_HOPS_IN_CONFIG = 40  # symlinks this config makes, followed when placing a hard link


def hard_target(link: model.Link) -> str:
    """Where a hard link points, as Ignition takes it: a relative target from the root's ``/``
    (``a`` is ``/a``; ``..`` cannot leave the root), checked against Ignition v2.26.0."""
    t = link.target or ""
    return t if t.startswith("/") else os.path.normpath("/" + t).replace("//", "/")


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
class FilesPlan:
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


def lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None


def file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_sha256(data: IO[bytes]) -> str:
    h = hashlib.sha256()
    data.seek(0)
    for chunk in iter(lambda: data.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def same_contents(p: Path, entry: Entry) -> bool:
    assert entry.data is not None
    try:
        st = os.stat(p)
    except OSError:
        return False
    entry.data.seek(0, os.SEEK_END)
    if st.st_size != entry.data.tell():
        return False
    return file_sha256(p) == entry.sha256


def _depth_key(e: Entry) -> int:
    return e.depth


class OwnerIds:
    """Owner names: the target's passwd/group, re-read after the accounts stage wrote them."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.users: dict[str, int] = {}
        self.groups: dict[str, int] = {}
        self.reload()

    @staticmethod
    def parse(text: str | None) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in (text or "").splitlines():
            f = line.split(":")
            if len(f) >= 3 and f[0] and f[0] not in out:
                with contextlib.suppress(ValueError):
                    out[f[0]] = int(f[2])
        return out

    def reload(self) -> None:
        self.users = self.parse(self.target.read_text("/etc/passwd"))
        self.groups = self.parse(self.target.read_text("/etc/group"))

    def ids(self, node: Any, default_uid: int, default_gid: int) -> tuple[int, int]:
        uid = _resolve(node.user, default_uid, self.users, "user", "/etc/passwd")
        gid = _resolve(node.group, default_gid, self.groups, "group", "/etc/group")
        return uid, gid


def _resolve(owner: Any, default: int, known: dict[str, int], what: str, where: str) -> int:
    """A node's user or group id: its id, else its name looked up in the target, else the default."""
    if owner.id is not None:
        return owner.id
    if not owner.name:
        return default
    if owner.name not in known:
        raise StageError(f"no such {what} {owner.name!r} in the target's {where}")
    return known[owner.name]


def in_creation_order(entries: list[Entry]) -> list[Entry]:
    """Ignition's creation order: by depth (stable), hard links last in config order."""
    ordered = sorted((e for e in entries if e.kind != "hardlink"), key=_depth_key)
    return ordered + [e for e in entries if e.kind == "hardlink"]


ACCOUNT_FILES = {("etc",): "both", ("etc", "passwd"): "users", ("etc", "group"): "groups"}


def refusal(e: Entry, p: Path, target: Target, *, dry_run: bool = False) -> str | None:
    """Ignition's refusal cases for an existing node (overwrite false). Returns "same" when the
    node is already what the config asks (nothing to write), None when creation may go on."""
    st = lstat(p)
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
        if same_contents(p, e):
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
            tst = os.lstat(target.resolve(hard_target(link)))
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
