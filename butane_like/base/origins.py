"""Where each output value came from: output containers and leaves mapped back to YAML paths.

Every output container is registered with the YAML path it came from (``Origins.reg``); output
leaves that do not come from the same-named YAML key (a ``source`` made from ``inline``) get their
own record (``Origins.leaf_from``). An output path is mapped by walking the output tree down to the
deepest registered container. Sugar is rendered as a config of its own and merged under the
user's with Ignition's merge (``pineinstall.config.merge``), which reports what it makes to
``Origins.merged``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any


class Origins:
    """Origins of output containers and leaves, to map output paths back to YAML paths."""

    def __init__(self) -> None:
        self.origin: dict[int, tuple] = {}
        self.leaf: dict[tuple[int, Any], tuple] = {}
        # Everything whose id is a key above stays alive, so that no new object reuses the id.
        self.keep: list[Any] = []
        # Some objects are not registered, their origin being their holder's plus their key
        # (Translator.lean): no merge may come, which would take a parent's origin for them.
        self.partial = False

    def reg(self, obj: Any, ypath: tuple) -> Any:
        self.origin[id(obj)] = ypath
        self.keep.append(obj)
        return obj

    def leaf_from(self, obj: Any, key: Any, ypath: tuple) -> None:
        self.leaf[(id(obj), key)] = ypath
        self.keep.append(obj)

    def merged(self, result: Any, parent: Any, child: Any) -> None:
        """The merge made ``result`` from ``parent`` and ``child``: it comes from the child when the
        child's origin is known (else the parent's), and keeps the leaf records of the side each
        of its keys came from."""
        got = self.origin.get(id(child))
        if got is None:
            got = self.origin.get(id(parent))
        if got is not None:
            self.reg(result, got)
        if not isinstance(result, dict):
            return
        for key in child:
            lf = self.leaf.get((id(child), key))
            if lf is not None:
                self.leaf_from(result, key, lf)
        for key in parent:
            if key not in child:
                lf = self.leaf.get((id(parent), key))
                if lf is not None:
                    self.leaf_from(result, key, lf)

    def merge_under(self, rendered: dict, out: dict) -> dict:
        """Ignition's merge of the user's config ``out`` over the ``rendered`` sugar, as Butane
        does with its sugar: an explicit entry of the user wins."""
        from pineinstall.config.merge import merge

        if self.partial:
            raise AssertionError("a merge into a copy made without all its origins (Translator.lean)")
        return merge(rendered, out, self.merged)

    def yaml_path(self, root: dict, jpath: tuple) -> tuple:
        """The YAML path of an output path (deepest known origin, then snake_case fallback)."""
        from ..fields import snake

        best: tuple = ()
        rest_from = 0
        node: Any = root
        if id(root) in self.origin:
            best = self.origin[id(root)]
        for i, part in enumerate(jpath):
            if isinstance(node, (dict, list)):
                lf = self.leaf.get((id(node), part))
                if lf is not None:
                    best, rest_from = lf, i + 1
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                node = None
            if node is None:
                break
            got = self.origin.get(id(node)) if isinstance(node, (dict, list)) else None
            if got is not None:
                best, rest_from = got, i + 1
        rest = tuple(snake(p) if isinstance(p, str) else p for p in jpath[rest_from:])
        return best + rest
