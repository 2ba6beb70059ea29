#!/usr/bin/python
# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)
# The work is done by the action plugin of the same name (plugins/action/config.py), on the controller;
# this file carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config
short_description: Render a per-host Butane config and check it on the controller
description:
  - Renders a Butane (or Ignition JSON) template with the host's variables, with Jinja2 as
    M(ansible.builtin.template) does.
  - "Transpiles the result to Ignition JSON and validates it with the pineinstall library on the
    controller; an invalid config fails the task with every error as
    C(error at $.path, line L col C: message), the place being in the rendered template."
  - Returns the Ignition config and, with O(dest), writes it on the controller.
  - Runs on the controller only; nothing is sent to the host.
version_added: "0.1.0"
author:
  - The Pine provisioning authors
options:
  src:
    description:
      - The template, looked up as M(ansible.builtin.template) does (the playbook's C(templates/) first).
      - Exactly one of O(src) and O(content).
    type: path
  content:
    description:
      - The template itself, as a string.
    type: str
  dest:
    description:
      - Where to write the Ignition config on the controller (mode 0600). Written only when its content
        changes, which is the only case the task reports changed.
    type: path
  files_dir:
    description:
      - Where the config's C(local:) files are read from (Butane's C(--files-dir)).
      - Defaults to the template's directory.
    type: path
requirements:
  - the pineinstall Python package on the controller
attributes:
  check_mode:
    support: full
    description: Renders and checks; O(dest) is not written, the task says whether it would change.
  diff_mode:
    support: none
  platform:
    platforms: all
notes:
  - An action plugin, because rendering needs the host's variables and the templar that only the
    controller has, and because the checker is the controller's own library.
"""

EXAMPLES = r"""
- name: Render this host's config
  pine.provision.config:
    src: node.bu.j2
    dest: "{{ playbook_dir }}/build/{{ inventory_hostname }}.ign"
  register: pine_config

- name: An inline template
  pine.provision.config:
    content: |
      variant: pine
      version: 1.0.0
      passwd:
        users:
          - name: core
            ssh_authorized_keys: ["{{ admin_key }}"]
"""

RETURN = r"""
ignition:
  description: The Ignition config.
  returned: success
  type: dict
  sample: {"ignition": {"version": "3.5.0"}}
ignition_json:
  description: The Ignition config as the transpiler wrote it (compact JSON).
  returned: success
  type: str
config_warnings:
  description: "Warnings of the check, each C(warning at $.path, line L col C: message)."
  returned: success
  type: list
  elements: str
dest:
  description: Where the config was written.
  returned: when O(dest) is given
  type: str
"""
