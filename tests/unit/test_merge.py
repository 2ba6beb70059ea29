"""Config merging with Ignition's rules (config/merge in coreos/ignition), expectations derived by hand."""

import copy

from pineinstall.config.merge import merge

V = {"ignition": {"version": "3.6.0"}}


def cfg(**sections):
    return {**copy.deepcopy(V), **sections}


def test_scalars_of_the_child_replace_and_absent_or_null_keep_the_parent():
    parent = cfg(storage={"files": [{"path": "/a", "mode": 0o644, "overwrite": True}]})
    child = cfg(storage={"files": [{"path": "/a", "mode": 0o600, "overwrite": None}]})
    assert merge(parent, child)["storage"]["files"] == [{"path": "/a", "mode": 0o600, "overwrite": True}]


def test_keyed_lists_merge_matching_entries_and_append_new_ones_after_the_parents():
    parent = cfg(passwd={"users": [{"name": "a", "uid": 1}, {"name": "b"}]})
    child = cfg(passwd={"users": [{"name": "c"}, {"name": "a", "shell": "/bin/sh"}]})
    assert merge(parent, child)["passwd"]["users"] == [
        {"name": "a", "uid": 1, "shell": "/bin/sh"},
        {"name": "b"},
        {"name": "c"},
    ]


def test_files_directories_links_share_one_key_space():
    parent = cfg(
        storage={"files": [{"path": "/x"}, {"path": "/y"}], "links": [{"path": "/z", "target": "/a"}]}
    )
    child = cfg(storage={"directories": [{"path": "/x", "mode": 0o700}], "files": [{"path": "/z"}]})
    merged = merge(parent, child)["storage"]
    # /x moves from files to directories, /z from links to files.
    assert merged["files"] == [{"path": "/y"}, {"path": "/z"}]
    assert merged["directories"] == [{"path": "/x", "mode": 0o700}]
    assert merged["links"] == []


def test_append_and_option_lists_concatenate():
    parent = cfg(
        storage={
            "files": [{"path": "/a", "append": [{"source": "data:,1"}]}],
            "filesystems": [{"device": "/dev/vda1", "options": ["-E", "x"], "mountOptions": ["ro"]}],
        }
    )
    child = cfg(
        storage={
            "files": [{"path": "/a", "append": [{"source": "data:,1"}]}],
            "filesystems": [{"device": "/dev/vda1", "options": ["-E", "x"], "mountOptions": ["noatime"]}],
        }
    )
    merged = merge(parent, child)["storage"]
    assert merged["files"][0]["append"] == [{"source": "data:,1"}, {"source": "data:,1"}]
    assert merged["filesystems"][0]["options"] == ["-E", "x", "-E", "x"]
    assert merged["filesystems"][0]["mountOptions"] == ["ro", "noatime"]


def test_plain_value_lists_are_sets():
    parent = cfg(passwd={"users": [{"name": "a", "sshAuthorizedKeys": ["k1", "k2"], "groups": ["wheel"]}]})
    child = cfg(
        passwd={"users": [{"name": "a", "sshAuthorizedKeys": ["k2", "k3"], "groups": ["wheel", "adm"]}]}
    )
    user = merge(parent, child)["passwd"]["users"][0]
    assert user["sshAuthorizedKeys"] == ["k1", "k2", "k3"]
    assert user["groups"] == ["wheel", "adm"]


def test_kernel_arguments_share_a_key_space():
    parent = cfg(kernelArguments={"shouldExist": ["quiet", "a=1"], "shouldNotExist": ["b"]})
    child = cfg(kernelArguments={"shouldNotExist": ["quiet"], "shouldExist": ["b"]})
    kargs = merge(parent, child)["kernelArguments"]
    assert kargs == {"shouldExist": ["a=1", "b"], "shouldNotExist": ["quiet"]}


def test_http_header_without_value_deletes_the_parents_header():
    parent = cfg(
        storage={
            "files": [
                {
                    "path": "/a",
                    "contents": {
                        "source": "https://example.com/a",
                        "httpHeaders": [{"name": "X-A", "value": "1"}, {"name": "X-B", "value": "2"}],
                    },
                }
            ]
        }
    )
    child = cfg(
        storage={
            "files": [
                {
                    "path": "/a",
                    "contents": {
                        "httpHeaders": [
                            {"name": "X-A"},
                            {"name": "X-B", "value": "3"},
                            {"name": "X-C", "value": "4"},
                        ]
                    },
                }
            ]
        }
    )
    headers = merge(parent, child)["storage"]["files"][0]["contents"]["httpHeaders"]
    assert headers == [{"name": "X-B", "value": "3"}, {"name": "X-C", "value": "4"}]
    assert merge(parent, child)["storage"]["files"][0]["contents"]["source"] == "https://example.com/a"


def test_partitions_are_keyed_by_number_else_label():
    parent = cfg(
        storage={
            "disks": [{"device": "/dev/vda", "partitions": [{"number": 1, "label": "a"}, {"label": "b"}]}]
        }
    )
    child = cfg(
        storage={
            "disks": [
                {
                    "device": "/dev/vda",
                    "partitions": [{"number": 1, "sizeMiB": 5}, {"label": "b", "sizeMiB": 7}],
                }
            ]
        }
    )
    parts = merge(parent, child)["storage"]["disks"][0]["partitions"]
    assert parts == [{"number": 1, "label": "a", "sizeMiB": 5}, {"label": "b", "sizeMiB": 7}]


def test_units_and_dropins_merge_by_name():
    parent = cfg(
        systemd={
            "units": [
                {"name": "a.service", "enabled": True, "dropins": [{"name": "x.conf", "contents": "1"}]}
            ]
        }
    )
    child = cfg(
        systemd={
            "units": [
                {"name": "a.service", "dropins": [{"name": "x.conf", "contents": "2"}, {"name": "y.conf"}]}
            ]
        }
    )
    unit = merge(parent, child)["systemd"]["units"][0]
    assert unit == {
        "name": "a.service",
        "enabled": True,
        "dropins": [{"name": "x.conf", "contents": "2"}, {"name": "y.conf"}],
    }


def test_inputs_are_not_modified():
    parent = cfg(passwd={"users": [{"name": "a", "groups": ["x"]}]})
    child = cfg(passwd={"users": [{"name": "a", "groups": ["y"]}]})
    before = copy.deepcopy((parent, child))
    merge(parent, child)
    assert (parent, child) == before


def test_on_merged_reports_every_object_and_list_made_from_both_sides():
    parent = cfg(storage={"files": [{"path": "/a", "mode": 0o644}], "disks": [{"device": "/d"}]})
    child = cfg(storage={"files": [{"path": "/a", "mode": 0o600}, {"path": "/b"}]}, systemd={"units": []})
    made = []
    result = merge(parent, child, lambda result, p, c: made.append((result, p, c)))
    kinds = [(type(r).__name__, sorted(r) if isinstance(r, dict) else len(r)) for r, _, _ in made]
    # ignition, the file /a, the merged files list, storage, the root (each after its parts);
    # "disks" and "systemd" come whole from one side and are not reported.
    assert kinds == [
        ("dict", ["version"]),
        ("dict", ["mode", "path"]),
        ("list", 2),
        ("dict", ["disks", "files"]),
        ("dict", ["ignition", "storage", "systemd"]),
    ]
    assert made[1][1] is parent["storage"]["files"][0] and made[1][2] is child["storage"]["files"][0]
    assert made[-1][0] is result
    assert result["storage"]["disks"] is parent["storage"]["disks"]
