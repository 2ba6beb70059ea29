"""The image's root filesystem, read before the first byte is written to DEST: the config's account
names are checked against the image's own ``/etc`` (:mod:`pineinstall.target.preflight`).

How it is read: the root partition (labelled ``root``, else the last one with ext4, xfs or btrfs)
of a raw copy of the image is mounted read-only with nothing replayed (``ro,noload`` for ext4,
``ro,norecovery`` for xfs, ``ro,rescue=nologreplay`` for btrfs) through a read-only loop device
that ``mount`` detaches itself at umount (autoclear).

Which raw copy: a raw ``--image-file`` (or a qcow2 converted by the image layer) as it is; a
compressed image is decompressed, sparse, into the staging directory (``--tmpdir``) and deleted
after. For ``--image-url`` that reads the verified copy the image layer downloaded first (its
default when a checksum or signature is given and there is room); an image that was not verified
before writing although it has checks is not read at all (nothing unverified is mounted), nor is
one that does not fit in the staging directory: the names are then checked by the files stage,
after the write, with a warning saying so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from pineinstall import staging
from pineinstall.errors import PineError
from pineinstall.run import CommandError
from pineinstall.stages import Log
from pineinstall.staging import Staged

CHUNK = 1 << 20
MOUNT_OPTIONS = {
    "ext4": "ro,noload",
    "ext3": "ro,noload",
    "ext2": "ro",
    "xfs": "ro,norecovery,nouuid",
    "btrfs": "ro,rescue=nologreplay",
}


class Unreadable(PineError):
    """The image's root cannot be read here (the check is left to the files stage)."""


def check_image(plan: Any, config: Any, tmpdir: str | None, log: Log) -> None:
    """The one call of the installer's preflight: raise
    :class:`~pineinstall.target.preflight.TargetCheckError` when the config does not fit the image."""
    from pineinstall.target import open_target
    from pineinstall.target import preflight as checks

    if not checks.needs_target(config):
        return
    try:
        with image_root(plan, tmpdir, log) as root:
            checks.check(config, open_target(root))
    except Unreadable as exc:
        log.warning(f"the image's accounts are checked after writing: {exc}")


@contextlib.contextmanager
def image_root(plan: Any, tmpdir: str | None, log: Log) -> Iterator[str]:
    """The image's root filesystem mounted read-only at a temporary directory."""
    if plan.has_checks and not plan.verified_before_write:
        raise Unreadable("it is verified only while it is written")
    raw, temp = plan.raw_path, None
    try:
        if raw is None:
            temp = _raw_copy(plan, tmpdir, log)
            raw = temp.path
        try:
            offset, size, fstype = root_partition(raw)
        except CommandError as exc:  # sfdisk or blkid could not read it: the image layer will say more
            raise Unreadable(str(exc)) from exc
        # Under this run's directory: a run killed while it is mounted is released by the next one.
        from pineinstall.install.rundir import RUNS

        own = os.path.join(RUNS, str(os.getpid()))
        os.makedirs(own, mode=0o700, exist_ok=True)
        mnt = tempfile.mkdtemp(prefix="image-root-", dir=own)
        try:
            _mount(raw, offset, size, fstype, mnt, log)
            try:
                yield mnt
            finally:
                from pineinstall.run import run

                run(["umount", mnt], check=False)
        finally:
            with contextlib.suppress(OSError):
                os.rmdir(mnt)
    finally:
        if temp is not None:
            temp.remove()


def _raw_copy(plan: Any, tmpdir: str | None, log: Log) -> Staged:
    """The decompressed image as a sparse staged file (zero blocks left as holes)."""
    from pineinstall.image import formats

    fd, staged = staging.new_file(tmpdir, "image-raw")
    try:
        with log.op(f"decompressing the image ({plan.fmt}) to read its accounts"), os.fdopen(fd, "wb") as out:
            raw = plan.data.open()
            stream = formats.open_stream(plan.fmt, raw)
            try:
                zero = bytes(CHUNK)
                while chunk := stream.read(CHUNK):
                    if chunk == zero[: len(chunk)]:
                        out.seek(len(chunk), os.SEEK_CUR)
                    else:
                        out.write(chunk)
                out.truncate()
            finally:
                stream.close()
                raw.close()
    except BaseException as exc:
        staged.remove()
        if isinstance(exc, OSError):
            raise Unreadable(
                f"no copy of it in {tmpdir or tempfile.gettempdir()}: {exc.strerror or exc}"
            ) from exc
        if isinstance(exc, formats.corrupt_errors()):
            raise Unreadable(f"corrupt {plan.fmt} stream: {exc}") from exc
        raise
    return staged


def root_partition(raw: str) -> tuple[int, int, str]:
    """(byte offset, byte size, filesystem type) of the image's root partition."""
    from pineinstall.block import blkid, sfdisk
    from pineinstall.install.grow import GROWABLE, ROOT_LABELS

    table = sfdisk.dump(raw)
    if not table.partitions:
        raise Unreadable("the image has no partitions")
    labelled = [p for p in table.partitions if p.label in ROOT_LABELS]
    for p in labelled or sorted(table.partitions, key=lambda p: p.start, reverse=True):
        offset, size = p.start * table.sector_size, p.size * table.sector_size
        fstype = blkid.probe(raw, offset, size).type
        if fstype in MOUNT_OPTIONS and (labelled or fstype in GROWABLE):
            return offset, size, fstype
        if labelled:
            break
    raise Unreadable(
        "no root filesystem found in the image (none labelled root, none with ext4, xfs or btrfs)"
    )


def _mount(raw: str, offset: int, size: int, fstype: str, where: str, log: Log) -> None:
    from pineinstall.run import run

    options = f"{MOUNT_OPTIONS[fstype]},loop,offset={offset},sizelimit={size}"
    with log.op(f"reading the image's root ({fstype}) read-only"):
        try:
            run(["mount", "-t", fstype, "-o", options, raw, where])
        except CommandError as exc:
            raise Unreadable(f"mounting its root read-only failed: {exc}") from exc
