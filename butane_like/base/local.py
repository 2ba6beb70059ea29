"""Local files (``-d/--files-dir``): ``local``, ``contents_local``, ``ssh_authorized_keys_local``.

Paths are joined and cleaned as Go's ``filepath.Join`` and may not leave the files directory;
errors read as Go's (``open files/x: no such file or directory``).
"""

from __future__ import annotations

import os
import re

from pineinstall.config.gocompat import go_errno_text

from ..errors import ERR_FILES_DIR_ESCAPE, ERR_NO_FILES_DIR

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from .translate import Translator

_SSH_SPLIT = r"\r?\n"


def read_local(tr: Translator, rel: str, ypath: tuple) -> bytes | None:
    """The bytes of a local file, or None after reporting why it cannot be read at ``ypath``."""
    if not tr.files_dir:
        tr.report.error(ERR_NO_FILES_DIR, ypath)
        return None
    path = go_join(tr.files_dir, rel)
    if not within(path, tr.files_dir):
        tr.report.error(ERR_FILES_DIR_ESCAPE, ypath)
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError as e:
        tr.report.error(f"read {path}: {go_errno_text(e)}", ypath)
    except OSError as e:
        tr.report.error(f"open {path}: {go_errno_text(e)}", ypath)
    return None


def ssh_keys_local(tr: Translator, out: dict, value: dict, ypath: tuple) -> None:
    """Append the keys of the ``ssh_authorized_keys_local`` files (one a line) to the user's."""
    keys = out.get("sshAuthorizedKeys")
    if keys is None:
        keys = tr.origins.reg([], (*ypath, "ssh_authorized_keys"))
        out["sshAuthorizedKeys"] = keys
    listed = value["ssh_authorized_keys_local"]
    if listed and not tr.files_dir:  # one error for the list, as Butane checks before reading
        tr.report.error(ERR_NO_FILES_DIR, (*ypath, "ssh_authorized_keys_local"))
        return
    for i, rel in enumerate(listed):
        kpath = (*ypath, "ssh_authorized_keys_local", i)
        data = read_local(tr, rel, kpath)
        if data is None:
            continue
        for line in re.split(_SSH_SPLIT, tr.text(data)):
            if line:
                # A leaf per key: remember where each one came from.
                tr.origins.leaf_from(keys, len(keys), kpath)
                keys.append(line)


def go_join(base: str, rel: str) -> str:
    """filepath.Join: join and clean ("files/../" -> "."); an absolute ``rel`` stays inside."""
    import posixpath

    parts = [p for p in (base, rel) if p]
    if not parts:
        return ""
    out = posixpath.normpath("/".join(parts))
    # normpath keeps a leading "//" (POSIX allows it a meaning); Go's Clean does not.
    return "/" + out.lstrip("/") if out.startswith("//") else out


def within(path: str, base: str) -> bool:
    ab = os.path.abspath(base)
    ap = os.path.abspath(path)
    return ap == ab or ap.startswith(ab.rstrip("/") + "/")
