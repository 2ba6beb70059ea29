"""python -m iso.installer build -o pine-installer.iso [--pxe DIR] [--add /ISO/PATH=FILE] | path | info

build: the installer ISO (and with --pxe the PXE kernel, initramfs, rootfs and example boot scripts),
from the cached live root and this checkout's pineinstall; prints the ISO's path on stdout. --add puts
more files on the medium (e.g. a Pine image for installs without network).
path: the cached ISO's path (building it first if needed). info: the build manifest (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .build import ISO_NAME, copy_out, copy_pxe, ensure_iso, remaster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iso.installer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse the cached build) and copy the ISO to -o")
    build.add_argument("-o", "--output", type=Path, default=Path("pine-installer.iso"),
                       help="the ISO file (or a directory) to write; default ./pine-installer.iso")  # fmt: skip
    build.add_argument("--pxe", type=Path, metavar="DIR",
                       help="also write vmlinuz, initrd.img, rootfs.squashfs, boot.ipxe, pxelinux.cfg here")  # fmt: skip
    build.add_argument("--add", action="append", default=[], metavar="ISO_PATH=FILE",
                       help="also put FILE on the medium at ISO_PATH, e.g. /pine/pine.raw.zst=pine.raw.zst "
                       "for an install without network (pine.inst.image=/pine/pine.raw.zst)")  # fmt: skip
    sub.add_parser("path", help="print the cached ISO's path (built first if needed)")
    sub.add_parser("info", help="print the cached build's manifest (sizes, times) as JSON")
    args = parser.parse_args(argv)
    try:
        built = ensure_iso()
        if args.command == "build":
            extra = {}
            for spec in args.add:
                iso_path, sep, file = spec.partition("=")
                if not sep or not iso_path.startswith("/") or not file:
                    parser.error(f"--add {spec!r}: expected /ISO/PATH=FILE")
                extra[iso_path] = Path(file)
            if extra:  # a variant written straight to the output (no copy of the cached ISO first)
                out = args.output / ISO_NAME if args.output.is_dir() else args.output
                remaster(built, out, extra)
                if args.pxe is not None:
                    copy_pxe(built, args.pxe)
            else:
                out = copy_out(built, args.output, args.pxe)
            m = built.manifest
            size = out.stat().st_size
            print(f"ISO {out}: {size / 2**20:.1f} MiB (built in {m['build_seconds']} s)", file=sys.stderr)
            if args.pxe is not None:
                sizes = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in m["pxe"].items())
                print(f"PXE {args.pxe}: {sizes}", file=sys.stderr)
            print(out)
        elif args.command == "path":
            print(built.iso)
        else:
            print(json.dumps(built.manifest, indent=1))
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
