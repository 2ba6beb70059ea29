"""``pineinstall passwd``: a crypt(3) hash of a password, for ``passwd.users[].password_hash``.

    pineinstall passwd [--method yescrypt|sha512crypt] [--stdin]

On a terminal it asks twice (without echo); ``--stdin`` reads one line instead. The hash goes to
stdout, nothing else does; the password reaches no log, message or argv.

Where the hashes come from, and why:

- ``yescrypt`` (``$y$``, the default of Debian 11+, Ubuntu 22.04+ and Fedora 35+) comes from the
  system's libxcrypt, ``libcrypt.so.1``, through ctypes. passlib (the ``libpass`` fork we depend on)
  has no yescrypt, and the one PyPI binding, ``pyescrypt``, is a compiled extension with a single
  0.1.0 release: not a package to depend on. libxcrypt is on every Debian, Ubuntu and Fedora, needs
  no new dependency, and a hash it makes is by construction one that the same library verifies at
  login (``crypt_gensalt_rn`` draws the salt from the kernel's random source).
- ``sha512crypt`` (``$6$``) comes from passlib, pure Python: it works where there is no libxcrypt
  (musl, macOS), and every crypt(3) since glibc 2.7 verifies it.
"""

from __future__ import annotations

import argparse
import ctypes
import sys

METHODS = ("yescrypt", "sha512crypt")
DEFAULT_METHOD = "yescrypt"
PROMPT = "Password: "
PROMPT_AGAIN = "Retype password: "
TRIES = 3

# Sizes from libxcrypt's <crypt.h>: CRYPT_GENSALT_OUTPUT_SIZE, and room for a struct crypt_data
# (about 32 KiB; crypt_rn checks the size it is given).
_GENSALT_SIZE = 192
_CRYPT_DATA_SIZE = 65536


class PasswdError(Exception):
    """The hash cannot be made (no libxcrypt for yescrypt, an empty or unusable password)."""


def _libcrypt() -> ctypes.CDLL:
    # By soname: ctypes.util.find_library would start ldconfig (processes start only in run.py).
    try:
        lib = ctypes.CDLL("libcrypt.so.1", use_errno=True)
        lib.crypt_gensalt_rn.restype = ctypes.c_char_p
        lib.crypt_rn.restype = ctypes.c_char_p
    except (OSError, AttributeError) as e:
        raise PasswdError(
            "yescrypt needs the system's libxcrypt (libcrypt.so.1); use --method sha512crypt"
        ) from e
    lib.crypt_gensalt_rn.argtypes = [
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
    ]
    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    return lib


def yescrypt(password: str) -> str:
    """A ``$y$`` hash with libxcrypt's default cost and a fresh random salt."""
    lib = _libcrypt()
    setting = ctypes.create_string_buffer(_GENSALT_SIZE)
    if lib.crypt_gensalt_rn(b"$y$", 0, None, 0, setting, _GENSALT_SIZE) is None:
        raise PasswdError("libxcrypt made no yescrypt salt (yescrypt disabled in this build?)")
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    out = lib.crypt_rn(password.encode(), setting.value, data, _CRYPT_DATA_SIZE)
    if out is None or not out.startswith(b"$y$"):
        raise PasswdError("libxcrypt could not hash this password with yescrypt")
    return out.decode("ascii")


def sha512crypt(password: str) -> str:
    """A ``$6$`` hash (passlib's default rounds, 656000: explicit ``rounds=`` in the hash)."""
    from passlib.hash import sha512_crypt  # type: ignore[import-untyped]

    return str(sha512_crypt.hash(password))


def hash_password(password: str, method: str = DEFAULT_METHOD) -> str:
    if not password:
        raise PasswdError("empty password; to lock the account, use '!' as password_hash")
    if "\0" in password:
        raise PasswdError("the password contains a NUL character, which crypt(3) cannot hash")
    return yescrypt(password) if method == "yescrypt" else sha512crypt(password)


def read_from_terminal() -> str:
    """Ask twice (no echo); up to three tries when the two answers differ."""
    import getpass

    for _ in range(TRIES):
        first = getpass.getpass(PROMPT)
        if first == getpass.getpass(PROMPT_AGAIN):
            return first
        sys.stderr.write("pineinstall passwd: the passwords do not match; try again\n")
    raise PasswdError(f"the passwords did not match ({TRIES} tries)")


def read_from_stdin() -> str:
    """One line; its line ending is not part of the password."""
    line = sys.stdin.readline()
    return line.removesuffix("\n").removesuffix("\r")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall passwd",
        description="Print a crypt(3) hash of a password for passwd.users[].password_hash. "
        "Asks twice on the terminal, or reads one line from stdin with --stdin.",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help="hash method (default: yescrypt, from the system's libxcrypt)",
    )
    p.add_argument("--stdin", action="store_true", help="read the password as one line from stdin")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        password = read_from_stdin() if args.stdin else read_from_terminal()
        hashed = hash_password(password, args.method)
    except PasswdError as e:
        sys.stderr.write(f"pineinstall passwd: {e}\n")
        return 1
    except (EOFError, KeyboardInterrupt):
        sys.stderr.write("\npineinstall passwd: no password given\n")
        return 1
    sys.stdout.write(hashed + "\n")
    return 0
