"""Rules of passwd (users, groups, keys) and kernelArguments: Ignition's duplicate checks."""

from __future__ import annotations

from _rules_helpers import err, findings


def test_users_and_groups_are_keyed_by_name():
    cfg = {
        "passwd": {
            "users": [{"name": "core"}, {"name": "core", "uid": 1001}, {"name": "ops"}],
            "groups": [{"name": "g"}, {"name": "g"}],
        }
    }
    assert findings(cfg) == {
        err("$.passwd.users.1", "duplicate entry defined"),
        err("$.passwd.groups.1", "duplicate entry defined"),
    }


def test_ssh_keys_and_supplementary_groups_do_not_repeat():
    cfg = {
        "passwd": {
            "users": [{"name": "core", "sshAuthorizedKeys": ["k1", "k2", "k1"], "groups": ["wheel", "wheel"]}]
        }
    }
    assert findings(cfg, (3, 0)) == {
        err("$.passwd.users.0.sshAuthorizedKeys.2", "duplicate entry defined"),
        err("$.passwd.users.0.groups.1", "duplicate entry defined"),
    }


def test_distinct_accounts_pass():
    cfg = {
        "passwd": {
            "users": [{"name": "a", "sshAuthorizedKeys": ["k"]}, {"name": "b", "sshAuthorizedKeys": ["k"]}]
        }
    }
    assert findings(cfg) == set()


def test_kernel_arguments_share_one_key_space():
    cfg = {"kernelArguments": {"shouldExist": ["a", "a", "b"], "shouldNotExist": ["b", "c", "c"]}}
    assert findings(cfg) == {
        err("$.kernelArguments.shouldExist.1", "duplicate entry defined"),
        err("$.kernelArguments.shouldNotExist.0", "duplicate entry defined"),
        err("$.kernelArguments.shouldNotExist.2", "duplicate entry defined"),
    }
    assert (
        findings({"kernelArguments": {"shouldExist": ["console=ttyS0"], "shouldNotExist": ["quiet"]}})
        == set()
    )


def test_kernel_arguments_only_from_3_3():
    assert findings({"kernelArguments": {"shouldExist": ["a", "a"]}}, (3, 2)) == set()
