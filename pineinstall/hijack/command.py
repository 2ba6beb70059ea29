"""``pineinstall hijack``: the command line, and the order of its checks.

Everything that can be checked on the controller is checked before the first SSH connection: the
config (fully, as ``install`` checks it) and the image's sha256 (the whole file, or the whole URL
streamed). Then one SSH session runs the read-only probe; the plan is printed. ``--dry-run`` stops
there. Otherwise, after a confirmation (``--yes``, or a prompt on a terminal), :mod:`.takeover` runs:
the new disk provisioned here, the RAM SSH server, quiesce, the stream, the reboot, the wait for Pine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from typing import Any

from pineinstall.errors import PineError
from pineinstall.resources import scrub, shown_url

EXIT_REFUSED = 1
EXIT_USAGE = 2


class HijackError(PineError):
    """The takeover cannot start; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall hijack",
        description="Take over a running Debian or Ubuntu machine over SSH and write Pine over it, keeping its "
        "network and its login user's SSH keys (merged under CONFIG: the config wins). The config and the image "
        "are checked here first; then one SSH session reads the host's facts without changing anything and the "
        "plan is printed. Then (after --yes or a prompt) the new disk is provisioned here (needs root and loop "
        "devices), the host's disk is overwritten from RAM and the host reboots into Pine. Exit status: 0 the new "
        "Pine answers SSH with its result record (or --dry-run with no refusal), 1 refused or failed, 2 usage "
        "error.",
    )
    p.add_argument("target", metavar="[USER@]HOST", help="the machine to take over (ssh's user and host)")
    p.add_argument("config", metavar="CONFIG", help="Ignition JSON or Butane-like YAML (variants pine, fcos)")
    p.add_argument(
        "--files-dir",
        metavar="DIR",
        help="a YAML config's local: files are read from DIR (default: the config's own directory)",
    )
    src = p.add_argument_group("what to write (exactly one)")
    what = src.add_mutually_exclusive_group(required=True)
    what.add_argument("--image-file", metavar="PATH", help="a local Pine image (raw, xz, gzip, zstd)")
    what.add_argument(
        "--image-url", metavar="URL", help="an http(s) Pine image, read whole here to verify it"
    )
    src.add_argument(
        "--image-sha256",
        metavar="HEX",
        help="sha256 of the image as stored; a mismatch stops before any SSH connection",
    )
    con = p.add_argument_group("connection")
    con.add_argument("--port", type=int, metavar="N", help="the SSH port (default: ssh's, 22)")
    con.add_argument(
        "--identity",
        metavar="KEY",
        help="the SSH private key to log in with (default: ssh's and the agent's)",
    )
    run = p.add_argument_group("running")
    run.add_argument("--dry-run", action="store_true", help="check, probe and print the plan; change nothing")
    run.add_argument("-y", "--yes", action="store_true", help="do not ask before the point of no return")
    run.add_argument(
        "--takeover",
        choices=("auto", "ram", "boot-once"),
        default="auto",
        help="how the disk is written: boot-once boots the host once into a Pine installer through a one-shot "
        "GRUB entry (a failed installer boot falls back to the old system); ram pivots into RAM on the running "
        "host (the path for the smallest RAM); auto (default) takes boot-once where GRUB and the RAM allow it",
    )
    run.add_argument(
        "--reboot-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long to wait for the new Pine's SSH after the reboot (default 900)",
    )
    return p


def image_sha256(spec: str) -> str:
    """The sha256 of the image as stored, read whole (a URL streamed, never staged)."""
    import hashlib

    from pineinstall.image.errors import ImageError
    from pineinstall.image.source import open_source

    digest = hashlib.sha256()
    try:
        src = open_source(spec)
        with src.open() as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (ImageError, OSError) as exc:
        raise HijackError(scrub(f"image {shown_url(spec)}: {exc}", spec)) from exc
    return digest.hexdigest()


def check_image(spec: str, expected: str | None) -> Any:
    from pineinstall.hijack.plan import Image
    from pineinstall.image.errors import VerificationError
    from pineinstall.image.verify import parse_sha256

    try:
        want = parse_sha256(expected).hex() if expected else None
    except VerificationError as exc:
        raise HijackError(str(exc)) from exc
    got = image_sha256(spec)
    if want is not None and got != want:
        raise HijackError(
            f"image {shown_url(spec)}: sha256 is {got}, expected {want}; nothing was sent to the host"
        )
    return Image(spec, got, want is not None)


def load_config(source: str, files_dir: str | None) -> dict[str, Any]:
    from pineinstall.configsrc import load
    from pineinstall.stages import Log

    data, _config = load(source, Log(sys.stderr), files_dir=files_dir)
    return json.loads(data)


def check_merged(merged: dict[str, Any]) -> None:
    """The carried facts must not make a valid config invalid (a bad hostname, a key Ignition rejects)."""
    from pineinstall.config import check

    report = check(json.dumps(merged)).report
    if report.has_errors:
        raise HijackError(f"the config with the carried facts is not valid:\n{report}")


def confirm(ns: argparse.Namespace, disk: str) -> bool:
    """--yes, or "yes" typed on a terminal; without a terminal and without --yes: refused."""
    if ns.yes:
        return True
    if not sys.stdin.isatty():
        sys.stderr.write(
            "pineinstall hijack: not a terminal and no --yes: refusing to overwrite the host's disk\n"
        )
        return False
    sys.stderr.write(f"Overwrite {disk} on {ns.target} with Pine? Type yes to go on: ")
    sys.stderr.flush()
    return sys.stdin.readline().strip() == "yes"


def hijack(ns: argparse.Namespace) -> int:
    from pineinstall.hijack import bootonce, carry, facts, plan, probe, refusals, ssh

    target = ssh.Target.parse(ns.target, ns.port, ns.identity)
    config = load_config(ns.config, ns.files_dir)
    if not ns.dry_run:
        from pineinstall.hijack.provision import check_controller

        check_controller()  # before any connection: root and loop devices here
    t0 = time.monotonic()
    image = check_image(ns.image_file or ns.image_url, ns.image_sha256)
    times = {"image check": time.monotonic() - t0}
    run_dir = tempfile.mkdtemp(prefix="pineinstall-hijack.")  # 0700: the run's known_hosts, keys, disk
    try:
        t0 = time.monotonic()
        doc = probe.parse_output(ssh.run_script(target, run_dir, probe.SCRIPT))
        times["probe"] = time.monotonic() - t0
        host_keys = ssh.fingerprints(run_dir)
        found = facts.parse(doc)
        choice = bootonce.choose(ns.takeover, doc, found)
        refused = refusals.refusals(found, refusals.local_boot_id(), choice.method)
        from pineinstall.hijack.provision import image_kernel

        kernel = image_kernel(image.source, run_dir) if found.disk is not None else None
        refused += refusals.drivers(found, kernel)
        if choice.refused:
            refused.append(choice.refused)
        carried = carry.carry(found, config, target.host)
        check_merged(carried.merged)
        sys.stdout.write(plan.render(str(target), host_keys, found, image, ns.config, carried, refused, choice,
                                     kernel))  # fmt: skip
        sys.stdout.flush()
        if refused:
            return EXIT_REFUSED
        if ns.dry_run:
            return 0
        assert found.disk is not None  # refused otherwise
        if not confirm(ns, found.disk.path):
            return EXIT_REFUSED
        from pineinstall.hijack import takeover

        report = takeover.run(target, run_dir, found, carried.merged, image.source, image.sha256,
                              ns.reboot_timeout, times, choice.method, doc, kernel is not None)  # fmt: skip
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    sys.stdout.write("\n".join(report.lines()) + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str]) -> int:
    return hijack(build_parser().parse_args(argv))
