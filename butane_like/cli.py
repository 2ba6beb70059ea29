"""``pine-transpile``: Butane's command line.

    pine-transpile [options] [input-file]

Reads the file (stdin when absent), writes Ignition JSON and a newline to stdout (or ``-o FILE``,
written only on success). Exit 0 on success, 1 on errors (or on warnings with ``--strict``),
2 on usage errors. The option parser is hand-written: argparse alone would cost a sizeable part
of the start-up budget, and Butane's pflag conventions (``-dDIR``, ``--files-dir=DIR``,
combined short flags ``-ps``) are few.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

USAGE = """Usage: {prog} [options] [input-file]
Options:
  -c, --check              check config without producing output
  -d, --files-dir string   allow embedding local files from this directory
  -h, --help               show usage and exit
  -o, --output string      write to output file instead of stdout
  -p, --pretty             output formatted json
  -r, --raw                never wrap in a MachineConfig; force Ignition output
      --raw-errors         show raw errors, rather than pretty printing them
      --color string       control color output: "auto", "always", or "never" (default "auto")
  -s, --strict             fail on any warning
  -V, --version            print the version and exit
      --schema             print where the editor schema of VARIANT VERSION (args; none: all) lives
"""

VERSION = "pine-transpile {version} (Butane 0.29.0 compatible)"  # version: the package metadata's

_BOOL_SHORT = {"c": "check", "h": "help", "p": "pretty", "r": "raw", "s": "strict", "V": "version"}
_VALUE_SHORT = {"d": "files_dir", "o": "output"}
_BOOL_LONG = {
    "check": "check",
    "help": "help",
    "pretty": "pretty",
    "raw": "raw",
    "strict": "strict",
    "version": "version",
    "schema": "schema",
    "raw-errors": "raw_errors",
    "debug": "debug",
}
_VALUE_LONG = {
    "files-dir": "files_dir",
    "output": "output",
    "input": "input",
    "color": "color",
    "colour": "color",
}


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    opts: dict = {
        "check": False,
        "help": False,
        "pretty": False,
        "raw": False,
        "strict": False,
        "version": False,
        "schema": False,
        "raw_errors": False,
        "debug": False,
        "files_dir": "",
        "output": "",
        "input": "",
        "color": "auto",
    }
    args: list[str] = []
    i = 0

    def next_value(missing: str) -> str:
        """The next argument as a flag's value (`--output out.ign`, `-o out.ign`)."""
        nonlocal i
        if i >= len(argv):
            raise UsageError(missing)
        i += 1
        return argv[i - 1]

    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name in _BOOL_LONG:
                if eq:
                    if val.lower() in ("true", "1", "t"):
                        opts[_BOOL_LONG[name]] = True
                    elif val.lower() in ("false", "0", "f"):
                        opts[_BOOL_LONG[name]] = False
                    else:
                        raise UsageError(f'invalid argument "{val}" for "--{name}" flag: parse error')
                else:
                    opts[_BOOL_LONG[name]] = True
            elif name in _VALUE_LONG:
                if not eq:
                    missing = f"flag needs an argument: --{name}"
                    val = "always" if name in ("color", "colour") else next_value(missing)
                opts[_VALUE_LONG[name]] = val
            else:
                raise UsageError(f"unknown flag: --{name}")
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                j += 1
                if c in _BOOL_SHORT:
                    opts[_BOOL_SHORT[c]] = True
                elif c in _VALUE_SHORT:
                    missing = f"flag needs an argument: '{c}' in -{c}"
                    opts[_VALUE_SHORT[c]] = a[j:].removeprefix("=") if j < len(a) else next_value(missing)
                    break
                elif c == "D":
                    opts["debug"] = True
                else:
                    raise UsageError(f"unknown shorthand flag: '{c}' in {a}")
        else:
            args.append(a)
    return opts, args


def _colorize(flag: str) -> bool:
    """Butane's --color: always/yes, never/no, or auto (a terminal and no NO_COLOR)."""
    if flag in ("always", "yes"):
        return True
    if flag in ("never", "no"):
        return False
    return "NO_COLOR" not in os.environ and sys.stderr.isatty()


def _for_a_person() -> bool:
    """Hints follow Butane's error lines only on a terminal (or when pineinstall, which shows them
    to one, asks with PINE_TRANSPILE_HINTS=1): scripts and the conformance corpora compare
    Butane's stderr byte for byte."""
    return os.environ.get("PINE_TRANSPILE_HINTS") == "1" or sys.stderr.isatty()


def _schema(args: list[str]) -> int:
    """``--schema [VARIANT VERSION]``: where the installed editor schema(s) live."""
    import pineinstall

    from .fields import VARIANTS
    from .pipeline import supported

    folder = os.path.realpath(
        os.path.join(os.path.dirname(pineinstall.__file__), "schemas", "butane", "editor")
    )
    if not args:
        names = [
            f"{variant}-{version}.json" for variant, versions in VARIANTS.items() for version in versions
        ]
        sys.stdout.write("".join(os.path.join(folder, name) + "\n" for name in names))
        return 0
    if len(args) != 2:
        _err("--schema takes no argument or two: VARIANT VERSION (e.g. --schema fcos 1.5.0)\n")
        return 2
    variant, version = args
    if version not in VARIANTS.get(variant, {}):
        _err(f"no schema for variant {variant} version {version}; supported: {supported()}\n")
        return 1
    path = os.path.join(folder, f"{variant}-{version}.json")
    if not os.path.isfile(path):
        _err(f"{path}: missing from this installation\n")
        return 1
    sys.stdout.write(path + "\n")
    return 0


def _err(text: str) -> None:
    sys.stderr.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stderr.flush()


# The translation's result of the process run as the program (see main).
_held: list[Any] = []


def main(argv: list[str] | None = None) -> int:
    rc = _main(argv, hold=argv is None)  # (argv given: called in a process that goes on)
    if _held:
        # A large config's result is millions of objects: the process ends without tearing them
        # down one by one (300,000 entries: 0.16 s CPU), once what it wrote is flushed.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            return rc  # (the interpreter's own exit reports it, as without this)
        os._exit(rc)
    return rc


def _main(argv: list[str] | None, hold: bool) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "pine-transpile"
    try:
        opts, args = parse_args(argv)
    except UsageError as e:
        _err(f"{e}\n" + USAGE.format(prog=prog))
        return 2
    if opts["schema"]:
        return _schema(args)
    if len(args) == 1 and not opts["input"]:
        opts["input"] = args[0]
    elif args:
        _err(USAGE.format(prog=prog))
        return 2
    if opts["help"]:
        sys.stdout.write(USAGE.format(prog=prog))
        return 0
    if opts["version"]:
        from pineinstall.version import version

        sys.stdout.write(VERSION.format(version=version()) + "\n")
        return 0

    filename = opts["input"] or "<stdin>"
    if "PINE_TRANSPILE_TIMES" in os.environ:
        from .pipeline import times_start

        times_start()
    try:
        if opts["input"]:
            with open(opts["input"], "rb") as f:
                data = f.read()
        else:
            data = sys.stdin.buffer.read()
    except OSError as e:
        from pineinstall.config.gocompat import go_errno_text

        # Go opens a directory fine and fails reading it.
        op = "read" if isinstance(e, IsADirectoryError) else "open"
        _err(f"failed to read {filename}: {op} {filename}: {go_errno_text(e)}\n")
        return 1

    from . import translate
    from .pipeline import stamp, times_report
    from .yamlload import fast_import

    stamp("read")
    fast_import()
    # pineinstall asks for its own rules beyond Ignition's (PINE_TRANSPILE_SAFETY=1, see configsrc);
    # on its own, pine-transpile answers for Butane's variants as Butane does.
    safety = os.environ.get("PINE_TRANSPILE_SAFETY") == "1"
    res = translate(
        data,
        files_dir=opts["files_dir"] or None,
        pretty=opts["pretty"],
        safety=safety,
        output=not opts["check"],
    )
    if hold:
        _held.append(res)
    report = res.format(filename, raw=opts["raw_errors"], color=_colorize(opts["color"]))
    if report:
        _err(report)
    if res.error is not None:
        _err(f"Error translating config: {res.error}\n")
        if res.hints and _for_a_person():
            _err("".join(f"{line}\n" for line in res.hints))
        return 1
    if opts["strict"] and res.entries:
        _err("Config produced warnings and --strict was specified\n")
        return 1
    if opts["check"]:
        return 0
    try:
        return _write(res, opts["output"])
    finally:
        stamp("write")
        _err(times_report())


def _write(res: Any, path: str) -> int:
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            from pineinstall.config.gocompat import go_errno_text

            _err(f"failed to open {path}: open {path}: {go_errno_text(e)}\n")
            return 1
        with os.fdopen(fd, "wb") as f:
            res.write_output(f.write)
            f.write(b"\n")
    else:
        try:
            out = sys.stdout.buffer
            res.write_output(out.write)
            out.write(b"\n")
            out.flush()
        except BrokenPipeError:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
