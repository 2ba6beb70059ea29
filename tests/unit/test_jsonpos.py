"""Positions of JSON paths in the source text (what every error line relies on)."""

import pytest

from pineinstall.config.jsonpos import line_col, locate

TEXT = """{
  "ignition": {"version": "3.3.0"},
  "storage": {
    "files": [
      {"path": "/a", "mode": 420},
      {"path": "rel",
       "contents": {"source": "ftp://x"}}
    ]
  },
  "foo": 1
}"""


def where(needle: str, nth: int = 0) -> tuple[int, int]:
    """Line and 1-based column of the nth occurrence of needle, counted by hand."""
    index = -1
    for _ in range(nth + 1):
        index = TEXT.index(needle, index + 1)
    before = TEXT[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


@pytest.mark.parametrize(
    ("path", "needle", "nth"),
    [
        (("storage", "files", 0, "path"), '"/a"', 0),
        (("storage", "files", 1, "path"), '"rel"', 0),
        (("storage", "files", 1, "contents", "source"), '"ftp://x"', 0),
        (("storage", "files", 0, "mode"), "420", 0),
        (("ignition", "version"), '"3.3.0"', 0),
        (("foo",), "1\n", 0),
    ],
)
def test_value_positions(path, needle, nth):
    assert locate(TEXT, path) == where(needle, nth)


def test_containers_are_placed_just_inside_their_bracket_like_ignition_validate():
    line, col = where('{"path": "rel"')
    assert locate(TEXT, ("storage", "files", 1)) == (line, col + 1)
    line, col = where('[\n      {"path"')
    assert locate(TEXT, ("storage", "files")) == (line, col + 1)


def test_key_position_for_unused_keys():
    assert locate(TEXT, ("foo",), at_key=True) == where('"foo"')


def test_missing_field_resolves_to_deepest_existing_ancestor():
    line, col = where('{"path": "/a"')
    assert locate(TEXT, ("storage", "files", 0, "user", "name")) == (line, col + 1)
    line, col = where('[\n      {"path"')
    assert locate(TEXT, ("storage", "files", 7)) == (line, col + 1)
    assert locate(TEXT, ("passwd", "users")) == (1, 2)


def test_duplicate_key_uses_last_occurrence_like_the_decoder():
    text = '{"a": {"p": "x", "p": "y"}}'
    assert locate(text, ("a", "p")) == (1, text.index('"y"') + 1)


def test_columns_count_utf8_bytes_like_go():
    text = '{"é": "ü", "b": 1}'
    # "é" and "ü" are two bytes each in UTF-8.
    assert locate(text, ("b",)) == (1, len(text[: text.index("1")].encode()) + 1)


def test_line_col_of_empty_and_end():
    assert line_col("", 0) == (1, 1)
    assert line_col("a\nb", 2) == (2, 1)
    assert locate("   ", ("x",)) is None
