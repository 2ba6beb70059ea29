"""The ``pineinstall`` command: one entry point, a module per subcommand, imported on demand.

``validate`` is timed against Go's ignition-validate, so its arguments are read by hand (argparse
and its gettext cost a fifth of the start-up budget); every other subcommand builds an argparse
parser, which only runs once that subcommand was chosen.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from .errors import PineError

USAGE = """\
usage: pineinstall validate [--files-dir DIR] CONFIG|-
       pineinstall apply --root DIR [--dry-run] [--json] CONFIG|-
       pineinstall [install] DEST CONFIG [options]
       pineinstall firstboot [--root DIR] [--dry-run]
       pineinstall iso embed|show|remove ISO ...
       pineinstall passwd [--method yescrypt|sha512crypt] [--stdin]
       pineinstall hijack [USER@]HOST CONFIG (--image-file F | --image-url U) [options]
       pineinstall --version

Provision Pine machines from Ignition configs (spec 3.0.0-3.6.0).

subcommands:
  validate   check a config; report every error and warning with its place
  apply      provision a root directory (and the disks the config names) from a config
  install    write a Pine image to a device or disk-image file and provision it
  firstboot  provision the booted system once, from the kernel command line, fw_cfg or the stash
  iso        embed a config (and a target device) into an installer ISO, show it, remove it
  passwd     print a crypt(3) hash of a password, for passwd.users[].password_hash
  hijack     take over a running Debian/Ubuntu machine over SSH (now: its plan only)

Run 'pineinstall SUBCOMMAND --help' for a subcommand's options.
"""

VALIDATE_USAGE = """\
usage: pineinstall validate [--files-dir DIR] CONFIG|-

Check an Ignition config (spec 3.0.0-3.6.0) as Ignition would, without touching anything.
A Butane-like YAML config (variants pine, fcos, flatcar) is checked as pine-transpile checks it,
its findings placed at YAML lines; its local: files are read from DIR (default: its directory).
Prints 'error at $.path, line L col C: message' (and 'warning at ...') for each finding;
exits 1 if there is an error, 0 otherwise.
"""


def validate_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(VALIDATE_USAGE)
        return 0
    files_dir = None
    if len(argv) == 3 and argv[0] == "--files-dir":
        files_dir, argv = argv[1], argv[2:]
    if len(argv) != 1 or (argv[0].startswith("-") and argv[0] != "-"):
        sys.stderr.write(VALIDATE_USAGE)
        return 2
    source = argv[0]
    try:
        if source == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as e:
        sys.stderr.write(f"pineinstall validate: cannot read {source}: {e.strerror}\n")
        return 1
    from .config import check, is_yaml_mapping

    if is_yaml_mapping(data):
        return _validate_yaml(data, source, files_dir)
    report = check(data).report
    # The report is this command's result (as with ignition-validate): stdout.
    sys.stdout.write(str(report))
    return 1 if report.has_errors else 0


def _validate_yaml(data: bytes, source: str, files_dir: str | None) -> int:
    from .configsrc import check_yaml
    from .errors import PineError

    try:
        rc, report, other = check_yaml(data, source, files_dir)
    except PineError as exc:
        sys.stderr.write(f"pineinstall validate: {exc}\n")
        return 1
    sys.stdout.writelines(line + "\n" for line in report)
    sys.stderr.writelines(line + "\n" for line in other)
    return 1 if rc else 0


def _apply_main(argv: list[str]) -> int:
    from .apply import main

    return main(argv)


def _install_main(argv: list[str]) -> int:
    from .install import main

    return main(argv)


def _firstboot_main(argv: list[str]) -> int:
    from .firstboot import main

    return main(argv)


def _iso_main(argv: list[str]) -> int:
    from .isocmd import main

    return main(argv)


def _passwd_main(argv: list[str]) -> int:
    from .passwd import main

    return main(argv)


def _hijack_main(argv: list[str]) -> int:
    from .hijack.command import main

    return main(argv)


def _live_install_main(argv: list[str]) -> int:
    # Run by the installer ISO's boot service: the unattended install from pine.inst.* / the embedded config.
    from .live import main

    return main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "validate": validate_main,
    "apply": _apply_main,
    "install": _install_main,
    "firstboot": _firstboot_main,
    "iso": _iso_main,
    "passwd": _passwd_main,
    "hijack": _hijack_main,
    "live-install": _live_install_main,
}


def _looks_like_dest(arg: str) -> bool:
    """A device or disk-image path (``/dev/sda``, ``disk.img``, ``./x``), not a mistyped subcommand."""
    return not arg.startswith("-") and ("/" in arg or "." in arg or os.path.exists(arg))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        (sys.stdout if args else sys.stderr).write(USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from .version import version

        sys.stdout.write(f"pineinstall {version()}\n")
        return 0
    command = SUBCOMMANDS.get(args[0])
    if command is None and _looks_like_dest(args[0]):
        # 'pineinstall DEST CONFIG' is 'pineinstall install DEST CONFIG', as with coreos-installer.
        command, args = SUBCOMMANDS["install"], ["install", *args]
    if command is not None:
        try:
            return command(args[1:])
        except PineError as exc:  # the one catch for what a subcommand left: a message, not a traceback
            sys.stderr.write(f"pineinstall {args[0]}: {exc}\n")
            return 1
    sys.stderr.write(f"pineinstall: unknown subcommand {args[0]!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
