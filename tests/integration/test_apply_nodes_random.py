"""Randomised differential tests: seeded random pre-existing trees and random node configs (files,
directories, symlinks, hard links, appends, overwrites, modes, owners), applied by the reference
Ignition files stage and by ``pineinstall apply``; the trees must match, or both must refuse.
The seeds are fixed, so a failure names a reproducible case."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .ignition_ref import (
    IGNITION,
    diff,
    inode_groups,
    reference_error,
    snapshot,
)
from .test_apply_nodes_ref import run_both

pytestmark = [pytest.mark.conformance, pytest.mark.needs(IGNITION)]

NAMES = ["a", "b", "c", "etc", "srv", "data"]
MODES = [0o644, 0o600, 0o640, 0o755, 0o700, 0o750, 0o444, 0o711]
OWNERS = [None, {"id": 1}, {"id": 2}, {"name": "daemon"}, {"name": "bin"}, {"id": 0}]
GROUPS = [None, {"id": 1}, {"id": 4}, {"name": "adm"}, {"name": "wheel"}, {"id": 0}]


def rpath(rng: random.Random, depth: int | None = None) -> str:
    depth = depth or rng.randint(1, 4)
    return "/" + "/".join(
        rng.choice(NAMES) + (str(rng.randint(0, 2)) if rng.random() < 0.5 else "") for _ in range(depth)
    )


def text(rng: random.Random) -> str:
    return "".join(rng.choice("abc xyz\n=#") for _ in range(rng.randint(0, 40)))


def make_case(seed: int) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    rng = random.Random(seed)
    pre: list[tuple[Any, ...]] = []
    taken: set[str] = set()
    for _ in range(rng.randint(0, 4)):
        p = rpath(rng, rng.randint(1, 2))
        if p.split("/")[1] == "etc" or any(
            p == t or p.startswith(t + "/") or t.startswith(p + "/") for t in taken
        ):
            continue
        taken.add(p)
        kind = rng.choice(["file", "dir", "symlink-dir"])
        if kind == "file":
            pre.append(
                ("file", p, text(rng), rng.choice(MODES), rng.choice([0, 1, 2]), rng.choice([0, 1, 4]))
            )
        elif kind == "dir":
            pre.append(("dir", p, rng.choice(MODES[3:6]), rng.choice([0, 1]), 0))
        else:
            real = "/real" + str(seed % 3)
            pre.append(("dir", real))
            pre.append(("symlink", p, real if rng.random() < 0.5 else real.lstrip("/")))
    storage: dict[str, list[dict[str, Any]]] = {"files": [], "directories": [], "links": []}
    used: set[str] = set()
    for _ in range(rng.randint(1, 8)):
        p = rpath(rng)
        if p in used:
            continue
        used.add(p)
        node: dict[str, Any] = {"path": p}
        if rng.random() < 0.3 and (o := rng.choice(OWNERS)):
            node["user"] = o
        if rng.random() < 0.3 and (g := rng.choice(GROUPS)):
            node["group"] = g
        if rng.random() < 0.2:
            node["overwrite"] = True
        kind = rng.choice(["file", "file", "directory", "link", "hardlink"])
        if kind == "hardlink":
            candidates = [op[1] for op in pre if op[0] == "file"] + [f["path"] for f in storage["files"]]
            node.pop("overwrite", None) if rng.random() < 0.7 else None
            node["hard"] = True
            node["target"] = rng.choice(candidates) if candidates and rng.random() < 0.9 else rpath(rng)
            storage["links"].append(node)
            continue
        if kind == "file":
            if rng.random() < 0.8 or node.get("overwrite"):
                node["contents"] = {"source": "data:," + quote(text(rng))}
            if rng.random() < 0.3:
                node["append"] = [{"source": "data:," + quote(text(rng))} for _ in range(rng.randint(1, 2))]
            if rng.random() < 0.7:
                node["mode"] = rng.choice(MODES)
            storage["files"].append(node)
        elif kind == "directory":
            if rng.random() < 0.6:
                node["mode"] = rng.choice(MODES[3:])
            storage["directories"].append(node)
        else:
            node["target"] = rng.choice([rpath(rng), "relative/target", "../up", "/etc/passwd"])
            node.pop("overwrite", None) if rng.random() < 0.5 else None
            storage["links"].append(node)
    return pre, {k: v for k, v in storage.items() if v}


# 120 by default (~30 s); PINE_RANDOM_CASES=2000 for a long run, PINE_RANDOM_FIRST to start elsewhere
_FIRST = int(os.environ.get("PINE_RANDOM_FIRST", "1"))
SEEDS = list(range(_FIRST, _FIRST + int(os.environ.get("PINE_RANDOM_CASES", "120"))))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_config_same_as_reference(seed: int, tmp_path: Path) -> None:
    pre, storage = make_case(seed)
    r = run_both(pre, storage, tmp_path)
    config = json.dumps(r.config)
    if "is not a valid config" in r.log:
        # Our checker refuses it (e.g. a path under a link of the config); the reference's files
        # stage does not validate that far, but its validator must refuse it too. Nothing may be written.
        assert r.rc == 1
        assert diff(r.before, snapshot(r.our_root)) == []
        validate = subprocess.run(
            ["ignition-validate", str(r.config_file)], capture_output=True, text=True, timeout=60
        )
        assert validate.returncode != 0, f"ignition-validate accepts what we refuse: {r.log}"
        return
    if r.proc.returncode == 0:
        assert r.rc == 0, f"reference succeeded, ours failed:\n{r.log}\nconfig: {config}\npre: {pre}"
        assert diff(snapshot(r.ref_root), snapshot(r.our_root)) == [], config
        assert inode_groups(r.ref_root) == inode_groups(r.our_root)
    else:
        assert r.rc == 1, f"reference failed ({reference_error(r.proc)}), ours succeeded; config: {config}"
        assert diff(r.before, snapshot(r.our_root)) == []
