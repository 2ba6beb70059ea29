"""pineinstall.accounts.names: ``plainly_good_name`` (one regular expression, the fast way of the
rules over half a million users) takes exactly the names ``name_problem`` has nothing to say about."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pineinstall.accounts.names import MAX_NAME, name_problem, plainly_good_name

# Every character a rule looks at, and ordinary ones.
ALPHABET = ":,\n\r\t /\\-+~.@$_aZ09é"


@settings(max_examples=5000, derandomize=True, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=MAX_NAME + 3))
def test_the_regular_expression_is_name_problem(name: str) -> None:
    assert (plainly_good_name(name) is not None) == (name_problem(name) is None), repr(name)


@pytest.mark.parametrize(
    ("name", "good"),
    [
        ("alice", True),
        ("a" * MAX_NAME, True),
        ("a" * (MAX_NAME + 1), False),
        (".", False),
        ("..", False),
        ("...", True),
        ("-x", False),
        ("x-", True),
        ("a:b", False),
        ("a\nb", False),
        ("a b", False),
        ("", False),
    ],
)
def test_chosen_names(name: str, good: bool) -> None:
    assert (plainly_good_name(name) is not None) is good
    assert (name_problem(name) is None) is good
