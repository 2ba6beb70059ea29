"""Differential tests: our offline enable/disable against Debian's ``systemctl --root=DIR``.

Each case seeds two identical roots with unit files in the target's unit directories, runs
``systemctl --root`` on one and ``pineinstall.services.systemd`` on the other, and compares the set
of symlinks under ``etc/systemd/system`` (name and target). A case systemctl refuses must be
refused by ours too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pineinstall.services import systemd
from pineinstall.target import Target

from .image_helpers import twin_roots, write_tree

SYSTEMCTL = shutil.which("systemctl") or "/usr/bin/systemctl"

pytestmark = [pytest.mark.conformance, pytest.mark.needs(SYSTEMCTL)]

E = "etc/systemd/system"
U = "usr/lib/systemd/system"
L = "lib/systemd/system"
LOC = "usr/local/lib/systemd/system"


def svc(install: str, extra: str = "") -> str:
    return f"[Unit]\nDescription=test\n\n[Service]\nExecStart=/bin/true\n{extra}\n[Install]\n{install}\n"


# name -> (files {relpath: contents or ("link", dest)}, [("enable"|"disable", unit), ...])
CASES: dict[str, tuple[dict[str, object], list[tuple[str, str]]]] = {
    "wantedby": ({f"{E}/a.service": svc("WantedBy=multi-user.target")}, [("enable", "a.service")]),
    "wantedby-two-one-line": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target graphical.target")},
        [("enable", "a.service")],
    ),
    "wantedby-two-lines": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target\nWantedBy=network-online.target")},
        [("enable", "a.service")],
    ),
    "requiredby": ({f"{E}/a.service": svc("RequiredBy=foo.target")}, [("enable", "a.service")]),
    "wanted-and-required": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target\nRequiredBy=foo.target bar.target")},
        [("enable", "a.service")],
    ),
    "upheldby-ignored": ({f"{E}/a.service": svc("UpheldBy=multi-user.target")}, [("enable", "a.service")]),
    "alias": ({f"{E}/a.service": svc("Alias=b.service")}, [("enable", "a.service")]),
    "alias-two-and-wanted": (
        {f"{E}/a.service": svc("Alias=b.service c.service\nWantedBy=multi-user.target")},
        [("enable", "a.service")],
    ),
    "also": (
        {
            f"{E}/a.service": svc("WantedBy=multi-user.target\nAlso=b.service"),
            f"{U}/b.service": svc("WantedBy=default.target"),
        },
        [("enable", "a.service")],
    ),
    "also-chain": (
        {
            f"{E}/a.service": svc("Also=b.service"),
            f"{U}/b.service": svc("WantedBy=x.target\nAlso=c.socket"),
            f"{U}/c.socket": "[Socket]\nListenStream=1234\n[Install]\nWantedBy=sockets.target\n",
        },
        [("enable", "a.service")],
    ),
    "also-cycle": (
        {
            f"{E}/a.service": svc("WantedBy=x.target\nAlso=b.service"),
            f"{U}/b.service": svc("WantedBy=y.target\nAlso=a.service"),
        },
        [("enable", "a.service")],
    ),
    "template-default-instance": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target\nDefaultInstance=x")},
        [("enable", "t@.service")],
    ),
    "template-instance": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target")},
        [("enable", "t@y.service")],
    ),
    "template-two-instances": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target")},
        [("enable", "t@a.service"), ("enable", "t@b.service")],
    ),
    "instance-own-file": (
        {
            f"{U}/t@.service": svc("WantedBy=multi-user.target"),
            f"{E}/t@own.service": svc("WantedBy=other.target"),
        },
        [("enable", "t@own.service")],
    ),
    "template-no-default-instance-refused": (
        {f"{U}/n@.service": svc("WantedBy=multi-user.target")},
        [("enable", "n@.service")],
    ),
    "instance-template-target": (
        {f"{U}/t@.service": svc("WantedBy=foo@.target")},
        [("enable", "t@z.service")],
    ),
    "template-alias-default-instance": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target\nDefaultInstance=x\nAlias=tt@.service")},
        [("enable", "t@.service")],
    ),
    "instance-alias": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target\nAlias=tt@.service")},
        [("enable", "t@y.service")],
    ),
    "usr-lib": ({f"{U}/a.service": svc("WantedBy=multi-user.target")}, [("enable", "a.service")]),
    "lib": ({f"{L}/a.service": svc("WantedBy=multi-user.target")}, [("enable", "a.service")]),
    "usr-local-lib": ({f"{LOC}/a.service": svc("WantedBy=multi-user.target")}, [("enable", "a.service")]),
    "etc-overrides-usr": (
        {
            f"{E}/a.service": svc("WantedBy=multi-user.target"),
            f"{U}/a.service": svc("WantedBy=other.target"),
        },
        [("enable", "a.service")],
    ),
    "usr-lib-before-lib": (
        {
            f"{U}/a.service": svc("WantedBy=one.target"),
            f"{L}/a.service": svc("WantedBy=two.target"),
        },
        [("enable", "a.service")],
    ),
    "no-install": ({f"{E}/a.service": "[Service]\nExecStart=/bin/true\n"}, [("enable", "a.service")]),
    "empty-resets": (
        {f"{E}/a.service": svc("WantedBy=one.target\nWantedBy=\nWantedBy=two.target")},
        [("enable", "a.service")],
    ),
    "comments-continuation": (
        {
            f"{E}/a.service": svc(
                "# WantedBy=no.target\n; Alias=no.service\nWantedBy=one.target \\\n  two.target"
            )
        },
        [("enable", "a.service")],
    ),
    "spaces-around-equals": (
        {f"{E}/a.service": svc("WantedBy = multi-user.target")},
        [("enable", "a.service")],
    ),
    "specifiers": (
        {f"{U}/t@.service": svc("WantedBy=%p.target\nAlias=alias-%j@%i.service\nRequiredBy=x-%N.target")},
        [("enable", "t@inst.service")],
    ),
    "alias-instance-as-plain-refused": (
        {f"{U}/t@.service": svc("WantedBy=m.target\nAlias=alias-%i.service")},
        [("enable", "t@inst.service")],
    ),
    "lib-is-link-to-usr-lib": (
        {"lib": ("link", "usr/lib"), f"{U}/a.service": svc("WantedBy=multi-user.target")},
        [("enable", "a.service")],
    ),
    "specifier-n": ({f"{E}/a.service": svc("WantedBy=%n.target")}, [("enable", "a.service")]),
    "install-keys-outside-install": (
        {f"{E}/a.service": "[Unit]\nWantedBy=no.target\n[Service]\nExecStart=/bin/true\n"},
        [("enable", "a.service")],
    ),
    "timer": (
        {f"{E}/a.timer": "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n"},
        [("enable", "a.timer")],
    ),
    "socket-also-service": (
        {
            f"{E}/a.socket": "[Socket]\nListenStream=99\n[Install]\nWantedBy=sockets.target\nAlso=a.service\n",
            f"{E}/a.service": svc("WantedBy=multi-user.target"),
        },
        [("enable", "a.socket")],
    ),
    "mount": (
        {f"{E}/var-x.mount": "[Mount]\nWhat=/dev/x\nWhere=/var/x\n[Install]\nWantedBy=local-fs.target\n"},
        [("enable", "var-x.mount")],
    ),
    "missing-refused": ({}, [("enable", "nothere.service")]),
    "enable-twice": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target\nAlias=b.service")},
        [("enable", "a.service"), ("enable", "a.service")],
    ),
    "disable": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target\nAlias=b.service")},
        [("enable", "a.service"), ("disable", "a.service")],
    ),
    "disable-also": (
        {
            f"{E}/a.service": svc("WantedBy=multi-user.target\nAlso=b.service"),
            f"{U}/b.service": svc("WantedBy=default.target"),
        },
        [("enable", "a.service"), ("disable", "a.service")],
    ),
    "disable-instance-keeps-others": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target\nAlias=tt@.service")},
        [("enable", "t@a.service"), ("enable", "t@b.service"), ("disable", "t@a.service")],
    ),
    "disable-template-removes-instances": (
        {f"{U}/t@.service": svc("WantedBy=multi-user.target\nDefaultInstance=x")},
        [("enable", "t@.service"), ("enable", "t@b.service"), ("disable", "t@.service")],
    ),
    "disable-foreign-links": (
        {
            f"{E}/a.service": svc("WantedBy=multi-user.target"),
            f"{E}/other.target.wants/a.service": ("link", "/etc/systemd/system/a.service"),
            f"{E}/other.target.wants/renamed.service": ("link", "/etc/systemd/system/a.service"),
            f"{E}/other.target.wants/keep.service": ("link", "/usr/lib/systemd/system/keep.service"),
        },
        [("disable", "a.service")],
    ),
    "disable-not-enabled": (
        {f"{E}/a.service": svc("WantedBy=multi-user.target")},
        [("disable", "a.service")],
    ),
    "existing-same-link": (
        {
            f"{U}/a.service": svc("WantedBy=multi-user.target"),
            f"{E}/multi-user.target.wants/a.service": ("link", "/usr/lib/systemd/system/a.service"),
        },
        [("enable", "a.service")],
    ),
}


def seed(root: Path, files: dict[str, object]) -> None:
    for d in (E, U):
        (root / d).mkdir(parents=True, exist_ok=True)
    write_tree(root, files)


def links(root: Path) -> set[tuple[str, str]]:
    out = set()
    top = root / E
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out.add((str(p.relative_to(top)), os.readlink(p)))
            elif p.is_dir():
                out.add((str(p.relative_to(top)), "<dir>"))
    return out


def run_systemctl(root: Path, action: str, unit: str) -> bool:
    proc = subprocess.run(
        [SYSTEMCTL, f"--root={root}", "--no-reload", action, unit],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "SYSTEMD_LOG_LEVEL": "err"},
        check=False,
        timeout=60,
    )
    return proc.returncode == 0


def run_ours(root: Path, action: str, unit: str) -> bool:
    target = Target(root)
    try:
        if action == "enable":
            systemd.enable(target, unit)
        else:
            systemd.disable(target, unit)
    except systemd.SystemdError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
def test_links_match_systemctl(case: str, tmp_path: Path) -> None:
    files, steps = CASES[case]
    ref, ours = twin_roots(tmp_path, lambda root: seed(root, files))
    for action, unit in steps:
        ok_ref = run_systemctl(ref, action, unit)
        ok_ours = run_ours(ours, action, unit)
        assert ok_ours == ok_ref, f"{action} {unit}: systemctl {'succeeded' if ok_ref else 'failed'}"
    assert links(ours) == links(ref)
    if not case.endswith(("-refused", "-ignored")) and case not in (
        "no-install",
        "install-keys-outside-install",
        "disable-not-enabled",
    ):
        # a case that creates nothing would prove nothing about the shapes
        assert links(ref) or any(a == "disable" for a, _ in steps)


def test_corpus_size() -> None:
    assert len(CASES) >= 30
