"""Seeded Butane configs for differential runs against a Butane built from its public sources.

    python tests/conformance/butane_diff/generate.py campaign --oracle BUTANE --seeds 0:2000
        run every seed through the oracle and through pine-transpile, print the disagreements
    python tests/conformance/butane_diff/generate.py record --oracle BUTANE --seeds 0:400
        write each seed's input and the oracle's answer under cases/ (what CI replays)
    python tests/conformance/butane_diff/generate.py record-named --oracle BUTANE
        (re)write the oracle's answer for each hand-written case (cases/NAME, NAME not a number:
        its input.bu and args written by hand, for a class of difference the draws do not reach)

A case is one YAML document drawn from pools of valid and invalid values over every variant and
version we translate: users and groups, files (inline, local, remote, compressed, appended, octal
and decimal modes, owners), directories, links, trees, disks and partitions, RAID, LUKS,
filesystems with mount units, units and drop-ins, quadlets, kernel arguments, boot_device, GRUB
users, config merges, YAML merge keys, unknown keys and nulls, the experimental versions and the
removed variant rhcos; some cases run without --files-dir. Local files come from a small fixed ``files/`` directory
written beside the case when it runs. The oracle runs as ``BUTANE --raw-errors [--strict] --files-dir files
input.bu``; its rc, stdout and stderr are the recorded answer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from diffgen import Draws  # noqa: E402

CASES = HERE / "cases"
VERSIONS = (
    [("fcos", f"1.{n}.0") for n in range(8)]
    + [("fcos", "1.8.0-experimental"), ("flatcar", "1.0.0"), ("flatcar", "1.1.0")]
    + [("flatcar", "1.2.0-experimental"), ("rhcos", "0.1.0")]
)
QUADLETS = [
    "web.container",
    "db.volume",
    "net.network",
    "k.kube",
    "t@.container",
    "t@1.container",
    "bad.txt",
    "@.pod",
]

FILES = {
    "key.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGen core@gen\n",
    "unit.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    "motd": "hello\n" * 40,
    "tree/a": "a\n",
    "tree/sub/b": "b\n",
    "tree/run.sh": "#!/bin/sh\necho run\n",
    "web.container": "[Container]\nImage=quay.io/fedora/fedora\n",
}

PATHS = [
    "/etc/a",
    "/etc/b",
    "/var/lib/x",
    "/opt/t/a",
    "etc/rel",
    "/etc/a/",
    "/etc/../etc/c",
    "/home/core/.bashrc",
]
URLS = [
    "https://example.com/a",
    "http://example.com/b",
    "data:,hello",
    "s3://bucket/key",
    "tftp://h/f",
    "gs://b/o",
    "ftp://x/y",
    "https://[::1",
    "",
]
MODES = ["0644", "0755", "0600", "644", "420", "04755", "01777", "0o750", "0", "0x1ff", "-1", "'0644'"]
# Without Pine's deliberate account-name errors (issue 12: a ':' or newline, more than 32
# characters; uid 0 for a user other than root is a warning): Butane and Ignition accept them.
NAMES = ["core", "admin", "root", "x-y", "", "a" * 30, "user-1", "Core"]
UNITS = ["a.service", "b.timer", "c.mount", "d.socket", "bad", "e.service.d", "f@.service", "g@x.service"]
DEVICES = ["/dev/vda", "/dev/vdb", "/dev/disk/by-id/coreos-boot-disk", "/dev/sda", "vdb", "/dev/md/data"]
LABELS = ["root", "boot", "EFI-SYSTEM", "BIOS-BOOT", "var", "data", "x" * 40, "a:b"]
FORMATS = ["ext4", "xfs", "vfat", "swap", "btrfs", "none", "zfs", ""]
HASHES = ["sha512-" + "0" * 128, "sha256-" + "0" * 64, "md5-0", "sha512-xyz"]


class Gen(Draws):
    def resource(self, local: bool = True) -> dict:
        d: dict = {}
        kind = self.pick(
            ["inline", "source", "local", "none", "two"] if local else ["inline", "source", "none"]
        )
        if kind == "inline" or kind == "two":
            d["inline"] = self.pick(["hello", "x" * 300, "line\n" * 50, "", '{"ignition": {}}'])
        if kind == "source" or kind == "two":
            d["source"] = self.pick(URLS)
        if kind == "local":
            d["local"] = self.pick(["motd", "key.pub", "missing", "../escape", "tree"])
        if self.p(0.2):
            d["compression"] = self.pick(["gzip", "", "xz", "zstd"])
        if self.p(0.15):
            d["verification"] = {"hash": self.pick(HASHES)}
        if self.p(0.1):
            d["http_headers"] = [{"name": self.pick(["X-A", "", "Authorization"]), "value": "v"}]
        return d

    def owner(self) -> dict:
        return self.pick(
            [{"name": self.pick(NAMES)}, {"id": self.pick([0, 500, -1])}, {"id": 1, "name": "a"}, {}]
        )

    def node(self) -> dict:
        d: dict = {"path": self.pick(PATHS)}
        if self.p(0.2):
            d["overwrite"] = self.pick([True, False])
        if self.p(0.2):
            d["user"] = self.owner()
        if self.p(0.2):
            d["group"] = self.owner()
        return d

    def file(self) -> dict:
        d = self.node()
        if self.p(0.7):
            d["contents"] = self.resource()
        if self.p(0.15):
            d["append"] = self.some(self.resource, 2)
        if self.p(0.5):
            d["mode"] = Raw(self.pick(MODES))
        return d

    def partition(self) -> dict:
        d: dict = {}
        if self.p(0.7):
            d["label"] = self.pick(LABELS)
        if self.p(0.5):
            d["number"] = self.pick([0, 1, 2, 3, 4, 5, 9])
        if self.p(0.4):
            d["size_mib"] = self.pick([0, 512, 4096, 8192, 10240])
        if self.p(0.3):
            d["start_mib"] = self.pick([0, 1, 100])
        if self.p(0.2):
            d["type_guid"] = self.pick(
                ["linux", "swap", "raid_partition", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "bad"]
            )
        if self.p(0.1):
            d["wipe_partition_entry"] = True
        if self.p(0.1):
            d["should_exist"] = self.pick([True, False])
        if self.p(0.1):
            d["resize"] = True
        return d

    def storage(self, version: tuple[str, str]) -> dict:
        s: dict = {}
        if self.p(0.6):
            s["files"] = self.some(self.file)
        if self.p(0.3):
            s["directories"] = self.some(
                lambda: {**self.node(), **({"mode": Raw(self.pick(MODES))} if self.p(0.5) else {})}
            )
        if self.p(0.3):
            s["links"] = self.some(
                lambda: {
                    **self.node(),
                    "target": self.pick(["/etc/a", "a", ""]),
                    **({"hard": self.pick([True, False])} if self.p(0.3) else {}),
                }
            )
        if self.p(0.25):
            s["disks"] = self.some(
                lambda: {
                    "device": self.pick(DEVICES),
                    **({"wipe_table": self.pick([True, False])} if self.p(0.4) else {}),
                    "partitions": self.some(self.partition),
                },
                2,
            )
        if self.p(0.15):
            s["raid"] = [
                {
                    "name": self.pick(["data", "md0", ""]),
                    "level": self.pick(["raid1", "raid5", "linear", "raid7", "raid0"]),
                    "devices": self.some(lambda: self.pick(DEVICES), 3),
                }
            ]
        if self.p(0.15):
            lk: dict = {"name": self.pick(["crypt", "root", ""]), "device": self.pick(DEVICES)}
            if self.p(0.5):
                lk["clevis"] = self.pick(
                    [
                        {"tpm2": True},
                        {"tang": [{"url": "http://t", "thumbprint": "x"}]},
                        {"custom": {"pin": "tpm2", "config": "{}"}},
                    ]
                )
            if self.p(0.3):
                lk["key_file"] = self.resource()
            s["luks"] = [lk]
        if self.p(0.35):
            s["filesystems"] = self.some(
                lambda: {
                    "device": self.pick(DEVICES + ["/dev/mapper/crypt", "/dev/disk/by-partlabel/var"]),
                    **({"format": self.pick(FORMATS)} if self.p(0.8) else {}),
                    **({"path": self.pick(["/var", "/srv", "/etc/x", "var", "/"])} if self.p(0.6) else {}),
                    **({"label": self.pick(LABELS)} if self.p(0.3) else {}),
                    **({"wipe_filesystem": True} if self.p(0.3) else {}),
                    **({"with_mount_unit": self.pick([True, False])} if self.p(0.5) else {}),
                    **({"mount_options": ["noatime"]} if self.p(0.1) else {}),
                },
                2,
            )
        if self.p(0.15):
            s["trees"] = [
                {
                    "local": self.pick(["tree", "missing", "motd", "../x"]),
                    **({"path": self.pick(["/opt/t", "/etc"])} if self.p(0.6) else {}),
                    **({"user": self.owner()} if self.p(0.25) else {}),
                    **({"group": self.owner()} if self.p(0.25) else {}),
                    **({"file_mode": Raw(self.pick(MODES))} if self.p(0.25) else {}),
                    **({"dir_mode": Raw(self.pick(MODES))} if self.p(0.25) else {}),
                }
            ]
        return s

    def unit(self) -> dict:
        d: dict = {"name": self.pick(UNITS)}
        if self.p(0.5):
            d["enabled"] = self.pick([True, False])
        if self.p(0.15):
            d["mask"] = True
        if self.p(0.4):
            d["contents"] = self.pick(
                ["[Service]\nExecStart=/bin/true\n", "[Unit]\nBad line\n", "", "[Service\n"]
            )
        if self.p(0.15):
            d["contents_local"] = self.pick(["unit.service", "missing"])
        if self.p(0.25):
            d["dropins"] = self.some(
                lambda: {
                    "name": self.pick(["a.conf", "b", ""]),
                    **({"contents": "[Service]\nX=1\n"} if self.p(0.6) else {}),
                },
                2,
            )
        return d

    def quadlet(self) -> dict:
        d: dict = {"name": self.pick(QUADLETS)}
        if self.p(0.5):
            d["contents"] = self.pick(["[Container]\nImage=x\n", "", "x" * 300])
        if self.p(0.2):
            d["contents_local"] = self.pick(["web.container", "missing"])
        if self.p(0.3):
            d["rootful"] = self.pick([True, False])
        if self.p(0.3):
            d["dropins"] = self.some(
                lambda: {
                    "name": self.pick(["a.conf", "b", ""]),
                    **({"contents": "[Container]\nEnv=A=1\n"} if self.p(0.6) else {}),
                    **({"contents_local": "web.container"} if self.p(0.2) else {}),
                },
                2,
            )
        return d

    def user(self) -> dict:
        d: dict = {"name": self.pick(NAMES)}
        if self.p(0.4):
            d["ssh_authorized_keys"] = self.some(
                lambda: self.pick(["ssh-ed25519 AAAA a", "ssh-rsa BBBB b", ""]), 2
            )
        if self.p(0.15):
            d["ssh_authorized_keys_local"] = [self.pick(["key.pub", "missing"])]
        if self.p(0.3):
            # (no plain-text password: Pine warns about one, Butane does not)
            d["password_hash"] = self.pick(["$6$salt$hash", "$y$j9T$salt$hash", "*", ""])
        if self.p(0.2):
            d["uid"] = self.pick([500, 1000, -5])
        if self.p(0.2):
            d["groups"] = self.some(lambda: self.pick(["wheel", "sudo", "docker"]), 2)
        if self.p(0.1):
            d["shell"] = "/bin/bash"
        if self.p(0.1):
            d["system"] = True
        return d

    def config(self, variant: str, version: str) -> dict:
        c: dict = {"variant": variant, "version": version}
        minor = int(version.split(".")[1])
        if self.p(0.5):
            c["passwd"] = {"users": self.some(self.user)}
            if self.p(0.3):
                c["passwd"]["groups"] = [{"name": self.pick(NAMES)}]
        if self.p(0.7):
            c["storage"] = self.storage((variant, version))
        if self.p(0.4):
            c["systemd"] = {"units": self.some(self.unit)}
        if self.p(0.25):
            c.setdefault("systemd", {})["quadlets"] = self.some(self.quadlet)
        if self.p(0.15):
            c["kernel_arguments"] = {
                k: self.some(lambda: self.pick(["quiet", "debug", "a=b", "", "quiet"]), 3)
                for k in self.pick(
                    [["should_exist"], ["should_not_exist"], ["should_exist", "should_not_exist"]]
                )
            }
        if self.p(0.08):
            # YAML merge keys: yaml.v3 applies them; Butane's walk reports the "<<" key as unused
            c["x-base"] = Raw("&b {mode: 0644, overwrite: true, bogus: 1}")
            f = {"<<": Raw("*b"), "path": self.pick(PATHS)}
            c.setdefault("storage", {}).setdefault("files", []).append(f)
        if variant == "fcos" and self.p(0.2):
            bd: dict = {}
            if self.p(0.6):
                bd["layout"] = self.pick(["x86_64", "aarch64", "s390x-eckd", "ppc64le", "mips"])
            if self.p(0.5):
                bd["mirror"] = {
                    "devices": self.some(lambda: self.pick(["/dev/sda", "/dev/sdb", "/dev/vda"]), 3)
                }
            if self.p(0.5):
                bd["luks"] = self.pick(
                    [
                        {"tpm2": True},
                        {"tang": [{"url": "http://t", "thumbprint": "x"}]},
                        {"tpm2": True, "threshold": 2},
                    ]
                )
            c["boot_device"] = bd
        if variant == "fcos" and minor >= 5 and self.p(0.15):
            c["grub"] = {
                "users": [
                    {
                        "name": self.pick(["root", ""]),
                        "password_hash": self.pick(["grub.pbkdf2.sha512.10000.x", ""]),
                    }
                ]
            }
        if self.p(0.15):
            c["ignition"] = {"config": {self.pick(["merge", "replace"]): None}}
            key = next(iter(c["ignition"]["config"]))
            c["ignition"]["config"][key] = (
                self.some(lambda: self.resource(), 2) if key == "merge" else self.resource()
            )
        if self.p(0.1):
            c[self.pick(["unknown", "storag"])] = {"x": 1}
        if self.p(0.05):
            c[self.pick(["storage", "systemd", "passwd"])] = None
        return c


class Raw(str):
    """A scalar written as is (an unquoted octal or decimal mode)."""


def to_yaml(value, indent: int = 0) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {scalar(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for v in value:
            if isinstance(v, dict) and v:
                body = to_yaml(v, indent + 1)
                lines.append(f"{pad}- {body.lstrip()}")
            else:
                lines.append(f"{pad}- {scalar(v)}")
        return "\n".join(lines)
    return pad + scalar(value)


def scalar(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if v == {} or v == []:
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if "\n" in v:
        return json.dumps(v)
    return (
        json.dumps(v)
        if (v == "" or not v.replace("-", "").replace("/", "").replace(".", "").isalnum())
        else v
    )


def draw(seed: int) -> tuple[str, list[str]]:
    """The seed's input text and arguments."""
    gen = Gen(seed)
    variant, version = gen.pick(VERSIONS)
    cfg = gen.config(variant, version)
    if "x-base" in cfg:  # the anchor before its alias
        cfg = {"x-base": cfg.pop("x-base"), **cfg}
    text = to_yaml(cfg) + "\n"
    args = ["--raw-errors", "--files-dir", "files", "input.bu"]
    if gen.p(0.08):  # local files named without a files directory
        args = ["--raw-errors", "input.bu"]
    if gen.p(0.5):
        args.insert(0, "--strict")
    return text, args


def materialize(where: Path, text: str) -> None:
    """A directory to run a case in: its input and the shared local files."""
    (where / "input.bu").write_text(text)
    for rel, body in FILES.items():
        f = where / "files" / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(body)
    (where / "files" / "tree" / "run.sh").chmod(0o755)


def run(cmd: list[str], args: list[str], cwd: Path) -> tuple[int, str, str]:
    p = subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, errors="replace", timeout=60)
    return p.returncode, p.stdout, p.stderr


def record(case: Path, ref: tuple[int, str, str]) -> None:
    (case / "expected.rc").write_text(f"{ref[0]}\n")
    (case / "expected.ign").write_text(ref[1])
    (case / "expected.stderr").write_text(ref[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("campaign", "record", "record-named"))
    ap.add_argument("--oracle", required=True, help="a Butane binary built from its sources")
    ap.add_argument("--seeds", default="0:200", help="START:END")
    o = ap.parse_args()
    start, end = (int(x) for x in o.seeds.split(":"))
    ours = [sys.executable, "-m", "butane_like.cli"]
    env_root = str(HERE.parents[2])
    os.environ["PYTHONPATH"] = env_root
    sys.path.insert(0, str(HERE))
    from compare import order_differs, same_answer

    if o.mode == "record-named":
        for case in sorted(p for p in CASES.iterdir() if p.is_dir() and not p.name.isdigit()):
            with tempfile.TemporaryDirectory() as tmp:
                materialize(Path(tmp), (case / "input.bu").read_text())
                record(case, run([o.oracle], (case / "args").read_text().split(), Path(tmp)))
        return 0
    bad = order_only = 0
    for seed in range(start, end):
        text, args = draw(seed)
        with tempfile.TemporaryDirectory() as tmp:
            materialize(Path(tmp), text)
            ref = run([o.oracle], args, Path(tmp))
            if o.mode == "record":
                case = CASES / f"{seed:05d}"
                case.mkdir(parents=True, exist_ok=True)
                (case / "input.bu").write_text(text)
                (case / "args").write_text("\n".join(args) + "\n")
                record(case, ref)
                continue
            got = run(ours, args, Path(tmp))
            why = same_answer(ref, got)
            order_only += not why and order_differs(ref, got)
            if why:
                bad += 1
                print(f"seed {seed}: {why}")
    if o.mode == "campaign":
        print(f"{end - start} cases, {bad} disagree, {order_only} more agree but in another order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
