"""Rules of storage.files/directories/links: paths, owners, modes, links, duplicates."""

from __future__ import annotations

import pytest
from _rules_helpers import err, findings, warn

# ignition-validate 2.26's words for every version before 3.6.0 (2.14 said "... older than 3.4.0")
SPECIAL_BITS = "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0"


def files(*items, **more):
    return {"storage": {"files": list(items), **more}}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("etc/motd", "path not absolute"),
        ("", "path not specified"),
        ("/etc/../motd", "path is not fully simplified"),
        ("/etc/motd/", "path is not fully simplified"),
        ("//etc", "path is not fully simplified"),
        ("/etc/./motd", "path is not fully simplified"),
    ],
)
def test_file_path_must_be_absolute_and_clean(path, message):
    assert findings(files({"path": path})) == {err("$.storage.files.0.path", message)}


def test_clean_absolute_paths_pass():
    cfg = {
        "storage": {
            "files": [{"path": "/etc/motd"}],
            "directories": [{"path": "/"}],
            "links": [{"path": "/l", "target": "x"}],
        }
    }
    assert findings(cfg) == set()


def test_directory_and_link_paths_are_checked():
    cfg = {"storage": {"directories": [{"path": "var"}], "links": [{"path": "/a/b/..", "target": "/x"}]}}
    assert findings(cfg) == {
        err("$.storage.directories.0.path", "path not absolute"),
        err("$.storage.links.0.path", "path is not fully simplified"),
    }


def test_duplicates_share_one_key_space_in_field_order():
    cfg = {
        "storage": {
            "directories": [{"path": "/a"}],
            "files": [{"path": "/a"}, {"path": "/b"}],
            "links": [{"path": "/b", "target": "/t"}],
        }
    }
    assert findings(cfg) == {
        err("$.storage.files.0", "duplicate entry defined"),
        err("$.storage.links.0", "duplicate entry defined"),
    }


def test_append_entries_may_repeat():
    cfg = files({"path": "/a", "append": [{"source": "data:,x"}, {"source": "data:,x"}]})
    assert findings(cfg) == set()


@pytest.mark.parametrize("field", ["user", "group"])
def test_owner_id_and_name_exclusive(field):
    assert findings(files({"path": "/a", field: {"id": 0, "name": "root"}})) == {
        err(f"$.storage.files.0.{field}", "cannot set both id and name")
    }
    # an empty name does not count, and neither does a null one
    assert findings(files({"path": "/a", field: {"id": 0, "name": ""}})) == set()
    assert findings(files({"path": "/a", field: {"id": 0, "name": None}})) == set()


def test_owner_rule_applies_to_directories_and_links():
    cfg = {
        "storage": {
            "directories": [{"path": "/d", "group": {"id": 1, "name": "g"}}],
            "links": [{"path": "/l", "target": "/t", "user": {"id": 1, "name": "u"}}],
        }
    }
    assert findings(cfg) == {
        err("$.storage.directories.0.group", "cannot set both id and name"),
        err("$.storage.links.0.user", "cannot set both id and name"),
    }


@pytest.mark.parametrize("mode", [0o10000, 65536, -1])
def test_illegal_modes(mode):
    got = findings(files({"path": "/a", "mode": mode}))
    assert err("$.storage.files.0.mode", "illegal file mode") in got


@pytest.mark.parametrize("mode", [0, 0o644, 0o777])
def test_plain_modes_pass(mode):
    assert findings(files({"path": "/a", "mode": mode})) == set()


@pytest.mark.parametrize("version", [(3, 0), (3, 3)])
def test_special_bits_warn_before_3_4(version):
    cfg = {"storage": {"directories": [{"path": "/tmp/x", "mode": 0o1777}]}}
    assert findings(cfg, version) == {warn("$.storage.directories.0.mode", SPECIAL_BITS)}


def test_special_bits_warn_in_3_4_and_3_5_with_the_newer_version_named():
    got = findings(files({"path": "/x", "mode": 0o4755}), (3, 5))
    assert got == {warn("$.storage.files.0.mode", SPECIAL_BITS)}


def test_special_bits_are_fine_in_3_6():
    assert findings(files({"path": "/x", "mode": 0o4755}), (3, 6)) == set()


def test_overwrite_needs_a_source():
    assert findings(files({"path": "/a", "overwrite": True})) == {
        err("$.storage.files.0.overwrite", "overwrite must be false if source is unspecified")
    }
    # an empty source is a source (Ignition checks for nil)
    assert findings(files({"path": "/a", "overwrite": True, "contents": {"source": ""}})) == set()
    assert findings(files({"path": "/a", "overwrite": False})) == set()


def test_nodes_under_a_link():
    cfg = {
        "storage": {
            "files": [{"path": "/l/f"}],
            "directories": [{"path": "/l/d"}],
            "links": [{"path": "/l", "target": "/x"}, {"path": "/l/m", "target": "/y"}],
        }
    }
    assert findings(cfg) == {
        err("$.storage.files.0", "file path includes link in config"),
        err("$.storage.directories.0", "directory path includes link in config"),
        err("$.storage.links.1", "link path includes link in config"),
    }


def test_sibling_with_common_prefix_is_not_under_the_link():
    cfg = {"storage": {"files": [{"path": "/lx"}], "links": [{"path": "/l", "target": "/x"}]}}
    assert findings(cfg) == set()


def test_link_target_required_from_3_3():
    cfg = {"storage": {"links": [{"path": "/a"}, {"path": "/b", "target": ""}]}}
    assert findings(cfg, (3, 3)) == {
        err("$.storage.links.0.target", "link target is required"),
        err("$.storage.links.1.target", "link target is required"),
    }
    assert findings(cfg, (3, 2)) == set()


@pytest.mark.parametrize(
    ("directory", "target"),
    # a relative target is joined to the link's own path (Ignition's rule, checked on the binary)
    [("/d", "/d"), ("/d", "/x/../d/"), ("/l/d", "d"), ("/l/d", "./d")],
)
def test_hard_link_to_a_configured_directory(directory, target):
    cfg = {
        "storage": {
            "directories": [{"path": directory}],
            "links": [{"path": "/l", "target": target, "hard": True}],
        }
    }
    # (/l/d also lies under the link /l itself, which is a second, separate finding)
    assert err("$.storage.links.0", "hard link target is a directory") in findings(cfg)


def test_symlink_to_directory_and_hard_link_to_file_pass():
    cfg = {
        "storage": {
            "directories": [{"path": "/d"}],
            "files": [{"path": "/f"}],
            "links": [{"path": "/s", "target": "/d"}, {"path": "/h", "target": "/f", "hard": True}],
        }
    }
    assert findings(cfg) == set()


def test_hard_link_owner_warnings_in_every_version():
    cfg = {
        "storage": {
            "links": [{"path": "/h", "target": "/f", "hard": True, "user": {"id": 0}, "group": {"name": "g"}}]
        }
    }
    # Ignition 2.15 and later warn for every spec version (Debian's 2.14 did from none).
    for version in ((3, 0), (3, 3), (3, 4)):
        assert findings(cfg, version) == {
            warn("$.storage.links.0.user.id", "user/group ignored for hard link"),
            warn("$.storage.links.0.group.name", "user/group ignored for hard link"),
        }, version


def test_paths_conflicting_with_units_in_every_version():
    cfg = {
        "storage": {
            "files": [{"path": "/etc/systemd/system/a.service"}],
            "directories": [{"path": "/etc/systemd/system/a.service.d/x.conf"}],
            "links": [{"path": "/etc/systemd/system/b.service", "target": "/dev/null"}],
        },
        "systemd": {
            "units": [
                {
                    "name": "a.service",
                    "contents": "[Unit]\n",
                    "dropins": [{"name": "x.conf", "contents": "[Unit]\n"}],
                },
                {"name": "b.service"},
            ]
        },
    }
    msg = "path conflicts with systemd unit or dropin"
    # b.service has no contents: nothing will be written there, no conflict
    for version in ((3, 0), (3, 4)):
        assert findings(cfg, version) == {
            err("$.storage.files.0.path", msg),
            err("$.storage.directories.0.path", msg),
        }, version
