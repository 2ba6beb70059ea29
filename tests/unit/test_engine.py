"""The engine: load (check, render, refuse), the stages in Ignition's order on a scratch root, the
dry-run plan, the kargs stage, and the one error base class."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from _root_helpers import scratch_root

from pineinstall import engine
from pineinstall.errors import PineError
from pineinstall.stages import Log, StageError
from pineinstall.stages import kargs as kargs_stage
from pineinstall.target import Target, TargetError, open_target

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"


def config(**extra: object) -> bytes:
    return json.dumps({"ignition": {"version": "3.4.0"}, **extra}).encode()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return scratch_root(tmp_path / "root", passwd=PASSWD, group=GROUP)


def quiet() -> Log:
    return Log(io.StringIO())


def test_stages_in_ignitions_order():
    assert engine.STAGES == ("disks", "mount", "files", "kargs", "umount")


def test_load_refuses_an_invalid_config_with_its_place():
    log = quiet()
    with pytest.raises(engine.LoadError, match="config is not a valid config"):
        engine.load(config(storage={"files": [{"path": "relative"}]}), log)
    assert "error at $.storage.files.0.path" in log.stream.getvalue()  # type: ignore[attr-defined]


def test_load_refuses_a_source_this_build_cannot_fetch():
    data = config(storage={"files": [{"path": "/a", "contents": {"source": "s3://bucket/key"}}]})
    with pytest.raises(engine.LoadError) as caught:
        engine.load(data, quiet())
    assert caught.value.place == "$.storage.files.0.contents"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")
def test_run_provisions_a_plain_root(root: Path):
    data = config(storage={"files": [{"path": "/etc/motd", "contents": {"source": "data:,hello"}}]})
    log = quiet()
    with engine.Engine(engine.load(data, log), log) as run:
        run.prepare()
        assert run.storage is None and run.fetched is not None
        done = run.run(str(root))
    assert (root / "etc" / "motd").read_text() == "hello"
    assert done.files.created == {"file": 1}
    assert done.target.root == root and done.kargs is None
    assert run.fetched is None  # handed to (and closed by) the files stage
    assert f"target {root} (plain" in log.stream.getvalue()  # type: ignore[attr-defined]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")
def test_after_files_runs_on_the_target(root: Path):
    seen: list[Target] = []
    log = quiet()
    with engine.Engine(engine.load(config(), log), log) as run:
        run.prepare()
        done = run.run(open_target(root), after_files=seen.append)
    assert seen == [done.target]


def test_dry_run_lists_every_stage_plan(root: Path):
    data = config(
        passwd={"users": [{"name": "core"}]},
        storage={"directories": [{"path": "/srv/data"}]},
        kernelArguments={"shouldExist": ["quiet"], "shouldNotExist": ["rhgb"]},
    )
    out = io.StringIO()
    engine.dry_run(engine.load(data, quiet()), open_target(root), out, kargs=True)
    assert out.getvalue().splitlines() == [
        "user: core",
        f"directory: /srv/data -> {root}/srv/data",
        "karg: +quiet",
        "karg: -rhgb",
    ]
    assert not (root / "srv").exists()
    out = io.StringIO()
    engine.dry_run(engine.load(data, quiet()), open_target(root), out, as_json=True)
    assert json.loads(out.getvalue())["users"] == ["core"]


def test_kargs_stage_runs_only_when_asked(root: Path):
    asked: list[Target] = []

    def where(target: Target) -> str:
        asked.append(target)
        raise StageError("no bootloader here")

    cfg = engine.load(config(), quiet())
    spec = kargs_stage.Kargs(boot_root=where)
    assert not kargs_stage.wanted(cfg, spec)
    assert kargs_stage.run(cfg, spec, Target(root), quiet()) is None
    assert asked == []
    cfg = engine.load(config(kernelArguments={"shouldExist": ["quiet"]}), quiet())
    with pytest.raises(StageError, match="no bootloader"):
        kargs_stage.run(cfg, spec, Target(root), quiet())


def test_kargs_stage_edits_the_bootloader(root: Path):
    entries = root / "boot" / "loader" / "entries"
    entries.mkdir(parents=True)
    (entries / "pine-1.conf").write_text(
        "title Pine\nversion 1\nlinux /vmlinuz\noptions root=/dev/vda1 rhgb\n"
    )
    cfg = engine.load(config(kernelArguments={"shouldExist": ["quiet"], "shouldNotExist": ["rhgb"]}), quiet())
    change = kargs_stage.run(cfg, kargs_stage.Kargs(boot_root=lambda _t: str(root)), Target(root), quiet())
    assert change.before == ["root=/dev/vda1", "rhgb"]
    assert change.after == ["root=/dev/vda1", "quiet"]
    assert "options root=/dev/vda1 quiet" in (entries / "pine-1.conf").read_text()


def test_one_error_base_class():
    from pineinstall.image.errors import DestinationError
    from pineinstall.install.dest import DestRefusedError
    from pineinstall.run import CommandError

    for cls in (StageError, TargetError, engine.LoadError, DestinationError, DestRefusedError):
        assert issubclass(cls, PineError)
    err = CommandError(["false"], 1, "")
    assert isinstance(err, PineError) and str(err) == "false exited with status 1: no output"
    assert str(PineError("what", place="$.a", touched=True)) == "what"
