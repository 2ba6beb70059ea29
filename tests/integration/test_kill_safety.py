"""Kill safety (docs/safety.md): ``pineinstall DEST CONFIG --image-file|--image-url`` killed with
SIGKILL at many moments -- at every named checkpoint (the test hook ``PINE_TEST_KILL_AT``) and after
seeded random delays -- leaves DEST untouched, wiped or complete, never a disk with boot code or a
partition table but without its provisioning; the same command run again, without any cleanup,
succeeds; no loop device or mount of ours is left after it. SIGTERM and SIGHUP clean up as SIGINT.

The seed of every random moment is in every assertion message; ``PINE_KILL_SEED`` picks the seeds'
base (printed at the start of each test)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from pineinstall.install import rundir
from pineinstall.run import pid_alive

from .image_helpers import ImageServer, MiB, compress, installed_root, loop, make_pine_image, sh

pytestmark = pytest.mark.needs(
    "sgdisk", "sfdisk", "partx", "losetup", "mkfs.ext4", "resize2fs", "e2fsck", "wipefs"
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIkill test@example"
# Every checkpoint of the install path, in order (pineinstall.install.checkpoint).
CHECKPOINTS = (
    "start",
    "preflight-done",
    "image-written",
    "backup-gpt-moved",
    "partition-grown",
    "filesystem-grown",
    "root-mounted",
    "files-done",
    "provisioned",
    "unmounted",
    "committed",
    "synced",
)
BASE_SEED = int(os.environ.get("PINE_KILL_SEED", "1207"))
PINEINSTALL = os.fspath(Path(sys.executable).parent / "pineinstall")
STATES = ("untouched", "wiped", "complete")
# What "complete" looks for (classify): the file, the user's key, and the stashed config.
CONFIG = {
    "ignition": {"version": "3.4.0"},
    "passwd": {"users": [{"name": "pine", "sshAuthorizedKeys": [KEY]}]},
    "storage": {"files": [{"path": "/etc/provisioned", "contents": {"source": "data:,yes"}}]},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("kill")
    image = make_pine_image(d / "pine.raw", size_mib=40)
    with open(image, "r+b") as f:  # incompressible data: the write takes a moment
        f.seek(20 * MiB)
        f.write(hashlib.shake_256(b"kill").digest(12 * MiB))
    compress(image, "gzip")
    (d / "cfg.ign").write_text(json.dumps(CONFIG))
    return d


def old_disk(path: Path, size_mib: int = 64) -> None:
    """A disk that holds something: a pattern and a GPT (an earlier system)."""
    with open(path, "wb") as f:
        f.write(hashlib.shake_256(b"old").digest(MiB) * size_mib)
    sh("sgdisk", "-n1:2048:0", "-c1:old", path)


def digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def classify(dest: str, before: str, tmp: Path, root_number: int = 2) -> tuple[str, str]:
    """(state, why): untouched (same bytes), wiped (no boot code, no partition table at either end,
    nothing wipefs finds), complete (a table, and the root -- partition ``root_number`` -- holds
    the provisioning), or half."""
    if digest(dest) == before:
        return "untouched", ""
    with open(dest, "rb") as f:
        head = f.read(34 * 512)
        f.seek(-512, os.SEEK_END)
        last = f.read(512)
    found = subprocess.run(
        ["wipefs", "-n", "--noheadings", "-o", "TYPE", dest], capture_output=True, text=True
    )
    pttype = subprocess.run(
        ["blkid", "-p", "-o", "value", "-s", "PTTYPE", dest], capture_output=True, text=True
    )
    if (
        head == bytes(len(head))
        and b"EFI PART" not in last
        and not found.stdout.strip()
        and not pttype.stdout.strip()
    ):
        return "wiped", ""
    why = f"head zero: {head == bytes(len(head))}, wipefs: {found.stdout.split()}, PTTYPE {pttype.stdout.strip()!r}"
    try:
        with installed_root(dest, tmp, number=root_number) as root:
            done = (root / "etc" / "provisioned").read_text() == "yes" and KEY in (
                root / "home" / "pine" / ".ssh" / "authorized_keys"
            ).read_text()
            done = done and (root / "boot" / "ignition" / "config.ign").is_file()
    except (OSError, subprocess.CalledProcessError) as exc:
        return "half", f"{why}; root unreadable: {exc}"
    return ("complete", "") if done else ("half", f"{why}; provisioning incomplete")


def leftovers(dest: str, pids: list[int]) -> list[str]:
    """Loop devices over DEST or under the run directories of dead runs, mounts under those, run
    directories of pids. A live run's directory is not a leftover: other installs (a concurrent test
    session, the hijack's provisioning) may be running on this machine."""
    runs = os.listdir(rundir.RUNS) if os.path.isdir(rundir.RUNS) else []
    dead = [f"{rundir.RUNS}/{n}" for n in runs if n.isdigit() and not pid_alive(int(n))]
    out = [f"loop {d}" for d in rundir.loops_over({os.path.realpath(dest)})]
    for run_dir in dead:
        out += [f"loop {d}" for d in rundir.loops_over(set(), under=run_dir)]
        out += [f"mount {m}" for m in rundir.mounts_under(run_dir)]
    out += [f"dir {rundir.RUNS}/{p}" for p in pids if os.path.exists(f"{rundir.RUNS}/{p}")]
    return out


def _watch(proc: subprocess.Popen[bytes], writing: threading.Event) -> None:
    """Drain the --json events; set ``writing`` when the image write begins."""
    assert proc.stdout is not None
    for line in proc.stdout:
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "phase" and "writing" in event.get("phase", ""):
                writing.set()
    writing.set()  # ended (or killed) before writing


def start(
    argv: list[str], env: dict[str, str], from_start: bool = False
) -> tuple[subprocess.Popen[bytes], threading.Event]:
    """The run, and an event set when its image write begins (``from_start``: at once)."""
    proc = subprocess.Popen([*argv, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writing = threading.Event()
    if from_start:
        writing.set()
    threading.Thread(target=_watch, args=(proc, writing), daemon=True).start()
    return proc, writing


def kill_then_rerun(
    argv: list[str], dest: str, moment: str | float, what: str, tmp: Path, *, root_number: int = 2,
    from_start: bool = False,
) -> str:
    """One killed run and its rerun; the killed run's state. A str moment is a checkpoint, a float
    the seconds after the image write began (``from_start``: after the process started)."""
    before = digest(dest)
    env = {k: v for k, v in os.environ.items() if k != "PINE_TEST_KILL_AT"}
    proc, writing = start(
        argv, {**env, "PINE_TEST_KILL_AT": moment} if isinstance(moment, str) else env, from_start
    )
    if isinstance(moment, float):
        writing.wait(timeout=120)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=moment)
        proc.kill()
    proc.wait()
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    state, why = classify(dest, before, tmp, root_number)
    assert state in STATES, (
        f"{what}: after the kill (rc {proc.returncode}) DEST is {state}: {why}\n{err[-2000:]}"
    )
    again = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert again.returncode == 0, f"{what} (killed run: {state}): the rerun failed:\n{again.stderr[-3000:]}"
    final, why = classify(dest, before, tmp, root_number)
    assert final == "complete", f"{what}: after the rerun DEST is {final}: {why}"
    left = leftovers(dest, [proc.pid])
    assert not left, f"{what}: left after the rerun: {left}"
    return state


def moments(seed: int, checkpoints: tuple[str, ...], randoms: int, span: float) -> list[str | float]:
    rng = random.Random(seed)
    return [*checkpoints, *(round(rng.uniform(0.0, span), 3) for _ in range(randoms))]


def timed_run(argv: list[str], from_start: bool = False) -> float:
    """Seconds from the start of the image write (``from_start``: of the process) to the end of a
    whole install."""
    proc, writing = start(argv, dict(os.environ), from_start)
    writing.wait(timeout=120)
    t0 = time.monotonic()
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    return time.monotonic() - t0


def report(name: str, seed: int, span: float, states: dict[str, str]) -> None:
    print(
        f"\n{name} (seed {seed}, {span:.2f} s from the write to the end): {len(states)} kills: "
        f"{dict(Counter(states.values()))}"
    )
    for moment, state in states.items():
        print(f"  {moment}: {state}")


def test_kills_on_a_file_dest(work: Path, tmp_path: Path) -> None:
    """12 checkpoints and 6 random moments, --image-file onto a disk-image file."""
    seed = BASE_SEED
    dest = tmp_path / "disk.img"
    old_disk(dest)
    argv = [PINEINSTALL, "install", os.fspath(dest), os.fspath(work / "cfg.ign"), "--image-file",
            os.fspath(work / "pine.raw"), "--yes", "--stash-config"]  # fmt: skip
    span = timed_run(argv)
    states = {}
    for moment in moments(seed, CHECKPOINTS, 6, span):
        what = f"file DEST, seed {seed}, kill at {moment!r} (install took {span:.2f} s)"
        states[str(moment)] = kill_then_rerun(argv, os.fspath(dest), moment, what, tmp_path)
    report("file DEST", seed, span, states)
    assert states["image-written"] == "wiped" and states["unmounted"] == "wiped", (seed, states)
    assert states["committed"] == "complete", (seed, states)


def test_kills_on_a_loop_device(work: Path, tmp_path: Path) -> None:
    """3 checkpoints and 3 random moments onto a loop device."""
    seed = BASE_SEED + 1
    backing = tmp_path / "dev.img"
    old_disk(backing)
    with loop(backing) as dev:
        argv = [PINEINSTALL, "install", dev, os.fspath(work / "cfg.ign"), "--image-file",
                os.fspath(work / "pine.raw"), "--yes", "--stash-config"]  # fmt: skip
        span = timed_run(argv)
        picked = ("root-mounted", "unmounted", "committed")
        states = {}
        for moment in moments(seed, picked, 3, span):
            what = f"loop DEST {dev}, seed {seed}, kill at {moment!r} (install took {span:.2f} s)"
            states[str(moment)] = kill_then_rerun(argv, dev, moment, what, tmp_path)
        report("loop DEST", seed, span, states)
        assert states["root-mounted"] == "wiped" and states["committed"] == "complete", (seed, states)


def test_kills_with_an_image_url(work: Path, tmp_path: Path) -> None:
    """--image-url (gzip, over HTTP on 127.0.0.1): 1 checkpoint and 2 random moments."""
    seed = BASE_SEED + 2
    dest = tmp_path / "disk.img"
    old_disk(dest)
    sha = hashlib.sha256((work / "pine.raw.gz").read_bytes()).hexdigest()
    with ImageServer(work) as server:
        argv = [PINEINSTALL, "install", os.fspath(dest), os.fspath(work / "cfg.ign"), "--image-url",
                server.url("pine.raw.gz"), "--image-sha256", sha, "--yes", "--stash-config"]  # fmt: skip
        span = timed_run(argv)
        states = {}
        for moment in moments(seed, ("files-done",), 2, span):
            what = f"URL, seed {seed}, kill at {moment!r} (install took {span:.2f} s)"
            states[str(moment)] = kill_then_rerun(argv, os.fspath(dest), moment, what, tmp_path)
        report("image URL", seed, span, states)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_remove_staging_files(sig: signal.Signals, work: Path, tmp_path: Path) -> None:
    """A verified --image-url install is staged in --tmpdir first: SIGTERM and SIGHUP, like SIGINT,
    remove the staged file, the run directory and its loop devices, and wipe DEST if it was written."""
    stage = tmp_path / "stage"
    stage.mkdir()
    dest = tmp_path / "disk.img"
    old_disk(dest)
    gz = work / "pine.raw.gz"
    sha = hashlib.sha256(gz.read_bytes()).hexdigest()
    with ImageServer(work) as server:
        server.faults.delay = 0.02  # a slow download: the signal arrives while staging
        argv = [PINEINSTALL, "install", os.fspath(dest), os.fspath(work / "cfg.ign"), "--image-url",
                server.url("pine.raw.gz"), "--image-sha256", sha, "--tmpdir", os.fspath(stage), "--yes"]  # fmt: skip
        before = digest(os.fspath(dest))
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not list(stage.iterdir()) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert list(stage.iterdir()), "nothing was staged"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err.decode()
    assert not list(stage.iterdir()), err.decode()
    assert digest(os.fspath(dest)) == before, "DEST changed while staging"
    assert not leftovers(os.fspath(dest), [proc.pid])


def test_a_rerun_removes_a_killed_runs_staged_download(work: Path, tmp_path: Path) -> None:
    """kill -9 while an --image-url download is staged in --tmpdir: the rerun removes the dead run's
    staged file (named with its pid, pineinstall.staging) and not a live run's, and succeeds."""
    stage = tmp_path / "stage"
    stage.mkdir()
    dest = tmp_path / "disk.img"
    old_disk(dest)
    before = digest(os.fspath(dest))
    gz = work / "pine.raw.gz"
    sha = hashlib.sha256(gz.read_bytes()).hexdigest()
    live = subprocess.Popen(["sleep", "600"])
    theirs = stage / f"pine-image.{live.pid}.abcdefgh"  # another install, alive, staging here
    theirs.write_bytes(b"a live run's download")
    try:
        with ImageServer(work) as server:
            server.faults.delay = 0.02  # a slow download: the kill lands while staging
            argv = [PINEINSTALL, "install", os.fspath(dest), os.fspath(work / "cfg.ign"), "--image-url",
                    server.url("pine.raw.gz"), "--image-sha256", sha, "--tmpdir", os.fspath(stage), "--yes",
                    "--stash-config"]  # fmt: skip
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            mine = f"pine-image.{proc.pid}."
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                staged = [p for p in stage.iterdir() if p.name.startswith(mine)]
                if staged and staged[0].stat().st_size > 0:
                    break
                time.sleep(0.02)
            proc.kill()
            proc.wait()
            left = [p.name for p in stage.iterdir() if p.name.startswith(mine)]
            assert left, f"nothing staged before the kill: {sorted(os.listdir(stage))}"
            assert digest(os.fspath(dest)) == before, "DEST changed while staging"
            server.faults.delay = 0
            again = subprocess.run(argv, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr[-3000:]
        assert "staged by an earlier run" in again.stderr, again.stderr[-3000:]
        assert sorted(os.listdir(stage)) == [theirs.name], f"killed run's {left}: {sorted(os.listdir(stage))}"
        assert classify(os.fspath(dest), before, tmp_path)[0] == "complete"
        assert not leftovers(os.fspath(dest), [proc.pid])
    finally:
        live.kill()
        live.wait()
