"""Reading back the guest's report (guest/pine-test-report) from a serial console log."""

from __future__ import annotations

import json

REPORT_MARKER = "PINE-REPORT "
REPORT_END = "PINE-REPORT-END"


def parse_report(serial: str) -> dict:
    """The last complete PINE-REPORT line of serial as a dict; ValueError when there is none.

    Kernel messages can interleave with the line on a serial console, so every candidate is tried,
    newest first.
    """
    errors = []
    lines = serial.replace("\r", "").split("\n")
    for line in reversed(lines):
        start = line.find(REPORT_MARKER)
        if start < 0:
            continue
        try:
            value = json.loads(line[start + len(REPORT_MARKER) :])
        except json.JSONDecodeError as e:
            errors.append(str(e))
            continue
        if isinstance(value, dict):
            return value
    detail = f" ({len(errors)} unreadable: {errors[0]})" if errors else ""
    raise ValueError(f"no PINE-REPORT line on the serial console{detail}")
