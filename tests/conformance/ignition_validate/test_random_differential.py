"""Random differential test: seeded random configs, our rules against ignition-validate.

A fixed-seed generator draws configs of spec 3.0.0-3.3.0 from pools of tricky values (bad paths,
URL schemes, hashes, partition layouts, unit texts...). For each, the set of (kind, JSON path,
message) that ignition-validate prints must equal ours (from ``pineinstall.config.check``), and
so must the verdict. A second generator draws URLs, data URLs, unit texts and paths character
by character, to exercise the parsers behind the rules. One known exception: when several partition numbers collide on one disk,
ignition-validate names one of them at random (Go map order), so that entry is left out.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pineinstall.config import check
from pineinstall.config.report import format_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wording import as_newest

pytestmark = pytest.mark.conformance
REFERENCE = shutil.which("ignition-validate")
SEEDS = range(10)
PER_SEED = 40

R = random.Random(0)


def pick(*xs):
    return R.choice(xs)


PATHS = [
    "/a",
    "/a/b",
    "/a/b/c",
    "a",
    "/a/",
    "/a/../b",
    "",
    "/l",
    "/l/x",
    "/d",
    "/etc/systemd/system/x.service",
]
URLS = [
    "http://x/a",
    "https://x/a",
    "data:,x",
    "data:;base64,QUJD",
    "data:text",
    "s3://b/k",
    "s3://b/k?versionId=",
    "gs://b/o",
    "tftp://h/f",
    "ftp://x",
    "",
    "http://[::1",
    "http://h:p/",
    "data:,%zz",
    "arn:aws:s3:::b/k",
    "HTTP://X",
    "x",
]
HASHES = ["sha512-" + "0" * 128, "sha256-" + "0" * 64, "sha512-0", "md5-00", "sha512", "sha256-" + "0" * 63]


def maybe(d, k, gen, p=0.4):
    if R.random() < p:
        d[k] = gen()


def resource():
    d = {}
    maybe(d, "source", lambda: pick(*URLS), 0.7)
    maybe(d, "compression", lambda: pick("", "gzip", "xz", None), 0.2)
    maybe(d, "verification", lambda: {"hash": pick(*HASHES)}, 0.2)
    maybe(
        d,
        "httpHeaders",
        lambda: [{"name": pick("", "A", "A"), "value": "v"} for _ in range(R.randint(0, 2))],
        0.15,
    )
    return d


def owner():
    d = {}
    maybe(d, "id", lambda: pick(0, 1, None), 0.5)
    maybe(d, "name", lambda: pick("", "root", None), 0.5)
    return d


def node():
    d = {"path": pick(*PATHS)}
    maybe(d, "user", owner, 0.2)
    maybe(d, "group", owner, 0.2)
    return d


def file():
    d = node()
    maybe(d, "mode", lambda: pick(420, 4095, 4096, -1, 2541, 0), 0.3)
    maybe(d, "overwrite", lambda: pick(True, False), 0.3)
    maybe(d, "contents", resource, 0.5)
    maybe(d, "append", lambda: [resource() for _ in range(R.randint(0, 2))], 0.2)
    return d


def dirn():
    d = node()
    maybe(d, "mode", lambda: pick(493, 1023, 8000), 0.3)
    return d


def link():
    d = node()
    maybe(d, "target", lambda: pick("/a", "/d", "d", "", "../d", "/x/../d/"), 0.8)
    maybe(d, "hard", lambda: pick(True, False), 0.4)
    return d


def part():
    d = {}
    maybe(d, "number", lambda: pick(0, 1, 2, 3), 0.7)
    maybe(d, "label", lambda: pick("", "a", "a:b", "x" * 37, "root"), 0.5)
    maybe(d, "startMiB", lambda: pick(0, 1, 10, 15, 100), 0.4)
    maybe(d, "sizeMiB", lambda: pick(0, 10, 100), 0.4)
    maybe(d, "shouldExist", lambda: pick(True, False), 0.3)
    maybe(d, "guid", lambda: pick("", "x", "5e9c4a2b-1b6e-4d2c-9f0a-0123456789ab"), 0.2)
    maybe(d, "typeGuid", lambda: pick("", "x"), 0.1)
    maybe(d, "wipePartitionEntry", lambda: True, 0.1)
    return d


def fs():
    d = {"device": pick("/dev/a", "/dev/b", "", "dev/c")}
    maybe(d, "format", lambda: pick("ext4", "xfs", "vfat", "swap", "btrfs", "none", "", "zfs"), 0.7)
    maybe(d, "label", lambda: pick("", "short", "x" * 12, "x" * 17), 0.4)
    maybe(d, "path", lambda: pick("/var", "var", ""), 0.3)
    maybe(d, "wipeFilesystem", lambda: pick(True, False), 0.2)
    maybe(d, "options", lambda: ["-x"], 0.1)
    maybe(d, "mountOptions", lambda: ["ro"], 0.1)
    maybe(d, "uuid", lambda: pick("", "u"), 0.1)
    return d


def raid():
    d = {"name": pick("md0", "md1", "")}
    maybe(d, "level", lambda: pick("raid0", "raid1", "linear", "5", "raid7", ""), 0.8)
    maybe(d, "devices", lambda: [pick("/dev/a", "/dev/a", "dev/b") for _ in range(R.randint(0, 2))], 0.8)
    maybe(d, "spares", lambda: pick(0, 1), 0.3)
    return d


def luks():
    d = {"name": pick("c", "c", "a/b", "")}
    maybe(d, "device", lambda: pick("/dev/a", "", "dev/a"), 0.8)
    maybe(d, "label", lambda: pick("l", "l" * 48), 0.2)
    maybe(d, "keyFile", resource, 0.2)
    cl = {}
    maybe(cl, "tpm2", lambda: pick(True, False), 0.3)
    maybe(cl, "threshold", lambda: pick(0, 1, 2), 0.2)
    maybe(
        cl,
        "tang",
        lambda: [
            {
                "url": pick("http://t", "t", "http://t"),
                **({"thumbprint": pick("", "x")} if R.random() < 0.7 else {}),
            }
            for _ in range(R.randint(0, 2))
        ],
        0.3,
    )
    maybe(
        cl,
        "custom",
        lambda: {
            k: v
            for k, v in (
                ("pin", pick("tpm2", "foo", "")),
                ("config", pick("", "{}")),
                ("needsNetwork", pick(True, False)),
            )
            if R.random() < 0.5
        },
        0.4,
    )
    if cl or R.random() < 0.1:
        d["clevis"] = cl
    return d


def unit():
    d = {"name": pick("a.service", "a.service", "b.timer", "c", "d.SERVICE", "x.service")}
    maybe(d, "enabled", lambda: pick(True, False), 0.4)
    maybe(
        d,
        "contents",
        lambda: pick(
            "",
            "[Unit]\n",
            "[Install]\nWantedBy=a\n",
            "[Unit",
            "[Unit]\nA",
            "[Unit] x\n",
            "# c\n",
            "[S]\nA=1\nB\n",
        ),
        0.6,
    )
    maybe(
        d,
        "dropins",
        lambda: [
            {
                "name": pick("x.conf", "x.conf", "y"),
                **({"contents": pick("[S]\n", "[S")} if R.random() < 0.5 else {}),
            }
            for _ in range(R.randint(0, 2))
        ],
        0.3,
    )
    return d


def config(v):
    c = {"ignition": {"version": v}}
    ig = c["ignition"]
    if R.random() < 0.3:
        ig["config"] = {
            "merge": [resource() for _ in range(R.randint(0, 2))],
            **({"replace": resource()} if R.random() < 0.3 else {}),
        }
    if R.random() < 0.2:
        ig["security"] = {"tls": {"certificateAuthorities": [resource() for _ in range(R.randint(0, 2))]}}
    if v != "3.0.0" and R.random() < 0.2:
        ig["proxy"] = {
            k: pick("http://p", "https://p", "ftp://p", "http://[p")
            for k in ("httpProxy", "httpsProxy")
            if R.random() < 0.6
        }
    st = {}
    lists = [("files", file), ("directories", dirn), ("links", link), ("filesystems", fs), ("raid", raid)]
    if v >= "3.2.0":
        lists.append(("luks", luks))
    for k, g in lists:
        if R.random() < 0.4:
            st[k] = [g() for _ in range(R.randint(1, 3))]
    if R.random() < 0.3:
        st["disks"] = [
            {"device": pick("/dev/a", "/dev/b", ""), "partitions": [part() for _ in range(R.randint(0, 4))]}
            for _ in range(R.randint(1, 2))
        ]
    if st:
        c["storage"] = st
    if R.random() < 0.4:
        c["systemd"] = {"units": [unit() for _ in range(R.randint(1, 3))]}
    if R.random() < 0.2:
        c["passwd"] = {
            "users": [
                {
                    "name": pick("a", "a", "b"),
                    "sshAuthorizedKeys": [pick("k", "k")],
                    "groups": [pick("g", "h")],
                }
                for _ in range(R.randint(1, 2))
            ],
            "groups": [{"name": pick("g", "g")}],
        }
    if v == "3.3.0" and R.random() < 0.2:
        c["kernelArguments"] = {"shouldExist": [pick("a", "b")], "shouldNotExist": [pick("a", "c")]}
    return c


LINE = re.compile(r"^(error|warning) at (\$[^,]*), line \d+ col \d+: (.*)$")


def _random_collisions(cfg: dict) -> set[str]:
    """Paths of disks where more than one partition number collides."""
    paths = set()
    for i, disk in enumerate((cfg.get("storage") or {}).get("disks") or []):
        counts = Counter(p.get("number") for p in disk.get("partitions") or [] if p.get("number"))
        if sum(1 for n in counts.values() if n > 1) > 1:
            paths.add(f"$.storage.disks.{i}.partitions.")
    return paths


def _is_random_pick(entry: tuple[str, str, str], disks: set[str]) -> bool:
    return entry[2] == "partition numbers collide" and any(entry[1].startswith(p) for p in disks)


# Ignition 2.15 added four checks to every spec version, which we follow (the newest Ignition);
# the reference here, Debian's ignition-validate 2.14, predates them: compare with them applied
# from 3.4.0 only, as 2.14 would have them.
@pytest.fixture(autouse=True)
def as_ignition_2_14(monkeypatch):
    from pineinstall.config.rules import files, storage, systemd

    for module in (files, storage, systemd):
        monkeypatch.setattr(module, "POST_2_14_CHECKS_FROM", (3, 4))


def _ours(report) -> tuple[set, bool]:
    """Our findings as the reference words them, and our verdict."""
    kept = [e for e in report if e.path is not None and not e.message.startswith("context tree does not match")]
    return {(e.kind, format_path(e.path), e.message) for e in kept}, report.has_errors


@pytest.mark.skipif(REFERENCE is None, reason="ignition-validate is not installed")
@pytest.mark.parametrize("seed", SEEDS)
def test_random_configs_agree(seed, tmp_path):
    R.seed(seed)
    for n in range(PER_SEED):
        version = pick("3.0.0", "3.1.0", "3.2.0", "3.3.0")
        cfg = config(version)
        text = json.dumps(cfg)
        path = tmp_path / f"{n}.ign"
        path.write_text(text)
        proc = subprocess.run([REFERENCE, str(path)], capture_output=True, text=True, timeout=60)
        ref = set()
        for line in (proc.stdout + proc.stderr).splitlines():
            m = LINE.match(line)
            if m and not m.group(3).startswith("context tree does not match"):
                ref.add((m.group(1), m.group(2), as_newest(m.group(3))))
        ours, has_errors = _ours(check(text).report)
        skip = _random_collisions(cfg)
        if skip:
            ref = {e for e in ref if not _is_random_pick(e, skip)}
            ours = {e for e in ours if not _is_random_pick(e, skip)}
        assert ours == ref, text
        assert has_errors == (proc.returncode != 0), text


# --- strings: URLs (Go's url.Parse), data URLs, unit texts and paths, drawn character by character

URLP = ["http", "https", "s3", "gs", "tftp", "data", "ftp", "HTTP", "x-y", "1a", ""]
CH = list("abc/:?#[]@%=;,.-_~!$&'()*+ \"<>{}|\\^`") + ["%2", "%41", "%zz", "%25", "é", "\t", "\x7f"]


def rstr(n):
    return "".join(R.choice(CH) for _ in range(R.randint(0, n)))


def url():
    k = R.random()
    if k < 0.3:
        return R.choice(URLP) + ":" + R.choice(["//", "/", ""]) + rstr(8)
    if k < 0.6:
        mt = R.choice(["", "text/plain", "x-a/b", "foo/bar", "text/", "text", "application/json", "x-"])
        params = "".join(
            R.choice([";base64", ";a=b", ';a="q\\"x"', ";charset=utf-8", ";", ";=", ";a=%zz", ';a="x'])
            for _ in range(R.randint(0, 2))
        )
        data = R.choice(
            ["", "QUJD", "QQ==", "QQ=", "Q", "a b", "abc%20", "%z", "é", "QU=D", "QUJDRA==", "====", "x\n"]
        )
        return "data:" + mt + params + R.choice([",", "", ",,"]) + data
    if k < 0.8:
        return (
            R.choice(["http://", "s3://", "https://"])
            + R.choice(["host", "[::1]", "[::1", "h:80", "h:x", "u@h", "u:p@h", "h%41", "h%25", "a b", ""])
            + R.choice(
                [
                    "",
                    "/",
                    "/p?versionId=",
                    "/p?versionId=1",
                    "/p?versionId",
                    "/%zz",
                    "#%x",
                    "/a b",
                    "?x=%zz&versionId=",
                ]
            )
        )
    return rstr(12)


UNITC = [
    "[Unit]",
    "[Service]",
    "[Install]",
    "A=1",
    "B",
    "# c",
    "; c \\",
    " x",
    "[X] y",
    "[",
    "]",
    "=",
    "\\",
    "",
    "\r",
    "Foo = bar \\",
    "WantedBy=x",
]


def unit_text():
    return "".join(R.choice(UNITC) + R.choice(["\n", "\r\n", "", " "]) for _ in range(R.randint(0, 6)))


PATHC = ["/", "a", "..", ".", "//", "b/", "/c"]


def path():
    return "".join(R.choice(PATHC) for _ in range(R.randint(0, 4)))


def _string_config(version: str) -> dict:
    files = [{"path": path(), "contents": {"source": url()}} for _ in range(4)]
    units = [
        {
            "name": R.choice(["a.service", "b.service", "c", "d@.service", "d@x.service"]),
            "enabled": R.choice([True, False, None]),
            "contents": unit_text(),
            "dropins": [{"name": R.choice(["x.conf", "y"]), "contents": unit_text()}],
        }
        for _ in range(3)
    ]
    return {
        "ignition": {"version": version, "proxy": {"httpProxy": url(), "httpsProxy": url()}},
        "storage": {"files": files},
        "systemd": {"units": units},
    }


@pytest.mark.skipif(REFERENCE is None, reason="ignition-validate is not installed")
@pytest.mark.parametrize("seed", SEEDS)
def test_random_strings_agree(seed, tmp_path):
    R.seed(1000 + seed)
    for n in range(PER_SEED):
        text = json.dumps(_string_config(R.choice(["3.1.0", "3.3.0"])))
        path_ = tmp_path / f"{n}.ign"
        path_.write_text(text)
        proc = subprocess.run([REFERENCE, str(path_)], capture_output=True, text=True, timeout=60)
        ref = {
            (m.group(1), m.group(2), as_newest(m.group(3)))
            for line in (proc.stdout + proc.stderr).splitlines()
            if (m := LINE.match(line)) and not m.group(3).startswith("context tree does not match")
        }
        ours, has_errors = _ours(check(text).report)
        assert ours == ref, text
        assert has_errors == (proc.returncode != 0), text
