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

import itertools
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any


_cparser: Any = None
_fast = False


class YAMLSyntaxError(Exception):
    """A YAML text libyaml cannot parse; ``str()`` is yaml.v3's message."""


def fast_import() -> None:
    """Ask for the cheap loading path (used by the CLI, which owns its process)."""
    global _fast
    _fast = True


def _load_cparser() -> Any:
    global _cparser
    if _cparser is not None:
        return _cparser
    if _fast and "yaml" not in sys.modules:
        _cparser = _load_behind_stub()
    if _cparser is None:
        from yaml import _yaml  # the full package; no speed trick

        _cparser = _yaml.CParser
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
        pkg.error = error
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
        return cmod.CParser
    except Exception:
        return None
    finally:
        for name in added:
            sys.modules.pop(name, None)


class Tags:
    PLAIN = "?"  # plain scalar, resolved later by Go's rules
    QUOTED = "!"  # quoted or block scalar: always a string


def compose(text: bytes | str) -> Any:
    """The first document's root node (None for an empty stream); raises YAMLSyntaxError."""
    cparser = _load_cparser()
    parser = _parser_class(cparser)(text)
    try:
        # check_node() steps over STREAM-START; an empty stream has no node.
        return parser.get_node() if parser.check_node() else None
    except Exception as e:  # libyaml errors: ScannerError, ParserError, ComposerError, ReaderError
        raise YAMLSyntaxError(_go_message(e, text)) from None
    finally:
        parser.dispose()


_parser_cls: Any = None


def _parser_class(cparser: Any) -> Any:
    global _parser_cls
    if _parser_cls is None:

        class Parser(cparser):  # type: ignore[misc,valid-type]
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
