"""cryptsetup: LUKS2 volumes. Keys always travel on stdin (``--key-file -``), never in argv."""

from __future__ import annotations

CRYPTSETUP = "cryptsetup"
STDIN = "-"


def format_argv(
    device: str, *, label: str | None = None, uuid: str | None = None, options: tuple[str, ...] = ()
) -> list[str]:
    args = [CRYPTSETUP, "luksFormat", "--batch-mode", "--type", "luks2", "--key-file", STDIN]
    if label:
        args += ["--label", label]
    if uuid:
        args += ["--uuid", uuid]
    return [*args, *options, device]


def open_argv(
    device: str, name: str, *, discard: bool = False, open_options: tuple[str, ...] = ()
) -> list[str]:
    args = [CRYPTSETUP, "luksOpen", device, name, "--key-file", STDIN]
    if discard:
        args.append("--allow-discards")
    args += list(open_options)
    if discard or open_options:
        # Keep the flags in the LUKS2 header so later opens (initramfs, crypttab) get them too.
        args.append("--persistent")
    return args


def test_key_argv(device: str) -> list[str]:
    """Checks a key against the header without creating a mapping (works without device-mapper)."""
    return [CRYPTSETUP, "open", "--test-passphrase", "--key-file", STDIN, device]


def uuid_argv(device: str) -> list[str]:
    return [CRYPTSETUP, "luksUUID", device]


def clevis_bind_argv(device: str, pin: str, config: str) -> list[str]:
    return ["clevis", "luks", "bind", "-f", "-k", STDIN, "-d", device, pin, config]
