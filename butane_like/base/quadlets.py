"""``systemd.quadlets`` (base v0_8_exp: fcos 1.8.0-experimental, flatcar 1.2.0-experimental):
Podman quadlet files become storage entries, as Butane's ``processQuadlets`` makes them.

A quadlet lives under /etc/containers/systemd (``rootful``) or /etc/containers/systemd/users; its
drop-ins under ``<quadlet path>.d/``. A template instance (``foo@100.container``) becomes a link
to its template (``foo@.container``) and may not have contents. Files get mode 0644 and their
contents as a data URL (empty when none is given). A path that already has a node is an error.
"""

from __future__ import annotations

import posixpath

from ..errors import ERR_NODE_EXISTS, ERR_QUADLET_EXTENSION, ERR_TEMPLATE_CONTENTS, ERR_TOO_MANY_UNIT_SOURCES
from .local import read_local

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from .translate import Translator

EXTENSIONS = (".container", ".volume", ".network", ".kube", ".image", ".build", ".pod", ".artifact")


def template_of(name: str) -> str | None:
    """The template a quadlet name is an instance of (``foo@1.container`` -> ``foo@.container``)."""
    at = name.find("@")
    dot = name.rfind(".")
    if at == -1 or dot == -1 or at + 1 == dot:
        return None
    return f"{name[:at]}@.{name[dot + 1 :]}"


def validate_quadlets(tr: Translator, quadlets: list) -> None:
    """Butane's ``Quadlet.Validate``, then its drop-ins' checks (the struct walk's order)."""
    for i, q in enumerate(quadlets):
        here = ("systemd", "quadlets", i)
        name = q.get("name") or ""
        if not name.endswith(EXTENSIONS):
            tr.report.error(ERR_QUADLET_EXTENSION, (*here, "name"))
        elif template_of(name) is not None:
            for key in ("contents", "contents_local"):
                if key in q:
                    tr.report.error(ERR_TEMPLATE_CONTENTS, (*here, key))
        elif "contents" in q and "contents_local" in q:
            tr.report.error(ERR_TOO_MANY_UNIT_SOURCES, (*here, "contents_local"))
        for j, d in enumerate(q.get("dropins") or []):
            if "contents" in d and "contents_local" in d:
                tr.report.error(ERR_TOO_MANY_UNIT_SOURCES, (*here, "dropins", j, "contents_local"))


def add_quadlets(tr: Translator, out: dict, quadlets: list) -> None:
    storage = out.setdefault("storage", {})
    if id(storage) not in tr.origins.origin:
        tr.origins.reg(storage, ("systemd", "quadlets"))
    taken = {
        node.get("path") for kind in ("files", "directories", "links") for node in storage.get(kind) or []
    }
    for i, q in enumerate(quadlets):
        here = ("systemd", "quadlets", i)
        name = q.get("name") or ""
        base = "/etc/containers/systemd" if q.get("rootful") is True else "/etc/containers/systemd/users"
        path = posixpath.join(base, name)
        template = template_of(name)
        if template is not None:
            _add_link(tr, storage, taken, path, template, here)
        else:
            _add_file(tr, storage, taken, path, q, here)
        for j, d in enumerate(q.get("dropins") or []):
            _add_file(tr, storage, taken, f"{path}.d/{d.get('name') or ''}", d, (*here, "dropins", j))


def _add_link(tr: Translator, storage: dict, taken: set, path: str, target: str, ypath: tuple) -> None:
    if path in taken:
        tr.report.error(ERR_NODE_EXISTS, ypath)
        return
    taken.add(path)
    link = tr.origins.reg({"path": path, "target": target}, ypath)
    tr.origins.leaf_from(link, "path", (*ypath, "name"))
    _list(tr, storage, "links", ypath).append(link)


def _add_file(tr: Translator, storage: dict, taken: set, path: str, src: dict, ypath: tuple) -> None:
    """A quadlet's or drop-in's file, its contents inline or local (the inline one wins)."""
    if path in taken:
        tr.report.error(ERR_NODE_EXISTS, ypath)
        return
    taken.add(path)
    node = tr.origins.reg({"path": path}, ypath)
    tr.origins.leaf_from(node, "path", (*ypath, "name"))
    _list(tr, storage, "files", ypath).append(node)
    data = b""
    where = ypath
    if src.get("contents_local"):
        where = (*ypath, "contents_local")
        local = read_local(tr, src["contents_local"], where)
        if local is None:
            return
        data = local
    if src.get("contents"):
        where = (*ypath, "contents")
        data = src["contents"].encode("utf-8", "surrogateescape")
    url, comp = tr.data_url(data)
    contents = tr.origins.reg({"source": url}, where)
    tr.origins.leaf_from(contents, "source", where)
    if comp is not None:
        contents["compression"] = comp
        tr.origins.leaf_from(contents, "compression", ypath)
    node["contents"] = contents
    node["mode"] = 0o644
    tr.origins.leaf_from(node, "mode", ypath)


def _list(tr: Translator, storage: dict, kind: str, ypath: tuple) -> list:
    if storage.get(kind) is None:
        storage[kind] = tr.origins.reg([], ypath)
    return storage[kind]
