"""authorized_keys block editing: properties (idempotent, foreign lines kept, block replaced) and the
key-line normalisation; plus the colon-file round trip."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pineinstall.accounts import sshkeys
from pineinstall.accounts.dbfile import DbFile

line = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40)
foreign = st.lists(line.filter(lambda x: x not in (sshkeys.BEGIN, sshkeys.END)), max_size=6)
keys = st.lists(
    st.from_regex(r"ssh-(ed25519|rsa) [A-Za-z0-9+/]{4,20}( [a-z@.]{1,10})?", fullmatch=True), max_size=5
)


@settings(max_examples=100, deadline=None)
@given(foreign, keys, keys)
def test_merge_properties(outside: list[str], first: list[str], second: list[str]) -> None:
    existing = "".join(x + "\n" for x in outside)
    once = sshkeys.merge(existing, sshkeys.key_lines(first))
    assert sshkeys.merge(once, sshkeys.key_lines(first)) == once  # idempotent
    assert sshkeys.managed_keys(once) == [k for k in sshkeys.key_lines(first) if not k.startswith("#")]
    replaced = sshkeys.merge(once, sshkeys.key_lines(second))
    assert sshkeys.managed_keys(replaced) == sshkeys.key_lines(second)
    # every foreign line survives, in order, outside the block
    lines = replaced.split("\n")
    start, end = lines.index(sshkeys.BEGIN), lines.index(sshkeys.END)
    assert [x for x in lines[:start] + lines[end + 1 :] if x != ""] == [x for x in outside if x != ""]


def test_merge_keeps_block_in_place() -> None:
    text = f"a\n{sshkeys.BEGIN}\nold\n{sshkeys.END}\nb\n"
    assert sshkeys.merge(text, ["new"]) == f"a\n{sshkeys.BEGIN}\nnew\n{sshkeys.END}\nb\n"


def test_key_lines_split_strip_dedupe() -> None:
    assert sshkeys.key_lines(["k1\n", "k2\r\nk3", "", "k1", "  k4  "]) == ["k1", "k2", "k3", "k4"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(line, st.lists(line.filter(lambda x: ":" not in x), min_size=4, max_size=4)), max_size=8
    )
)
def test_colon_file_round_trip(tmp_path_factory, items) -> None:  # type: ignore[no-untyped-def]
    text = "".join((":".join(i) if isinstance(i, list) else i) + "\n" for i in items)
    p = Path(tmp_path_factory.getbasetemp()) / "roundtrip-group"
    p.write_text(text, encoding="utf-8", errors="surrogateescape")
    f = DbFile(p, 4)
    assert f.render() == p.read_bytes()
    assert not f.changed
