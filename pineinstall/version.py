"""The one version string of ``pineinstall`` and ``pine-transpile``: the installed package's metadata.

Read on demand (``--version`` only): importing ``importlib.metadata`` costs more start-up time than
``pineinstall validate`` and ``pine-transpile`` may spend.
"""

from __future__ import annotations

DIST = "pineinstall"


def version() -> str:
    """The version pyproject.toml declares, as installed (``0+unknown`` when run from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(DIST)
    except PackageNotFoundError:
        return "0+unknown"
