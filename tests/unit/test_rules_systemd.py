"""Rules of systemd units and drop-ins, and the unit-file parser behind them."""

from __future__ import annotations

import pytest
from _rules_helpers import err, findings, warn
from hypothesis import given
from hypothesis import strategies as st

from pineinstall.config.fields import UNIT_EXTENSIONS
from pineinstall.config.rules.unitfile import UnitError, parse_unit, parse_unit_exact


def units(*u, version=(3, 3)):
    return findings({"systemd": {"units": list(u)}}, version)


@pytest.mark.parametrize("name", ["app", "app.serv", "app.SERVICE", "a.service/x", ".conf"])
def test_unit_names_need_a_unit_extension(name):
    assert units({"name": name}) == {err("$.systemd.units.0.name", "invalid systemd unit extension")}


@pytest.mark.parametrize("ext", UNIT_EXTENSIONS)
def test_known_unit_extensions(ext):
    assert units({"name": "u" + ext}) == set()


def test_dropin_names_end_in_conf():
    got = units(
        {"name": "a.service", "dropins": [{"name": "override"}, {"name": "x.CONF"}, {"name": "y.conf"}]}
    )
    assert got == {
        err("$.systemd.units.0.dropins.0.name", "invalid systemd drop-in extension"),
        err("$.systemd.units.0.dropins.1.name", "invalid systemd drop-in extension"),
    }


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ("[Unit\nA=1\n", "unable to find end of section"),
        ("[Unit] x\n", 'found garbage after section name : "x"'),
        ("[Service]\nExecStart\nType=simple\n", "unexpected newline encountered while parsing option name"),
        ("[Service]\nExecStart", "EOF"),
        ("[Service]\nEnvironment=" + "x" * 2100 + "\n", "line too long (max 2048 bytes)"),
    ],
)
def test_unit_contents_that_do_not_parse(contents, message):
    assert units({"name": "a.service", "contents": contents}) == {
        err("$.systemd.units.0.contents", f"invalid unit content: {message}")
    }


def test_dropin_contents_are_parsed():
    assert units({"name": "a.service", "dropins": [{"name": "x.conf", "contents": "[S"}]}) == {
        err("$.systemd.units.0.dropins.0.contents", "invalid unit content: unable to find end of section")
    }


def test_parser_sections_comments_continuations():
    text = "junk before\n# c \\\n continued\n[Unit]\nA = 1 \\\n  more\n\n; c\n[Install]\r\nWantedBy=x\r\n"
    assert [(s, n) for s, n, _ in parse_unit(text)] == [("Unit", "A"), ("Install", "WantedBy")]
    with pytest.raises(UnitError):
        parse_unit("[Unit]\nA")


def outcome(parse, text):
    try:
        return parse(text)
    except UnitError as exc:
        return f"error: {exc}"


# pieces of unit text with every character the fast path must notice (whitespace that
# str.isspace knows, "\r", backslashes, brackets, comment marks, a long run)
PIECES = [
    "[Unit]",
    "[Install]",
    "[",
    "]",
    "A",
    "B=",
    "=",
    " = ",
    "x",
    "#",
    ";",
    "\\",
    " ",
    "\t",
    "\x0b",
    "\x85",
    "\u2028",
    "\n",
    "\r",
    "\r\n",
    "é",
    "y" * 600,
]


@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_parser_fast_path_matches_the_lexer(text):
    assert outcome(parse_unit, text) == outcome(parse_unit_exact, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "[Unit]",
        "[Unit]\nA=1",
        "# c\n\n[Unit]\nA = 1 \nB=\n=x\n[]\n[a]b]\n",
        "[Unit] \nA=1\n",
        "[Unit]\n A=1\n",
        "[Unit]\nA\n",
        "[Unit]x\n",
        "A=1\n[Unit]\n",
        "[Unit]\nA=" + "v" * 600 + "\n",
        "[Unit]\nA=" + "\u00e9" * 1500 + "\n",
        "[Unit]\nA=1\\\n B\n",
        "[Un\nit]\n",
    ],
)
def test_parser_fast_path_matches_the_lexer_on_edges(text):
    assert outcome(parse_unit, text) == outcome(parse_unit_exact, text)


def test_enabled_unit_without_install_section_warns():
    msg = 'unit "a.service" is enabled, but has no install section so enable does nothing'
    assert units({"name": "a.service", "enabled": True, "contents": "[Service]\nExecStart=/x\n"}) == {
        warn("$.systemd.units.0.contents", msg)
    }
    # an [Install] header without options has no install options either
    assert units({"name": "a.service", "enabled": True, "contents": "[Install]\n"}) == {
        warn("$.systemd.units.0.contents", msg)
    }


@pytest.mark.parametrize(
    "unit",
    [
        {"name": "a.service", "enabled": True, "contents": "[Install]\nWantedBy=multi-user.target\n"},
        {"name": "a.service", "enabled": True},
        {"name": "a.service", "enabled": True, "contents": ""},
        {"name": "a.service", "enabled": False, "contents": "[Service]\nExecStart=/x\n"},
    ],
)
def test_no_install_warning(unit):
    assert units(unit) == set()


def test_unparsable_enabled_unit_gets_only_the_error():
    assert units({"name": "a.service", "enabled": True, "contents": "[Service"}) == {
        err("$.systemd.units.0.contents", "invalid unit content: unable to find end of section")
    }


def test_duplicate_units_and_dropins():
    got = units(
        {"name": "a.service", "dropins": [{"name": "x.conf"}, {"name": "x.conf"}]}, {"name": "a.service"}
    )
    assert got == {
        err("$.systemd.units.0.dropins.1", "duplicate entry defined"),
        err("$.systemd.units.1", "duplicate entry defined"),
    }


def test_enabled_instance_of_a_template_without_install_in_every_version():
    cfg = [
        {"name": "getty@.service", "contents": "[Service]\nExecStart=/sbin/agetty %I\n"},
        {"name": "getty@ttyS0.service", "enabled": True},
    ]
    for version in ((3, 0), (3, 3), (3, 4)):
        assert units(*cfg, version=version) == {
            warn(
                "$.systemd.units.1.contents",
                'template unit "getty@.service" for "getty@ttyS0.service" doesn\'t have Install section',
            )
        }, version
    cfg[0]["contents"] += "[Install]\nWantedBy=getty.target\n"
    assert units(*cfg, version=(3, 4)) == set()


def test_crlf_comment_does_not_continue():
    # "\r" is trimmed before "\n" is: a CRLF line ending in "\" keeps its "\r" and so does not
    # continue (checked against ignition-validate)
    assert units({"name": "a.service", "contents": "; c \\\r\n[X] y\r\n"}) == {
        err("$.systemd.units.0.contents", 'invalid unit content: found garbage after section name : "y"')
    }
    assert units({"name": "a.service", "contents": "; c \\\n[X] y\n"}) == set()
