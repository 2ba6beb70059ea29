"""ignition-validate 2.14's (Debian's, the live reference here) words where the newest Ignition
(2.26, which pineinstall follows: see tests/conformance/ignition_diff) says the same thing otherwise."""

from __future__ import annotations

_OLD_SPECIAL_BITS = "setuid/setgid/sticky bits are not supported in spec versions older than 3.4.0"
_NEW_SPECIAL_BITS = (
    "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0"
)


def as_newest(message: str) -> str:
    """A 2.14 message in the words of 2.26 (others unchanged)."""
    if message.startswith("Unused key "):
        return "unused key " + message[len("Unused key ") :]
    if message.startswith("context tree does not match") and message.endswith("may not be reported."):
        return message[:-1]
    if message == _OLD_SPECIAL_BITS:
        return _NEW_SPECIAL_BITS
    return message
