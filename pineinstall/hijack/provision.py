"""The host's new disk, provisioned here on the controller before anything touches the host.

``pineinstall install`` (the library: :class:`pineinstall.install.Installer`) writes the verified
image and the merged config into a sparse local file of the host disk's exact size: every config or
provisioning error shows up here, before the point of no return, and the host needs no RAM for it.
It mounts the file's partitions through loop devices, so this needs root and ``losetup`` here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pineinstall.errors import PineError

if TYPE_CHECKING:
    from pineinstall.hijack.drivers import KernelDrivers

HOLE_CHUNK = 1 << 20
T = TypeVar("T")


class ProvisionError(PineError):
    """The local provisioning cannot run or failed; the host was not touched."""


@dataclass(frozen=True)
class Provisioned:
    path: str
    size: int
    sha256: str
    seconds: float


def check_controller() -> None:
    """Root and loop devices: what ``install`` needs to provision a disk-image file."""
    if os.geteuid() != 0:
        raise ProvisionError(
            "the takeover provisions the host's disk here first (loop devices, mounts): run it as root on "
            "the controller (--dry-run does not need root)"
        )
    if shutil.which("losetup") is None or not os.path.exists("/dev/loop-control"):
        raise ProvisionError(
            "no loop devices here (losetup, /dev/loop-control): the disk cannot be provisioned"
        )


def provision(config: dict[str, Any], image: str, sha256: str, size: int, run_dir: str) -> Provisioned:
    """``install`` of image + config into run_dir/disk.img (size bytes, sparse)."""
    from pineinstall.image import make_progress
    from pineinstall.install import Installer, options
    from pineinstall.stages import Log

    t0 = time.monotonic()
    cfg = os.path.join(run_dir, "config.ign")
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    disk = os.path.join(run_dir, "disk.img")
    is_url = image.lower().startswith(("http://", "https://"))
    opts = options.Options(
        dest=disk,
        config=cfg,
        image_file=None if is_url else image,
        image_url=image if is_url else None,
        image_sha256=sha256,
        size=size,
        yes=True,
        no_root_password=True,
        quiet=True,
    )
    log = Log(sys.stderr, quiet=True)
    rc = Installer(opts, log, make_progress("none"), None, io.StringIO()).run()
    if rc != 0:
        raise ProvisionError("provisioning the new disk here failed (above); the host was not touched")
    real = os.path.getsize(disk)
    if real != size:
        raise ProvisionError(f"the provisioned disk is {real} bytes, not the host disk's {size}")
    return Provisioned(disk, size, file_sha256(disk), round(time.monotonic() - t0, 1))


# Where a Pine root keeps its static Dropbear (iso/lib/dropbear.py BINARY): in each OSTree deployment,
# or at the top of a plain root.
DROPBEAR_GLOBS = ("ostree/deploy/*/deploy/*/usr/sbin/dropbearmulti", "usr/sbin/dropbearmulti")


def on_partitions(disk: str, run_dir: str, probe: Callable[[str], T | None]) -> T | None:
    """``probe`` on each partition of ``disk`` that this kernel mounts, mounted read-only in turn
    through an offset loop device (unmounted and detached after each); the first answer that is not
    None, or None."""
    import tempfile

    from pineinstall.run import CommandError, run

    table = json.loads(run(["sfdisk", "--json", disk]).stdout or b"{}").get("partitiontable", {})
    sector = int(table.get("sectorsize", 512))
    for part in table.get("partitions", []):
        loop = run(["losetup", "-f", "--show", "-r", "-o", str(part["start"] * sector),
                    "--sizelimit", str(part["size"] * sector), disk]).stdout.decode().strip()  # fmt: skip
        try:
            with tempfile.TemporaryDirectory(dir=run_dir) as mnt:
                try:
                    run(["mount", "-o", "ro", loop, mnt])
                except CommandError:
                    continue  # swap, the BIOS boot partition, an ESP this kernel cannot read
                try:
                    found = probe(mnt)
                finally:
                    run(["umount", mnt], check=False)
                if found is not None:
                    return found
        finally:
            run(["losetup", "-d", loop], check=False)
    return None


def own_dropbear(disk: str, run_dir: str) -> str | None:
    """The new disk's own static Dropbear, copied to run_dir: the RAM server then runs the very SSH
    server the image ships, and an installed pineinstall needs no build tools. None when no partition
    of the disk has one (an image without Dropbear: the caller falls back to a built one)."""
    import glob

    def copy(mnt: str) -> str | None:
        found = [p for g in DROPBEAR_GLOBS for p in sorted(glob.glob(os.path.join(mnt, g)))]
        if not found:
            return None
        dest = os.path.join(run_dir, "dropbearmulti")
        shutil.copyfile(found[0], dest)
        os.chmod(dest, 0o755)
        return dest

    return on_partitions(disk, run_dir, copy)


def image_kernel(spec: str, run_dir: str) -> KernelDrivers | None:
    """The drivers of a local raw image's kernel (:func:`.drivers.image_drivers`), read before the plan
    when that is cheap: as root, with loop devices. None otherwise (a URL, a compressed image), or when
    the image carries no module lists; the takeover reads them again from the provisioned disk."""
    from pineinstall.hijack.drivers import image_drivers
    from pineinstall.image.errors import FormatError
    from pineinstall.image.formats import SNIFF_BYTES, Format, sniff
    from pineinstall.run import CommandError

    if spec.lower().startswith(("http://", "https://")) or os.geteuid() != 0:
        return None
    if shutil.which("losetup") is None or not os.path.exists("/dev/loop-control"):
        return None
    try:
        with open(spec, "rb") as fh:
            if sniff(fh.read(SNIFF_BYTES)) != Format.RAW:
                return None
        return on_partitions(spec, run_dir, image_drivers)
    except (OSError, ValueError, FormatError, CommandError):
        return None  # not a partitioned disk this kernel reads: left to the provisioning


def extents(path: str) -> Any:
    """(offset, length, is_data) runs of the file in order (SEEK_DATA/SEEK_HOLE)."""
    with open(path, "rb") as fh:
        end = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos < end:
            try:
                data = os.lseek(fh.fileno(), pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                data = end
            if data > pos:
                yield pos, data - pos, False
                pos = data
            if pos >= end:
                break
            hole = os.lseek(fh.fileno(), pos, os.SEEK_HOLE)
            yield pos, hole - pos, True
            pos = hole


def data_chunks(path: str) -> Any:
    """The file's bytes in order, holes as zero chunks that are never read."""
    zeros = bytes(HOLE_CHUNK)
    with open(path, "rb") as fh:
        for offset, length, is_data in extents(path):
            fh.seek(offset)
            while length > 0:
                n = min(HOLE_CHUNK, length)
                chunk = fh.read(n) if is_data else zeros if n == HOLE_CHUNK else bytes(n)
                if len(chunk) != n:
                    raise ProvisionError(f"{path}: shorter than its size")
                yield chunk
                length -= n


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    for chunk in data_chunks(path):
        h.update(chunk)
    return h.hexdigest()
