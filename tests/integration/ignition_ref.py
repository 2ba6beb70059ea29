"""Run Debian's reference Ignition (2.14) files stage into a scratch root, and compare trees.

Shared by the differential tests of the engine (nodes here, accounts and services elsewhere):

    seed_root(root)                      # etc/selinux/config, passwd, group, shadow, gshadow
    proc = run_reference(root, config)   # `ignition -platform file -stage files -root ROOT`
    snap = snapshot(root)                # path -> (kind, mode, uid, gid, content digest | link target)
    assert diff(snapshot(a), snapshot(b)) == []

How the binary is driven: for every stage but ``fetch`` it reads the config from its cache file
(``-config-cache``, normally ``/run/ignition.json``), so the config is written there. It relabels
for SELinux when the root's ``/etc/selinux/config`` says so; with ``SELINUX=disabled`` it still
runs ``setfiles``, so a no-op ``setfiles`` goes first on PATH. Users and groups are created with
``useradd``/``groupadd --root`` (Debian's shadow tools, package ``passwd``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

IGNITION = "/usr/lib/dracut/modules.d/30ignition/ignition"
REF_VERSION = "3.4.0"  # the newest final spec Ignition 2.14 accepts

# The records each tool leaves behind are not part of the comparison.
RESULT_RECORDS = ("etc/.ignition-result.json", "etc/.pine-result.json")

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "bin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nadm:x:4:\nwheel:x:10:\nusers:x:100:\nnogroup:x:65534:\n"


def seed_root(root: Path, *, passwd: str = PASSWD, group: str = GROUP) -> Path:
    """A minimal root both tools accept: SELinux off, an account database."""
    etc = root / "etc"
    (etc / "selinux").mkdir(parents=True, exist_ok=True)
    (etc / "selinux" / "config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
    (etc / "passwd").write_text(passwd)
    (etc / "group").write_text(group)
    shadow = "".join(f"{line.split(':')[0]}:*:19000:0:99999:7:::\n" for line in passwd.splitlines())
    gshadow = "".join(f"{line.split(':')[0]}:*::\n" for line in group.splitlines())
    (etc / "shadow").write_text(shadow)
    (etc / "gshadow").write_text(gshadow)
    os.chmod(etc / "shadow", 0o640)
    os.chmod(etc / "gshadow", 0o640)
    return root


def _tools_dir(scratch: Path) -> Path:
    bindir = scratch / "ref-bin"
    bindir.mkdir(parents=True, exist_ok=True)
    setfiles = bindir / "setfiles"
    if not setfiles.exists():
        setfiles.write_text("#!/bin/sh\nexit 0\n")
        setfiles.chmod(0o755)
    return bindir


def run_reference(
    root: Path, config: dict[str, Any] | bytes, *, scratch: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The reference files stage on ``root``; returns the finished process (output in stdout)."""
    scratch = scratch or root.parent
    cache = scratch / f"ref-cache-{os.getpid()}-{id(config)}.json"
    # its own state file: the default /run/ignition/state is shared by concurrent runs
    state = scratch / f"ref-state-{os.getpid()}-{id(config)}.json"
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    cache.write_bytes(data)
    env = {
        "PATH": f"{_tools_dir(scratch)}:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C",
        "HOME": "/root",
    }
    try:
        return subprocess.run(
            [IGNITION, "-platform", "file", "-stage", "files", "-root", str(root)]
            + ["-config-cache", str(cache), "-state-file", str(state), "-log-to-stdout"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        cache.unlink(missing_ok=True)
        state.unlink(missing_ok=True)


def reference_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The reference's failure message (its CRITICAL line), or ""."""
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("CRITICAL") and "Ignition failed" in line:
            return line.split("Ignition failed:", 1)[1].strip()
    return ""


Node = tuple[str, int, int, int, str]


def snapshot(root: Path, *, exclude: tuple[str, ...] = RESULT_RECORDS) -> dict[str, Node]:
    """Every node under ``root`` (links not followed): kind, mode, uid, gid, and the sha256 of a
    file's contents or a link's target. Hard links show up as equal entries under each name; the
    ``links`` of each inode are compared through ``inode_groups``."""
    out: dict[str, Node] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel in exclude:
                continue
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, st.st_uid, st.st_gid, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, st.st_uid, st.st_gid, "")
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                out[rel] = ("file", mode, st.st_uid, st.st_gid, digest)
            else:
                out[rel] = ("other", mode, st.st_uid, st.st_gid, "")
    return out


def inode_groups(root: Path, *, exclude: tuple[str, ...] = RESULT_RECORDS) -> list[list[str]]:
    """Names that share an inode (hard links), as sorted lists."""
    groups: dict[tuple[int, int], list[str]] = {}
    for dirpath, _dirs, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if rel not in exclude and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def diff(expected: dict[str, Node], got: dict[str, Node]) -> list[str]:
    """Human-readable differences; [] when the trees are the same."""
    lines = []
    for path in sorted(set(expected) | set(got)):
        a, b = expected.get(path), got.get(path)
        if a == b:
            continue
        if a is None:
            lines.append(f"+ {path} {b}")
        elif b is None:
            lines.append(f"- {path} {a}")
        else:
            fields = ("kind", "mode", "uid", "gid", "content")
            what = ", ".join(
                f"{f} {x if f != 'mode' else oct(x)} != {y if f != 'mode' else oct(y)}"
                for f, x, y in zip(fields, a, b, strict=True)
                if x != y
            )
            lines.append(f"~ {path}: {what}")
    return lines
