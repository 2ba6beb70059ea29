"""The flatcar variant (Butane's ``config/flatcar/v1_x``): no sugar of its own beyond the base;
its filter refuses what Flatcar's Ignition does not support: Clevis up to 1.1, CEX from
1.2.0-experimental (which allows Clevis)."""

from __future__ import annotations

from ..errors import ERR_CEX_UNSUPPORTED, ERR_CLEVIS_UNSUPPORTED

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
    field, error = ("cex", ERR_CEX_UNSUPPORTED) if tr.spec.base >= 8 else ("clevis", ERR_CLEVIS_UNSUPPORTED)
    for i, lk in enumerate((out.get("storage") or {}).get("luks") or []):
        refused = lk.get(field)
        if refused and any(v not in (None, [], {}) for v in refused.values()):
            tr.report.error(error, tr.origins.yaml_path(out, ("storage", "luks", i, field)))
