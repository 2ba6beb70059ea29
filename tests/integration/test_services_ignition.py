"""Differential tests: ``systemd.units`` by Debian's reference Ignition files stage and by
``pineinstall.stages.services`` on the same seeded root.

Ignition writes units, drop-ins and masks, and records ``enabled`` as preset lines that systemd
applies on first boot; we create the ``[Install]`` links at once. To compare the same facts, the
reference's preset lines are applied to its tree with Debian's ``systemctl --root enable/disable``
(what the first boot would do), then both trees must be the same: unit files, drop-ins, masks and
every link (the preset file itself is left out).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pineinstall.config import model
from pineinstall.stages import Log, StageError
from pineinstall.stages.services import apply_units
from pineinstall.target import Target

from .ignition_ref import IGNITION, REF_VERSION, diff, run_reference, seed_root, snapshot
from .image_helpers import twin_roots, write_tree

SYSTEMCTL = shutil.which("systemctl") or "/usr/bin/systemctl"
PRESET = "etc/systemd/system-preset/20-ignition.preset"

pytestmark = [pytest.mark.conformance, pytest.mark.needs(IGNITION, SYSTEMCTL)]


def svc(install: str = "WantedBy=multi-user.target") -> str:
    return f"[Unit]\nDescription=t\n[Service]\nExecStart=/bin/true\n[Install]\n{install}\n"


def unit(name: str, **kw: Any) -> dict[str, Any]:
    return {"name": name, **kw}


# name -> (units, files to seed {relpath: contents | ("link", dest)})
CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "contents-only": ([unit("a.service", contents=svc())], {}),
    "enabled": ([unit("a.service", contents=svc(), enabled=True)], {}),
    "enabled-required-alias": (
        [unit("a.service", contents=svc("RequiredBy=x.target\nAlias=b.service"), enabled=True)],
        {},
    ),
    "enabled-also": (
        [
            unit("a.service", contents=svc("WantedBy=m.target\nAlso=b.service"), enabled=True),
            unit("b.service", contents=svc("WantedBy=n.target")),
        ],
        {},
    ),
    "disabled-existing-links": (
        [unit("a.service", enabled=False)],
        {
            "usr/lib/systemd/system/a.service": svc(),
            "etc/systemd/system/multi-user.target.wants/a.service": (
                "link",
                "/usr/lib/systemd/system/a.service",
            ),
        },
    ),
    "enable-shipped-unit": ([unit("a.service", enabled=True)], {"usr/lib/systemd/system/a.service": svc()}),
    "enable-shipped-lib": ([unit("a.service", enabled=True)], {"lib/systemd/system/a.service": svc()}),
    "dropins": (
        [
            unit(
                "a.service",
                dropins=[
                    {"name": "10-x.conf", "contents": "[Service]\nNice=5\n"},
                    {"name": "20-y.conf", "contents": "[Unit]\nAfter=z.service\n"},
                ],
            )
        ],
        {"usr/lib/systemd/system/a.service": svc()},
    ),
    "dropin-empty-contents": ([unit("a.service", dropins=[{"name": "e.conf", "contents": ""}])], {}),
    "dropin-no-contents": ([unit("a.service", dropins=[{"name": "e.conf"}])], {}),
    "unit-and-dropin": (
        [unit("a.service", contents=svc(), dropins=[{"name": "o.conf", "contents": "[Service]\nUser=x\n"}])],
        {},
    ),
    "empty-contents-not-written": ([unit("a.service", contents="")], {}),
    "mask": ([unit("a.service", mask=True)], {"usr/lib/systemd/system/a.service": svc()}),
    "mask-replaces-file": ([unit("a.service", mask=True)], {"etc/systemd/system/a.service": svc()}),
    "mask-with-contents": ([unit("a.service", contents=svc(), mask=True)], {}),
    "unmask": (
        [unit("a.service", mask=False)],
        {"etc/systemd/system/a.service": ("link", "/dev/null"), "usr/lib/systemd/system/a.service": svc()},
    ),
    "unmask-keeps-file": ([unit("a.service", mask=False)], {"etc/systemd/system/a.service": svc()}),
    # Templates with instances are compared with systemctl in test_services_systemctl.py: Ignition
    # 2.14 asks the running systemd for its version when a preset names instances.
    "disable-also-removes-dirs": (
        [unit("a.service", enabled=False)],
        {
            "etc/systemd/system/a.service": svc("WantedBy=m.target\nAlso=b.service"),
            "usr/lib/systemd/system/b.service": svc("RequiredBy=n.target"),
            "etc/systemd/system/m.target.wants/a.service": ("link", "/etc/systemd/system/a.service"),
            "etc/systemd/system/n.target.requires/b.service": ("link", "/usr/lib/systemd/system/b.service"),
            "etc/systemd/system/n.target.requires/c.service": ("link", "/usr/lib/systemd/system/c.service"),
        },
    ),
    "enable-written-by-same-config-later": (
        [unit("b.service", enabled=True), unit("b.service", contents=svc("WantedBy=late.target"))],
        {},
    ),
    "timer-and-service": (
        [
            unit(
                "a.timer",
                contents="[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
                enabled=True,
            ),
            unit("a.service", contents="[Service]\nExecStart=/bin/true\n"),
        ],
        {},
    ),
    "many": (
        [
            unit(f"u{i}.service", contents=svc(f"WantedBy=t{i % 3}.target"), enabled=i % 2 == 0)
            for i in range(8)
        ],
        {},
    ),
    "overwrite-existing-unit": (
        [unit("a.service", contents=svc("WantedBy=new.target"), enabled=True)],
        {"etc/systemd/system/a.service": svc("WantedBy=old.target")},
    ),
}


def seed(root: Path, files: dict[str, Any]) -> None:
    seed_root(root)
    write_tree(root, files)


def apply_presets(root: Path) -> None:
    """What the first boot does with Ignition's preset lines."""
    preset = root / PRESET
    if not preset.exists():
        return
    for line in preset.read_text().splitlines():
        words = line.split()
        if not words:
            continue
        action, name, instances = words[0], words[1], words[2:]
        names = [name.replace("@.", f"@{i}.") for i in instances] or [name]
        for n in names:
            subprocess.run(
                [SYSTEMCTL, f"--root={root}", "--no-reload", action, n],
                capture_output=True,
                check=False,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
            )
    preset.unlink()
    for d in (preset.parent, preset.parent.parent):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


@pytest.mark.parametrize("case", sorted(CASES))
def test_units_match_reference(case: str, tmp_path: Path) -> None:
    units, files = CASES[case]
    ref, ours = twin_roots(tmp_path, lambda root: seed(root, files))
    proc = run_reference(
        ref, {"ignition": {"version": REF_VERSION}, "systemd": {"units": units}}, scratch=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    apply_presets(ref)
    cfg = model.from_dict({"ignition": {"version": "3.6.0"}, "systemd": {"units": units}})
    apply_units(cfg.systemd.units, Target(ours), Log(quiet=True))
    assert diff(snapshot(ref), snapshot(ours)) == []
    # and a second apply changes nothing
    before = snapshot(ours)
    apply_units(cfg.systemd.units, Target(ours), Log(quiet=True))
    assert diff(before, snapshot(ours)) == []


def test_openrc_target_refuses_units(tmp_path: Path) -> None:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin/openrc").write_text("#!/bin/sh\n")
    cfg = model.from_dict(
        {"ignition": {"version": "3.6.0"}, "systemd": {"units": [unit("a.service", contents=svc())]}}
    )
    with pytest.raises(StageError, match="OpenRC"):
        apply_units(cfg.systemd.units, Target(tmp_path), Log(quiet=True))
    assert not (tmp_path / "etc").exists()


def test_corpus_size() -> None:
    assert len(CASES) >= 20
