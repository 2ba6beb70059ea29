"""The light path of pine-transpile (``yamlload.compose_light``: nodes without positions, decoded
without places) against the path with positions it falls back to.

Whatever the text, the answer must be the one the path with positions gives: the same error and
hints, the same findings at the same lines and columns, the same output. The corpora of the
conformance tests (Butane's recorded answers) exercise every way back: findings after a clean
decode (positions computed again), type errors and unused keys (a light node asked for its place),
syntax errors (composed again for the error's place), anchors (never light).

The light composer in C (``_pine_lightyaml``, built from butane_like/_lightyaml.c) is checked
against the one it stands in for, PyYAML's C composer with light node classes
(``_compose_light_pyyaml``): for every text, the same tree (kind, tag, style, value of every node)
or both decline it. The C one also declines anchors (never given light) and nestings deeper than 500.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from butane_like import pipeline, translate, yamlload

ROOT = Path(__file__).resolve().parents[2]
CORPORA = sorted(
    [
        *(ROOT / "tests/conformance/butane").glob("*/input.bu"),
        *(ROOT / "tests/conformance/butane_diff/cases").glob("*/input.bu"),
    ]
)


def answer(text: bytes, files_dir: str | None) -> tuple:
    res = translate(text, files_dir=files_dir, pretty=True)
    entries = [(e.kind, e.message, e.path, e.line, e.col) for e in res.entries]
    return res.error, res.hints, entries, res.output


def test_corpora_are_there() -> None:
    assert len(CORPORA) > 500


def test_same_answers_as_with_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [(p.read_bytes(), str(p.parent)) for p in CORPORA]
    light = [answer(text, d) for text, d in cases]
    monkeypatch.setattr(pipeline, "light_ok", lambda data: False)
    for (text, d), got in zip(cases, light, strict=True):
        assert got == answer(text, d), d


@pytest.mark.parametrize(
    "text",
    [
        # a clean config: no way back
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      mode: 420\n",
        # a finding of the source check (positions computed again), one of the output check
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: a\n      mode: 0644\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n    - path: /a\n",
        # a type error, an unused key, a null list item, a duplicate key (a light node is asked)
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      mode: x\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  filez: []\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    -\n    - path: /a\n",
        b"variant: fcos\nversion: 1.5.0\nversion: 1.4.0\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      path: /b\n",
        # merge keys without anchors; a struct given as null; a root that is no mapping
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - <<: {path: /m, mode: 420}\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      contents:\n",
        b"- a\n- b\n",
        b"12345678901\n",
        # syntax errors; an anchor (marks from the start); an undefined alias
        b"variant: fcos\nversion: 1.5.0\nstorage: [1, 2\n",
        b"variant: fcos\nversion: 1.5.0\nsystemd: &s\n  units: []\nx: *s\n",
        b"variant: fcos\nversion: 1.5.0\nx: *nowhere\n",
        # quoted and plain scalars where Go's resolution differs; explicit tags; booleans
        b'variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: "/a"\n      mode: "420"\n',
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: !!str /a\n      mode: !!int 420\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: ! /a\n      overwrite: yes\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /a\n      overwrite: True\n",
        b"variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: a\n      groups: [x, ~, 'y']\n",
        b"variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: a\n      uid: 0012\n",
        b"variant: fcos\nversion: 1.5.0\npasswd:\n  users:\n    - name: a\n      uid: 99999999999999999999\n",
        b"",
        b"# nothing\n",
    ],
)
def test_chosen_inputs(text: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    light = answer(text, None)
    monkeypatch.setattr(pipeline, "light_ok", lambda data: False)
    assert light == answer(text, None)


def test_a_clean_config_takes_the_light_path_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    real = pipeline._translate

    def spy(data: bytes, root: object, places: bool, *rest: object) -> object:
        calls.append(places)
        return real(data, root, places, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "_translate", spy)
    text = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n" + b"".join(
        b"    - path: /f%d\n      mode: 420\n      contents:\n        source: data:,x\n" % i
        for i in range(50)
    )
    res = translate(text)
    assert res.error is None and not res.entries
    assert calls == [False]
    calls.clear()
    translate(text.replace(b"mode: 420", b"mode: x", 1))  # a type error: the way with positions
    assert calls == [False, True]


def tree(node: object) -> object:
    if node is None:
        return None
    kind = node.id  # type: ignore[attr-defined]
    if kind == "mapping":
        return ("map", node.tag, [(tree(k), tree(v)) for k, v in node.value])  # type: ignore[attr-defined]
    if kind == "sequence":
        return ("seq", node.tag, [tree(x) for x in node.value])  # type: ignore[attr-defined]
    return ("scalar", node.tag, node.style, node.value)  # type: ignore[attr-defined]


def test_light_nodes_hold_what_the_nodes_with_marks_hold() -> None:
    taken = 0
    for path in CORPORA:
        text = path.read_bytes()
        if not yamlload.light_ok(text):
            continue
        got = yamlload.compose_light(text)
        if got is yamlload.FAILED:
            continue
        taken += 1
        assert tree(got) == tree(yamlload._compose(text)), path
    assert taken > len(CORPORA) // 2


def test_light_nodes_have_no_place() -> None:
    root = yamlload.compose_light(b"a: [b]\n")
    with pytest.raises(yamlload.NeedPlaces):
        root.start_mark  # noqa: B018
    with pytest.raises(yamlload.NeedPlaces):
        root.value[0][1].end_mark  # noqa: B018


def test_pyyaml_nodes_are_given_back() -> None:
    """The light composer swaps the C module's node classes for its call only (a syntax error
    included): the composer with marks, and PyYAML's own loaders, still get PyYAML's nodes."""
    assert yamlload._compose_light_pyyaml(b"a: [1, 2\n") is yamlload.FAILED
    assert yamlload._compose_light_pyyaml(b"a: 1\n") is not yamlload.FAILED
    names = vars(yamlload._cmodule)
    for name in ("ScalarNode", "SequenceNode", "MappingNode"):
        assert names[name] not in yamlload._LIGHT_NODES
        assert (names[name].__module__, names[name].__name__) == ("yaml.nodes", name)
    node = yamlload._compose(b"a: [1]\n")
    assert node.start_mark.line == 0 and node.value[0][1].end_mark.column == 6


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (b"a: 1\n", True),
        (b"a: https://x/?p=1&q=2\n", True),
        (b"a: &x 1\n", False),
        (b"&x a: 1\n", False),
        (b"a: [&x 1]\n", False),
        (b"a: {b: &x 1}\n", False),
        (b"- &x\n  a: 1\n", False),
        (b"a: b &c\n", False),  # a plain scalar with " &": taken for an anchor (marks then)
        (b"\xef\xbb\xbf&x a: 1\n", False),  # after a byte order mark
        (b"a: 1\r&x b: 2\r", False),  # after a CR line break
        (b"a: 1\xc2\x85&x b: 2\n", False),  # after NEL
        (b"a: x&y\n", True),
    ],
)
def test_anchors_are_seen(text: bytes, ok: bool) -> None:
    assert yamlload.light_ok(text) is ok
    if not ok and b"&x" in text:  # really an anchor for libyaml
        import yaml

        events = list(yaml.parse(text, Loader=yaml.CSafeLoader))
        assert any(getattr(e, "anchor", None) == "x" for e in events)


@pytest.mark.parametrize("c_composer", [True, False], ids=["C", "PyYAML"])
def test_threads_composing_at_once_get_their_own_nodes(
    c_composer: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Light compositions (C, or PyYAML's with node classes swapped) and compositions with marks in
    several threads at once: every answer is the one it is alone."""
    import threading

    if not c_composer:
        monkeypatch.setattr(yamlload, "_c_compose", False)

    files = b"".join(b"    - path: /f%d\n      mode: 420\n" % i for i in range(300))
    light = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n" + files
    marked = light.replace(b"storage:", b"x: &a 1\nstorage:")  # an anchor: marks from the start
    wrong = light.replace(b"mode: 420", b"mode: x", 1)  # light, then again with marks
    texts = [light, marked, wrong]
    alone = [answer(t, None) for t in texts]
    failures: list[str] = []

    def work(k: int) -> None:
        for n in range(6):
            i = (k + n) % 3
            try:
                if answer(texts[i], None) != alone[i]:
                    failures.append(f"thread {k}, text {i}: another answer")
            except Exception as e:  # (a thread's exception would not fail the test)
                failures.append(f"thread {k}, text {i}: {e!r}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


@pytest.mark.parametrize(
    "text",
    [
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
        b"    - path: /a\n      contents:\n        inline: |\n          line one\n\n          two\n"
        b"    - path: /b\n      contents:\n        inline: |-\n          stripped\n",
        b"variant: fcos\nversion: 1.5.0\nsystemd:\n  units:\n    - name: x.service\n"
        b"      contents: |\n        [Unit]\n        Description=x\n      enabled: maybe\n",
        b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
        b"    - path: /a\n      contents:\n        inline: |\n          body\n    - path: /a\n",
        b"variant: fcos\nversion: 1.5.0\na: |\n  x\nb: PINE~CUT~0\n",  # declined: composed whole
    ],
)
def test_large_bodies_cut_out_in_light_nodes_too(text: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """compose_light cuts large literal bodies out as compose does (thresholds lowered here)."""
    monkeypatch.setattr(yamlload, "CUT_MIN_TEXT", 0)
    monkeypatch.setattr(yamlload, "CUT_MIN_BODY", 1)
    got = yamlload.compose_light(text)
    assert got is not yamlload.FAILED
    assert tree(got) == tree(yamlload._compose(text))
    cut = yamlload._compose_cut(text, light=True)
    assert (cut is yamlload.FAILED) == (b"PINE~CUT~" in text)  # really cut (but the placeholder)
    light = answer(text, None)
    monkeypatch.setattr(pipeline, "light_ok", lambda data: False)
    assert light == answer(text, None)


FILE = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n"
HANDED_OVER = {
    # still Go's duplicate error, though the first value is null (not kept)
    "a key twice, null first": FILE + b"    - path: /a\n      mode:\n      mode: 420\n",
    "a key twice": FILE + b"    - mode: 420\n      path: /a\n      mode: 420\n",
    "a merge key": FILE + b"    - path: /a\n      <<: {mode: 420}\n",
    "a key that is a list": FILE + b"    - {path: /a, ? [x] : 1}\n",
}


@pytest.mark.parametrize("text", HANDED_OVER.values(), ids=HANDED_OVER.keys())
def test_keys_the_light_mapping_hands_over(text: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    light = answer(text, None)
    assert light[0] is not None or light[2]  # an error or a finding: the way with marks
    monkeypatch.setattr(pipeline, "light_ok", lambda data: False)
    assert light == answer(text, None)


# --- the C composer ----------------------------------------------------------------------------
DECLINED = object()


def c_tree(text: bytes) -> object:
    import _pine_lightyaml

    got = _pine_lightyaml.compose(
        text, yamlload.Tags.PLAIN, yamlload.Tags.QUOTED, yamlload.NeedPlaces, DECLINED
    )
    return "declined" if got is DECLINED else tree(got)


def py_tree(text: bytes) -> object:
    yamlload.fast_import()
    got = yamlload._compose_light_pyyaml(text)
    return "declined" if got is yamlload.FAILED else tree(got)


def test_the_extension_is_built() -> None:
    """scripts/setup installs the compiler and libyaml's headers, and the package builds it."""
    import _pine_lightyaml

    assert yamlload.compose_light(b"a: 1\n").__class__.__module__ == "_pine_lightyaml"
    assert _pine_lightyaml.Scalar.id == "scalar"


def test_the_corpora_compose_the_same() -> None:
    same = 0
    for path in CORPORA:
        text = path.read_bytes()
        if not yamlload.light_ok(text):
            continue
        assert c_tree(text) == py_tree(text), path
        same += 1
    assert same > len(CORPORA) // 2


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"# only a comment\n",
        b"---\n...\n",
        b"a: 1\n---\nb: 2\n",  # the first document only
        b"a: 1\n--- [\n",  # a broken second document is not read
        b"plain\n",
        b"'quoted'\n",
        b"a: \"x\\ty\"\nb: 'it''s'\nc: |\n  lit\nd: >-\n  fold\n  ed\ne: ~\n",
        b"a: !!str 1\nb: !custom x\nc: ! y\nd: !!map {x: 1}\ne: !!seq [1]\nf: !<tag:x> z\n",
        b"%TAG !e! tag:example.com,2000:\n---\na: !e!foo x\n",
        b"? [a, b]\n: c\n? {d: e}\n: f\n",
        b"a: [1, {b: 2}, [3]]\nc: {}\nd: []\n",
        b"a:\n- 1\n-\n- - 2\n",
        b"\xef\xbb\xbfa: 1\n",  # a byte order mark
        b"\xff\xfea\x00:\x00 \x001\x00\n\x00",  # UTF-16
        b"a: \xc3\xa9\xe2\x82\xac\n",
        b"a: \xff\n",  # not UTF-8: declined
        b"a: [1, 2\n",  # a syntax error: declined
        b"a: *x\n",  # an alias: declined
        b"a: &x 1\n",  # an anchor: declined (never given light)
        b"a: b\n\tc: d\n",
        b"key with spaces: value with: colon\n",
        b"a: 1\na: 2\n",  # a key twice is the decoder's business
    ],
)
def test_chosen_texts(text: bytes) -> None:
    c, py = c_tree(text), py_tree(text)
    if b"&x" in text:
        assert (c, py != "declined") == ("declined", True)
    else:
        assert c == py


def test_deep_nesting_is_declined_and_answered_with_marks() -> None:
    deep = b"variant: fcos\nversion: 1.5.0\nx: " + b"[" * 600 + b"]" * 600 + b"\n"
    assert c_tree(deep) == "declined"
    import _pine_lightyaml

    at_the_limit = b"[" * 500 + b"]" * 500
    assert _pine_lightyaml.compose(at_the_limit, "?", "!", yamlload.NeedPlaces, DECLINED) is not DECLINED
    light = answer(deep, None)
    assert light[0] is None and light[2]  # (x is an unused key: a warning, no error)


def test_shared_keys_are_plain_and_short() -> None:
    """Short plain keys are one node for the whole text; quoted and long ones are not shared."""
    long = b"k" * 40
    text = b"- {a: 1, 'b': 2, %s: 3}\n- {a: 4, 'b': 5, %s: 6}\n" % (long, long)
    import _pine_lightyaml

    root = _pine_lightyaml.compose(text, "?", "!", yamlload.NeedPlaces, DECLINED)
    (a1, _), (b1, _), (l1, _) = root.value[0].value
    (a2, _), (b2, _), (l2, _) = root.value[1].value
    assert a1 is a2 and b1 is not b2 and l1 is not l2
    assert (a1.tag, b1.tag, b1.style) == ("?", "!", "'")


# Fragments that matter to YAML's grammar: random texts of them reach the scanner's corners.
FRAGMENTS = [*"ab1:-?,[]{}#&*!|>'\"~ \t\n", "\n  ", "\n- ", ": ", "- ", "---\n", "...\n", "!!str ", "\\n"]


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(FRAGMENTS + list(string.digits[:3])), max_size=40))
def test_random_texts_compose_the_same(parts: list[str]) -> None:
    text = "".join(parts).encode()
    if not yamlload.light_ok(text):
        return
    assert c_tree(text) == py_tree(text), text
