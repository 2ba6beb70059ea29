"""The installer's command line: ``pineinstall [install] DEST CONFIG [options]``."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

_SIZE = re.compile(r"^(\d+)([KMGT]i?B?|B)?$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class UsageError(Exception):
    """The options contradict each other (exit status 2)."""


def parse_size(text: str) -> int:
    """``8G``, ``512M``, ``1536MiB``, ``1000000`` (bytes) -> bytes (binary units)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 8G, 512M)")
    unit = (m.group(2) or "").upper()[:1]
    return int(m.group(1)) * _UNITS[unit]


@dataclass
class Options:
    dest: str
    config: str
    files_dir: str | None = None
    image_file: str | None = None
    image_url: str | None = None
    image_sha256: str | None = None
    image_sig: str | None = None
    keyring: str | None = None
    insecure: bool = False
    fetch_retries: int | None = None
    fetch_timeout: float | None = None
    append_karg: list[str] = field(default_factory=list)
    delete_karg: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    copy_network: bool = False
    network_source: str = "/"
    stash_config: bool = False
    no_grow: bool = False
    preserve_on_error: bool = False
    dry_run: bool = False
    yes: bool = False
    json: bool = False
    quiet: bool = False
    size: int | None = None
    rootfs: str | None = None
    swap_size: int = 256 << 20
    tmpdir: str | None = None
    format: str | None = None
    no_root_password: bool = False

    @property
    def image(self) -> str | None:
        return self.image_file or self.image_url


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall install",
        description=(
            "Write a Pine image (or a root filesystem) to DEST, a block device or a disk-image file, "
            "and provision it with CONFIG (Ignition JSON, or pine/fcos YAML; - for stdin). Everything "
            "that can be checked is checked before DEST is touched."
        ),
    )
    p.add_argument("dest", metavar="DEST", help="a block device, or a disk-image file (created or grown)")
    p.add_argument("config", metavar="CONFIG", help="Ignition JSON or Butane-like YAML, or - for stdin")
    p.add_argument("--files-dir", metavar="DIR", help="a YAML config's local: files are read from DIR (default: the config's own directory)")
    src = p.add_argument_group("what to write (exactly one)")
    src.add_argument("--image-file", metavar="PATH", help="a local image (raw, xz, gzip, zstd, qcow2)")
    src.add_argument("--image-url", metavar="URL", help="an http(s) image; resumed after cuts")
    src.add_argument(
        "--rootfs", metavar="FILE", help="a root filesystem tarball or squashfs instead of an image"
    )
    ver = p.add_argument_group("verification")
    ver.add_argument("--image-sha256", metavar="HEX", help="sha256 of the image as stored")
    ver.add_argument("--image-sig", metavar="PATH|URL", help="detached GPG signature of the image")
    ver.add_argument("--keyring", metavar="PATH", help="GPG keyring to check --image-sig with")
    ver.add_argument(
        "--insecure", action="store_true", help="allow a missing (never a wrong) signature or hash"
    )
    ver.add_argument(
        "--fetch-retries",
        type=int,
        metavar="N",
        help="retries per download (the image, and the config's resources); default: the image layer's and Ignition's",
    )
    ver.add_argument(
        "--fetch-timeout",
        type=float,
        metavar="SECONDS",
        help="give up an image download not finished after SECONDS, retries included (default: no limit)",
    )
    boot = p.add_argument_group("bootloader")
    boot.add_argument(
        "--append-karg", action="append", default=[], metavar="ARG", help="add a kernel argument"
    )
    boot.add_argument(
        "--delete-karg", action="append", default=[], metavar="ARG", help="remove a kernel argument"
    )
    boot.add_argument(
        "--console",
        action="append",
        default=[],
        metavar="SPEC",
        help="kernel/GRUB console, e.g. ttyS0,115200n8",
    )
    extra = p.add_argument_group("target")
    extra.add_argument(
        "--copy-network", action="store_true", help="carry this host's network configuration into the target"
    )
    extra.add_argument("--network-source", default="/", metavar="ROOT", help=argparse.SUPPRESS)
    extra.add_argument(
        "--stash-config",
        action="store_true",
        help="also keep the config at /boot/ignition/config.ign (dir 0700, file 0600) for first boot",
    )
    extra.add_argument("--no-grow", action="store_true", help="do not grow the root partition to fill DEST")
    extra.add_argument(
        "--format",
        choices=("raw", "qcow2"),
        help="format of a disk-image file DEST (default: qcow2 when DEST ends in .qcow2, else raw)",
    )
    extra.add_argument(
        "--no-root-password",
        action="store_true",
        help="do not offer to set a root password on a terminal when the config sets none",
    )
    extra.add_argument(
        "--size", type=parse_size, metavar="SIZE", help="size of a disk-image file DEST (e.g. 8G)"
    )
    extra.add_argument(
        "--swap-size",
        type=parse_size,
        default=256 << 20,
        metavar="SIZE",
        help="rootfs mode: swap size (0: none)",
    )
    extra.add_argument(
        "--tmpdir", metavar="DIR", help="where a download is staged to verify it before writing"
    )
    run = p.add_argument_group("running")
    run.add_argument(
        "--preserve-on-error", action="store_true", help="keep a half-written DEST (default: wipe its tables)"
    )
    run.add_argument("--dry-run", action="store_true", help="check everything, print the plan, touch nothing")
    run.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting DEST")
    run.add_argument("--json", action="store_true", help="progress and result as JSON lines on stdout")
    run.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    return p


def parse(argv: list[str]) -> Options:
    """Parse argv (argparse exits with status 2 on usage errors); UsageError for contradictions."""
    ns = build_parser().parse_args(argv)
    opts = Options(**{k: v for k, v in vars(ns).items()})
    chosen = [n for n, v in (("--image-file", opts.image_file), ("--image-url", opts.image_url),
                             ("--rootfs", opts.rootfs)) if v]  # fmt: skip
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of --image-file, --image-url, --rootfs"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if opts.image_sig and not opts.keyring:
        raise UsageError("--image-sig needs --keyring")
    if opts.rootfs and (opts.image_sha256 or opts.image_sig):
        raise UsageError("--image-sha256/--image-sig are for images, not --rootfs")
    if opts.image_url and not opts.image_url.lower().startswith(("http://", "https://")):
        from pineinstall.resources import shown_url

        raise UsageError(f"--image-url must be http(s): {shown_url(opts.image_url)!r}")
    if opts.fetch_timeout is not None and opts.fetch_timeout <= 0:
        raise UsageError("--fetch-timeout must be positive")
    if opts.fetch_retries is not None and opts.fetch_retries < 0:
        raise UsageError("--fetch-retries must be 0 or more")
    return opts
