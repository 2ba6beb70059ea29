"""The flatcar variant (Butane's ``config/flatcar/v1_x``): no sugar of its own beyond the base;
its filter refuses Clevis, which Flatcar's Ignition does not support."""

from __future__ import annotations

from ..errors import ERR_CLEVIS_UNSUPPORTED

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from ..base.translate import Translator


def validate_storage(tr: Translator, cfg: dict) -> None:
    """No checks beyond the base."""


def validate(tr: Translator, cfg: dict) -> None:
    """No sections beyond the base."""


def translate(tr: Translator, cfg: dict, out: dict) -> dict:
    return out


def filters(tr: Translator, out: dict) -> None:
    for i, lk in enumerate((out.get("storage") or {}).get("luks") or []):
        clevis = lk.get("clevis")
        if clevis and any(v not in (None, [], {}) for v in clevis.values()):
            tr.report.error(
                ERR_CLEVIS_UNSUPPORTED, tr.origins.yaml_path(out, ("storage", "luks", i, "clevis"))
            )
