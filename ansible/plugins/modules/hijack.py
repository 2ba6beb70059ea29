#!/usr/bin/python
# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)
# The work is done by the action plugin of the same name (plugins/action/hijack.py), on the controller;
# this file carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hijack
short_description: Take a running Linux host over and make it a provisioned Pine machine
description:
  - Runs C(pineinstall hijack USER@HOST CONFIG) on the controller for the inventory host, with the
    host's address, user, port and private key as Ansible's connection has them.
  - First reads the host's C(/etc/.pine-result.json) over Ansible's connection (with C(cat); the host
    needs no Python). A host whose record says provisioned is Pine already and is reported unchanged.
  - In check mode it runs C(pineinstall hijack --dry-run) and returns its plan; the host is untouched.
version_added: "0.1.0"
author:
  - The Pine provisioning authors
options:
  config:
    description:
      - The config, a file on the controller, Ignition JSON or Butane-like YAML (for example the
        O(pine.provision.config#module:dest) of M(pine.provision.config)).
      - Exactly one of O(config) and O(config_content).
    type: path
  config_content:
    description:
      - The config as text (for example RV(pine.provision.config#module:ignition_json) of
        M(pine.provision.config)); kept in a private temporary file on the controller while the hijack runs.
      - Works in check mode, where O(pine.provision.config#module:dest) is not written.
    type: str
  image_file:
    description:
      - The Pine image, a file on the controller. Exactly one of O(image_file) and O(image_url).
    type: path
  image_url:
    description:
      - The Pine image, an http(s) URL the host downloads.
    type: str
  image_sha256:
    description:
      - The image's sha256, checked before the host's disk is written.
    type: str
  takeover:
    description:
      - How the host's disk is written (C(pineinstall hijack --takeover)). C(boot-once) boots the host once into
        a Pine installer through a one-shot GRUB entry (a failed installer boot falls back to the old system);
        C(ram) pivots into RAM on the running host; C(auto) takes C(boot-once) where GRUB and the RAM allow it.
    type: str
    choices: [auto, ram, boot-once]
    default: auto
  root:
    description:
      - The directory on the host whose C(etc/.pine-result.json) is read. Only tests change it.
    type: str
    default: /
  pineinstall:
    description:
      - The C(pineinstall) program on the controller.
      - Defaults to the one on E(PATH), else the one beside the Python that runs Ansible.
    type: str
requirements:
  - the pineinstall command on the controller
attributes:
  check_mode:
    support: full
    description: Runs C(pineinstall hijack --dry-run); its plan is in RV(plan).
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The host reboots into Pine; its SSH host keys and users are then those of the config.
"""

EXAMPLES = r"""
- name: Take the host over (check mode prints the plan)
  pine.provision.hijack:
    config_content: "{{ pine_config.ignition_json }}"
    image_url: https://images.example.org/pine-x86_64.raw.xz
    image_sha256: "{{ pine_image_sha256 }}"
"""

RETURN = r"""
already_pine:
  description: Whether the host was Pine already (its result record says provisioned).
  returned: always
  type: bool
provisioning_date:
  description: When the host was provisioned, from its result record.
  returned: when RV(already_pine) is true
  type: str
config_hash:
  description: The hash of the config the host was provisioned with, from its result record.
  returned: when RV(already_pine) is true
  type: str
plan:
  description: What C(pineinstall hijack) printed, line by line (in check mode, the plan; a refusal ends it).
  returned: when the hijack ran
  type: list
  elements: str
cmd:
  description: The command run on the controller.
  returned: when the hijack ran
  type: list
  elements: str
rc:
  description: Its exit code.
  returned: when the hijack ran
  type: int
"""
