"""The seed root, the tree description and the rule of "the same tree" for the files-stage differential.

A tree is described one line per path below the root (sorted), as ``KIND MODE UID GID DATA PATH``:
KIND ``d`` directory, ``f`` file, ``l`` symlink; MODE the four octal permission digits (special bits
included; ``-`` for a link); DATA a file's sha256 (with ``=OTHER`` when it shares its inode with the
first path OTHER: a hard link), a link's target, ``-`` for a directory. The seed root itself and the
tools' own records are not described (SKIP).

Enabling differs by design (services.py): Ignition writes ``enable X``/``disable X`` lines to
``/etc/systemd/system-preset/20-ignition.preset`` that systemd applies at first boot, Pine creates
the ``[Install]`` links at once. So the preset file (and ``etc/systemd/system-preset``) is left out of
Ignition's tree, the links under ``etc/systemd/system/*.wants|*.requires`` (and those directories) out
of ours, and each side says instead which units end up enabled: Ignition's are the units its last
preset line enables, that are not masked and that have an ``[Install]`` section with ``WantedBy=`` in
its resulting tree, and their ``Also=`` units that do (what systemd's preset then links); ours are the
names of those links.
``etc/systemd`` and ``etc/systemd/system`` are described only when they hold something else than
this enablement material (so an empty one left behind shows).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PRESET = "etc/systemd/system-preset/20-ignition.preset"
SKIP = {
    "etc/.pine-result.json",
    "etc/.ignition-result.json",
    "etc/selinux",
    "etc/selinux/config",
}
# the seed root: accounts for owners by name, units to enable, files and a directory to overwrite
PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\ncore:x:1000:1000::/home/core:/bin/sh\nweb:x:1001:1002::/srv:/usr/sbin/nologin\n"
GROUP = "root:x:0:\ndaemon:x:1:\nwheel:x:10:core\ncore:x:1000:\nwww:x:1002:web\n"
INSTALLED = (
    "[Unit]\nDescription=seed\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
)
NO_INSTALL = "[Unit]\nDescription=seed\n[Service]\nExecStart=/bin/true\n"
SEED: dict[str, str | None] = {  # path: contents (None: a directory)
    "etc/passwd": PASSWD,
    "etc/group": GROUP,
    "etc/selinux/config": "SELINUX=disabled\n",
    "etc/motd": "old\n",
    "srv/old": None,
    "usr/lib/systemd/system/seeded.service": INSTALLED,
    "usr/lib/systemd/system/plain.service": NO_INSTALL,
    "usr/lib/systemd/system/pair.service": INSTALLED + "Also=seeded.service absent.service\n",
    "srv/shared": None,  # setgid, group www (below)
}
SHARED = ("srv/shared", 0o2775, 1002)


def make_seed(root: Path) -> None:
    """The seed root at ``root`` (root-owned, 0644 files, 0755 directories)."""
    for rel, text in SEED.items():
        p = root / rel
        if text is None:
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    os.chown(root / SHARED[0], 0, SHARED[2])
    os.chmod(root / SHARED[0], SHARED[1])


def _seeded(rel: str) -> bool:
    return rel in SEED or any(k.startswith(rel + "/") for k in SEED)


def describe(root: Path) -> tuple[list[str], list[str]]:
    """(lines of the tree, sorted names of the units enabled by links) as the module doc says."""
    lines: list[str] = []
    first_of: dict[tuple[int, int], str] = {}
    linked: set[str] = set()
    rels: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted([*dirnames, *filenames]):
            rels.append(os.path.relpath(os.path.join(dirpath, n), root))
    kept: dict[str, str] = {}
    for rel in sorted(rels):
        full = root / rel
        st = os.lstat(full)
        parent = os.path.dirname(rel)
        if rel in SKIP or rel == PRESET or rel == "etc/systemd/system-preset":
            continue
        if re.fullmatch(r"etc/systemd/system/[^/]+\.(wants|requires)", parent) and full.is_symlink():
            linked.add(os.path.basename(rel))
            continue
        if full.is_symlink():
            kept[rel] = f"l - {st.st_uid} {st.st_gid} {os.readlink(full)} {rel}"
            continue
        mode = f"{st.st_mode & 0o7777:04o}"
        if full.is_dir():
            kept[rel] = f"d {mode} {st.st_uid} {st.st_gid} - {rel}"
            continue
        digest = hashlib.sha256(full.read_bytes()).hexdigest()
        if st.st_nlink > 1:
            other = first_of.setdefault((st.st_dev, st.st_ino), rel)
            if other != rel:
                digest += "=" + other
        kept[rel] = f"f {mode} {st.st_uid} {st.st_gid} {digest} {rel}"
    # enablement material: .wants/.requires directories left with nothing else, then etc/systemd{,/system}
    for rel in sorted(kept, reverse=True):
        if rel.startswith("etc/systemd") and kept[rel].startswith("d ") and not _seeded(rel):
            inside = [k for k in kept if k.startswith(rel + "/")]
            empty_on_disk = not os.listdir(root / rel)
            enablement = re.fullmatch(r"etc/systemd/system/[^/]+\.(wants|requires)", rel) or rel in (
                "etc/systemd",
                "etc/systemd/system",
            )
            if enablement and not inside and not (empty_on_disk and rel == "etc/systemd/system"):
                del kept[rel]
    lines = [kept[k] for k in sorted(kept)]
    return lines, sorted(linked)


def preset_enabled(root: Path) -> list[str]:
    """The units Ignition's preset file enables that systemd's preset would link (module doc)."""
    p = root / PRESET
    if not p.exists():
        return []
    last: dict[str, str] = {}
    for line in p.read_text().splitlines():
        verb, _, name = line.partition(" ")
        last[name.strip()] = verb
    out: list[str] = []
    pending = [name for name, verb in last.items() if verb == "enable"]
    while pending:
        name = pending.pop()
        if name in out:
            continue
        local = root / "etc/systemd/system" / name
        if local.is_symlink() and os.readlink(local) == "/dev/null":
            continue
        text = None
        base = re.sub(r"@[^.]+\.", "@.", name)
        for d in ("etc/systemd/system", "usr/lib/systemd/system"):
            for n in (name, base):
                f = root / d / n
                if text is None and f.is_file() and not f.is_symlink():
                    text = f.read_text("utf-8", "replace")
        if text and re.search(r"^\[Install\]", text, re.M) and re.search(r"^WantedBy=", text, re.M):
            out.append(name)
            for also in re.findall(r"^Also=(.*)$", text, re.M):  # systemd's preset enables them too
                pending.extend(also.split())
    return sorted(out)
