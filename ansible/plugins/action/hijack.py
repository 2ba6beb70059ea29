# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)
"""pine.provision.hijack: take the inventory host over with ``pineinstall hijack``, run on the controller.

An action plugin: the host is asked one thing over Ansible's own connection (its result record, with
``cat``: no Python is needed there, Pine has none), and the hijack itself is a process on the
controller that reaches the host with the same address, user, port and key."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible_collections.pine.provision.plugins.module_utils.fleet import (
    RESULT_PATH,
    FleetError,
    hijack_argv,
    is_provisioned,
    parse_record,
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("config", "config_content", "image_file", "image_url", "image_sha256", "root", "pineinstall", "takeover"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        if bool(args.get("config")) == bool(args.get("config_content")):
            raise AnsibleActionFail("give exactly one of config and config_content")
        root = (args.get("root") or "/").rstrip("/")
        record = self._read_record(root + RESULT_PATH)
        if is_provisioned(record):
            assert record is not None
            result.update(
                changed=False,
                already_pine=True,
                provisioning_date=record.get("provisioningDate"),
                config_hash=record.get("configHash"),
                msg="already Pine: its result record says provisioned; nothing to take over",
            )
            return result
        with tempfile.TemporaryDirectory(prefix="pine-hijack-") as tmpdir:  # 0700: configs carry secrets
            config = args.get("config")
            if not config:
                config = os.path.join(tmpdir, "config.ign")
                with open(config, "w") as f:
                    f.write(args["config_content"])
            return self._hijack(result, task_vars, config)

    def _hijack(self, result: dict, task_vars: dict, config: str) -> dict:
        args = self._task.args
        try:
            argv = hijack_argv(
                self._target(task_vars),
                config,
                image_file=args.get("image_file"),
                image_url=args.get("image_url"),
                image_sha256=args.get("image_sha256"),
                port=self._option("port", task_vars, "ansible_port"),
                identity=self._option("private_key_file", task_vars, "ansible_ssh_private_key_file"),
                dry_run=self._task.check_mode,
                executable=args.get("pineinstall"),
                takeover=args.get("takeover"),
            )
        except FleetError as exc:
            raise AnsibleActionFail(str(exc)) from exc
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise AnsibleActionFail(f"cannot run {argv[0]} on the controller: {exc}") from exc
        plan = proc.stdout.splitlines()
        result.update(cmd=argv, rc=proc.returncode, already_pine=False, plan=plan)
        if proc.returncode != 0:
            # A refusal is part of the plan (stdout); other failures say why on stderr.
            refused = plan[next((i for i, line in enumerate(plan) if line.startswith("REFUSED")), len(plan)) :]
            why = proc.stderr.strip() or "\n".join(refused)
            result.update(failed=True, stderr=proc.stderr, msg=f"pineinstall hijack failed: {why}")
            return result
        # Check mode: the plan of what would change (so changed), the host untouched.
        result["changed"] = True
        return result

    def _read_record(self, path: str) -> dict | None:
        res = self._low_level_execute_command(f"cat {shlex.quote(path)}", sudoable=True)
        if res.get("rc") != 0:
            return None
        return parse_record(to_text(res.get("stdout", "")))

    def _option(self, name: str, task_vars: dict, var: str):
        """A connection option as the connection resolved it (inventory, config, defaults), else the
        host's variable."""
        try:
            value = self._connection.get_option(name)
        except (KeyError, AnsibleError):  # this connection has no such option (local)
            value = None
        return value or task_vars.get(var)

    def _target(self, task_vars: dict) -> str:
        host = self._option("host", task_vars, "ansible_host") or task_vars.get("inventory_hostname")
        user = self._option("remote_user", task_vars, "ansible_user")
        return f"{user}@{host}" if user else str(host)
