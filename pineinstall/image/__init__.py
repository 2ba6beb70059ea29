"""OS images: open a file or URL, sniff and stream-decompress, verify, write fast and safely.

The seam for the installer::

    from pineinstall.image import Signature, make_progress, preflight, execute, write_image

    plan = preflight(source, dest, sha256=None, signature=None, insecure=False, size=None,
                     verify_first="auto", tmpdir=None, progress=p)        # touches nothing
    result = execute(plan, preserve_on_error=False, progress=p)           # -> WriteResult
    # or both at once:
    result = write_image(source, dest, sha256=..., signature=Signature(keyring, path),
                         preserve_on_error=False, progress=make_progress("auto"))

- ``source``: a path or an ``http(s)://`` URL (or an :class:`ImageSource`); HTTP resumes after a cut
  with ``Range`` (``HttpSource(url, retries=N, total_timeout=S)`` for ``--fetch-retries`` and
  ``--fetch-timeout``); messages show it without credentials or query.
- ``dest``: a block device (opened ``O_EXCL``: refused while mounted, swap, held or opened
  exclusively elsewhere) or a regular file (created when missing and grown sparse to ``size``, or to
  the image's size; never shrunk).
- ``sha256`` (hex, or ``sha256-HEX``) and ``signature`` (:class:`Signature`: a keyring and a
  detached signature file/URL; with no signature given for an http image, ``URL.sig`` is tried)
  cover the image *as stored* (the compressed file). A wrong one is always an error;
  ``insecure=True`` accepts a *missing* one. ``require_verification`` (default: for http sources)
  refuses an image with neither a sha256 nor a signature unless ``insecure``.
- ``preflight(..., dry_run=True)`` (for ``--dry-run``): only the cheap checks (reachability, format,
  sizes, verification policy, destination), no download, verification pass or conversion.
- ``verify_first``: ``auto`` verifies the whole image before the first byte is written whenever it
  can (a local file is read once; a download is staged in ``tmpdir`` when it has room and is not on
  the destination disk); otherwise it verifies while writing, the first MiB held back. ``always``
  refuses to stream unverified; ``never`` skips the pass before writing.
- :class:`WriteResult`: ``format``, ``image_size``, ``source_bytes``, ``written``, ``zeroed``,
  ``sha256``, ``sha256_checked``, ``signature`` (good/missing), ``verified_before_write``, ``seconds``.
- Errors are :class:`ImageError` subclasses: :class:`SourceError`, :class:`FormatError`,
  :class:`VerificationError`, :class:`DestinationError`. Preflight errors leave ``dest`` untouched;
  once writing began, a failure wipes both ends of ``dest`` (MBR, primary and backup GPT) unless
  ``preserve_on_error`` (an image file this run created is removed instead). Writing begins by zeroing the old tables too, so a process killed mid-write
  leaves no bootable half-image; a rerun starts over.

Modules: ``source`` (file/HTTP), ``formats`` (sniff, sizes, decompression), ``qcow2`` (qemu-img),
``verify`` (sha256, gpg), ``writer`` (the sparse, first-MiB-last write path), ``progress`` (tqdm bar,
lines, JSON lines), ``api`` (preflight/execute). ``python -m pineinstall.image`` is a small command
over the same API (used by the tests and ``bench/write``).

Not done here: moving the backup GPT and growing after writing. The installer calls
``execute(hold_head=True)``: the first MiB is returned instead of written, and the installer writes
it once DEST is provisioned (``pineinstall.install.tables``, docs/safety.md).
"""

from __future__ import annotations

from pineinstall.image.api import WritePlan, WriteResult, execute, preflight, write_image
from pineinstall.image.errors import DestinationError, FormatError, ImageError, SourceError, VerificationError
from pineinstall.image.formats import Format
from pineinstall.image.progress import Progress, make_progress
from pineinstall.image.source import FileSource, HttpSource, ImageSource, open_source
from pineinstall.image.verify import Signature, SigStatus

__all__ = [
    "DestinationError", "FileSource", "Format", "FormatError", "HttpSource", "ImageError", "ImageSource",
    "Progress", "SigStatus", "Signature", "SourceError", "VerificationError", "WritePlan", "WriteResult",
    "execute", "make_progress", "open_source", "preflight", "write_image",
]  # fmt: skip
