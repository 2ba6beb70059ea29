#!/usr/bin/python
# Copyright: The Pine provisioning authors
# Apache License 2.0 (see LICENSE at the top of the project)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: install
short_description: Install Pine onto a device of a host booted from the Pine installer ISO
description:
  - Runs C(pineinstall DEST CONFIG) on the host, which is booted from the Pine installer ISO (whose
    live system has Python and pineinstall).
  - The config is sent as content (for example RV(pine.provision.config#module:ignition_json) of
    M(pine.provision.config)) and kept in a private temporary file on the host while it runs.
  - A host whose C(/etc/.pine-result.json) says provisioned is Pine already (it booted the installed
    system) and is reported unchanged.
  - In check mode it runs C(pineinstall --dry-run) and returns its plan.
version_added: "0.1.0"
author:
  - The Pine provisioning authors
options:
  dest:
    description:
      - The block device (or disk-image file) to install onto.
    type: str
    required: true
  config:
    description:
      - The config, Ignition JSON or Butane-like YAML, as text.
    type: str
    required: true
  image_file:
    description:
      - The Pine image, a file on the host. Exactly one of O(image_file) and O(image_url).
    type: path
  image_url:
    description:
      - The Pine image, an http(s) URL.
    type: str
  image_sha256:
    description:
      - The image's sha256.
    type: str
  extra_args:
    description:
      - More C(pineinstall install) options, for example C(--console ttyS0,115200n8).
    type: list
    elements: str
    default: []
  root:
    description:
      - The directory whose C(etc/.pine-result.json) tells whether the host is Pine already. Only tests
        change it.
    type: str
    default: /
  pineinstall:
    description:
      - The C(pineinstall) program on the host.
    type: str
    default: pineinstall
requirements:
  - the host booted from the Pine installer ISO (Python and pineinstall)
attributes:
  check_mode:
    support: full
    description: Runs C(pineinstall --dry-run); its plan is in RV(plan).
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Install onto the first disk
  pine.provision.install:
    dest: /dev/vda
    config: "{{ pine_config.ignition_json }}"
    image_url: https://images.example.org/pine-x86_64.raw.xz
    image_sha256: "{{ pine_image_sha256 }}"
"""

RETURN = r"""
already_pine:
  description: Whether the host was Pine already.
  returned: always
  type: bool
plan:
  description: What pineinstall printed, line by line (in check mode, the plan).
  returned: when pineinstall ran
  type: list
  elements: str
cmd:
  description: The command run on the host (the config is a temporary file).
  returned: when pineinstall ran
  type: list
  elements: str
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pine.provision.plugins.module_utils.fleet import (
    RESULT_PATH,
    is_provisioned,
    parse_record,
)


def read_record(root):
    try:
        with open(os.path.join(root, RESULT_PATH.lstrip("/"))) as f:
            return parse_record(f.read())
    except OSError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="str", required=True),
            config=dict(type="str", required=True, no_log=True),  # password hashes, keys
            image_file=dict(type="path"),
            image_url=dict(type="str"),
            image_sha256=dict(type="str"),
            extra_args=dict(type="list", elements="str", default=[]),
            root=dict(type="str", default="/"),
            pineinstall=dict(type="str", default="pineinstall"),
        ),
        mutually_exclusive=[("image_file", "image_url")],
        required_one_of=[("image_file", "image_url")],
        supports_check_mode=True,
    )
    p = module.params
    if is_provisioned(read_record(p["root"])):
        module.exit_json(changed=False, already_pine=True, msg="already Pine: its result record says provisioned")
    fd, config_path = tempfile.mkstemp(prefix="pine-config-")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(p["config"])
        argv = [p["pineinstall"], "install", p["dest"], config_path]
        argv += ["--image-file", p["image_file"]] if p["image_file"] else ["--image-url", p["image_url"]]
        if p["image_sha256"]:
            argv += ["--image-sha256", p["image_sha256"]]
        argv += list(p["extra_args"])
        argv += ["--dry-run"] if module.check_mode else ["--yes", "--no-root-password"]
        rc, out, err = module.run_command(argv)
    finally:
        os.unlink(config_path)
    if rc != 0:
        module.fail_json(msg=f"pineinstall failed: {err.strip()}", rc=rc, cmd=argv, already_pine=False)
    module.exit_json(changed=True, already_pine=False, cmd=argv, plan=out.splitlines(), rc=rc)


if __name__ == "__main__":
    main()
