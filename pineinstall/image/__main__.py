"""``python -m pineinstall.image SOURCE DEST [options]``: write an image with the image layer alone.

Exit 0 on success (the result as JSON on stdout unless ``--progress json``, whose last line is the
``done`` event), 1 on an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pineinstall.image", description=__doc__)
    ap.add_argument("source", help="image file or http(s) URL")
    ap.add_argument("dest", help="block device or image file")
    ap.add_argument("--sha256")
    ap.add_argument("--sig", help="detached GPG signature (file or URL)")
    ap.add_argument("--keyring", help="GPG keyring to check the signature with")
    ap.add_argument("--insecure", action="store_true", help="accept a missing (never a wrong) signature")
    ap.add_argument("--size", type=parse_size, help="size of an image-file destination")
    ap.add_argument("--preserve-on-error", action="store_true")
    ap.add_argument("--verify-first", choices=("auto", "always", "never"), default="auto")
    ap.add_argument("--tmpdir")
    ap.add_argument("--fetch-retries", type=int, default=5)
    ap.add_argument("--fetch-timeout", type=float, metavar="SECONDS", help="bound on the whole download")
    ap.add_argument("--progress", choices=("auto", "bar", "lines", "json", "none"), default="auto")
    ap.add_argument("--dry-run", action="store_true", help="the cheap checks only; nothing is written")
    args = ap.parse_args(argv)

    from pineinstall.image import (
        HttpSource,
        ImageError,
        ImageSource,
        Signature,
        execute,
        make_progress,
        open_source,
        preflight,
    )

    progress = make_progress(args.progress)
    signature = Signature(args.keyring, path=args.sig) if args.keyring else None
    if args.sig and not args.keyring:
        print("error: --sig needs --keyring", file=sys.stderr)
        return 1
    try:
        src: ImageSource
        if args.source.lower().startswith(("http://", "https://")):
            src = HttpSource(args.source, retries=args.fetch_retries, total_timeout=args.fetch_timeout)
        else:
            src = open_source(args.source)
        progress.start(None, f"image {src}")
        plan = preflight(
            src, args.dest, sha256=args.sha256, signature=signature, insecure=args.insecure, size=args.size,
            verify_first=args.verify_first, tmpdir=args.tmpdir, progress=progress, dry_run=args.dry_run,
        )  # fmt: skip
        progress.message(plan.describe())
        if args.dry_run:
            plan.cleanup()
            return 0
        result = execute(plan, preserve_on_error=args.preserve_on_error, progress=progress)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if args.progress != "json":
        print(json.dumps(result.to_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
