"""Seeded Ignition configs for differential runs against ignition-validate built from its sources.

    python tests/conformance/ignition_diff/ignition_generate.py campaign --oracle IGNITION_VALIDATE --seeds 0:3000
        run every seed through the oracle and through ``pineinstall validate``, print the disagreements
    python tests/conformance/ignition_diff/ignition_generate.py record --oracle IGNITION_VALIDATE --seeds 0:800
        write each seed's config and the oracle's answer under cases/ (what CI replays)
    python tests/conformance/ignition_diff/ignition_generate.py record-named --oracle IGNITION_VALIDATE
        (re)write the oracle's answer for each hand-written case (cases/NAME, NAME not a number:
        its config.ign written by hand, for a class of difference the draws reach only rarely)

A case is one JSON document of spec 3.0.0-3.6.0 or 3.7.0-experimental (now and then a version
Ignition does not know, or none), drawn over every field of the union of those specs, so a field a
version lacks shows as Ignition's unused key: ignition (config merge/replace, timeouts, TLS
authorities, proxy), storage (disks and partitions, RAID, filesystems, LUKS with clevis, cex and
open options, files, directories, links), systemd units and drop-ins, passwd users and groups,
kernel arguments. Values come from pools of valid and invalid ones (paths, URLs, hashes, modes
with special bits, partition layouts, unit texts); duplicates (paths, names, devices, partition
numbers and labels, kernel arguments, headers) and dependencies between fields (a filesystem's
format and path, clevis and key files and cex, hard links and their targets, overwrite without a
source) are drawn on purpose; a few cases get unknown keys, nulls, a value of the wrong JSON type
or a text-level defect (a key given twice, trailing garbage, truncation). The oracle runs as
``ignition-validate config.ign``; its rc, stdout and stderr are the recorded answer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from diffgen import Draws  # noqa: E402

CASES = HERE / "cases"
VERSIONS = [f"3.{n}.0" for n in range(7)] + ["3.7.0-experimental"]
ODD_VERSIONS = ["3.7.0", "3.6.0-experimental", "3.4", "2.3.0", "", "3.0.0-experimental", None]

PATHS = [
    "/etc/a",
    "/etc/a/b",
    "/etc/d",
    "/var/l",
    "/var/l/x",
    "etc/rel",
    "/etc/a/",
    "/etc/../x",
    "/etc//c",
    "",
    "/etc/systemd/system/a.service",
    "/home/core/.ssh/authorized_keys",
]
URLS = [
    "https://example.com/a",
    "http://example.com/b",
    "data:,hello",
    "data:;base64,aGVsbG8=",
    "s3://bucket/key",
    "s3://bucket/key?versionId=1",
    "arn:aws:s3:::bucket/key",
    "arn:aws:s3:us-east-1:123:accesspoint/ap/object/k",
    "gs://b/o",
    "tftp://h/f",
    "ftp://x/y",
    "http://[::1",
    "",
    "data:text",
    "HTTP://X/Y",
    "x",
    "https://u:p@example.com/a",
]
HASHES = ["sha512-" + "0" * 128, "sha256-" + "0" * 64, "sha512-0", "md5-00", "sha512", "sha256-" + "g" * 64]
MODES = [420, 493, 384, 511, 2541, 3565, 1023, 4095, 4096, 0, -1, 8000, 2048, 1472]
DEVICES = [
    "/dev/vda",
    "/dev/vdb",
    "/dev/sda",
    "vdb",
    "",
    "/dev/disk/by-partlabel/var",
    "/dev/mapper/c",
    "/dev/md/data",
]
FORMATS = ["ext4", "xfs", "vfat", "swap", "btrfs", "none", "", "zfs", "EXT4"]
LABELS = ["root", "boot", "var", "data", "a:b", "x" * 36, "x" * 37, "", "é" * 18]
GUIDS = [
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
    "5e9c4a2b-1b6e-4d2c-9f0a-0123456789ab",
    "x",
    "",
    "0fc63daf-8483-4772-8e79-3d69d8477de4",
]
UNIT_NAMES = [
    "a.service",
    "a.service",
    "b.timer",
    "c",
    "d.SERVICE",
    "e@.service",
    "e@x.service",
    "f.mount",
    ".service",
    "g.service.d",
]
UNIT_TEXTS = [
    "[Unit]\nDescription=x\n",
    "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    "",
    "[Unit",
    "[Unit]\nA\n",
    "[Unit] x\n",
    "# c\n",
    "[S]\nA=1\nB=2 \\\n  c\n",
    "A=1\n",
]
# Without Pine's deliberate account-name errors (issue 12: more than 32 characters, a ':', ',', '/',
# '\\' or white space): Ignition accepts them.
NAMES = ["core", "core", "root", "admin", "", "a" * 32, "x-y", "Core"]
KARGS = ["quiet", "quiet", "debug", "a=b", "", "console=ttyS0,115200"]


class Gen(Draws):
    """One config drawn from a seed."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.oddness = self.p(0.35)  # unknown keys, nulls and wrong JSON types in this case

    def opt(self, d: dict, key: str, make: Any, prob: float = 0.4) -> None:
        if self.p(prob):
            d[key] = make() if callable(make) else make

    def odd(self, d: dict) -> dict:
        """Now and then an unknown key or a null value in ``d``."""
        if self.oddness and self.p(0.08):
            d[self.pick(["x", "unknown", "sizeMib", "Path", "mode"])] = self.pick([1, "v", None, {}])
        if self.oddness and d and self.p(0.05):
            d[self.pick(list(d))] = None
        return d

    def resource(self, need_source: bool = False) -> dict:
        d: dict = {}
        self.opt(d, "source", lambda: self.pick(URLS), 0.9 if need_source else 0.7)
        self.opt(d, "compression", lambda: self.pick(["", "gzip", "xz", "zstd", None]), 0.2)
        self.opt(d, "verification", lambda: self.odd({"hash": self.pick(HASHES)}), 0.2)
        self.opt(
            d,
            "httpHeaders",
            lambda: [
                self.odd(
                    {
                        "name": self.pick(["", "X-A", "X-A", "Authorization"]),
                        **({"value": self.pick(["v", "", None])} if self.p(0.8) else {}),
                    }
                )
                for _ in range(self.r.randint(0, 3))
            ],
            0.15,
        )
        return self.odd(d)

    def owner(self) -> dict:
        d: dict = {}
        self.opt(d, "id", lambda: self.pick([0, 500, -1, None]), 0.5)
        self.opt(d, "name", lambda: self.pick(["", "root", "core", None]), 0.5)
        return self.odd(d)

    def node(self) -> dict:
        d: dict = {"path": self.pick(PATHS)} if self.p(0.95) else {}
        self.opt(d, "overwrite", lambda: self.pick([True, False]), 0.3)
        self.opt(d, "user", self.owner, 0.2)
        self.opt(d, "group", self.owner, 0.2)
        return d

    def file(self) -> dict:
        d = self.node()
        self.opt(d, "contents", self.resource, 0.6)
        self.opt(d, "append", lambda: [self.resource() for _ in range(self.r.randint(0, 2))], 0.15)
        self.opt(d, "mode", lambda: self.pick(MODES), 0.5)
        return self.odd(d)

    def directory(self) -> dict:
        d = self.node()
        self.opt(d, "mode", lambda: self.pick(MODES), 0.5)
        return self.odd(d)

    def link(self) -> dict:
        d = self.node()
        self.opt(
            d, "target", lambda: self.pick(["/etc/a", "/etc/d", "d", "", "../d", "/x/../d/", None]), 0.85
        )
        self.opt(d, "hard", lambda: self.pick([True, False]), 0.4)
        return self.odd(d)

    def partition(self) -> dict:
        d: dict = {}
        self.opt(d, "number", lambda: self.pick([0, 1, 2, 3, 4, 129, -1]), 0.7)
        self.opt(d, "label", lambda: self.pick(LABELS), 0.5)
        self.opt(d, "sizeMiB", lambda: self.pick([0, 10, 100, 4096, -1]), 0.4)
        self.opt(d, "startMiB", lambda: self.pick([0, 1, 10, 100, -5]), 0.4)
        self.opt(d, "typeGuid", lambda: self.pick(GUIDS), 0.2)
        self.opt(d, "guid", lambda: self.pick(GUIDS), 0.2)
        self.opt(d, "wipePartitionEntry", lambda: self.pick([True, False]), 0.15)
        self.opt(d, "shouldExist", lambda: self.pick([True, False]), 0.25)
        self.opt(d, "resize", lambda: self.pick([True, False]), 0.15)
        return self.odd(d)

    def disk(self) -> dict:
        d: dict = {"device": self.pick(DEVICES)} if self.p(0.95) else {}
        self.opt(d, "wipeTable", lambda: self.pick([True, False]), 0.4)
        self.opt(d, "partitions", lambda: [self.partition() for _ in range(self.r.randint(0, 4))], 0.85)
        return self.odd(d)

    def raid(self) -> dict:
        d: dict = {"name": self.pick(["md0", "md0", "data", ""])}
        self.opt(
            d, "level", lambda: self.pick(["raid0", "raid1", "raid5", "linear", "5", "raid7", "", None]), 0.85
        )
        self.opt(d, "devices", lambda: [self.pick(DEVICES) for _ in range(self.r.randint(0, 3))], 0.85)
        self.opt(d, "spares", lambda: self.pick([0, 1, 2, -1]), 0.3)
        self.opt(d, "options", lambda: [self.pick(["--x", "--x", ""])], 0.1)
        return self.odd(d)

    def filesystem(self) -> dict:
        d: dict = {"device": self.pick(DEVICES)} if self.p(0.95) else {}
        self.opt(d, "format", lambda: self.pick(FORMATS), 0.75)
        self.opt(d, "path", lambda: self.pick(["/var", "/srv", "var", "", "/"]), 0.5)
        self.opt(d, "label", lambda: self.pick(["", "short", "x" * 11, "x" * 12, "x" * 16, "x" * 17]), 0.35)
        self.opt(d, "uuid", lambda: self.pick(["", "u", GUIDS[1]]), 0.1)
        self.opt(d, "wipeFilesystem", lambda: self.pick([True, False]), 0.3)
        self.opt(d, "options", lambda: [self.pick(["-x", "-x", ""])], 0.1)
        self.opt(d, "mountOptions", lambda: [self.pick(["ro", "ro", ""])], 0.15)
        return self.odd(d)

    def clevis(self) -> dict:
        d: dict = {}
        self.opt(d, "tpm2", lambda: self.pick([True, False]), 0.4)
        self.opt(d, "threshold", lambda: self.pick([0, 1, 2, 3, -1]), 0.3)
        self.opt(
            d,
            "tang",
            lambda: [
                self.odd(
                    {
                        "url": self.pick(["http://t", "http://t", "t", "", "ftp://t"]),
                        **({"thumbprint": self.pick(["", "x", None])} if self.p(0.7) else {}),
                        **(
                            {"advertisement": self.pick(["{}", "x", '{"payload": "e30"}', ""])}
                            if self.p(0.25)
                            else {}
                        ),
                    }
                )
                for _ in range(self.r.randint(0, 2))
            ],
            0.4,
        )
        self.opt(
            d,
            "custom",
            lambda: self.odd(
                {
                    k: v
                    for k, v in (
                        ("pin", self.pick(["tpm2", "tang", "sss", "foo", "", None])),
                        ("config", self.pick(["", "{}", None])),
                        ("needsNetwork", self.pick([True, False])),
                    )
                    if self.p(0.6)
                }
            ),
            0.35,
        )
        return self.odd(d)

    def luks(self) -> dict:
        d: dict = {"name": self.pick(["c", "c", "a/b", "", "root"])}
        self.opt(d, "device", lambda: self.pick(DEVICES), 0.85)
        self.opt(d, "label", lambda: self.pick(["l", "l" * 47, "l" * 48]), 0.2)
        self.opt(d, "uuid", lambda: self.pick(["", "u", GUIDS[1]]), 0.1)
        self.opt(d, "keyFile", self.resource, 0.25)
        self.opt(d, "wipeVolume", lambda: self.pick([True, False]), 0.2)
        self.opt(d, "options", lambda: [self.pick(["--x", "--x", ""])], 0.1)
        self.opt(d, "openOptions", lambda: [self.pick(["--allow-discards", "--allow-discards", ""])], 0.15)
        self.opt(d, "discard", lambda: self.pick([True, False]), 0.2)
        self.opt(d, "clevis", self.clevis, 0.5)
        self.opt(
            d,
            "cex",
            lambda: self.odd({"enabled": self.pick([True, False, None])} if self.p(0.9) else {}),
            0.2,
        )
        return self.odd(d)

    def unit(self) -> dict:
        d: dict = {"name": self.pick(UNIT_NAMES)} if self.p(0.95) else {}
        self.opt(d, "enabled", lambda: self.pick([True, False, None]), 0.4)
        self.opt(d, "mask", lambda: self.pick([True, False]), 0.15)
        self.opt(d, "contents", lambda: self.pick(UNIT_TEXTS), 0.55)
        self.opt(
            d,
            "dropins",
            lambda: [
                self.odd(
                    {
                        "name": self.pick(["x.conf", "x.conf", "y", ""]),
                        **({"contents": self.pick(UNIT_TEXTS)} if self.p(0.6) else {}),
                    }
                )
                for _ in range(self.r.randint(0, 2))
            ],
            0.3,
        )
        return self.odd(d)

    def user(self) -> dict:
        d: dict = {"name": self.pick(NAMES)}
        self.opt(d, "passwordHash", lambda: self.pick(["$6$s$h", "$y$j9T$s$h", "*", "", "!"]), 0.3)
        self.opt(
            d,
            "sshAuthorizedKeys",
            lambda: [
                self.pick(["ssh-ed25519 AAAA a", "ssh-ed25519 AAAA a", ""])
                for _ in range(self.r.randint(0, 2))
            ],
            0.4,
        )
        # (no uid 0 for a new user: Pine warns about it, Ignition does not)
        self.opt(d, "uid", lambda: self.pick([1000, -1, None]), 0.2)
        self.opt(d, "gecos", "G", 0.1)
        self.opt(d, "homeDir", lambda: self.pick(["/home/x", "home", ""]), 0.1)
        self.opt(d, "noCreateHome", True, 0.05)
        self.opt(d, "primaryGroup", lambda: self.pick(["wheel", ""]), 0.1)
        self.opt(
            d,
            "groups",
            lambda: [self.pick(["wheel", "docker", ""]) for _ in range(self.r.randint(0, 2))],
            0.2,
        )
        self.opt(d, "noUserGroup", True, 0.05)
        self.opt(d, "noLogInit", True, 0.05)
        self.opt(d, "shell", lambda: self.pick(["/bin/bash", ""]), 0.1)
        self.opt(d, "system", lambda: self.pick([True, False]), 0.1)
        self.opt(d, "shouldExist", lambda: self.pick([True, False]), 0.15)
        return self.odd(d)

    def group(self) -> dict:
        d: dict = {"name": self.pick(NAMES)}
        self.opt(d, "gid", lambda: self.pick([0, 1000, -1]), 0.3)
        self.opt(d, "passwordHash", lambda: self.pick(["$6$s$h", ""]), 0.1)
        self.opt(d, "system", lambda: self.pick([True, False]), 0.1)
        self.opt(d, "shouldExist", lambda: self.pick([True, False]), 0.15)
        return self.odd(d)

    def many(self, make: Any, most: int = 3) -> list:
        """A list, sometimes with an entry twice (the duplicate checks)."""
        items = self.some(make, most)
        if self.p(0.15):
            items.append(json.loads(json.dumps(self.pick(items))))
        return items

    def ignition(self, version: str | None) -> dict:
        ig: dict = {} if version is None else {"version": version}
        cfg: dict = {}
        self.opt(cfg, "merge", lambda: self.many(self.resource, 2), 0.7)
        self.opt(cfg, "replace", self.resource, 0.3)
        self.opt(ig, "config", lambda: self.odd(cfg), 0.2)
        self.opt(
            ig,
            "timeouts",
            lambda: self.odd(
                {k: self.pick([0, 10, -1]) for k in ("httpResponseHeaders", "httpTotal") if self.p(0.6)}
            ),
            0.1,
        )
        self.opt(
            ig,
            "security",
            lambda: {"tls": self.odd({"certificateAuthorities": self.many(self.resource, 2)})},
            0.15,
        )
        self.opt(
            ig,
            "proxy",
            lambda: self.odd(
                {
                    **{
                        k: self.pick(["http://p", "https://p", "ftp://p", "http://[p", ""])
                        for k in ("httpProxy", "httpsProxy")
                        if self.p(0.6)
                    },
                    **(
                        {"noProxy": [self.pick(["a", "a", ""]) for _ in range(self.r.randint(0, 2))]}
                        if self.p(0.3)
                        else {}
                    ),
                }
            ),
            0.15,
        )
        return self.odd(ig)

    def config(self) -> dict:
        version = self.pick(VERSIONS) if self.p(0.95) else self.pick(ODD_VERSIONS)
        c: dict = {"ignition": self.ignition(version)}
        st: dict = {}
        for key, make, prob in (
            ("files", self.file, 0.5),
            ("directories", self.directory, 0.3),
            ("links", self.link, 0.3),
            ("disks", self.disk, 0.25),
            ("raid", self.raid, 0.15),
            ("filesystems", self.filesystem, 0.3),
            ("luks", self.luks, 0.25),
        ):
            self.opt(st, key, lambda make=make: self.many(make), prob)
        if st or self.p(0.05):
            c["storage"] = self.odd(st)
        if self.p(0.4):
            c["systemd"] = self.odd({"units": self.many(self.unit)})
        if self.p(0.25):
            pw: dict = {}
            self.opt(pw, "users", lambda: self.many(self.user, 2), 0.8)
            self.opt(pw, "groups", lambda: self.many(self.group, 2), 0.4)
            c["passwd"] = self.odd(pw)
        if self.p(0.15):
            c["kernelArguments"] = self.odd(
                {
                    k: [self.pick(KARGS) for _ in range(self.r.randint(0, 3))]
                    for k in ("shouldExist", "shouldNotExist")
                    if self.p(0.7)
                }
            )
        if self.oddness and self.p(0.15):
            self.wrong_type(c)
        return self.odd(c)

    def wrong_type(self, c: dict) -> None:
        """One value replaced by one of another JSON type."""
        spots: list[tuple[Any, Any]] = []

        def walk(v: Any) -> None:
            for k, x in v.items() if isinstance(v, dict) else enumerate(v):
                spots.append((v, k))
                if isinstance(x, (dict, list)):
                    walk(x)

        walk(c)
        where, key = self.pick(spots)
        where[key] = self.pick(["s", 1, 1.5, True, [], {}, [1]])


def draw(seed: int) -> str:
    """The seed's config text."""
    gen = Gen(seed)
    text = json.dumps(gen.config(), indent=gen.pick([None, 2, 2, 4]), ensure_ascii=gen.p(0.5))
    if gen.p(0.04):  # text-level defects
        kind = gen.pick(["dup", "dupsection", "trail", "cut", "empty"])
        if kind == "dup":
            text = text.replace('"ignition": {', '"ignition": {"version": "3.0.0", ', 1)
        elif kind == "dupsection":  # Go decodes a key given again into what the first one left
            again = gen.pick(
                [
                    '"storage": {"files": [{"path": "rel", "mode": null}]}',
                    '"storage": null',
                    '"systemd": {"units": [{"name": "a.service", "name": null}]}',
                    '"ignition": {"version": "3.4.0"}',
                    '"ignition": {"config": null}',
                    '"passwd": {"users": [{"name": "core"}]}',
                ]
            )
            text = text.rstrip()[:-1].rstrip() + ", " + again + "}"
        elif kind == "trail":
            text += gen.pick(["}", " x", "\n{}", ","])
        elif kind == "cut":
            text = text[: gen.r.randint(0, len(text) - 1)]
        else:
            text = gen.pick(["", "null", "[]", "{}"])
    return text + "\n"


def run(cmd: list[str], path: Path) -> tuple[int, str, str]:
    p = subprocess.run([*cmd, str(path)], capture_output=True, text=True, errors="replace", timeout=60)
    return p.returncode, p.stdout, p.stderr


def record(case: Path, ref: tuple[int, str, str]) -> None:
    (case / "expected.rc").write_text(f"{ref[0]}\n")
    (case / "expected.stdout").write_text(ref[1])
    (case / "expected.stderr").write_text(ref[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("mode", choices=("campaign", "record", "record-named"))
    ap.add_argument("--oracle", required=True, help="an ignition-validate built from Ignition's sources")
    ap.add_argument("--seeds", default="0:200", help="START:END")
    ap.add_argument("--quiet", action="store_true", help="campaign: only the summary")
    o = ap.parse_args()
    start, end = (int(x) for x in o.seeds.split(":"))
    sys.path.insert(0, str(HERE.parents[2]))
    sys.path.insert(0, str(HERE))
    from ignition_compare import ours, same_answer

    if o.mode == "record-named":
        for case in sorted(p for p in CASES.iterdir() if p.is_dir() and not p.name.isdigit()):
            record(case, run([o.oracle], case / "config.ign"))
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(start, end):
            text = draw(seed)
            path = Path(tmp) / "config.ign"
            path.write_text(text, encoding="utf-8")
            ref = run([o.oracle], path)
            if o.mode == "record":
                case = CASES / f"{seed:05d}"
                case.mkdir(parents=True, exist_ok=True)
                (case / "config.ign").write_text(text, encoding="utf-8")
                record(case, ref)
                continue
            why = same_answer(ref, ours(text))
            if why:
                bad += 1
                if not o.quiet:
                    print(f"seed {seed}: {why}")
    if o.mode == "campaign":
        print(f"{end - start} cases, {bad} disagree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
