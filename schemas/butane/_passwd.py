"""Definitions of user accounts and groups."""

from __future__ import annotations

from _builder import Schema, boolean, integer, string
from _spec import ABS_PATH, Spec, obj, strings


def passwd_defs(s: Spec) -> dict[str, Schema]:
    d: dict[str, Schema] = {}
    d["User"] = obj(
        "A user account.",
        [
            (True, "name", {"type": "string", "description": "Login name."}),
            (True, "password_hash", string("Password hash as in /etc/shadow (crypt(3) format).")),
            (
                True,
                "ssh_authorized_keys",
                strings("SSH public keys allowed to log in (all distinct).", "One public key line."),
            ),
            (
                s.has("PasswdUser", "ssh_authorized_keys_local"),
                "ssh_authorized_keys_local",
                strings(
                    "Files of SSH public keys, relative to `--files-dir`; one key per line, blank "
                    "lines skipped; added after `ssh_authorized_keys`.",
                    "Path of a key file.",
                ),
            ),
            (True, "uid", integer("Numeric user id; chosen by the system when omitted.", minimum=0)),
            (True, "gecos", string("GECOS (comment) field.")),
            (True, "home_dir", string("Home directory.", pattern=ABS_PATH)),
            (
                True,
                "no_create_home",
                boolean("Do not create the home directory (new accounts only).", default=False),
            ),
            (True, "primary_group", string("Name of the primary group.")),
            (True, "groups", strings("Supplementary groups.", "Group name.")),
            (
                True,
                "no_user_group",
                boolean("Do not create a group named after the user (new accounts only).", default=False),
            ),
            (
                True,
                "no_log_init",
                boolean("Keep the user out of lastlog and faillog (new accounts only).", default=False),
            ),
            (True, "shell", string("Login shell.")),
            (
                s.has("PasswdUser", "should_exist"),
                "should_exist",
                boolean("false deletes the account.", default=True),
            ),
            (True, "system", boolean("Create a system account (new accounts only).", default=False)),
        ],
        required=("name",),
    )
    d["Group"] = obj(
        "A group.",
        [
            (True, "name", {"type": "string", "description": "Group name."}),
            (True, "gid", integer("Numeric group id; chosen by the system when omitted.", minimum=0)),
            (True, "password_hash", string("Group password hash (crypt(3) format).")),
            (
                s.has("PasswdGroup", "should_exist"),
                "should_exist",
                boolean("false deletes the group.", default=True),
            ),
            (True, "system", boolean("Create a system group (new groups only).", default=False)),
        ],
        required=("name",),
    )
    return d
