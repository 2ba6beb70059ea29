"""Seeded configs for the files stage, differential against Ignition's files stage built from its sources.

    python tests/conformance/apply_diff/apply_generate.py campaign --oracle IGNITION --seeds 0:3000
        apply every seed with the oracle and with ``pineinstall apply --root``, print the disagreements
    python tests/conformance/apply_diff/apply_generate.py record --oracle IGNITION --seeds 0:400
        write each seed's config and the oracle's resulting tree under cases/ (what CI replays)

A case is one config of spec 3.4.0-3.6.0 or 3.7.0-experimental applied onto the seed root of
apply_compare.py (accounts, files and a directory to overwrite, units with and without ``[Install]``):
files with contents, append and compression (gzip data URLs), modes with setuid/setgid/sticky,
owners by id and name (unknown ones too), overwrite on files and links, directories, hard and soft
links, systemd units and drop-ins with and without contents, enabled/disabled/masked. Paths are
drawn from a small pool so that nodes meet (a file under a link, a file where a directory is, …).
The oracle runs as Ignition does with ``-platform file``: ``-stage fetch-offline`` then ``-stage
files -root R``; it stops at its SELinux relabel step after the files are written, which counts as
done. Recorded: ``expected.rc`` (0 done, 1 failed) and, when done, ``expected.tree`` (apply_compare.py's
description, then ``enabled NAME`` lines).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from apply_compare import describe, make_seed, preset_enabled  # noqa: E402
from diffgen import Draws  # noqa: E402

CASES = HERE / "cases"
VERSIONS = ["3.4.0", "3.5.0", "3.6.0", "3.7.0-experimental"]
PATHS = [
    "/etc/a",
    "/etc/b",
    "/etc/motd",
    "/srv/d",
    "/srv/d/f",
    "/srv/old",
    "/srv/old/g",
    "/var/x/y",
    "/etc/l",
    "/opt/h",
    "/srv/shared/n",
    "/srv/shared/s/t",
]
TEXTS = [b"", b"hi", b"hello\n", b"line one\nline two\n", bytes(range(256)), b"x" * 300]
MODES = [None, 0o644, 0o600, 0o755, 0o700, 0o444, 0o4755, 0o2755, 0o1777, 0o6711, 0o7777, 0o1755]
USERS = [
    {"id": 0},
    {"id": 1},
    {"id": 1000},
    {"id": 4242},
    {"name": "core"},
    {"name": "web"},
    {"name": "root"},
    {"name": "nobody2"},
]
GROUPS = [
    {"id": 0},
    {"id": 10},
    {"id": 1002},
    {"id": 777},
    {"name": "wheel"},
    {"name": "www"},
    {"name": "daemon"},
    {"name": "nogroup2"},
]
TARGETS = ["/etc/a", "/etc/motd", "/etc/motd", "a", "../srv/d", "/srv/d/f", "/nowhere", "/srv/old", "/etc/b"]
# no template instances: Ignition enables those through the running systemd (D-Bus), absent here
UNITS = ["seeded.service", "plain.service", "new.service", "absent.service", "new.timer", "pair.service"]
UNIT_TEXTS = [
    "[Unit]\nDescription=new\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    "[Unit]\nDescription=bare\n[Service]\nExecStart=/bin/true\n",
    "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
    "",
]


def _source(d: Draws, compress: bool) -> tuple[str, str | None]:
    text = d.pick(TEXTS)
    if compress:
        return "data:;base64," + base64.b64encode(gzip.compress(text, mtime=0)).decode(), "gzip"
    if d.p(0.5):
        return "data:;base64," + base64.b64encode(text).decode(), None
    return "data:," + quote(text.decode("latin1"), safe=""), None


def _owner(d: Draws, node: dict[str, Any]) -> None:
    if d.p(0.3):
        node["user"] = dict(d.pick(USERS))
    if d.p(0.3):
        node["group"] = dict(d.pick(GROUPS))


def _mode(d: Draws, node: dict[str, Any]) -> None:
    m = d.pick(MODES)
    if m is not None:
        node["mode"] = m


def _file(d: Draws, path: str) -> dict[str, Any]:
    f: dict[str, Any] = {"path": path}
    if d.p(0.8):
        src, comp = _source(d, d.p(0.2))
        f["contents"] = {"source": src, **({"compression": comp} if comp else {})}
    if d.p(0.25):
        f["append"] = [{"source": _source(d, False)[0]} for _ in range(d.r.randint(1, 2))]
    if d.p(0.5):
        f["overwrite"] = d.p(0.75)
    _mode(d, f)
    _owner(d, f)
    return f


def _unit(d: Draws, name: str) -> dict[str, Any]:
    u: dict[str, Any] = {"name": name}
    if d.p(0.4):
        u["contents"] = d.pick(UNIT_TEXTS)
    if d.p(0.7):
        u["enabled"] = d.p(0.7)
    if d.p(0.12):
        u["mask"] = d.p(0.7)
    if d.p(0.3):
        u["dropins"] = [
            {"name": n, **({"contents": "[Service]\nEnvironment=A=1\n"} if d.p(0.7) else {})}
            for n in sorted({d.pick(["a.conf", "b.conf"]) for _ in range(d.r.randint(1, 2))})
        ]
    return u


def config(seed: int) -> dict[str, Any]:
    d = Draws(seed)
    paths = list(PATHS)
    d.r.shuffle(paths)
    files, dirs, links = [], [], []
    for path in paths[: d.r.randint(0, 5)]:
        k = d.r.random()
        if k < 0.5:
            files.append(_file(d, path))
        elif k < 0.75:
            node: dict[str, Any] = {"path": path}
            if d.p(0.4):
                node["overwrite"] = d.p(0.75)
            _mode(d, node)
            _owner(d, node)
            dirs.append(node)
        else:
            link: dict[str, Any] = {"path": path, "target": d.pick(TARGETS)}
            if d.p(0.4):
                link["hard"] = d.p(0.6)
            if d.p(0.4):
                link["overwrite"] = d.p(0.75)
            _owner(d, link)
            links.append(link)
    cfg: dict[str, Any] = {"ignition": {"version": d.pick(VERSIONS)}}
    storage = {k: v for k, v in (("files", files), ("directories", dirs), ("links", links)) if v}
    if storage:
        cfg["storage"] = storage
    if d.p(0.5):
        names = sorted({d.pick(UNITS) for _ in range(d.r.randint(1, 3))})
        cfg["systemd"] = {"units": [_unit(d, n) for n in names]}
    return cfg


def draw(seed: int) -> str:
    return json.dumps(config(seed), indent=2) + "\n"


def oracle_apply(oracle: str, cfg_path: Path, root: Path, work: Path) -> int:
    """Ignition's fetch-offline then files stage onto ``root``: 0 when the files were written."""
    env = dict(os.environ, IGNITION_CONFIG_FILE=str(cfg_path))
    common = [
        oracle,
        "-platform",
        "file",
        "-config-cache",
        str(work / "cache.json"),
        "-state-file",
        str(work / "state"),
    ]
    subprocess.run(
        [*common, "-stage", "fetch-offline", "-neednet", str(work / "nn")], env=env, capture_output=True
    )
    p = subprocess.run(
        [*common, "-stage", "files", "-root", str(root)], env=env, capture_output=True, text=True
    )
    out = p.stdout + p.stderr
    if p.returncode == 0 or "failed to handle relabeling" in out:
        return 0
    if os.environ.get("APPLY_DIFF_WHY"):
        print("   ign:", [x for x in out.splitlines() if "CRITICAL" in x][-1:])
    return 1


def oracle_answer(oracle: str, text: str) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "config.ign").write_text(text)
        (t / "run").mkdir()
        make_seed(t / "root")
        rc = oracle_apply(oracle, t / "config.ign", t / "root", t / "run")
        return rc, (tree_text(t / "root", preset_enabled(t / "root")) if rc == 0 else "")


def tree_text(root: Path, enabled: list[str]) -> str:
    lines, _ = describe(root)
    return "".join(f"{x}\n" for x in lines) + "".join(f"enabled {n}\n" for n in enabled)


def ours(text: str) -> tuple[int, str, str]:
    """``pineinstall apply --root`` on ``text`` in this process: (rc, tree, log)."""
    import io

    from pineinstall.apply import run_apply
    from pineinstall.stages import Log

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "config.ign").write_text(text)
        make_seed(t / "root")
        buf = io.StringIO()
        rc = run_apply(str(t / "root"), str(t / "config.ign"), log=Log(buf, quiet=True), stdout=io.StringIO())
        if rc != 0:
            return rc, "", buf.getvalue()
        _, linked = describe(t / "root")
        return 0, tree_text(t / "root", linked), buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("mode", choices=("campaign", "record"))
    ap.add_argument("--oracle", required=True, help="an ignition binary built from Ignition's sources")
    ap.add_argument("--seeds", default="0:200", help="START:END")
    ap.add_argument("--quiet", action="store_true", help="campaign: only the summary")
    args = ap.parse_args()
    start, end = (int(x) for x in args.seeds.split(":"))
    bad = done = 0
    for seed in range(start, end):
        text = draw(seed)
        rc, tree = oracle_answer(args.oracle, text)
        done += rc == 0
        if args.mode == "record":
            case = CASES / f"{seed:05d}"
            case.mkdir(parents=True, exist_ok=True)
            (case / "config.ign").write_text(text)
            (case / "expected.rc").write_text(f"{rc}\n")
            if rc == 0:
                (case / "expected.tree").write_text(tree)
            continue
        orc, otree, olog = ours(text)
        if (rc == 0) != (orc == 0) or tree != otree:
            bad += 1
            if not args.quiet:
                print(f"seed {seed}: ignition rc {rc}, ours rc {orc}", json.dumps(config(seed)))
                a, b = set(tree.splitlines()), set(otree.splitlines())
                for x in sorted(a - b):
                    print("   ign ", x)
                for x in sorted(b - a):
                    print("   pine", x)
                if orc and not rc:
                    print("   ", olog.strip().splitlines()[-1:] if olog.strip() else "")
    print(f"{args.mode}: {end - start} configs, {done} applied by Ignition, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
