"""A config URL on the kernel command line: ``pine.config.url=URL``, or Ignition's
``ignition.config.url=URL``. Pine's key wins over Ignition's wherever each stands; when a key is
given twice the last one counts (as later kernel arguments override earlier ones). The URL is
fetched with :mod:`pineinstall.resources` (http, https, tftp, data), with its retries.
"""

from __future__ import annotations

from typing import Any

from pineinstall.providers import ProviderError

PROC_CMDLINE = "/proc/cmdline"
KEYS = ("pine.config.url", "ignition.config.url")  # in order of precedence


def config_url(cmdline: str) -> tuple[str, str] | None:
    """(key, URL) named by a kernel command line, or None."""
    from pineinstall.boot.kargs import KargsError, split

    try:
        args = split(cmdline)
    except KargsError:
        args = cmdline.split()
    found: dict[str, str] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key in KEYS:
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found[key] = value
    for key in KEYS:
        if found.get(key):
            return key, found[key]
    return None


def read_cmdline(path: str = PROC_CMDLINE) -> str:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ProviderError(f"cannot read {path}: {exc.strerror or exc}") from exc


def fetch(path: str = PROC_CMDLINE, *, fetcher: Any = None, log: Any = None) -> tuple[str, bytes] | None:
    """(shown URL, config bytes) when the command line names a config; None when it names none.
    ProviderError when the URL cannot be used or fetched (after the fetcher's retries)."""
    from pineinstall.resources import Fetcher, ResourceError, check_source, shown_url

    named = config_url(read_cmdline(path))
    if named is None:
        return None
    key, url = named
    shown = shown_url(url)
    try:
        check_source(url)
    except ResourceError as exc:
        raise ProviderError(f"{key}: {exc}") from exc
    own = fetcher is None
    fetcher = fetcher or Fetcher(log=log)
    try:
        return f"{key}={shown}", fetcher.fetch(url)
    except ResourceError as exc:
        raise ProviderError(f"{key}: cannot fetch {shown}: {exc}") from exc
    finally:
        if own:
            fetcher.close()
