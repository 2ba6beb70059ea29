"""Services of a target root, behind one interface with two backends.

``systemd`` handles ``systemd.units`` of a config offline (unit files, drop-ins, masks, and the
``[Install]`` links of ``systemctl --root enable``). ``openrc`` covers Pine's own init: a service is
an init script ``/etc/init.d/NAME`` (0755) plus a runlevel link ``/etc/runlevels/LEVEL/NAME``. The
``pine`` Butane variant emits those as plain ``storage.files`` and ``storage.links`` entries, which
the files stage writes like any other node, so nothing service-specific runs for them at apply
time; the backend exists for checks and for callers that enable a service by name.

:func:`backend` picks the module for a target from ``target.init_system``.
"""

from __future__ import annotations

from types import ModuleType

from pineinstall.target import Target


def backend(target: Target) -> ModuleType:
    """``services.openrc`` for an OpenRC target, else ``services.systemd`` (also for a bare root)."""
    if target.init_system == "openrc":
        from pineinstall.services import openrc

        return openrc
    from pineinstall.services import systemd

    return systemd
