"""The one base class of Pine's failures meant for people.

Every layer that can refuse or fail (the stages, the target, the installer, the image layer, apply,
first boot, live install) raises a subclass of :class:`PineError`; each command catches it once, at
its entry point, and prints the message. ``str(error)`` is the message alone, as before.
"""

from __future__ import annotations


class PineError(Exception):
    """A failure with a message for people.

    ``place`` says where, when known: a JSON path of the config (``$.storage.files.0``) or a device;
    ``touched`` is True when something was already changed before the failure (the caller may
    have to undo or warn), False when the failure was found while checking.
    """

    def __init__(self, message: str = "", *, place: str | None = None, touched: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.place = place
        self.touched = touched
