"""The fast path of the YAML loader (large literal bodies cut out before libyaml) against libyaml.

``yamlload._compose_cut`` must give the very tree ``yamlload._compose`` gives for the whole text
(node kinds, values, tags, styles, start line and column), or decline (``_FAILED``) so that the
caller composes the whole text. Declining is allowed for odd inputs, but the ordinary ones
(``inline: |`` bodies of ASCII text) must really take the fast path, or these tests would test
nothing. Thresholds are lowered so that small texts exercise the cutting.
"""

from __future__ import annotations

import json
import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from butane_like import translate, yamlload


@pytest.fixture(autouse=True)
def _cut_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlload, "CUT_MIN_TEXT", 0)
    monkeypatch.setattr(yamlload, "CUT_MIN_BODY", 1)


def tree(node) -> object:
    if node is None:
        return None
    where = (node.start_mark.line, node.start_mark.column)
    if node.id == "mapping":
        return ("map", node.tag, where, [(tree(k), tree(v)) for k, v in node.value])
    if node.id == "sequence":
        return ("seq", node.tag, where, [tree(x) for x in node.value])
    return ("scalar", node.tag, node.style, where, node.value)


def plain(text: bytes) -> object:
    try:
        return tree(yamlload._compose(text))
    except yamlload.YAMLSyntaxError as e:
        return ("error", str(e))


def fast(text: bytes) -> object:
    got = yamlload._compose_cut(text)
    return got if got is yamlload._FAILED else tree(got)


def same_or_declined(text: bytes) -> bool:
    """True when the fast path took the text (and agrees), False when it declined."""
    got = fast(text)
    if got is yamlload._FAILED:
        return False
    assert got == plain(text)
    return True


# -- chosen cases ----------------------------------------------------------------------------------
def test_typical_config_takes_the_fast_path_and_agrees() -> None:
    text = (
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
        b"    - path: /a\n      contents:\n        inline: |\n          line one\n\n"
        b"            indented more\n          last\n\n\n"
        b"    - path: /b\n      contents:\n        inline: |-\n          stripped\n          tail\n"
        b"    - path: /c\n      append:\n        - |\n          in a list\n"
        b"systemd:\n  units:\n    - name: x.service\n      contents: |\n        [Unit]\n"
    )
    assert same_or_declined(text)


@pytest.mark.parametrize(
    "text",
    [
        # a header inside a double-quoted scalar: the "body" is part of the quoted text
        b'a: "x\n  b: |\n   y"\nc: 1\n',
        # keep chomping and explicit indentation are left to libyaml (not cut), next to a cut one
        b"a: |+\n  keep\n\nb: |2\n   two\nc: |\n  cut\n",
        # a line of fewer spaces inside the body: YAML reads on past it
        b"a: |\n    one\n  \n    two\nb: 1\n",
        # a line of more spaces than the indentation is content
        b"a: |\n  one\n     \n  two\n",
        # tabs inside the content, tab at the start of a line (ends the body; libyaml's error)
        b"a: |\n  x\ty\n\tz\n",
        # CR, non-ASCII, control characters: not cut
        b"a: |\n  one\r\n  two\r\nb: 1\n",
        "a: |\n  Grüße\n".encode(),
        b"a: |\n  bell\x07\n",
        # a body up to the end of the text, with and without a final line break
        b"a: |\n  end",
        b"a: |-\n  end\n\n",
        # the placeholder text itself in the document
        b"a: |\n  x\nb: PINE~CUT~0\n",
        b"a: |\n  PINE~CUT~0\nb: |\n  PINE~CUT~0\n",
        # a body at too little indentation for its parent
        b"a:\n  b: |\n  c\n",
        # an alias of a mapping that holds a cut body
        b"a: &x\n  b: |\n    body\nc: *x\n",
        # a syntax error after a body
        b"a: |\n  body\nb: [1, 2\n",
        # duplicate keys are not libyaml's business but must come back as composed
        b"a: |\n  one\na: |\n  two\n",
    ],
)
def test_odd_inputs_agree_or_decline(text: bytes) -> None:
    same_or_declined(text)


def test_syntax_errors_come_from_the_whole_text() -> None:
    text = b"a: |\n  body\n  more\nb: [1, 2\n"
    assert fast(text) is yamlload._FAILED
    with pytest.raises(yamlload.YAMLSyntaxError) as e:
        yamlload.compose(text)
    assert str(e.value) == plain(text)[1]


# -- random documents ------------------------------------------------------------------------------
_LINE_CHARS = string.ascii_letters + string.digits + " \t-:#|>&*!%@`'\"{}[],?"
line_st = st.one_of(
    st.text(alphabet=_LINE_CHARS, min_size=1, max_size=30),
    st.just(""),
    st.sampled_from([" ", "  ", "   ", "      ", "\t", "é", "\r", "\x07", "x\r", "PINE~CUT~1", "a: |"]),
)
header_st = st.sampled_from(["|", "|", "|-", "|+", "|2", "| # c", "|-  ", ">"])


@st.composite
def documents(draw) -> bytes:
    out = []
    for n in range(draw(st.integers(1, 4))):
        shape = draw(st.sampled_from(["key", "dash", "dashkey"]))
        key_indent = draw(st.sampled_from([0, 2])) if shape == "key" else 2
        lead = " " * key_indent
        if key_indent:
            out.append(f"k{n}:\n")
        prefix = {"key": f"{lead}v{n}: ", "dash": f"{lead}- ", "dashkey": f"{lead}- v{n}: "}[shape]
        out.append(prefix + draw(header_st) + "\n")
        # mostly deeper than the key (a body), sometimes not (an empty scalar, then an error)
        k = key_indent + draw(st.sampled_from([1, 2, 2, 4, 0])) + (2 if shape == "dashkey" else 0)
        first = draw(st.text(alphabet=string.ascii_letters, min_size=1, max_size=10))
        body = [" " * k + first]
        for line in draw(st.lists(line_st, max_size=8)):
            extra = draw(st.sampled_from([0, 0, 0, 1, 3, -1]))
            body.append("" if line == "" else " " * (k + extra) + line)
        body += [""] * draw(st.integers(0, 2))
        out.append("\n".join(body) + "\n")
    text = "".join(out)
    if draw(st.booleans()):
        text = text.rstrip("\n")
    return text.encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_documents_agree_or_decline(text: bytes) -> None:
    same_or_declined(text)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet=string.ascii_letters + string.digits + " -_.:#", max_size=40), min_size=1),
        min_size=1,
        max_size=4,
    )
)
def test_ordinary_bodies_take_the_fast_path(bodies: list[list[str]]) -> None:
    out = ["variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"]
    for i, lines in enumerate(bodies):
        lines = ["x" + lines[0].strip(), *lines[1:]]
        out.append(f"    - path: /f{i}\n      contents:\n        inline: |\n")
        out.append("".join("          " + ln + "\n" if ln.strip() else "\n" for ln in lines))
    assert same_or_declined("".join(out).encode())


# -- the whole translation -------------------------------------------------------------------------
def _large_config(seed: int) -> str:
    rng = random.Random(seed)
    out = ["variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"]
    for i in range(12):
        body = "\n".join(
            "".join(rng.choices(string.ascii_letters + " =;", k=rng.randrange(0, 70))).lstrip()
            for _ in range(300)
        )
        out.append(f"    - path: /var/f{i}\n      mode: 0644\n      contents:\n        inline: |\n")
        out.append("".join("          " + ln + "\n" if ln.strip() else "\n" for ln in body.split("\n")))
    # a warning (an unknown key) and an error (a relative path) after the bodies: their lines
    # and columns must be those of the original text
    out.append("    - path: relative\n      bogus: 1\n      contents:\n        inline: |\n          x\n")
    return "".join(out)


def test_translation_is_the_same_with_and_without_the_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    for text in (_large_config(1), _large_config(2).replace("    - path: relative\n", "    - path: /ok\n")):
        cut = translate(text.encode())
        monkeypatch.setattr(yamlload, "CUT_MIN_TEXT", 1 << 62)
        whole = translate(text.encode())
        monkeypatch.setattr(yamlload, "CUT_MIN_TEXT", 0)
        assert (cut.output, cut.error) == (whole.output, whole.error)
        assert [str(e) for e in cut.entries] == [str(e) for e in whole.entries]
        assert cut.format("x.bu") == whole.format("x.bu")
        if "relative" in text:
            assert cut.error is not None
            assert [str(e).split(":")[0] for e in cut.entries] == [
                "warning at $.storage.files.12.bogus, line 3654 col 7",
                "error at $.storage.files.12.path, line 3653 col 13",
            ]
        else:
            assert cut.error is None and len(json.loads(cut.output)["storage"]["files"]) == 13


def test_cut_bodies_reach_the_output_unchanged() -> None:
    text = _large_config(3).replace("    - path: relative\n", "    - path: /ok\n")
    res = translate(text.encode())
    assert res.error is None
    lines = text.split("\n")
    want = []
    for i, ln in enumerate(lines):
        if ln.endswith("inline: |"):
            body = []
            for nxt in lines[i + 1 :]:
                if nxt and not nxt.startswith("          "):
                    break
                body.append(nxt[10:])
            want.append("\n".join(body).rstrip("\n") + "\n")
    got = json.loads(res.output)["storage"]["files"]
    assert len(got) == len(want) == 13
    from test_transpile_sugar import text_of

    assert [text_of(f["contents"]).decode() for f in got] == want


@pytest.mark.parametrize("blank_at", [None, 0, 1, 2])
def test_bodies_around_the_size_threshold(monkeypatch: pytest.MonkeyPatch, blank_at: int | None) -> None:
    # Bodies just under, at and over CUT_MIN_BODY bytes (counted from their first line's
    # indentation to the end of their last line), some with empty lines where the size check
    # looks: exactly those of CUT_MIN_BODY bytes or more are cut, and the tree is libyaml's.
    monkeypatch.setattr(yamlload, "CUT_MIN_BODY", 4096)
    k = 8
    out, sizes = ["files:\n"], []
    for i, size in enumerate([4000, 4095, 4096, 4097, 9000]):
        lines = [" " * k + "first"]
        n = len(lines[0]) + 1
        while n < size:
            room = size - n - 1  # what the next line may hold besides its line break
            blank = room <= k or (blank_at is not None and len(lines) % 7 == blank_at)
            line = "" if blank else " " * k + "x" * min(60, room - k)
            lines.append(line)
            n += len(line) + 1
        body = "\n".join(lines) + "\n"
        assert len(body) == size
        sizes.append(size)
        out.append(f"  - n: {i}\n    inline: |\n{body}")
    text = "".join(out).encode()
    got = yamlload._cut(text)
    assert got is not None
    want = sum(1 for s in sizes if s >= 4096)
    assert len(got[1]) == want == 3
    assert same_or_declined(text)
