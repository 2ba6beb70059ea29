"""pineinstall.boot.kargs: command-line splitting, Ignition's kernelArguments semantics, console specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pineinstall.boot.kargs import (
    Console,
    Edit,
    KargsError,
    grub_console_commands,
    join,
    parse_console,
    split,
)


def test_split_plain_and_quoted():
    assert split("  root=UUID=abc  rw\tquiet\n") == ["root=UUID=abc", "rw", "quiet"]
    assert split('dyndbg="file x.c +p" ro') == ['dyndbg="file x.c +p"', "ro"]
    assert split("") == []


def test_split_unbalanced_quote():
    with pytest.raises(KargsError, match="unbalanced"):
        split('a="b c')


_arg = st.text(alphabet="abcxyz=.,/-_019", min_size=1, max_size=8)


@given(st.lists(_arg, max_size=8))
def test_split_join_round_trip(args):
    assert split(join(args)) == args


def test_should_exist_added_once_at_the_end_order_kept():
    e = Edit(should_exist=("quiet", "rw", "mitigations=off"))
    assert e.apply(["root=X", "rw", "console=tty0"]) == [
        "root=X",
        "rw",
        "console=tty0",
        "quiet",
        "mitigations=off",
    ]
    # idempotent: a second run changes nothing
    once = e.apply(["root=X"])
    assert e.apply(once) == once


def test_should_not_exist_removes_every_occurrence_exact_match_only():
    e = Edit(should_not_exist=("quiet", "foo=1"))
    assert e.apply(["quiet", "foo=1", "foo=2", "foo", "quiet", "x"]) == ["foo=2", "foo", "x"]


def test_append_duplicates_delete_all():
    e = Edit(append=("a",), delete=("b",))
    assert e.apply(["a", "b", "c", "b"]) == ["a", "c", "a"]


def test_order_of_operations():
    # delete before append: deleting and appending the same argument leaves one copy at the end
    assert Edit(append=("x",), delete=("x",)).apply(["x", "y"]) == ["y", "x"]
    # shouldNotExist runs last of the karg lists: it wins over append
    assert Edit(append=("x",), should_not_exist=("x",)).apply(["y"]) == ["y"]


def test_conflicting_should_exist_and_not_exist():
    with pytest.raises(KargsError, match="both required and forbidden: a"):
        Edit(should_exist=("a",), should_not_exist=("a",))


@pytest.mark.parametrize("bad", ["", "a b", 'x="y', " "])
def test_invalid_args_rejected(bad):
    with pytest.raises(KargsError):
        Edit(append=(bad,))


def test_console_replaces_all_console_args():
    e = Edit(consoles=(parse_console("tty0"), parse_console("ttyS1,9600")))
    assert e.apply(["console=ttyS0,115200n8", "rw", "console=tty1"]) == [
        "rw",
        "console=tty0",
        "console=ttyS1,9600",
    ]


@pytest.mark.parametrize(
    ("spec", "unit", "speed", "parity", "word"),
    [
        ("ttyS0,115200n8", 0, 115200, "no", 8),
        ("ttyS1,9600", 1, 9600, "no", 8),
        ("ttyS0", 0, 9600, "no", 8),  # the kernel's default speed
        ("console=ttyS2,57600e7", 2, 57600, "even", 7),
        ("ttyS0,38400o", 0, 38400, "odd", 8),
    ],
)
def test_parse_serial_console(spec, unit, speed, parity, word):
    c = parse_console(spec)
    assert (c.unit, c.speed, c.parity, c.word, c.serial) == (unit, speed, parity, word, True)
    assert c.karg == "console=" + spec.removeprefix("console=")


def test_parse_other_consoles():
    assert parse_console("tty0") == Console("tty0")
    assert not parse_console("hvc0").serial


@pytest.mark.parametrize("bad", ["", "ttyS0,fast", "ttyS", "tty0 tty1", 'x"y', "ttyS0,115200x8"])
def test_parse_console_rejects(bad):
    with pytest.raises(KargsError):
        parse_console(bad)


def test_grub_console_commands():
    assert grub_console_commands((parse_console("ttyS0,115200n8"), parse_console("tty0"))) == [
        "serial --unit=0 --speed=115200 --word=8 --parity=no --stop=1",
        "terminal_input serial console",
        "terminal_output serial console",
    ]
    assert grub_console_commands((parse_console("ttyS1,9600e7"),)) == [
        "serial --unit=1 --speed=9600 --word=7 --parity=even --stop=1",
        "terminal_input serial_com1",
        "terminal_output serial_com1",
    ]
    assert grub_console_commands((parse_console("tty0"),)) == [
        "terminal_input console",
        "terminal_output console",
    ]
