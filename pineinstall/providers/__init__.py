"""Where a config comes from: each provider returns the config bytes (or None when it has none).

- ``file``: a path (or ``-`` for stdin), for ``apply`` and ``install``;
- ``cmdline``: ``pine.config.url=`` (or Ignition's ``ignition.config.url=``) on the kernel command
  line, fetched with :mod:`pineinstall.resources` (http, https, tftp, data; retries);
- ``fwcfg``: QEMU's ``-fw_cfg name=opt/com.coreos/config,file=...``, read from sysfs;
- ``stash``: ``/boot/ignition/config.ign``, left by ``pineinstall install --stash-config``;
- ``embedded``: the config embedded in the installer ISO (its own module; the live installer uses it).

A provider that has no config returns None; one that has a config it cannot read raises
:class:`ProviderError` (a first boot must then fail, not carry on as if there were no config).
:func:`first` asks the first-boot providers in order and returns the first config found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from pineinstall.errors import PineError


class ProviderError(PineError):
    """A config is there but cannot be read or fetched."""


class Found(NamedTuple):
    provider: str  # "cmdline", "fwcfg", "stash", "file"
    source: str  # where, for people: a path or a URL without credentials or query
    data: bytes


# (name, callable returning (source, data) or None), asked in order
Provider = tuple[str, Callable[[], "tuple[str, bytes] | None"]]


def first(providers: Iterable[Provider]) -> Found | None:
    """The config of the first provider that has one; None when none has."""
    for name, ask in providers:
        got = ask()
        if got is not None:
            source, data = got
            return Found(name, source, data)
    return None
