"""``pineinstall live-install``: the unattended install of the installer ISO, run by its boot service.

Inputs, kernel command line first (it wins over the ISO's embedded values, and the log says so):

- ``pine.inst.dest=DEV``      target disk (else the target embedded with ``pineinstall iso embed --dest``)
- ``pine.inst.config=SRC``    an http(s) URL, or a path: relative to the medium's root, or absolute
                              (inside the medium first, else in the live system) -- else the
                              embedded config
- ``pine.inst.image=SRC``     the Pine image: an http(s) URL or a path (same rule) -- else the image
                              embedded with ``--image``; required, the ISO carries no image itself
- ``pine.inst.image_sha256=HEX``  the image's sha256 as stored (else the one embedded with
                              ``--image-sha256``, when the image is the embedded one); required
                              for an image URL, optional for a path
- ``pine.inst.yes``           install over a disk that holds something; without it only a blank disk
                              (no partition table, no signature) is written
- ``pine.inst.reboot`` / ``pine.inst.poweroff``  after success (else the embedded choice; default:
                              stay in the live system)

Without a target it prints how to install by hand and exits 0. Otherwise it runs the regular
installer (``pineinstall.install.main``, with all of its checks) and ends with one line on stderr,
``pine-live-install: done`` or ``pine-live-install: FAILED: why``; after a failure it never reboots.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

from pineinstall.errors import PineError
from pineinstall.providers import embedded

PROG = "pine-live-install"
PREFIX = "pine.inst."
KNOWN = {"dest", "config", "image", "image_sha256", "yes", "reboot", "poweroff"}
FLAGS = {"yes", "reboot", "poweroff"}
MEDIUM = "/run/live/medium"
TABLE_SPAN = 1 << 20  # the first and last MiB hold every partition table we look for


class LiveError(PineError):
    """The unattended install cannot go on; the message is the FAILED line's reason."""


def say(text: str) -> None:
    print(f"{PROG}: {text}", file=sys.stderr, flush=True)


# --- the kernel command line ------------------------------------------------------------------------


class Kargs(NamedTuple):
    inst: dict[str, str | bool]  # pine.inst.X -> value (True for a bare flag)
    consoles: list[str]  # console= values, in order


def parse_cmdline(text: str) -> Kargs:
    from pineinstall.boot.kargs import split

    inst: dict[str, str | bool] = {}
    consoles: list[str] = []
    from pineinstall.boot.kargs import KargsError

    try:
        args = split(text)
    except KargsError as exc:
        raise LiveError(str(exc)) from exc
    for arg in args:
        key, sep, value = arg.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key == "console" and sep:
            consoles.append(value)
            continue
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :]
        if name not in KNOWN:
            say(
                f"warning: unknown kernel argument {key} ignored (known: {', '.join(sorted(PREFIX + k for k in KNOWN))})"
            )
            continue
        if name in FLAGS:
            if sep and value not in ("", "1", "yes", "true"):
                raise LiveError(f"{key} is a flag; {arg!r} is not understood")
            inst[name] = True
            continue
        if not sep or not value:
            raise LiveError(f"{key} needs a value ({key}=...)")
        if name in inst and inst[name] != value:
            say(f"warning: {key} given twice; the last one ({value}) counts")
        inst[name] = value
    return Kargs(inst, consoles)


# --- where things come from -------------------------------------------------------------------------


def is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def resolve_path(value: str, medium: str, what: str) -> str:
    """A path on the medium (relative to its root; an absolute one looked up inside it first), else
    an absolute path in the live system."""
    parts = [p for p in value.split("/") if p]
    if ".." in parts or not parts:
        raise LiveError(f"{what} {value!r}: not a usable path")
    on_medium = os.path.join(medium, *parts)
    if os.path.exists(on_medium):
        return on_medium
    if value.startswith("/") and os.path.exists(value):
        return value
    where = f"on the medium ({on_medium})" + (" or in the live system" if value.startswith("/") else "")
    raise LiveError(f"{what} {value}: not found {where}")


def write_secret(run_dir: str, name: str, data: bytes) -> str:
    """``data`` in a 0600 file under a fresh 0700 directory of run_dir (the caller removes it)."""
    os.makedirs(run_dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="pine-live-install.", dir=run_dir)  # mode 0700
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def fetch_config(url: str, run_dir: str) -> str:
    from pineinstall.resources import Fetcher, ResourceError, shown_url

    say(f"fetching the config from {shown_url(url)}")
    fetcher = Fetcher(log=lambda m: say(m))
    path = write_secret(run_dir, "config.ign", b"")
    try:
        with open(path, "r+b") as f:
            size = fetcher.fetch_to(url, f)
        if not size:
            raise LiveError(f"the config at {shown_url(url)} is empty")
    except BaseException as exc:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        if isinstance(exc, ResourceError):
            raise LiveError(f"cannot fetch the config: {exc}") from exc
        raise
    finally:
        fetcher.close()
    return path


# --- is the target blank? ---------------------------------------------------------------------------


def wait_for(path: str, seconds: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Devices may appear late at boot (udev, slow controllers)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return False
        sleep(0.5)
    return True


def _size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def table_signatures(path: str) -> list[str]:
    """Partition tables found by reading the first and the last MiB (MBR, GPT with 512-byte or
    4096-byte sectors, the backup GPT header)."""
    size = _size(path)
    found: list[str] = []
    with open(path, "rb", buffering=0) as f:
        head = f.read(min(TABLE_SPAN, size))
        f.seek(max(0, size - TABLE_SPAN))
        tail = f.read(TABLE_SPAN)
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        found.append("an MBR (boot signature 55aa at byte 510)")
    for sector in (512, 4096):
        if head[sector : sector + 8] == b"EFI PART":
            found.append(f"a GPT header at byte {sector}")
        if len(tail) >= sector and tail[-sector : -sector + 8] == b"EFI PART":
            found.append(f"a backup GPT header at byte {size - sector}")
    return found


def other_signatures(path: str) -> list[str]:
    """Every signature wipefs knows (filesystems, RAID, LUKS, LVM, tables) anywhere on the disk."""
    from pineinstall.run import CommandError, run

    try:
        proc = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE,OFFSET", path])
    except CommandError as exc:
        raise LiveError(f"cannot probe {path} for signatures: {exc}") from exc
    out = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if fields:
            out.append(f"{fields[0]} signature" + (f" at {fields[1]}" if len(fields) > 1 else ""))
    return out


TABLE_TYPES = {"gpt", "PMBR", "dos"}  # wipefs' names of what table_signatures already reports


def not_blank(path: str) -> list[str]:
    """Why ``path`` is not blank (empty list: nothing found)."""
    tables = table_signatures(path)
    others = other_signatures(path)
    if tables:
        others = [o for o in others if o.split(" ", 1)[0] not in TABLE_TYPES]
    return tables + others


# --- after the install ------------------------------------------------------------------------------


def power_argvs(action: str) -> list[list[str]]:
    return [["systemctl", action], [action, "-f"]]


def power(action: str) -> None:
    """``systemctl reboot|poweroff``, falling back to the forced command (no init to ask)."""
    from pineinstall.run import CommandError, run

    tries = power_argvs(action)
    errors = []
    for argv in tries:
        try:
            run(argv, timeout=60)
            return
        except CommandError as exc:
            errors.append(str(exc))
    raise LiveError(f"could not {action}: {'; '.join(errors)}")


# --- the command ------------------------------------------------------------------------------------

HOWTO = """\
no unattended install: no pine.inst.dest= on the kernel command line and no target device embedded
in this ISO. The live system is ready for an install by hand, as root:

  lsblk                                            # find the target disk (/dev/sda, /dev/vda, ...)
  curl -o cfg.ign https://example.com/node.ign     # fetch a config (or: scp you@host:node.ign cfg.ign)
  pineinstall validate cfg.ign
  pineinstall /dev/sdX cfg.ign --image-url https://example.com/pine.raw.xz
{embedded}
Unattended: boot with pine.inst.dest=/dev/sdX pine.inst.image=URL|PATH [pine.inst.config=URL|PATH]
[pine.inst.yes] [pine.inst.reboot|pine.inst.poweroff], or embed a config (with --dest and --image)
into the ISO with 'pineinstall iso embed'.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall live-install",
        description="The unattended install of the Pine installer ISO (run at boot by its service): "
        "reads pine.inst.* from the kernel command line and the config embedded in the ISO.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cmdline", default="/proc/cmdline", metavar="FILE", help="kernel command line to read")
    p.add_argument("--medium", default=MEDIUM, metavar="DIR", help="where the ISO medium is mounted")
    p.add_argument(
        "--run-dir", default="/run", metavar="DIR", help="where a config is staged (0700 dir, 0600 file)"
    )
    p.add_argument(
        "--wait", type=float, default=30.0, metavar="SECONDS", help="wait for the target to appear"
    )
    p.add_argument("--dry-run", action="store_true", help="decide, check and plan; write nothing, no reboot")
    p.add_argument("--no-act", action="store_true", help="do not reboot or power off; say what would run")
    p.add_argument(
        "--write-config",
        metavar="FILE",
        help="only write the embedded config to FILE (mode 0600) for an install by hand, and exit",
    )
    return p


class LiveInstallPlan(NamedTuple):
    dest: str
    config: str  # a path (fetched or written under run-dir, or on the medium / live system)
    image_flag: str
    image: str
    yes: bool
    after: str | None
    argv: list[str]


def _choose(
    given: object,
    embedded_value: str | None,
    what: Callable[[str], str],
    karg: str,
    unused: Callable[[str], str],
) -> str | None:
    """The kernel command line's choice (a pine.inst.* value) over the one embedded in the ISO, said
    with where it came from; None when neither gives one."""
    if isinstance(given, str):
        note = f" ({unused(embedded_value)} is not used)" if embedded_value and embedded_value != given else ""
        say(f"{what(given)} from {karg}{note}")
        return given
    if embedded_value:
        say(f"{what(embedded_value)} embedded in the ISO")
        return embedded_value
    return None


def decide(
    ns: argparse.Namespace, kargs: Kargs, emb: embedded.Embedded | None, staged: list[str]
) -> LiveInstallPlan | None:
    """What to install; None when there is nothing to do unattended. Paths of staged secrets are
    appended to ``staged`` (removed by the caller)."""
    from pineinstall.resources import shown_url

    inst = kargs.inst
    dest = _choose(
        inst.get("dest"),
        emb.dest if emb else None,
        lambda v: f"target {v}",
        "pine.inst.dest=",
        lambda v: f"the embedded target {v}",
    )
    if dest is None:
        return None

    image = _choose(
        inst.get("image"),
        emb.image if emb else None,
        lambda v: "image",
        "pine.inst.image=",
        lambda v: f"the embedded image {shown_url(v)}",
    )
    if image is None:
        raise LiveError(
            "no image: give pine.inst.image=URL|PATH or embed one with 'pineinstall iso embed --image' "
            "(the ISO carries no Pine image)"
        )
    sha = inst.get("image_sha256")
    if isinstance(sha, str):
        say("image sha256 from pine.inst.image_sha256=")
    elif emb is not None and emb.image_sha256 and emb.image == image:
        sha = emb.image_sha256
        say("image sha256 embedded in the ISO")
    else:
        sha = None
    if is_url(image):
        if sha is None:
            raise LiveError(needs_sha256(image))
        image_flag = "--image-url"
        say(f"image {shown_url(image)}")
    else:
        image_flag = "--image-file"
        image = resolve_path(image, ns.medium, "pine.inst.image=")
        say(f"image {image}")

    if inst.get("reboot") and inst.get("poweroff"):
        raise LiveError("pine.inst.reboot and pine.inst.poweroff both given: choose one")
    asked = "reboot" if inst.get("reboot") else "poweroff" if inst.get("poweroff") else None
    after = _choose(
        asked,
        emb.after if emb else None,
        lambda v: f"after the install: {v},",
        f"pine.inst.{asked}",
        lambda v: f"the embedded choice, {v},",
    )
    if after is None:
        say("after the install: stay in the live system (no pine.inst.reboot / pine.inst.poweroff)")

    source = inst.get("config")
    if isinstance(source, str):
        if emb is not None:
            say("config from pine.inst.config= (the embedded config is not used)")
        if is_url(source):
            config = fetch_config(source, ns.run_dir)
            staged.append(config)
        else:
            config = resolve_path(source, ns.medium, "pine.inst.config=")
            say(f"config {config}")
    elif emb is not None:
        say(f"config embedded in the ISO ({len(emb.config)} bytes)")
        config = write_secret(ns.run_dir, "config.ign", emb.config)
        staged.append(config)
    else:
        raise LiveError("no config: give pine.inst.config=URL|PATH or embed one with 'pineinstall iso embed'")

    yes = bool(inst.get("yes"))
    # The installer's own checks all run (busy, mounted, the running root, the config, the image);
    # it would prompt, but the service has no terminal: the blank check below stands in for the
    # prompt, and pine.inst.yes for the answer.
    argv = [dest, config, image_flag, image, "--yes"]
    if sha is not None:
        argv += ["--image-sha256", sha]
    for console in kargs.consoles:
        argv += ["--console", console]
    if ns.dry_run:
        argv.append("--dry-run")
    return LiveInstallPlan(dest, config, image_flag, image, yes, after, argv)


def hex_of(image: str) -> str:
    """Where the HEX of an image's sha256 comes from, named by the URL's file name."""
    name = image.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "IMAGE"
    return f"HEX is the first field of 'sha256sum {name}' (of the file as served)"


def needs_sha256(image: str) -> str:
    """The FAILED reason of an image URL without a sha256: exactly how to give one."""
    from pineinstall.resources import shown_url

    return (
        f"the image {shown_url(image)} is a URL and no sha256 was given to verify it; nothing written. "
        "Add pine.inst.image_sha256=HEX to the kernel command line, or embed it: 'pineinstall iso "
        f"embed ISO --config CFG --image URL --image-sha256 HEX --force', where {hex_of(image)}"
    )


def check_dest(plan: LiveInstallPlan, wait: float) -> None:
    if not os.path.exists(plan.dest) and wait > 0:
        say(f"waiting for {plan.dest} to appear (up to {wait:g} s)")
    if not wait_for(plan.dest, wait):
        raise LiveError(f"target {plan.dest} does not exist (waited {wait:g} s)")
    mode = os.stat(plan.dest).st_mode
    if not (stat.S_ISBLK(mode) or stat.S_ISREG(mode)):
        raise LiveError(f"target {plan.dest} is neither a block device nor a disk-image file")
    if plan.yes:
        say(f"pine.inst.yes: {plan.dest} is overwritten whatever it holds")
        return
    try:
        why = not_blank(plan.dest)
    except OSError as exc:
        raise LiveError(f"cannot read {plan.dest}: {exc.strerror}") from exc
    if why:
        raise LiveError(
            f"{plan.dest} is not blank ({'; '.join(why)}); nothing written. Add pine.inst.yes to the "
            "kernel command line to install over it"
        )
    say(f"{plan.dest} is blank (no partition table, no signature)")


def run_install(argv: list[str]) -> int:
    from pineinstall.install import main as install_main
    from pineinstall.resources import shown_url

    shown = ["pineinstall", "install", *(shown_url(a) if is_url(a) else a for a in argv)]
    say(f"running {' '.join(shown)}")
    with open(os.devnull, "rb") as devnull:  # the service has no terminal; never prompt
        return install_main(argv, stdin=devnull)


def live_install(ns: argparse.Namespace) -> int:
    try:
        with open(ns.cmdline, encoding="utf-8", errors="replace") as f:
            kargs = parse_cmdline(f.read())
    except OSError as exc:
        raise LiveError(f"cannot read {ns.cmdline}: {exc.strerror}") from exc
    try:
        emb = embedded.read_embedded(ns.medium)
    except embedded.EmbedError as exc:
        raise LiveError(f"the config embedded in the ISO cannot be read: {exc}") from exc
    if ns.write_config:
        if emb is None:
            raise LiveError(f"no config is embedded in the ISO at {ns.medium}")
        fd = os.open(ns.write_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(emb.config)
        say(
            f"wrote the embedded config to {ns.write_config}"
            + (f" (embedded target: {emb.dest})" if emb.dest else "")
        )
        return 0
    staged: list[str] = []
    try:
        plan = decide(ns, kargs, emb, staged)
        if plan is None:
            hint = ""
            if emb is not None:
                hint = (
                    "\nA config is embedded in this ISO: 'pineinstall live-install --write-config cfg.ign' "
                    "writes it out (mode 0600).\n"
                )
            sys.stderr.write(HOWTO.format(embedded=hint))
            say("nothing to do")
            return 0
        check_dest(plan, ns.wait)
        rc = run_install(plan.argv)
        if rc != 0:
            raise LiveError(f"the installer failed (exit status {rc}; its messages are above)")
    finally:
        for path in staged:
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    if ns.dry_run:
        say(f"dry run: nothing written{', no ' + plan.after if plan.after else ''}")
        say("done")
        return 0
    if plan.after is None:
        say(f"installed {plan.dest}; staying in the live system (reboot when ready)")
        say("done")
        return 0
    if ns.no_act:
        first, fallback = power_argvs(plan.after)
        say(
            f"installed {plan.dest}; --no-act: would {plan.after} with {' '.join(first)} (else {' '.join(fallback)})"
        )
        say("done")
        return 0
    say(f"installed {plan.dest}; {plan.after} now")
    say("done")  # before the power action: this process may not outlive it
    power(plan.after)
    return 0


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return live_install(ns)
    except PineError as exc:  # LiveError, and whatever the layers below refuse
        say(f"FAILED: {exc}")
        return 1
    except Exception as exc:  # the last line on the console must say what happened
        with contextlib.suppress(Exception):
            say(f"FAILED: unexpected {type(exc).__name__}: {exc}")
        raise
