"""python -m iso.images build --kind raw|ostree|rootfs [-o OUT] [--ssh]; path prints the cached file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .build import KINDS, copy_out, ensure_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iso.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("build", "build (or find cached) and copy to -o"), ("path", "print the cached path")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--kind", choices=KINDS, required=True)
        p.add_argument("--ssh", action="store_true", help="include openssh-server")
        if name == "build":
            p.add_argument("-o", "--output", type=Path, help="where to copy the image (a file or directory)")
    args = parser.parse_args(argv)
    try:
        image = ensure_image(args.kind, ssh=args.ssh)
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = image.path
    if args.command == "build" and args.output is not None:
        out = copy_out(image, args.output)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
