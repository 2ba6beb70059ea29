"""Services: [Install] parsing, specifiers, names, unit/drop-in writing, mask/unmask, enable/disable
on scratch roots, apply_units ordering, and the OpenRC backend."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from pineinstall import services
from pineinstall.config import model
from pineinstall.services import openrc, systemd
from pineinstall.stages import Log, StageError
from pineinstall.stages.services import apply_units, check_openrc
from pineinstall.target import Target

E = "etc/systemd/system"


def svc(install: str) -> str:
    return f"[Service]\nExecStart=/bin/true\n[Install]\n{install}\n"


def units(*items: dict[str, Any]) -> tuple[model.Unit, ...]:
    return model.from_dict(
        {"ignition": {"version": "3.6.0"}, "systemd": {"units": list(items)}}
    ).systemd.units


def links(root: Path) -> set[tuple[str, str]]:
    return systemd.enabled_links(Target(root))


# --- parsing


def test_parse_install_lists_resets_continuations_comments() -> None:
    info = systemd.parse_install(
        "[Unit]\nWantedBy=no.target\n[Install]\nWantedBy=a.target b.target\n# WantedBy=c.target\n"
        "RequiredBy=x.target\nRequiredBy=\nRequiredBy=y.target \\\n z.target\nAlias=q.service\n"
        "Also=o.service\nDefaultInstance=d\n[Service]\nAlias=no.service\n"
    )
    assert info.wanted_by == ["a.target", "b.target"]
    assert info.required_by == ["y.target", "z.target"]
    assert info.alias == ["q.service"]
    assert info.also == ["o.service"]
    assert info.default_instance == "d"


def test_parse_install_empty() -> None:
    assert systemd.parse_install("[Service]\nExecStart=/bin/true\n").empty


@pytest.mark.parametrize(
    "value, name, out",
    [
        ("%n", "a@b.service", "a@b.service"),
        ("%N", "a@b.service", "a@b"),
        ("%p", "a@b.service", "a"),
        ("%i", "a@b.service", "b"),
        ("%j", "foo-bar@x.service", "bar"),
        ("100%%", "a.service", "100%"),
        ("x-%p.target", "getty@tty1.service", "x-getty.target"),
    ],
)
def test_specifiers(value: str, name: str, out: str) -> None:
    assert systemd.expand(value, name) == out


def test_unsupported_specifier_is_an_error() -> None:
    with pytest.raises(systemd.SystemdError, match="%H"):
        systemd.expand("%H.target", "a.service")


def test_names() -> None:
    assert systemd.split_name("a@b.service") == ("a", "b", ".service")
    assert systemd.split_name("a@.socket") == ("a", "", ".socket")
    assert systemd.split_name("a.timer") == ("a", None, ".timer")
    assert systemd.template_of("a@b.service") == "a@.service"
    for bad in ("noext", "a.txt", ".service", "a/b.service"):
        with pytest.raises(systemd.SystemdError):
            systemd.check_name(bad)


# --- writing, masking


def test_unit_and_dropins_written_0644_and_not_rewritten(tmp_path: Path) -> None:
    u = units(
        {
            "name": "a.service",
            "contents": svc("WantedBy=m.target"),
            "dropins": [{"name": "x.conf", "contents": "[Service]\nNice=1\n"}, {"name": "empty.conf", "contents": ""},
                        {"name": "none.conf"}],
        }
    )  # fmt: skip
    apply_units(u, Target(tmp_path), Log(quiet=True))
    unit = tmp_path / E / "a.service"
    assert unit.read_text() == svc("WantedBy=m.target")
    assert stat.S_IMODE(os.stat(unit).st_mode) == 0o644
    assert (tmp_path / E / "a.service.d/x.conf").read_text() == "[Service]\nNice=1\n"
    assert (tmp_path / E / "a.service.d/empty.conf").read_text() == ""
    assert not (tmp_path / E / "a.service.d/none.conf").exists()
    ino = os.stat(unit).st_ino
    apply_units(u, Target(tmp_path), Log(quiet=True))
    assert os.stat(unit).st_ino == ino


def test_empty_contents_writes_nothing(tmp_path: Path) -> None:
    apply_units(units({"name": "a.service", "contents": ""}), Target(tmp_path), Log(quiet=True))
    assert not (tmp_path / E / "a.service").exists()


def test_mask_replaces_and_unmask_removes_only_our_link(tmp_path: Path) -> None:
    apply_units(units({"name": "a.service", "contents": svc("WantedBy=m.target"), "mask": True}), Target(tmp_path),
                Log(quiet=True))  # fmt: skip
    p = tmp_path / E / "a.service"
    assert os.readlink(p) == "/dev/null"
    apply_units(units({"name": "a.service", "mask": False}), Target(tmp_path), Log(quiet=True))
    assert not os.path.lexists(p)
    p.write_text("real\n")
    apply_units(units({"name": "a.service", "mask": False}), Target(tmp_path), Log(quiet=True))
    assert p.read_text() == "real\n"


def test_masked_unit_is_not_enabled(tmp_path: Path) -> None:
    log = Log(quiet=True)
    apply_units(units({"name": "a.service", "contents": svc("WantedBy=m.target"), "mask": True, "enabled": True}),
                Target(tmp_path), log)  # fmt: skip
    assert links(tmp_path) == set()
    assert any("masked" in w for w in log.warnings)


# --- enable / disable


def test_enable_creates_install_links(tmp_path: Path) -> None:
    apply_units(
        units({"name": "a.service", "contents": svc("WantedBy=m.target\nRequiredBy=r.target\nAlias=b.service"),
               "enabled": True}),
        Target(tmp_path),
        Log(quiet=True),
    )  # fmt: skip
    dest = "/etc/systemd/system/a.service"
    assert links(tmp_path) == {("m.target.wants/a.service", dest), ("r.target.requires/a.service", dest),
                               ("b.service", dest)}  # fmt: skip


def test_enable_order_independent_of_config_order(tmp_path: Path) -> None:
    # enabled listed before the entry that writes the unit: units are all written first
    apply_units(
        units(
            {"name": "a.service", "enabled": True},
            {"name": "a.service", "contents": svc("WantedBy=m.target")},
        ),
        Target(tmp_path),
        Log(quiet=True),
    )
    assert ("m.target.wants/a.service", "/etc/systemd/system/a.service") in links(tmp_path)


def test_enable_template_instances_use_template_file(tmp_path: Path) -> None:
    apply_units(
        units({"name": "t@.service", "contents": svc("WantedBy=m.target")}, {"name": "t@x.service", "enabled": True},
              {"name": "t@y.service", "enabled": True}),
        Target(tmp_path),
        Log(quiet=True),
    )  # fmt: skip
    dest = "/etc/systemd/system/t@.service"
    assert links(tmp_path) == {("m.target.wants/t@x.service", dest), ("m.target.wants/t@y.service", dest)}


def test_no_install_section_warns(tmp_path: Path) -> None:
    log = Log(quiet=True)
    apply_units(units({"name": "a.service", "contents": "[Service]\nExecStart=/x\n", "enabled": True}),
                Target(tmp_path), log)  # fmt: skip
    assert links(tmp_path) == set()
    assert any("no installation config" in w for w in log.warnings)


def test_missing_unit_warns(tmp_path: Path) -> None:
    log = Log(quiet=True)
    apply_units(units({"name": "ghost.service", "enabled": True}), Target(tmp_path), log)
    assert any("does not exist" in w for w in log.warnings)


def test_disable_removes_links_and_empty_dirs(tmp_path: Path) -> None:
    u = {"name": "a.service", "contents": svc("WantedBy=m.target\nAlias=b.service")}
    apply_units(units({**u, "enabled": True}), Target(tmp_path), Log(quiet=True))
    (tmp_path / E / "m.target.wants/keep.service").symlink_to("/usr/lib/systemd/system/keep.service")
    apply_units(units({**u, "enabled": False}), Target(tmp_path), Log(quiet=True))
    assert links(tmp_path) == {("m.target.wants/keep.service", "/usr/lib/systemd/system/keep.service")}
    os.unlink(tmp_path / E / "m.target.wants/keep.service")
    apply_units(units({**u, "enabled": True}), Target(tmp_path), Log(quiet=True))
    apply_units(units({**u, "enabled": False}), Target(tmp_path), Log(quiet=True))
    assert not (tmp_path / E / "m.target.wants").exists()


def test_shipped_unit_found_in_usr_lib(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/systemd/system").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/system/s.service").write_text(svc("WantedBy=m.target"))
    apply_units(units({"name": "s.service", "enabled": True}), Target(tmp_path), Log(quiet=True))
    assert links(tmp_path) == {("m.target.wants/s.service", "/usr/lib/systemd/system/s.service")}


def test_unit_dir_link_out_of_root_stays_inside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "etc/systemd").mkdir(parents=True)
    (root / "etc/systemd/system").symlink_to(outside)  # absolute: means <root>/<outside>, re-rooted
    apply_units(
        units({"name": "a.service", "contents": svc("WantedBy=m.target")}), Target(root), Log(quiet=True)
    )
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "a.service").is_file()


def test_invalid_names_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(StageError):
        apply_units(units({"name": "ok.service", "contents": "x"}, {"name": "../x.service", "contents": "x"}),
                    Target(tmp_path), Log(quiet=True))  # fmt: skip
    assert not (tmp_path / "etc").exists()
    with pytest.raises(StageError, match="drop-in"):
        apply_units(units({"name": "a.service", "dropins": [{"name": "../../x", "contents": "x"}]}),
                    Target(tmp_path), Log(quiet=True))  # fmt: skip


# --- OpenRC


def openrc_root(tmp_path: Path) -> Path:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin/openrc").write_text("#!/bin/sh\n")
    (tmp_path / "etc/init.d").mkdir(parents=True)
    (tmp_path / "etc/init.d/sshd").write_text("#!/sbin/openrc-run\n")
    os.chmod(tmp_path / "etc/init.d/sshd", 0o755)
    return tmp_path


def test_backend_choice(tmp_path: Path) -> None:
    assert services.backend(Target(tmp_path)) is systemd
    assert services.backend(Target(openrc_root(tmp_path))) is openrc


def test_units_on_openrc_target_are_an_error(tmp_path: Path) -> None:
    root = openrc_root(tmp_path)
    with pytest.raises(StageError, match=r"\(a\.service\).*runs OpenRC"):
        apply_units(units({"name": "a.service", "contents": "x"}), Target(root), Log(quiet=True))


def test_openrc_enable_disable(tmp_path: Path) -> None:
    t = Target(openrc_root(tmp_path))
    assert openrc.enable(t, "sshd") is True
    assert os.readlink(tmp_path / "etc/runlevels/default/sshd") == "/etc/init.d/sshd"
    assert openrc.enable(t, "sshd") is False
    assert openrc.enabled(t) == {("default", "sshd")}
    assert openrc.disable(t, "sshd") == ["default"]
    with pytest.raises(openrc.OpenRCError):
        openrc.enable(t, "nothere")


def test_openrc_check_reports_broken_links(tmp_path: Path) -> None:
    root = openrc_root(tmp_path)
    (root / "etc/runlevels/default").mkdir(parents=True)
    (root / "etc/runlevels/default/sshd").symlink_to("/etc/init.d/sshd")
    (root / "etc/runlevels/default/gone").symlink_to("/etc/init.d/gone")
    (root / "etc/init.d/plain").write_text("x")
    (root / "etc/runlevels/default/plain").symlink_to("/etc/init.d/plain")
    log = Log(quiet=True)
    problems = check_openrc(Target(root), log)
    assert len(problems) == 2
    assert any("gone" in p and "no such" in p for p in problems)
    assert any("plain" in p and "not executable" in p for p in problems)
