"""The checking pipeline: syntax, version, types, unknown keys, places of every finding."""

import json

import pytest

from pineinstall.config import check, check_dict


def messages(data):
    return [str(e) for e in check(data).report]


def test_valid_config_translates_to_newest_spec():
    checked = check(b'{"ignition": {"version": "3.0.0"}, "storage": {"files": [{"path": "/etc/x"}]}}')
    assert checked.ok and checked.version == "3.0.0"
    assert checked.config["ignition"]["version"] == "3.6.0"
    assert checked.config["storage"]["files"] == [{"path": "/etc/x"}]


@pytest.mark.parametrize("version", ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0", "3.5.0", "3.6.0"])
def test_every_supported_version_is_accepted(version):
    assert check(json.dumps({"ignition": {"version": version}})).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Syntax errors as ignition-validate places them (checked live in tests/conformance).
        ("", "error at line 1 col 1: not a config (empty)"),
        ('{"ignition":', "error at line 0 col 0: unexpected end of JSON input"),
        ('{"ignition": {"version": "3.0.0"}} junk', "error at line 1 col 37: invalid character 'j' after"),
        ("[]", "error at $, line 1 col 2: config must be a JSON object, not array"),
        ("{}", "error at $.ignition, line 1 col 2: ignition.version is required"),
        (
            '{"ignition": {"version": 3}}',
            "error at $.ignition.version, line 1 col 26: cannot unmarshal integer",
        ),
        ('{"ignition": {"version": "3.9.0"}}', "error at $.ignition.version, line 1 col 26: unsupported"),
        (
            '{"ignition": {"version": "3.4.0-experimental"}}',
            "error at $.ignition.version, line 1 col 26: unsupp",
        ),
    ],
)
def test_documents_that_never_reach_the_rules_still_get_a_place(text, expected):
    found = messages(text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_type_errors_name_the_path_and_skip_the_rules():
    text = '{"ignition": {"version": "3.3.0"},\n "storage": {"files": [{"path": "rel", "mode": "420"}]}}'
    found = messages(text)
    # The rules (which would say "path not absolute") do not run on a config of the wrong shape.
    assert found == [
        "error at $.storage.files.0.mode, line 2 col 48: cannot unmarshal string into a field of type integer"
    ]


def test_booleans_are_not_integers_and_floats_are_not_integers():
    for bad in ("true", "420.0", "1e2"):
        text = '{"ignition": {"version": "3.3.0"}, "passwd": {"users": [{"name": "a", "uid": ' + bad + "}]}}"
        assert [e.path for e in check(text).report.errors] == [("passwd", "users", 0, "uid")], bad


def test_unknown_keys_are_warnings_at_the_key():
    text = '{"ignition": {"version": "3.3.0"}, "foo": 1}'
    col = text.index('"foo"') + 1
    assert messages(text) == [f"warning at $.foo, line 1 col {col}: unused key foo"]
    assert check(text).ok


def test_key_added_in_a_later_version_is_unknown_in_an_earlier_one():
    # kernelArguments arrived with spec 3.3.0.
    text = '{"ignition": {"version": "%s"}, "kernelArguments": {"shouldExist": ["quiet"]}}'
    assert [e.message for e in check(text % "3.2.0").report] == ["unused key kernelArguments"]
    assert not check(text % "3.3.0").report


def test_keys_match_case_insensitively_like_go_with_a_warning():
    checked = check('{"ignition": {"Version": "3.3.0"}, "storage": {"files": [{"Path": "/x"}]}}')
    assert checked.ok
    assert [e.message for e in checked.report] == ["unused key Version", "unused key Path"]
    assert checked.config["storage"]["files"][0]["path"] == "/x"


def test_null_is_accepted_everywhere_and_null_list_items_are_empty_objects():
    checked = check('{"ignition": {"version": "3.3.0", "timeouts": null}, "storage": {"files": null}}')
    # a null list is no list; a null object (a Go struct) gets Ignition's position-tree warning
    assert checked.ok
    assert [(str(e.path), e.message[:27]) for e in checked.report] == [
        ("('ignition', 'timeouts')", "context tree does not match")
    ]
    # ... except where Go's field is a pointer (3.2.0's clevis): null leaves it nil, no warning
    clevis = '{"ignition": {"version": "3.2.0"}, "storage": {"luks": [{"name": "c", "device": "/dev/a", "clevis": null}]}}'
    assert not check(clevis).report
    report = check('{"ignition": {"version": "3.3.0"}, "storage": {"directories": [null]}}').report
    assert report.warnings[0].message.startswith("context tree does not match content tree")
    # The empty object then gets the rules' verdict (Ignition: "path not specified").
    assert report.has_errors


def test_a_key_given_twice_decodes_as_in_go():
    # a later object merges into the earlier one; a later null leaves a plain field as it was
    text = (
        '{"ignition": {"version": "3.4.0", "version": null}, "storage": {"files": [{"path": "/a"}]},'
        ' "storage": {"directories": [{"path": "/b"}]}}'
    )
    checked = check(text)
    assert checked.ok and not checked.report
    assert checked.config["storage"] == {"files": [{"path": "/a"}], "directories": [{"path": "/b"}]}
    # an object given again as null: Go keeps the object, Ignition's position tree the null
    again = check(
        '{"ignition": {"version": "3.4.0"}, "storage": {"files": [{"path": "/a", "x": 1}]}, "storage": null}'
    )
    assert [(e.path, e.message[:27]) for e in again.report] == [(("storage",), "context tree does not match")]
    assert again.config["storage"] == {"files": [{"path": "/a", "x": 1}]}
    # unknown keys count in the last object only (Ignition's position tree), known ones merge
    twice = check('{"ignition": {"version": "3.3.0", "x": 1}, "ignition": {"version": "3.4.0", "y": 2}}')
    assert [e.message for e in twice.report] == ["unused key y"]


def _typed(text: str) -> list[tuple[tuple, int]]:
    return [(e.path, e.line) for e in check(text).report if "cannot unmarshal" in e.message]


def test_a_type_error_under_a_key_given_twice_is_where_go_read_it():
    # ignition-validate v2.26.0 places each of these on the first object's line (line 2)
    first = '{"ignition": {"version": "3.5.0"},\n"storage": {"files": [{"path": "/a", "mode": "x"}]},\n'
    assert _typed(first + '"storage": {"directories": [{"path": "/d"}]}}') == [
        (("storage", "files", 0, "mode"), 2)
    ]
    # a right-typed value given later does not hide the error Go's decoder found first
    assert _typed(first + '"storage": {"files": [{"path": "/a", "mode": 420}]}}') == [
        (("storage", "files", 0, "mode"), 2)
    ]
    replaced = '{"ignition": {"version": "3.4.0"},\n"storage": {"files": 5},\n"storage": {"files": []}}'
    assert _typed(replaced) == [(("storage", "files"), 2)]
    # the later occurrence holds the wrong kind: placed there (line 3)
    later = '{"ignition": {"version": "3.3.0"},\n"storage": {"files": [{"path": "/a"}]},\n'
    assert _typed(later + '"storage": {"files": [{"path": "/a", "mode": true}]}}') == [
        (("storage", "files", 0, "mode"), 3)
    ]


def test_special_mode_bits_are_masked_before_3_6_and_kept_in_3_6():
    text = '{"ignition": {"version": "%s"}, "storage": {"directories": [{"path": "/srv", "mode": 1533}]}}'
    old, new = check(text % "3.5.0"), check(text % "3.6.0")
    assert old.config["storage"]["directories"][0]["mode"] == 0o775
    assert new.config["storage"]["directories"][0]["mode"] == 0o2775


def test_invalid_utf8_is_replaced_not_fatal():
    assert check(b'{"ignition": {"version": "3.3.0"}, "x\xff": 1}').ok


def test_byte_order_mark_is_refused_with_a_place():
    # As Go reads it: the first byte of the mark, a Latin-1 rune, cannot begin a value.
    assert messages(b'\xef\xbb\xbf{"ignition": {"version": "3.3.0"}}') == [
        "error at line 1 col 2: invalid character '\u00ef' looking for beginning of value"
    ]


def test_check_dict_gives_paths_without_positions():
    report = check_dict({"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": 5}]}})
    assert [(e.path, e.line) for e in report] == [(("storage", "files", 0, "path"), None)]
