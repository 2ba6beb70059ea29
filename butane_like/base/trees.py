"""``storage.trees``: every file and symlink under a local directory becomes a file or link entry.

As Butane: the walk is depth-first in lexical order (``filepath.Walk``); an entry the user wrote
for the same path is completed (contents, mode, target) unless it already has contents or is of
another type; executable files get mode 0755, others 0644. From fcos 1.7 (base v0_7) a tree may
set ``user``, ``group``, ``file_mode`` and ``dir_mode``: new nodes get the owners, new files the
mode, and every directory of the tree (its top included) an entry when a dir mode or owner is set.
"""

from __future__ import annotations

import os

from pineinstall.config.gocompat import go_errno_text

from ..errors import ERR_FILE_TYPE, ERR_FILES_DIR_ESCAPE, ERR_NO_FILES_DIR, ERR_NODE_EXISTS, ERR_TREE_NOT_DIR
from .local import go_join, within

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from .translate import Translator


def add_trees(tr: Translator, out: dict, trees: list) -> None:
    storage = out.setdefault("storage", {})
    if id(storage) not in tr.origins.origin:
        tr.origins.reg(storage, ("storage",))
    files = storage.setdefault("files", [])
    links = storage.setdefault("links", [])
    dirs = storage.get("directories") or []
    by_path: dict[str, tuple[str, dict]] = {}
    for kind, lst in (("dir", dirs), ("file", files), ("link", links)):
        # Butane's node tracker maps a path to the last entry of a kind that has it.
        last = {node.get("path"): node for node in lst}
        for path, node in last.items():
            by_path.setdefault(path, (kind, node))
    for i, tree in enumerate(trees):
        ypath = ("storage", "trees", i)
        if not tr.files_dir:
            tr.report.error(ERR_NO_FILES_DIR, ypath)
            return
        local = tree.get("local") or ""
        src = go_join(tr.files_dir, local)
        if not within(src, tr.files_dir):
            tr.report.error(ERR_FILES_DIR_ESCAPE, ypath)
            continue
        try:
            st = os.stat(src)
        except OSError as e:
            tr.report.error(f"stat {src}: {go_errno_text(e)}", ypath)
            continue
        import stat as statmod

        if not statmod.S_ISDIR(st.st_mode):
            tr.report.error(ERR_TREE_NOT_DIR, ypath)
            continue
        dest = tree.get("path") or "/"
        _add_tree(tr, [(src, dest, st), *_walk(tr, src, dest, ypath)], ypath, storage, by_path, tree)


def _walk(tr: Translator, src: str, dest: str, ypath: tuple) -> list[tuple[str, str, os.stat_result]]:
    """(source path, destination path, lstat) of everything under ``src``, as filepath.Walk."""
    import posixpath
    import stat as statmod

    order: list[tuple[str, str, os.stat_result]] = []

    def visit(sdir: str, ddir: str) -> None:
        try:
            names = sorted(os.listdir(sdir))
        except OSError as e:
            tr.report.error(f"open {sdir}: {go_errno_text(e)}", ypath)
            return
        for name in names:
            sp = os.path.join(sdir, name)
            dp = posixpath.join(ddir, name)
            try:
                st = os.lstat(sp)
            except OSError as e:
                tr.report.error(f"lstat {sp}: {go_errno_text(e)}", ypath)
                continue
            order.append((sp, dp, st))
            if statmod.S_ISDIR(st.st_mode):
                visit(sp, dp)

    visit(src, dest)
    return order


def _new_node(tr: Translator, path: str, tree: dict, ypath: tuple) -> dict:
    """A node the tree adds: its path, and the tree's owners when it names them."""
    node: dict = {"path": path}
    for key in ("user", "group"):
        owner = {k: v for k, v in (tree.get(key) or {}).items() if v is not None}
        if owner:
            node[key] = tr.origins.reg(owner, ypath)
    return tr.origins.reg(node, ypath)


def _node_for(
    tr: Translator, kind: str, dp: str, tree: dict, ypath: tuple, nodes: list, by_path: dict
) -> dict | None:
    """The config's own node of this kind at ``dp`` when it sets no content of its own yet (the tree
    fills it in), a new node otherwise; None (and an error) when the path is taken by another kind or
    by a node with content."""
    got = by_path.get(dp)
    if got is None:
        node = _new_node(tr, dp, tree, ypath)
        nodes.append(node)
        by_path[dp] = (kind, node)
        return node
    have, node = got
    filled = (node.get("contents") or {}).get("source") if kind == "file" else node.get("target")
    if have != kind or filled:
        tr.report.error(ERR_NODE_EXISTS, ypath)
        return None
    return node


def _add_tree(
    tr: Translator,
    order: list[tuple[str, str, os.stat_result]],
    ypath: tuple,
    storage: dict,
    by_path: dict,
    tree: dict,
) -> None:
    import stat as statmod

    files, links = storage["files"], storage["links"]
    reg, leaf_from = tr.origins.reg, tr.origins.leaf_from
    owned = any(v is not None for key in ("user", "group") for v in (tree.get(key) or {}).values())
    dir_entries = tree.get("dir_mode") is not None or owned
    for sp, dp, st in order:
        mode = st.st_mode
        node: dict | None
        if statmod.S_ISDIR(mode):
            if not dir_entries:
                continue
            if dp in by_path:
                tr.report.error(ERR_NODE_EXISTS, ypath)
                continue
            node = _new_node(tr, dp, tree, ypath)
            node["mode"] = tree["dir_mode"] if tree.get("dir_mode") is not None else 0o755
            storage.setdefault("directories", []).append(node)
            by_path[dp] = ("dir", node)
            continue
        if statmod.S_ISREG(mode):
            node = _node_for(tr, "file", dp, tree, ypath, files, by_path)
            if node is None:
                continue
            try:
                with open(sp, "rb") as f:
                    data = f.read()
            except OSError as e:
                tr.report.error(f"open {sp}: {go_errno_text(e)}", ypath)
                continue
            contents = node.get("contents")
            if contents is None:
                contents = reg({}, ypath)
                node["contents"] = contents
            url, comp = tr.data_url(data, contents.get("compression"))
            contents["source"] = url
            leaf_from(contents, "source", ypath)
            if comp is not None:
                contents["compression"] = comp
                leaf_from(contents, "compression", ypath)
            if node.get("mode") is None:
                node["mode"] = 0o755 if mode & 0o111 else 0o644
                if tree.get("file_mode") is not None:
                    node["mode"] = tree["file_mode"]
                leaf_from(node, "mode", ypath)
        elif statmod.S_ISLNK(mode):
            node = _node_for(tr, "link", dp, tree, ypath, links, by_path)
            if node is None:
                continue
            node["target"] = os.readlink(sp)
            leaf_from(node, "target", ypath)
        else:
            tr.report.error(ERR_FILE_TYPE, ypath)
