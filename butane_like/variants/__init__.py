"""The sugar of each variant: ``fcos`` and ``flatcar`` as Butane's ``config/<variant>/v1_x``,
``pine`` (fcos's sugar plus OpenRC services and network). Each module has the hooks
``validate_storage``, ``validate``, ``translate`` and ``filters`` (see ``variants.fcos``)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from types import ModuleType


def sugar_of(variant: str) -> ModuleType:
    """The module of a variant's sugar (imported when first needed)."""
    if variant == "flatcar":
        from . import flatcar

        return flatcar
    if variant == "pine":
        from . import pine

        return pine
    from . import fcos

    return fcos
