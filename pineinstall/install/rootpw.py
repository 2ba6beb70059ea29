"""The root password offer of ``pineinstall install``: as ALT's installer asks, on a terminal, when
the config sets none.

Asked only when a person is there to answer (stdin and stderr are a terminal; never in
``live-install``, whose stdin is /dev/null), not in a dry run or with ``--json``, and never with ``--no-root-password``.
The password is asked twice without echo and hashed with :mod:`pineinstall.passwd`'s yescrypt; the
hash is applied as a config fragment merged *under* the user's config (Ignition's merge: the user's
config wins wherever both speak), so the config itself is not edited.
"""

from __future__ import annotations

import json
import sys
from typing import Any

QUESTION = "The config sets no root password. Set one now? [y/N] "


def sets_root_password(config: Any) -> bool:
    return any(u.name == "root" and u.password_hash for u in config.passwd.users)


def should_offer(config: Any, stdin: Any, *, skip: bool) -> bool:
    # The question goes to stderr and the answer comes from stdin: both must be the terminal.
    return not skip and _is_terminal(stdin) and _is_terminal(sys.stderr) and not sets_root_password(config)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def ask(stdin: Any) -> str | None:
    """The crypt hash of the password the person types, or None when they decline."""
    from pineinstall import passwd

    sys.stderr.write(QUESTION)
    sys.stderr.flush()
    answer = stdin.readline()
    if isinstance(answer, bytes):
        answer = answer.decode("utf-8", "replace")
    if answer.strip().lower() not in ("y", "yes"):
        return None
    return passwd.hash_password(passwd.read_from_terminal())


def fragment(password_hash: str, version: str) -> dict[str, Any]:
    return {
        "ignition": {"version": version},
        "passwd": {"users": [{"name": "root", "passwordHash": password_hash}]},
    }


def merged_under(ign: bytes, password_hash: str) -> bytes:
    """The config ``ign`` (Ignition JSON) merged over the root password fragment."""
    from pineinstall.config.merge import merge

    user = json.loads(ign)
    base = fragment(password_hash, user["ignition"]["version"])
    return json.dumps(merge(base, user)).encode()
