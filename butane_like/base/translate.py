"""From a decoded Butane config (YAML-side dicts) to an Ignition config (JSON-side dicts).

The phases and their order are Butane's, because the order of the report is visible to users:
validation of the source (``base.validate``), the field copy with resources and local files
(here), trees and mount units (``base.trees``, ``base.mount_units``), then the variant's sugar
and filters (``butane_like.variants``). Every output container is registered with the YAML path it
came from (``base.origins``), so that later checks report at the user's lines.
"""

from __future__ import annotations

from ..fields import B, I, S, Spec, camel, snake
from . import dataurl
from .local import read_local, ssh_keys_local
from .origins import Origins

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

    from pineinstall.config.report import Report

# Sugar keys the field copy skips, by object: the sugar's own code translates them.
_SUGAR = {
    "Config": {"variant", "version", "boot_device", "grub", "openrc", "network"},
    "Storage": {"trees"},
    "Systemd": {"quadlets"},
    "Filesystem": {"with_mount_unit"},
    "PasswdUser": {"ssh_authorized_keys_local"},
    "Unit": {"contents_local"},
    "Dropin": {"contents_local"},
    "Resource": {"inline", "local"},
    "ConfigResource": {"inline", "local"},
}


_SCALARS = (S, I, B)
_SCALAR, _SCALAR_LIST, _OTHER = 0, 1, 2  # how the field copy copies a field
# A list of scalars whose origin need not be registered: Origins.yaml_path finds the same YAML path
# from the object holding it (JSON key snake_cased back to the YAML key), and no sugar merges
# into it (Origins.merged would then take the sugar's list's origin). An account's groups and SSH
# keys: two records less per user of a large config.
_SCALAR_LIST_UNREGISTERED = 3
_ACCOUNTS = ("PasswdUser", "PasswdGroup")


def _copy_kind(ftyp: Any) -> int:
    if ftyp in _SCALARS:
        return _SCALAR
    if isinstance(ftyp, tuple) and ftyp[1] in _SCALARS:
        return _SCALAR_LIST
    return _OTHER


# The large lists no later step reads on the YAML side (the sugar reads filesystems, luks, trees,
# quadlets and its own keys): with ``Translator.consume``, each item goes as it is copied.
_CONSUMED = frozenset(
    (
        ("storage", "files"),
        ("storage", "directories"),
        ("storage", "links"),
        ("passwd", "users"),
        ("passwd", "groups"),
        ("systemd", "units"),
    )
)


def _taken(items: list) -> Any:
    """The items of ``items``, each taken out of the list as it is handed over."""
    for i, item in enumerate(items):
        items[i] = None
        yield item


# The sugar that merges a rendered config of its own under the user's (Origins.merge_under); with
# none of it, the copy's resources need no origin record (see Translator.lean).
_MERGING_SUGAR = frozenset(("boot_device", "grub", "openrc", "network"))


class Translator:
    """The state of one translation: the spec, the files directory, the report, the origins."""

    def __init__(self, spec: Spec, files_dir: str | None, report: Report, safety: bool = False) -> None:
        from ..variants import sugar_of

        self.spec = spec
        self.safety = safety  # our rules beyond Ignition's (pineinstall.config.rules.validate)
        self.variant = sugar_of(spec.variant)
        self.files_dir = files_dir
        self.report = report
        self.origins = Origins()
        self.invalid_utf8 = False  # a local file was not UTF-8 (kept as lone surrogates)
        # ids of the data URLs we made: valid by construction, not worth Ignition's byte scan.
        # (The URLs are kept alive in _urls so that no other string can ever reuse their ids.)
        self.generated: set[int] = set()
        self._urls: list[str] = []
        # id(inline text) -> its data URL and compression, made in parallel before the walk
        self.prepared: dict[int, tuple[str, str | None]] = {}
        # what is left of this translation's allowance of Go's (slow, exact) gzip bytes
        self.exact_gzip = dataurl.ExactBudget()
        # object -> the fields the copy copies (see _plan)
        self._plans: dict[str, tuple[dict[str, tuple[str, int]], list[tuple[str, Any, str]]]] = {}
        # The YAML side's large lists are read once, by the copy (see _CONSUMED): their items are
        # freed as the output's are made (300,000 files: 750 -> 695 MiB peak). Set by the caller
        # that drops the YAML side after ``translate``.
        self.consume = False
        # No sugar merges into the copy: a resource's (and its verification's) origin is its
        # holder's plus its key, a list item's the list's plus its index, which Origins.yaml_path
        # finds without a record (300,000 files: 675,000 records less). A merge would give an unrecorded
        # child its parent's origin (Origins.merged), and reorder lists: refused then.
        self.lean = False

    def data_url(
        self, data: bytes, compression: str | None = None, made: tuple[str, str | None] | None = None
    ) -> tuple[str, str | None]:
        if self.spec.base < 2:  # fcos 1.0 (base v0_1) only percent-encodes, with no compression
            made = ("data:," + dataurl.percent_escape(data), None)
        url, comp = (
            made if made is not None else dataurl.make_data_url(data, compression, exact=self.exact_gzip)
        )
        self.generated.add(id(url))
        self._urls.append(url)
        return url, comp

    def text(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 = True
            return data.decode("utf-8", "surrogateescape")

    def _prefetch_data_urls(self, cfg: dict) -> None:
        """Encode the larger inline contents up front, in parallel: gzip is the costly part."""
        if self.spec.base < 2:
            return
        big = []
        least = dataurl.PREFETCH_MIN
        for f in (cfg.get("storage") or {}).get("files") or []:
            contents = f.get("contents")
            # (most files: contents without inline text, no append; nothing made per file)
            for r in (contents,) if "append" not in f else [contents, *(f["append"] or [])]:
                if r and "inline" in r:
                    inline = r["inline"]
                    if isinstance(inline, str) and len(inline) >= least and not r.get("compression"):
                        big.append(inline)
        if len(big) < 2:
            return
        done = dataurl.data_urls_many(big, self.exact_gzip)
        self.prepared = {id(s): made for s, made in zip(big, done, strict=True)}

    def translate(self, cfg: dict) -> dict:
        self._prefetch_data_urls(cfg)
        self.lean = self.origins.partial = _MERGING_SUGAR.isdisjoint(cfg) and not any(
            fs.get("with_mount_unit") is True for fs in (cfg.get("storage") or {}).get("filesystems") or []
        )
        out = self.convert(cfg, "Config", ())
        ign = out.setdefault("ignition", {})
        if id(ign) not in self.origins.origin:
            self.origins.reg(ign, ("ignition",))
        ign["version"] = self.spec.ign_version
        self.origins.leaf_from(ign, "version", ("version",))
        storage_y = cfg.get("storage") or {}
        if storage_y.get("trees"):
            from .trees import add_trees

            add_trees(self, out, storage_y["trees"])
        if any(fs.get("with_mount_unit") is True for fs in storage_y.get("filesystems") or []):
            from .mount_units import add_mount_units

            out = add_mount_units(self, out, cfg)
        quadlets = (cfg.get("systemd") or {}).get("quadlets")
        if quadlets:
            from .quadlets import add_quadlets

            add_quadlets(self, out, quadlets)
        if self.report.has_errors:
            # Butane's variants stop when the base translation failed: no sugar, no layout checks.
            return out
        return self.variant.translate(self, cfg, out)

    def convert(self, value: Any, typ: Any, ypath: tuple) -> Any:
        """Copy a YAML-side value to the JSON side, doing the per-object sugar."""
        if isinstance(typ, tuple):
            elem = typ[1]
            if elem in _SCALARS:  # (a scalar is copied as it is)
                return self.origins.reg(list(value), ypath)
            if elem in ("Resource", "ConfigResource"):
                return self.origins.reg(
                    [self.convert(v, elem, (*ypath, i)) for i, v in enumerate(value)], ypath
                )
            plan = self._plans.get(elem) or self._plan(elem)
            obj = self._object  # (a list of objects, the large part of a large config: no convert)
            # (without sugar merging, an item's origin is the list's plus its index: see lean)
            reg = not self.lean
            return self.origins.reg(
                [
                    obj(v, elem, (*ypath, i), plan, reg) if v.__class__ is dict else v
                    for i, v in enumerate(_taken(value) if self.consume and ypath in _CONSUMED else value)
                ],
                ypath,
            )
        if not isinstance(value, dict):
            return value
        if typ in ("Resource", "ConfigResource"):
            return self._resource(value, ypath)
        return self._object(value, typ, ypath, self._plans.get(typ) or self._plan(typ))

    def _plan(self, typ: str) -> tuple[dict[str, tuple[str, int]], list[tuple[str, Any, str]]]:
        """({YAML key: (JSON key, _copy_kind)} of the scalar fields the copy copies, [(YAML key,
        type, JSON key)] of the others, in field order)."""
        skip = _SUGAR.get(typ, ())
        fields = [(key, ftyp) for key, ftyp in self.spec.fields(typ).items() if key not in skip]
        scalars = {key: (camel(key), _copy_kind(ftyp)) for key, ftyp in fields if _copy_kind(ftyp) != _OTHER}
        if typ in _ACCOUNTS:
            for key, (json_key, kind) in scalars.items():
                if kind == _SCALAR_LIST and snake(json_key) == key:
                    scalars[key] = (json_key, _SCALAR_LIST_UNREGISTERED)
        others = [(key, ftyp, camel(key)) for key, ftyp in fields if _copy_kind(ftyp) == _OTHER]
        plan = self._plans[typ] = (scalars, others)
        return plan

    def _object(
        self,
        value: dict,
        typ: str,
        ypath: tuple,
        plan: tuple[dict[str, tuple[str, int]], list[tuple[str, Any, str]]],
        reg: bool = True,
    ) -> dict:
        """``convert`` of an object. The value's own keys are gone through (most objects set few of
        their fields); the nested objects and lists, whose copy may report (a local file), in
        field order, as Butane's copy walks them. (The order of ``out``'s keys is not the
        output's: ``gojson.prune`` writes Ignition's.)"""
        out: dict[str, Any] = {}
        origins = self.origins
        if reg:  # (``reg``: False for an item of a large list, see lean)
            origins.origin[id(out)] = ypath  # origins.reg, inline: once per output object
            origins.keep.append(out)
        scalars, others = plan
        nested = False
        for key, v in value.items():
            got = scalars.get(key)
            if got is None:
                nested = True  # a nested field, or sugar
            elif got[1] == _SCALAR:
                out[got[0]] = v
            elif got[1] == _SCALAR_LIST_UNREGISTERED:
                out[got[0]] = list(v)
            else:  # a list of scalars: convert's own copy, without the call
                out[got[0]] = v = list(v)
                origins.origin[id(v)] = (*ypath, key)
                origins.keep.append(v)
        if nested:
            for key, ftyp, json_key in others:
                if key in value:
                    v = value[key]
                    if v.__class__ is dict and (ftyp == "Resource" or ftyp == "ConfigResource"):
                        out[json_key] = self._resource(v, (*ypath, key))  # convert's own dispatch
                    else:
                        out[json_key] = self.convert(v, ftyp, (*ypath, key))
        if typ == "PasswdUser" and "ssh_authorized_keys_local" in value:
            ssh_keys_local(self, out, value, ypath)
        elif typ in ("Unit", "Dropin") and "contents_local" in value:
            data = read_local(self, value["contents_local"], (*ypath, "contents_local"))
            if data is not None:
                out["contents"] = self.text(data)
                self.origins.leaf_from(out, "contents", (*ypath, "contents_local"))
        return out

    def _resource(self, value: dict, ypath: tuple) -> dict:
        """A resource: its ``inline`` text or ``local`` file becomes a data URL ``source``."""
        out: dict[str, Any] = {}
        if not self.lean:
            self.origins.reg(out, ypath)
        if "compression" in value:
            out["compression"] = value["compression"]
        if "http_headers" in value:
            out["httpHeaders"] = self.convert(
                value["http_headers"], ("list", "HTTPHeader"), (*ypath, "http_headers")
            )
        if "source" in value:
            out["source"] = value["source"]
        if "verification" in value:
            v = value["verification"]
            if v.__class__ is dict:  # convert's own reading, with no origin record in a lean copy
                plan = self._plans.get("Verification") or self._plan("Verification")
                v = self._object(v, "Verification", (*ypath, "verification"), plan, not self.lean)
            out["verification"] = v
        data = None
        field = None
        made = None
        if "inline" in value:
            field = "inline"
            # (the same text may also sit in a resource with a declared compression: via an alias)
            made = None if value.get("compression") else self.prepared.pop(id(value["inline"]), None)
            data = b"" if made is not None else value["inline"].encode("utf-8", "surrogateescape")
        elif "local" in value:
            field = "local"
            data = read_local(self, value["local"], (*ypath, "local"))
        if data is not None and field is not None:
            url, comp = self.data_url(data, value.get("compression"), made)
            out["source"] = url
            self.origins.leaf_from(out, "source", (*ypath, field))
            if comp is not None:
                out["compression"] = comp
                self.origins.leaf_from(out, "compression", (*ypath, field))
        return out
