"""Errors of the image layer. Every message names the image or the destination it is about."""

from __future__ import annotations

from pineinstall.errors import PineError


class ImageError(PineError):
    """Base class: something about the image or its destination is wrong."""


class SourceError(ImageError):
    """The image could not be opened or fetched (after the retries)."""


class FormatError(ImageError):
    """The image's format is unknown, unsupported here, or its stream is corrupt."""


class VerificationError(ImageError):
    """The sha256 digest or the GPG signature did not verify (or a required one is missing)."""


class DestinationError(ImageError):
    """The destination cannot take the image: busy, too small, not writable."""
