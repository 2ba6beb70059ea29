"""Parse YAML into position-carrying nodes with libyaml (PyYAML's C parser), cheaply.

Only the *composer* of PyYAML is used: we resolve scalars ourselves the way Go's yaml.v3 does
(Butane decodes with it), so PyYAML's resolver and constructor are never needed. Importing the
``yaml`` package costs ~40 ms here, mostly for modules we do not use (``yaml.reader`` compiles a
large regular expression, ``yaml.constructor`` pulls ``datetime``); the command-line tool therefore
loads ``yaml._yaml`` behind a minimal stand-in package (``fast_import``). Library callers get the
plain ``import yaml``.

Syntax errors are turned into yaml.v3's text (``yaml: line N: problem``), including its quirk of
reporting a parser error at the 0-based line of the construct being parsed.
"""

from __future__ import annotations

import _thread
import itertools
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any


_cparser: Any = None
_cmodule: Any = None  # yaml._yaml, whose node classes the light composer swaps (see compose_light)
_fast = False


class YAMLSyntaxError(Exception):
    """A YAML text libyaml cannot parse; ``str()`` is yaml.v3's message. ``line`` and ``column``
    (1-based) are where libyaml found the problem, 0 when it gives no place."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


SNIPPET_WIDTH = 120  # characters of a long line shown around the caret


def snippet(text: bytes | str, line: int, column: int) -> list[str]:
    """The 1-based ``line`` of ``text`` with a caret under ``column``, as a few display lines. A line
    longer than :data:`SNIPPET_WIDTH` is shown as the window around the caret, cut ends marked
    ``…`` (a 50 MiB key must not print 100 MiB)."""
    lines = text.decode("utf-8", "replace").split("\n") if isinstance(text, bytes) else text.split("\n")
    if not 1 <= line <= len(lines):
        return []
    src = lines[line - 1].rstrip("\r").replace("\t", " ")
    at = max(column - 1, 0)
    if len(src) > SNIPPET_WIDTH:
        start = max(0, min(at - SNIPPET_WIDTH // 2, len(src) - SNIPPET_WIDTH))
        end = start + SNIPPET_WIDTH
        head, tail = ("…" if start else ""), ("…" if end < len(src) else "")
        src, at = head + src[start:end] + tail, at - start + len(head)
    gutter = f"{line:>4} | "
    return [gutter + src, " " * (len(gutter) - 2) + "| " + " " * at + "^"]


def fast_import() -> None:
    """Ask for the cheap loading path (used by the CLI, which owns its process)."""
    global _fast
    _fast = True


def _load_cparser() -> Any:
    global _cparser, _cmodule
    if _cparser is not None:
        return _cparser
    if _fast and "yaml" not in sys.modules:
        _cmodule = _load_behind_stub()
    if _cmodule is None:
        from yaml import _yaml  # the full package; no speed trick

        _cmodule = _yaml
    _cparser = _cmodule.CParser
    return _cparser


def _load_behind_stub() -> Any:
    """Import ``yaml._yaml`` without running ``yaml/__init__.py``.

    The C module only needs the error classes of a few pure-Python modules; those it gets from
    tiny stand-ins. The stand-ins are removed afterwards so a later ``import yaml`` in this
    process loads the real package.
    """
    import importlib.util
    import types

    try:
        spec = importlib.util.find_spec("yaml")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    pkg = types.ModuleType("yaml")
    pkg.__path__ = list(spec.submodule_search_locations)
    added = ["yaml"]
    sys.modules["yaml"] = pkg
    try:
        import importlib

        error = importlib.import_module("yaml.error")
        for real in ("nodes", "events", "tokens"):
            setattr(pkg, real, importlib.import_module("yaml." + real))
            added.append("yaml." + real)
        pkg.error = error  # type: ignore[attr-defined]  # a bare module standing in for the package
        added.append("yaml.error")
        for name, cls in (
            ("reader", "ReaderError"),
            ("scanner", "ScannerError"),
            ("parser", "ParserError"),
            ("composer", "ComposerError"),
            ("constructor", "ConstructorError"),
            ("emitter", "EmitterError"),
            ("serializer", "SerializerError"),
            ("representer", "RepresenterError"),
        ):
            mod = types.ModuleType("yaml." + name)
            base = (
                error.YAMLError if name in ("emitter", "serializer", "representer") else error.MarkedYAMLError
            )
            if name == "reader":
                base = error.YAMLError
            setattr(mod, cls, type(cls, (base,), {}))
            setattr(pkg, name, mod)
            sys.modules["yaml." + name] = mod
            added.append("yaml." + name)
        cmod = importlib.import_module("yaml._yaml")
        added.append("yaml._yaml")
        return cmod
    except Exception:
        return None
    finally:
        for name in added:
            sys.modules.pop(name, None)


# --- the fast path for large literal block scalars -----------------------------------------------
#
# libyaml reads ~60 MB/s: a config carrying tens of MiB of inline file contents spends most of its
# translation in the scanner, going through the contents byte by byte. The contents of a literal
# block scalar (``inline: |``) are however defined by indentation alone; we cut the large ones out
# before libyaml sees the text, at C speed (``bytes`` methods), and put each back into its node:
#
# - a header line ``[- ...][key: ]|`` or ``|-`` whose first body line is content, indented by k
#   spaces; the body runs to the first line that is neither empty nor indented by k spaces;
# - a body is cut only when it is plain ASCII (printable, tab, LF), ends with a line break and is
#   not followed by a line of spaces (which YAML would count as an empty line of the body);
# - in its place libyaml sees one line ``<k spaces>PINE~CUT~<n>``; the lines of the nodes after it
#   are shifted back by the lines the body had (columns are unchanged);
# - the composed tree is then checked: every placeholder must come back, once, as a literal scalar
#   whose value is exactly the placeholder. Anything else (a header that was really inside a
#   quoted scalar, a body libyaml reads differently, a syntax error) falls back to composing the
#   whole text, so errors and their positions are libyaml's own.
CUT_MIN_TEXT = 1 << 18  # texts from 256 KiB on are worth the pre-pass
CUT_MIN_BODY = 4096  # bodies from this size on are cut out
_TOKEN = "PINE~CUT~"
_FAILED = object()
FAILED = _FAILED  # what compose_light returns for a text it does not compose
_header_re: Any = None
_bar_re: Any = None
_end_re: dict[int, Any] = {}
# Bytes libyaml takes as they are in a literal scalar: tab, LF and printable ASCII. LF is kept out
# of this set too, so that what ``translate`` leaves of a body is its line breaks (counted).
_PLAIN_ASCII = bytes([9, *range(0x20, 0x7F)])


def _cut(data: bytes) -> tuple[bytes, list[tuple[str, bool]], list[tuple[int, int]]] | None:
    """(skeleton text, [(body value, strip chomping)], [(0-based skeleton line of a placeholder,
    lines of its body)]) or None when there is nothing to cut."""
    import re

    global _header_re, _bar_re
    if _header_re is None:
        # matched at the start of a line; found through its "|" (a regular expression that starts
        # with "^" is tried at every byte of the text: 20x slower over long bodies that stay)
        _header_re = re.compile(rb" *(?:- +)*(?:[A-Za-z0-9_][A-Za-z0-9_.-]*: +)?\|(-?) *\n(?=( +)[!-~])")
        _bar_re = re.compile(rb"\|-? *\n")
    pieces: list[bytes] = []
    bodies: list[tuple[str, bool]] = []
    lines: list[tuple[int, int]] = []
    line = 0  # skeleton lines in pieces
    pos = 0  # end of what is already in pieces
    scan = 0
    while True:
        bar = _bar_re.search(data, scan)
        if bar is None:
            break
        scan = bar.end()
        m = _header_re.match(data, data.rfind(b"\n", 0, bar.start()) + 1)
        if m is None or m.end() != scan:
            continue
        start, k = m.end(), len(m[2])
        # A body of CUT_MIN_BODY bytes or more holds the line at that distance, empty or indented
        # by k spaces: when that line is neither, the body is shorter (no need to find its end).
        far = start + CUT_MIN_BODY - 1
        if far >= len(data):
            continue
        ls = data.rfind(b"\n", start, far) + 1 or start
        if data[ls] != 10 and not data.startswith(b" " * k, ls):
            continue
        end_re = _end_re.get(k)
        if end_re is None:
            end_re = _end_re[k] = re.compile(rb"\n(?! {%d}|\n)" % k)
        e = end_re.search(data, start)
        end = e.end() if e is not None else len(data)
        if end - start < CUT_MIN_BODY or data[end - 1] != 10:
            continue
        nxt = data.find(b"\n", end)
        if nxt != -1 and not data[end:nxt].strip(b" "):
            continue  # a line of fewer than k spaces: YAML reads on past it
        body = data[start + k : end]
        breaks = body.translate(None, _PLAIN_ASCII)
        if breaks.strip(b"\n"):
            continue  # not plain ASCII: left to libyaml
        value = body.replace(b"\n" + b" " * k, b"\n")
        strip = m[1] == b"-"
        keep = len(value)
        while keep and value[keep - 1] == 10:  # trailing empty lines are chomped
            keep -= 1
        if not strip and keep < len(value):
            keep += 1  # clip keeps one line break
        view = memoryview(value)[:keep] if keep < len(value) else value
        before = data[pos:start]
        line += before.count(b"\n")
        lines.append((line, len(breaks)))
        line += 1
        pieces.append(before)
        pieces.append(b" " * k + b"%s%d\n" % (_TOKEN.encode(), len(bodies)))
        bodies.append((str(view, "ascii"), strip))
        pos = scan = end
    if not bodies:
        return None
    pieces.append(data[pos:])
    return b"".join(pieces), bodies, lines


def _compose_cut(data: bytes, light: bool = False) -> Any:
    """``_compose`` (``light``: ``_compose_light``) with the large literal bodies cut out and put
    back; _FAILED when it cannot."""
    got = _cut(data)
    if got is None:
        return _FAILED
    skeleton, bodies, lines = got
    try:
        root = _compose_light(skeleton) if light else _compose(skeleton)
    except (YAMLSyntaxError, RecursionError):
        return _FAILED
    if root is _FAILED:
        return _FAILED
    import bisect

    # Node on skeleton line L: original line L + the lines the bodies cut above it had, less 1 each.
    at = [ln for ln, _ in lines]
    shift = [0]
    for _, n in lines:
        shift.append(shift[-1] + n - 1)
    found = [False] * len(bodies)
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if not light and (d := shift[bisect.bisect_left(at, node.end_mark.line)]):  # (light: no marks)
            m = node.end_mark  # libyaml's marks are read-only: new ones (index: in the skeleton, unused)
            node.end_mark = type(m)(m.name, m.index, m.line + d, m.column, None, None)
            m = node.start_mark
            d = shift[bisect.bisect_left(at, m.line)]
            if d:
                node.start_mark = type(m)(m.name, m.index, m.line + d, m.column, None, None)
        if node.id == "mapping":
            for k, v in node.value:
                stack.append(k)
                stack.append(v)
        elif node.id == "sequence":
            stack.extend(node.value)
        elif _TOKEN in node.value:
            head, _, rest = node.value.partition(_TOKEN)
            num = rest.rstrip("\n")
            if head or not num.isdigit() or node.style != "|" or int(num) >= len(bodies):
                return _FAILED
            i = int(num)
            if found[i] or rest != num + ("" if bodies[i][1] else "\n"):
                return _FAILED
            found[i] = True
            node.value = bodies[i][0]
    return root if all(found) else _FAILED


class Tags:
    PLAIN = "?"  # plain scalar, resolved later by Go's rules
    QUOTED = "!"  # quoted or block scalar: always a string


def compose(text: bytes | str) -> Any:
    """The first document's root node (None for an empty stream); raises YAMLSyntaxError."""
    if isinstance(text, bytes) and len(text) >= CUT_MIN_TEXT:
        root = _compose_cut(text)
        if root is not _FAILED:
            return root
    return _compose(text)


# --- the light composer: no positions ------------------------------------------------------------
#
# Two in three nodes of a large config are scalars; PyYAML's composer gives each a Python node with
# a __dict__ and two libyaml marks (~400 bytes, and the time to make them): 300,000 file entries
# are 1.2 GiB of nodes. A config that yields no finding needs no position at all, so it is
# composed first with light nodes (slots: tag, value, style; no marks), decoded without places,
# translated and checked. Whatever needs a place (a finding, an error, a warning) asks a light node
# for its ``start_mark`` or ``end_mark``: that raises ``NeedPlaces``, and the caller composes the
# text again with PyYAML's nodes and goes the way it always went, so every message and place is
# the one it always was. Aliases share nodes: a text that may hold an anchor (``&``) is composed
# with marks from the start (the decoder finds aliases by their positions).
#
# The light nodes come from ``_pine_lightyaml`` (C, butane_like/_lightyaml.c: libyaml's events
# straight to nodes; 300,000 files: 1.0 s and 291 MiB against 2.8 s and 483 MiB) where the package
# was built with it, else from PyYAML's C composer with the node classes below swapped in.


class NeedPlaces(Exception):
    """A light node was asked for its position: compose again with marks."""


def _no_mark(self: Any) -> Any:
    raise NeedPlaces


class _LightScalar:
    __slots__ = ("style", "tag", "value")
    id = "scalar"
    start_mark = end_mark = property(_no_mark)

    def __init__(self, tag: Any, value: str, start: Any, end: Any, style: str | None) -> None:
        # resolve (below) is ``slice``: its step is yaml's (plain_implicit, quoted_implicit)
        self.tag = (Tags.PLAIN if tag.step[0] else Tags.QUOTED) if tag.__class__ is slice else tag
        self.value = value
        self.style = style


class _LightCollection:
    __slots__ = ("tag", "value")
    # The composer sets end_mark after the items: taken and dropped by ``slice`` (a C call).
    start_mark = property(_no_mark)
    end_mark = property(_no_mark, slice)  # type: ignore[arg-type]  # slice takes (node, mark)
    kind = ""  # the tag of an untagged one

    def __init__(self, tag: Any, value: list, start: Any, end: Any, flow: Any) -> None:
        self.tag = tag if tag.__class__ is str else self.kind
        self.value = value


class _LightSequence(_LightCollection):
    __slots__ = ()
    id = "sequence"
    kind = "seq"


class _LightMapping(_LightCollection):
    __slots__ = ()
    id = "mapping"
    kind = "map"


# An anchor indicator where a node can start: at the start, after a blank, a line break (LF, CR;
# NEL, LS, PS end in 0x85, 0xA8, 0xA9), a byte order mark (ends in 0xBF) or an indicator. Taking
# more for an anchor only costs time: ``a &b`` in a plain scalar is (marks then); ``a&b`` is not.
_ANCHOR = rb"(?:^|[ \t\r\n\[{,:?\-\x85\xa8\xa9\xbf])&"
_anchor_search: Any = None
_LIGHT_NODES = (_LightScalar, _LightSequence, _LightMapping)
_light_parser_cls: Any = None
# Held while a composer runs: the light one swaps the C module's node classes for its call.
_swap_lock = _thread.allocate_lock()


def light_ok(data: bytes) -> bool:
    """Whether ``data`` can be composed with light nodes: no anchor in it."""
    global _anchor_search
    if b"&" not in data:
        return True
    if _anchor_search is None:
        import re

        _anchor_search = re.compile(_ANCHOR).search
    return _anchor_search(data) is None


def compose_light(data: bytes) -> Any:
    """``compose`` with light nodes (see above); _FAILED when the text does not compose (the
    caller composes it with marks, for the error's place)."""
    if len(data) >= CUT_MIN_TEXT:
        root = _compose_cut(data, light=True)
        if root is not _FAILED:
            return root
    try:
        return _compose_light(data)
    except RecursionError:
        return _FAILED


_c_compose: Any = None  # _pine_lightyaml.compose once loaded; False: that module is not there


def _compose_light(text: bytes | str) -> Any:
    global _c_compose
    if _c_compose is None:
        try:  # (built from _lightyaml.c when the package was installed, where it could be)
            from _pine_lightyaml import compose as _c_compose  # type: ignore[import-not-found]  # (C)
        except ImportError:
            _c_compose = False
    if _c_compose and isinstance(text, bytes):
        return _c_compose(text, Tags.PLAIN, Tags.QUOTED, NeedPlaces, _FAILED)
    return _compose_light_pyyaml(text)


def _compose_light_pyyaml(text: bytes | str) -> Any:
    """``_compose_light`` with PyYAML's C composer and the light node classes swapped in."""
    global _light_parser_cls
    cparser: Any = _load_cparser()
    if _light_parser_cls is None:
        from _operator import is_  # built in

        class LightParser(cparser):
            # C callables instead of Python methods, called once per node: the tag comes back as
            # slice(kind, value, implicit), read by the light node's __init__.
            resolve = slice
            descend_resolver = is_  # (no object made)
            ascend_resolver = tuple

        _light_parser_cls = LightParser
    names = vars(_cmodule)
    # The C composer makes its nodes from these module globals: swapped for this call only, one
    # call at a time, ours with marks (``_compose``) waiting too. (A PyYAML C loader that another
    # thread runs meanwhile would get light nodes: pine-transpile runs none.)
    with _swap_lock:
        saved = names["ScalarNode"], names["SequenceNode"], names["MappingNode"]
        names["ScalarNode"], names["SequenceNode"], names["MappingNode"] = _LIGHT_NODES
        parser = _light_parser_cls(text)
        try:
            root = parser.get_node() if parser.check_node() else None
        except RecursionError:
            raise
        except Exception:  # a syntax error: its message and place come from the composer with marks
            return _FAILED
        finally:
            names["ScalarNode"], names["SequenceNode"], names["MappingNode"] = saved
            parser.dispose()
    if root is not None and root.__class__ not in _LIGHT_NODES:
        return _FAILED  # a libyaml binding that does not look its node classes up: not light
    return root


def _compose(text: bytes | str) -> Any:
    cparser = _load_cparser()
    parser = _parser_class(cparser)(text)
    try:
        with _swap_lock:  # (not while the light composer has its node classes in place)
            # check_node() steps over STREAM-START; an empty stream has no node.
            return parser.get_node() if parser.check_node() else None
    except Exception as e:  # libyaml errors: ScannerError, ParserError, ComposerError, ReaderError
        mark = getattr(e, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        raise YAMLSyntaxError(_go_message(e, text), line, column) from None
    finally:
        parser.dispose()


_parser_cls: Any = None


def _parser_class(cparser: Any) -> Any:
    global _parser_cls
    if _parser_cls is None:

        class Parser(cparser):
            def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
                # Called for untagged nodes; remember only "plain or not".
                if isinstance(implicit, tuple):
                    return Tags.PLAIN if implicit[0] else Tags.QUOTED
                return "seq" if "Sequence" in kind.__name__ else "map"

            def descend_resolver(self, *a: Any) -> None:
                pass

            def ascend_resolver(self, *a: Any) -> None:
                pass

        _parser_cls = Parser
    return _parser_cls


def _go_message(e: Exception, text: bytes | str | None = None) -> str:
    if type(e).__name__ == "ReaderError":
        # Bad bytes (control characters, invalid UTF-8): yaml.v3 gives the reason and no line.
        reason = getattr(e, "reason", None)
        if reason is None and len(e.args) >= 5:
            reason = e.args[4]
        return f"yaml: {reason or 'invalid input'}"
    problem = getattr(e, "problem", None)
    if not problem:
        return "yaml: unknown problem parsing YAML content"
    if type(e).__name__ == "ComposerError" and problem == "found undefined alias" and text is not None:
        # yaml.v3's wording names the alias (and no line).
        mark = getattr(e, "problem_mark", None)
        lines = text.decode("utf-8", "replace").split("\n") if isinstance(text, bytes) else text.split("\n")
        if mark is not None and 0 <= mark.line < len(lines):
            rest = lines[mark.line][mark.column :].lstrip("*")
            name = "".join(itertools.takewhile(lambda c: not c.isspace() and c not in ",[]{}", rest))
            return f"yaml: unknown anchor '{name}' referenced"
    scanner = type(e).__name__ == "ScannerError"
    line = 0
    cmark = getattr(e, "context_mark", None)
    pmark = getattr(e, "problem_mark", None)
    if cmark is not None and cmark.line != 0:
        line = cmark.line + (1 if scanner else 0)
    elif pmark is not None and pmark.line != 0:
        line = pmark.line + (1 if scanner else 0)
    if type(e).__name__ == "ComposerError" and pmark is not None:
        line = pmark.line + 1
    where = f"line {line}: " if line else ""
    return f"yaml: {where}{problem}"
