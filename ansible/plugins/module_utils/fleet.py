# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)
"""What the pine.provision plugins share, free of Ansible: the config check, the result record, the
``pineinstall hijack`` command line. The action plugins run these on the controller."""

from __future__ import annotations

import json
import os
import shutil
import sys

RESULT_PATH = "/etc/.pine-result.json"


class FleetError(Exception):
    """A failure meant for the person running the playbook (never carries a secret)."""


def to_ignition(text: str, files_dir: str | None = None) -> tuple[bytes, list[str]]:
    """Butane-like YAML (or Ignition JSON) -> (Ignition JSON bytes, warnings), checked by this project's
    library. Raises FleetError with every error as ``error at $.path, line L col C: message``."""
    try:
        import butane_like
        from pineinstall import config as pine_config
    except ImportError as exc:
        raise FleetError(
            f"pine.provision needs the pineinstall package on the controller (pip install pineinstall): {exc}"
        ) from exc
    data = text.encode()
    if pine_config.is_json(data):
        checked = pine_config.check(data)
        entries = list(checked.report)
        if checked.report.has_errors:
            raise FleetError("\n".join(str(e) for e in entries))
        return data, [str(e) for e in entries]
    result = butane_like.translate(data, files_dir=files_dir)
    errors = [str(e) for e in result.entries if e.is_error]
    if result.error or errors or result.output is None:
        lines = errors + ([result.error] if result.error and not errors else []) + result.hints
        raise FleetError("\n".join(lines) or "translation failed")
    return result.output, [str(e) for e in result.entries]


def parse_record(text: str | None) -> dict | None:
    """The result record's JSON object, or None when there is none or it is not a record."""
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def is_provisioned(record: dict | None) -> bool:
    """A host whose record says a config was applied: Pine already, nothing to take over."""
    return bool(record and record.get("provisioningDate") and record.get("userConfigProvided"))


def hijack_argv(
    target: str,
    config: str,
    *,
    image_file: str | None = None,
    image_url: str | None = None,
    image_sha256: str | None = None,
    port: int | None = None,
    identity: str | None = None,
    dry_run: bool = False,
    executable: str | None = None,
    takeover: str | None = None,
) -> list[str]:
    """``pineinstall hijack [USER@]HOST CONFIG ...``: --dry-run prints the plan, else --yes (no prompt)."""
    if bool(image_file) == bool(image_url):
        raise FleetError("give exactly one of image_file and image_url")
    argv = [executable or controller_pineinstall(), "hijack", target, config]
    argv += ["--image-file", image_file] if image_file else ["--image-url", str(image_url)]
    if image_sha256:
        argv += ["--image-sha256", image_sha256]
    if port:
        argv += ["--port", str(port)]
    if identity:
        argv += ["--identity", identity]
    if takeover and takeover != "auto":
        argv += ["--takeover", takeover]
    argv.append("--dry-run" if dry_run else "--yes")
    return argv


def controller_pineinstall() -> str:
    """The pineinstall command of the controller: on PATH, else the one installed beside the Python
    that runs Ansible (a virtualenv's bin/, which need not be on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "pineinstall")
    return shutil.which("pineinstall") or beside
