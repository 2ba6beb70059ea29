# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)
"""pine.provision.config: render a Butane template with the host's variables, transpile and check it.

An action plugin, not a module: rendering needs the host's variables and Ansible's templar, which only
the controller has (as ansible.builtin.template), and the transpiler is this project's library in the
controller's Python, so nothing is copied to the host and no delegate_to is needed."""

from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template  # a file's text is templated only when trusted
from ansible_collections.pine.provision.plugins.module_utils.fleet import FleetError, to_ignition


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("src", "content", "dest", "files_dir"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        src, content, dest = args.get("src"), args.get("content"), args.get("dest")
        if (src is None) == (content is None):
            raise AnsibleActionFail("give exactly one of src and content")
        files_dir = args.get("files_dir")
        if src is not None:
            source = self._find_needle("templates", src)
            files_dir = files_dir or os.path.dirname(source)
            text = self._loader.get_text_file_contents(source)
            templar = self._templar.copy_with_new_env(
                searchpath=[os.path.dirname(source)], available_variables=task_vars
            )
            rendered = to_text(templar.template(trust_as_template(text), escape_backslashes=False) or "")
        else:
            rendered = to_text(content)  # task arguments are rendered by Ansible already
        try:
            ignition, warnings = to_ignition(rendered, files_dir=files_dir)
        except FleetError as exc:
            where = f" (rendered from {src})" if src else ""
            raise AnsibleActionFail(f"the config of {task_vars.get('inventory_hostname')}{where} is invalid:\n{exc}") from None
        result.update(
            changed=False,
            ignition=json.loads(ignition),
            ignition_json=ignition.decode(),
            config_warnings=warnings,
        )
        if warnings:
            result["warnings"] = warnings
        if dest:
            result["dest"] = dest
            result["changed"] = _differs(dest, ignition)
            if result["changed"] and not self._task.check_mode:
                _write(dest, ignition)
        return result


def _differs(path: str, data: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read() != data
    except FileNotFoundError:
        return True


def _write(path: str, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader never sees half a config. 0600: configs
    carry password hashes."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pine-", dir=parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
