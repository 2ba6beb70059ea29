"""The frame of the ``pine`` Butane configs the VM tests install: one user with an SSH key, and an
OpenRC service whose running process proves that an enabled service was started."""

from __future__ import annotations

HELLO = """#!/sbin/openrc-run
description="proof that an enabled service runs"
command="/bin/sleep"
command_args="86400"
command_background=yes
pidfile=/run/hello.pid
"""


def pine_config(key: str, sections: str = "", *, user: str = "tester", passwd: str = "") -> str:
    """``variant: pine``: ``user`` with ``key`` (then ``passwd``, YAML that continues the users list at
    4 spaces or adds keys to ``passwd`` at 2), the other top-level ``sections``, and ``hello`` enabled."""
    service = "\n".join("          " + line for line in HELLO.splitlines())
    return (
        f"variant: pine\nversion: 1.0.0\npasswd:\n  users:\n    - name: {user}\n"
        f"      ssh_authorized_keys: [{key}]\n{passwd}{sections}"
        f"openrc:\n  services:\n    - name: hello\n      contents: |\n{service}\n"
    )
