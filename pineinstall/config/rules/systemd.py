"""Rules of ``systemd.units``: unit and drop-in names, unit syntax, the [Install] warning.

Our own error (Ignition has none): a unit or drop-in name must be a file name -- no ``/``, not
``.`` or ``..`` -- or the unit would be written elsewhere than its directory (reported when the
name's extension is right; one error per name).
"""

from __future__ import annotations

from .. import fields
from ..gocompat import go_quote
from ..report import Report
from ._common import POST_2_14_CHECKS_FROM, arr, duplicates, field_key, is_true, nil_or_empty, obj, text
from .unitfile import UnitError, has_install_option, parse_unit

ERR_INVALID_SYSTEMD_EXT = "invalid systemd unit extension"
ERR_INVALID_SYSTEMD_DROPIN_EXT = "invalid systemd drop-in extension"
ERR_NOT_A_FILE_NAME = "a unit or drop-in name is a file name: it may not contain '/' nor be '.' or '..'"
UNIT_EXTENSIONS = frozenset(fields.UNIT_EXTENSIONS)


def is_file_name(name: str) -> bool:
    return "/" not in name and name not in (".", "..")


def no_install_section(name: str) -> str:
    return f"unit {go_quote(name)} is enabled, but has no install section so enable does nothing"


def no_install_in_template(template: str, instance: str) -> str:
    return f"template unit {go_quote(template)} for {go_quote(instance)} doesn't have Install section"


def _check_templates(report: Report, units: list) -> None:
    """3.4.0+ (Ignition 2.15): an enabled instance whose configured template cannot be enabled."""
    import re  # lazy: only configs with units reach this

    instance = re.compile(r"^(.+?)@(.+?)\.service\Z")
    # Only names with "@" can be instances: most configs have none, and then no name table.
    candidates = [(i, u) for i, u in enumerate(units) if type(u) is dict and "@" in text(u.get("name"))]
    if not candidates:
        return
    by_name = {text(obj(u).get("name")): obj(u) for u in units}
    for i, unit in candidates:
        unit = obj(unit)
        name = text(unit.get("name"))
        m = instance.match(name)
        if not m or not is_true(unit.get("enabled")):
            continue
        template_name = m.group(1) + "@.service"
        template = by_name.get(template_name)
        if template is None or nil_or_empty(template.get("contents")):
            continue
        options, err = _parse(template.get("contents"))
        if err is None and not any(section == "Install" for section, _, _ in options or []):
            report.warning(no_install_in_template(template_name, name), ("systemd", "units", i, "contents"))


def _ext(name: str) -> str:
    """Go's path.Ext: the suffix from the final dot of the last element."""
    dot = name.rfind(".")
    return name[dot:] if dot > name.rfind("/") else ""


def _parse(contents) -> tuple[list | None, str | None]:
    if not isinstance(contents, str):
        return [], None
    try:
        return parse_unit(contents), None
    except UnitError as exc:
        return None, f"invalid unit content: {exc}"


def validate(cfg: dict, version: tuple[int, int], report: Report, safety: bool = True) -> None:
    units = arr(obj(cfg.get("systemd")).get("units"))
    if version >= POST_2_14_CHECKS_FROM:
        _check_templates(report, units)
    for i, unit in enumerate(units):
        if type(unit) is not dict:
            unit = {}
        base = ("systemd", "units", i)
        name = unit.get("name")
        if type(name) is not str:
            name = ""
        if _ext(name) not in UNIT_EXTENSIONS:
            report.error(ERR_INVALID_SYSTEMD_EXT, (*base, "name"))
        elif safety and not is_file_name(name):
            report.error(ERR_NOT_A_FILE_NAME, (*base, "name"))
        contents = unit.get("contents")
        # plainly valid text (most units) is read by one regular expression; the rest is parsed
        install = has_install_option(contents) if type(contents) is str else None
        if install is None:
            options, err = _parse(contents)
            if err:
                report.error(err, (*base, "contents"))
            elif not nil_or_empty(contents):
                install = any(section == "Install" for section, _, _ in options or [])
        if install is False and is_true(unit.get("enabled")):
            report.warning(no_install_section(name), (*base, "contents"))
        dropins = unit.get("dropins")
        if not dropins:
            continue
        dropins = arr(dropins)
        for j, dropin in enumerate(dropins):
            dropin = obj(dropin)
            _, err = _parse(dropin.get("contents"))
            if err:
                report.error(err, (*base, "dropins", j, "contents"))
            if _ext(text(dropin.get("name"))) != ".conf":
                report.error(ERR_INVALID_SYSTEMD_DROPIN_EXT, (*base, "dropins", j, "name"))
            elif safety and not is_file_name(text(dropin.get("name"))):
                report.error(ERR_NOT_A_FILE_NAME, (*base, "dropins", j, "name"))
        duplicates(report, dropins, (*base, "dropins"), field_key("name"))
    duplicates(report, units, ("systemd", "units"), field_key("name"))
