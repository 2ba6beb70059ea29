"""From a decoded Butane config (YAML-side dicts) to an Ignition config (JSON-side dicts): the sugar.

The phases and their order are Butane's, because the order of the report is visible to users:

1. unused keys (decoding already found them);
2. validation of the source config (``source config is invalid`` when it fails);
3. the translation proper with its sugar (local files, trees, mount units, boot device, GRUB users,
   and Pine's OpenRC services and network) — errors here are also source errors;
4. fields this spec refuses (flatcar: clevis);
5. duplicates and Ignition's own validation of the output (``config generated was invalid``),
   reported at the YAML place that produced each output field.

The place mapping: every output container is registered with the YAML path it came from
(``Out.reg``); output leaves that do not come from the same-named YAML key (a ``source`` made
from ``inline``) get their own record (``Out.leaf``). An output path is mapped by walking the
output tree down to the deepest registered container.
"""

from __future__ import annotations

import os
import re

from . import sugar
from .fields import OBJECTS, Spec, camel
from .report import ERROR, WARNING, Entry

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

ERR_TOO_MANY_SOURCES = "only one of the following can be set: inline, local, source"
ERR_TOO_MANY_UNIT_SOURCES = "only one of the following can be set: contents, contents_local"
ERR_FILES_DIR_ESCAPE = "local file path traverses outside the files directory"
ERR_FILE_TYPE = "trees may only contain files, directories, and symlinks"
ERR_NODE_EXISTS = "matching filesystem node has existing contents or different type"
ERR_NO_FILES_DIR = (
    "local file paths are relative to a files directory that must be specified with -d/--files-dir"
)
ERR_TREE_NOT_DIR = "root of tree must be a directory"
ERR_TREE_NO_LOCAL = "local is required"
ERR_DECIMAL_MODE = (
    "unreasonable mode would be reasonable if specified in octal; remember to add a leading zero"
)
ERR_MOUNT_NO_PATH = "path is required if with_mount_unit is true and format is not swap"
ERR_MOUNT_NO_FORMAT = "format is required if with_mount_unit is true"
ERR_MOUNT_FORBIDDEN = "path must be under /etc or /var if with_mount_unit is true"
ERR_LAYOUT_LEGACY = "layout must be one of: aarch64, ppc64le, x86_64"
ERR_LAYOUT = "layout must be one of: aarch64, ppc64le, s390x-eckd, s390x-virt, s390x-zfcp, x86_64"
ERR_TOO_FEW_MIRROR = "mirroring requires at least two devices"
ERR_NO_LUKS_BOOT_DEVICE = "device is required for layouts: s390x-eckd, s390x-zfcp"
ERR_LUKS_BOOT_DEVICE_NAME = (
    "device name must start with /dev/dasd on s390x-eckd layout or /dev/sd on s390x-zfcp layout"
)
ERR_MIRROR_NOT_SUPPORTED = "mirroring not supported on layouts: s390x-eckd, s390x-zfcp, s390x-virt"
ERR_CEX_ARCH = "when using cex the targeted architecture must match s390x"
ERR_CEX_CLEVIS = "cannot use cex with clevis"
ERR_GRUB_NAME = 'field "name" is required'
ERR_GRUB_PASSWORD = 'field "password_hash" is required'
ERR_REUSE_BY_LABEL = (
    "partitions cannot be reused by label; number must be specified except on boot disk "
    "(/dev/disk/by-id/coreos-boot-disk) or when wipe_table is true"
)
ERR_ROOT_TOO_SMALL = "root should have 8GiB of space assigned"
ERR_CLEVIS_UNSUPPORTED = "clevis is not supported in this spec version"
ERR_DUPLICATE = "duplicate entry defined"
ERR_WRONG_PARTITION_NUMBER = (
    "incorrect partition number; a new partition will be created using reserved label"
)
_RESERVED_LABELS = {"BIOS-BOOT": 1, "PowerPC-PReP-boot": 1, "EFI-SYSTEM": 2, "boot": 3, "root": 4}
WARN_MERGE_UNKNOWN_VERSION = (
    "skipping validation for the merge/replace ignition config due to an unkown version"
)

ROOT_DEVICE = "/dev/disk/by-id/coreos-boot-disk"
_ALLOWED_MOUNT = r"^/(etc|var)(/|$)"
_DASD = r"(/dev/dasd[a-z]$)"
_SD = r"(/dev/sd[a-z]$)"
_SSH_SPLIT = r"\r?\n"

RESERVED_GUID = "8DA63339-0007-60C0-C436-083AC8230908"
BIOS_GUID = "21686148-6449-6E6F-744E-656564454649"
PREP_GUID = "9E1A2D38-C612-4316-AA26-8B49521E5A8B"
ESP_GUID = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"

# Sugar keys the generic field copy skips, by object.
_SUGAR = {
    "Config": {"variant", "version", "boot_device", "grub", "openrc", "network"},
    "Storage": {"trees"},
    "Filesystem": {"with_mount_unit"},
    "PasswdUser": {"ssh_authorized_keys_local"},
    "Unit": {"contents_local"},
    "Dropin": {"contents_local"},
    "Resource": {"inline", "local"},
    "ConfigResource": {"inline", "local"},
}


class Out:
    """Origins of output containers and leaves, to map output paths back to YAML paths."""

    def __init__(self) -> None:
        self.origin: dict[int, tuple] = {}
        self.leaf: dict[tuple[int, str], tuple] = {}
        self._keep: list[Any] = []

    def reg(self, obj: Any, ypath: tuple) -> Any:
        self.origin[id(obj)] = ypath
        self._keep.append(obj)
        return obj

    def leaf_from(self, obj: Any, key: Any, ypath: tuple) -> None:
        self.leaf[(id(obj), key)] = ypath
        self._keep.append(obj)

    def yaml_path(self, root: dict, jpath: tuple) -> tuple:
        """The YAML path of an output path (deepest known origin, then snake_case fallback)."""
        from .fields import snake

        best: tuple = ()
        rest_from = 0
        node: Any = root
        if id(root) in self.origin:
            best = self.origin[id(root)]
        for i, part in enumerate(jpath):
            if isinstance(node, (dict, list)):
                lf = self.leaf.get((id(node), part))  # type: ignore[arg-type]
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


class Translator:
    def __init__(self, spec: Spec, files_dir: str | None) -> None:
        self.spec = spec
        self.files_dir = files_dir
        self.entries: list[Entry] = []
        self.out = Out()
        self.invalid_utf8 = False  # a local file was not UTF-8 (kept as lone surrogates)
        # ids of the data URLs we made: valid by construction, not worth Ignition's byte scan.
        # (The URLs are kept alive in _urls so that no other string can ever reuse their ids.)
        self.generated: set[int] = set()
        self._urls: list[str] = []
        # id(inline text) -> its data URL and compression, made in parallel before the walk
        self.prepared: dict[int, tuple[str, str | None]] = {}

    def data_url(
        self, data: bytes, compression: str | None = None, made: tuple[str, str | None] | None = None
    ) -> tuple[str, str | None]:
        url, comp = made if made is not None else sugar.make_data_url(data, compression)
        self.generated.add(id(url))
        self._urls.append(url)
        return url, comp

    def text(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 = True
            return data.decode("utf-8", "surrogateescape")

    # -- report ---------------------------------------------------------------
    def error(self, message: str, path: tuple) -> None:
        self.entries.append(Entry(ERROR, message, path))

    def warn(self, message: str, path: tuple) -> None:
        self.entries.append(Entry(WARNING, message, path))

    def has_errors(self) -> bool:
        return any(e.kind == ERROR for e in self.entries)

    # -- phase 2: source validation ---------------------------------------------
    def validate_source(self, cfg: dict) -> None:
        sp = self.spec
        storage = cfg.get("storage") or {}
        if sp.fcos >= 5:
            self._validate_partitions(storage)
        if sp.fcos >= 6:
            for i, fs in enumerate(storage.get("filesystems") or []):
                p = fs.get("path")
                if p is not None and fs.get("with_mount_unit") is True and not re.match(_ALLOWED_MOUNT, p):
                    self.error(ERR_MOUNT_FORBIDDEN, ("storage", "filesystems", i, "path"))
        ign = cfg.get("ignition") or {}
        conf = ign.get("config") or {}
        for i, r in enumerate(conf.get("merge") or []):
            self._validate_resource(r, ("ignition", "config", "merge", i), config_ref=True)
        if "replace" in conf:
            self._validate_resource(conf["replace"], ("ignition", "config", "replace"), config_ref=True)
        tls = (ign.get("security") or {}).get("tls") or {}
        for i, r in enumerate(tls.get("certificate_authorities") or []):
            self._validate_resource(r, ("ignition", "security", "tls", "certificate_authorities", i))
        for i, d in enumerate(storage.get("directories") or []):
            self._decimal_mode(d, ("storage", "directories", i), True)
        for i, f in enumerate(storage.get("files") or []):
            base = ("storage", "files", i)
            self._decimal_mode(f, base, False)
            for j, r in enumerate(f.get("append") or []):
                self._validate_resource(r, (*base, "append", j))
            if "contents" in f:
                self._validate_resource(f["contents"], (*base, "contents"))
        for i, fs in enumerate(storage.get("filesystems") or []):
            if fs.get("with_mount_unit") is True:
                if not fs.get("format"):
                    self.error(ERR_MOUNT_NO_FORMAT, ("storage", "filesystems", i, "format"))
                elif (fs["format"] != "swap" or self.spec.base < 4) and not fs.get("path"):
                    # Swap units exist from fcos 1.4 (base v0_4) on; before, swap needs a path too.
                    self.error(ERR_MOUNT_NO_PATH, ("storage", "filesystems", i, "path"))
        for i, lk in enumerate(storage.get("luks") or []):
            if "key_file" in lk:
                self._validate_resource(lk["key_file"], ("storage", "luks", i, "key_file"))
        for i, t in enumerate(storage.get("trees") or []):
            if not t.get("local"):
                self.error(ERR_TREE_NO_LOCAL, ("storage", "trees", i))
        for i, u in enumerate((cfg.get("systemd") or {}).get("units") or []):
            if "contents" in u and "contents_local" in u:
                self.error(ERR_TOO_MANY_UNIT_SOURCES, ("systemd", "units", i, "contents_local"))
            for j, d in enumerate(u.get("dropins") or []):
                if "contents" in d and "contents_local" in d:
                    self.error(
                        ERR_TOO_MANY_UNIT_SOURCES, ("systemd", "units", i, "dropins", j, "contents_local")
                    )
        if "boot_device" in cfg:
            self._validate_boot_device(cfg["boot_device"])
        for i, u in enumerate((cfg.get("grub") or {}).get("users") or []):
            if not u.get("name"):
                self.error(ERR_GRUB_NAME, ("grub", "users", i, "name"))
            if not u.get("password_hash"):
                self.error(ERR_GRUB_PASSWORD, ("grub", "users", i, "password_hash"))
        if self.spec.variant == "pine":
            from .pine import validate

            validate(cfg, self)

    def _validate_partitions(self, storage: dict) -> None:
        for i, disk in enumerate(storage.get("disks") or []):
            for j, part in enumerate(disk.get("partitions") or []):
                if (
                    part.get("label") == "root"
                    and disk.get("device") == ROOT_DEVICE
                    and isinstance(part.get("size_mib"), int)
                    and 0 < part["size_mib"] < 8192
                ):
                    self.warn(ERR_ROOT_TOO_SMALL, ("storage", "disks", i, "partitions", j, "size_mib"))
            if (
                self.spec.fcos >= 6
                and disk.get("device") != ROOT_DEVICE
                and disk.get("wipe_table") is not True
            ):
                for j, part in enumerate(disk.get("partitions") or []):
                    if not part.get("number") and part.get("label") is not None:
                        self.warn(ERR_REUSE_BY_LABEL, ("storage", "disks", i, "partitions", j, "number"))

    def _decimal_mode(self, node: dict, base: tuple, directory: bool) -> None:
        mode = node.get("mode")
        if isinstance(mode, int) and decimal_mode_suspicious(mode, directory):
            self.warn(ERR_DECIMAL_MODE, (*base, "mode"))

    def _validate_resource(self, r: dict, path: tuple, config_ref: bool = False) -> None:
        field = None
        n = 0
        for key in ("local", "inline", "source"):
            if key in r:
                n += 1
                field = key
        if n > 1:
            self.error(ERR_TOO_MANY_SOURCES, (*path, field))
        if config_ref and field == "inline":
            self._check_inline_config(r["inline"], path)

    def _check_inline_config(self, text: str, path: tuple) -> None:
        import json

        try:
            obj = json.loads(text)
            version = obj["ignition"]["version"]
        except (ValueError, TypeError, KeyError):
            version = None
        if version != self.spec.ign_version:
            self.warn(WARN_MERGE_UNKNOWN_VERSION, (*path, "version"))
            return
        try:
            from pineinstall.config import check_dict
        except ImportError:
            return
        for e in check_dict(obj):
            msg = e.message
            (self.error if e.kind == ERROR else self.warn)(msg, (*path, "inline", *(e.path or ())))

    def _validate_boot_device(self, bd: dict) -> None:
        layout = bd.get("layout")
        luks = bd.get("luks") or {}
        mirror = bd.get("mirror") or {}
        base = ("boot_device",)
        if layout is not None:
            s390x = self.spec.fcos >= 6
            if layout in ("aarch64", "ppc64le", "x86_64"):
                pass
            elif s390x and layout in ("s390x-eckd", "s390x-zfcp"):
                dev = luks.get("device")
                if not dev:
                    self.error(ERR_NO_LUKS_BOOT_DEVICE, (*base, "layout"))
                elif not re.search(_DASD if layout == "s390x-eckd" else _SD, dev):
                    self.error(ERR_LUKS_BOOT_DEVICE_NAME, (*base, "layout"))
            elif s390x and layout == "s390x-virt":
                pass
            else:
                self.error(ERR_LAYOUT if s390x else ERR_LAYOUT_LEGACY, (*base, "layout"))
            if layout.startswith("s390x-") and s390x and mirror.get("devices"):
                self.error(ERR_MIRROR_NOT_SUPPORTED, (*base, "layout"))
        cex = (luks.get("cex") or {}).get("enabled") is True
        if cex and (layout is None or not layout.startswith("s390x")):
            self.error(ERR_CEX_ARCH, (*base, "layout"))
        # BootDevice.Validate checks the mirror, and so does the walk into the mirror: twice.
        if len(mirror.get("devices") or []) == 1:
            self.error(ERR_TOO_FEW_MIRROR, (*base, "mirror", "devices"))
        if cex and (luks.get("tpm2") is True or luks.get("tang")):
            self.error(ERR_CEX_CLEVIS, (*base, "luks"))
        if len(mirror.get("devices") or []) == 1:
            self.error(ERR_TOO_FEW_MIRROR, (*base, "mirror", "devices"))

    # -- phase 3: translation -----------------------------------------------------
    def _prefetch_data_urls(self, cfg: dict) -> None:
        """Encode the larger inline contents up front, in parallel: gzip is the costly part."""
        big = []
        for f in (cfg.get("storage") or {}).get("files") or []:
            for r in [f.get("contents"), *(f.get("append") or [])]:
                if (
                    r
                    and isinstance(r.get("inline"), str)
                    and len(r["inline"]) >= sugar.PREFETCH_MIN
                    and not r.get("compression")
                ):
                    big.append(r["inline"])
        if len(big) < 2:
            return
        done = sugar.data_urls_many(big)
        self.prepared = {id(s): made for s, made in zip(big, done, strict=True)}

    def translate(self, cfg: dict) -> dict:
        self._prefetch_data_urls(cfg)
        out = self.convert(cfg, "Config", ())
        ign = out.setdefault("ignition", {})
        if id(ign) not in self.out.origin:
            self.out.reg(ign, ("ignition",))
        ign["version"] = self.spec.ign_version
        self.out.leaf_from(ign, "version", ("version",))
        storage_y = cfg.get("storage") or {}
        if storage_y.get("trees"):
            self._trees(out, storage_y["trees"])
        if any(fs.get("with_mount_unit") is True for fs in storage_y.get("filesystems") or []):
            out = self._mount_units(out, cfg)
        if "boot_device" in cfg:
            out = self._boot_device(out, cfg["boot_device"])
        if self.spec.fcos >= 6:
            self._reserved_labels(out)
        if (cfg.get("grub") or {}).get("users"):
            out = self._grub(out, cfg["grub"]["users"])
        if self.spec.variant == "pine" and ("openrc" in cfg or "network" in cfg):
            from .pine import render

            rendered = render(cfg, self)
            if rendered is not None:
                out = merge_configs(rendered, out, self.out)
        return out

    def convert(self, value: Any, typ: Any, ypath: tuple) -> Any:
        """Copy a YAML-side value to the JSON side, doing the per-object sugar."""
        if isinstance(typ, tuple):
            return self.out.reg([self.convert(v, typ[1], (*ypath, i)) for i, v in enumerate(value)], ypath)
        if not isinstance(value, dict):
            return value
        if typ in ("Resource", "ConfigResource"):
            return self._resource(value, ypath)
        out: dict[str, Any] = {}
        self.out.reg(out, ypath)
        skip = _SUGAR.get(typ, ())
        fields = self.spec.fields(typ)
        for key, ftyp in fields.items():
            if key not in value or key in skip:
                continue
            out[camel(key)] = self.convert(value[key], ftyp, (*ypath, key))
        if typ == "PasswdUser" and "ssh_authorized_keys_local" in value:
            self._ssh_keys_local(out, value, ypath)
        elif typ in ("Unit", "Dropin") and "contents_local" in value:
            data = self.read_local(value["contents_local"], (*ypath, "contents_local"))
            if data is not None:
                out["contents"] = self.text(data)
                self.out.leaf_from(out, "contents", (*ypath, "contents_local"))
        return out

    def _resource(self, value: dict, ypath: tuple) -> dict:
        out: dict[str, Any] = {}
        self.out.reg(out, ypath)
        if "compression" in value:
            out["compression"] = value["compression"]
        if "http_headers" in value:
            out["httpHeaders"] = self.convert(
                value["http_headers"], ("list", "HTTPHeader"), (*ypath, "http_headers")
            )
        if "source" in value:
            out["source"] = value["source"]
        if "verification" in value:
            out["verification"] = self.convert(
                value["verification"], "Verification", (*ypath, "verification")
            )
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
            data = self.read_local(value["local"], (*ypath, "local"))
        if data is not None and field is not None:
            url, comp = self.data_url(data, value.get("compression"), made)
            out["source"] = url
            self.out.leaf_from(out, "source", (*ypath, field))
            if comp is not None:
                out["compression"] = comp
                self.out.leaf_from(out, "compression", (*ypath, field))
        return out

    def read_local(self, rel: str, ypath: tuple) -> bytes | None:
        if not self.files_dir:
            self.error(ERR_NO_FILES_DIR, ypath)
            return None
        path = sugar.go_join(self.files_dir, rel)
        if not sugar.within(path, self.files_dir):
            self.error(ERR_FILES_DIR_ESCAPE, ypath)
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except IsADirectoryError as e:
            self.error(f"read {path}: {sugar.go_errno_text(e)}", ypath)
        except OSError as e:
            self.error(f"open {path}: {sugar.go_errno_text(e)}", ypath)
        return None

    def _ssh_keys_local(self, out: dict, value: dict, ypath: tuple) -> None:
        keys = out.get("sshAuthorizedKeys")
        if keys is None:
            keys = self.out.reg([], (*ypath, "ssh_authorized_keys"))
            out["sshAuthorizedKeys"] = keys
        for i, rel in enumerate(value["ssh_authorized_keys_local"]):
            kpath = (*ypath, "ssh_authorized_keys_local", i)
            data = self.read_local(rel, kpath)
            if data is None:
                continue
            for line in re.split(_SSH_SPLIT, self.text(data)):
                if line:
                    # A leaf per key: remember where each one came from.
                    self.out.leaf[(id(keys), len(keys))] = kpath  # type: ignore[index]
                    keys.append(line)

    # -- trees --------------------------------------------------------------
    def _trees(self, out: dict, trees: list) -> None:
        storage = out.setdefault("storage", {})
        if id(storage) not in self.out.origin:
            self.out.reg(storage, ("storage",))
        files = storage.setdefault("files", [])
        links = storage.setdefault("links", [])
        dirs = storage.get("directories") or []
        by_path: dict[str, tuple[str, dict]] = {}
        for kind, lst in (("dir", dirs), ("file", files), ("link", links)):
            for node in lst:
                by_path.setdefault(node.get("path"), (kind, node))
        for i, tree in enumerate(trees):
            ypath = ("storage", "trees", i)
            if not self.files_dir:
                self.error(ERR_NO_FILES_DIR, ypath)
                return
            local = tree.get("local") or ""
            src = sugar.go_join(self.files_dir, local)
            if not sugar.within(src, self.files_dir):
                self.error(ERR_FILES_DIR_ESCAPE, ypath)
                continue
            try:
                st = os.stat(src)
            except OSError as e:
                self.error(f"stat {src}: {sugar.go_errno_text(e)}", ypath)
                continue
            import stat as statmod

            if not statmod.S_ISDIR(st.st_mode):
                self.error(ERR_TREE_NOT_DIR, ypath)
                continue
            dest = tree.get("path") or "/"
            self._walk(src, dest, ypath, files, links, by_path)

    def _walk(self, src: str, dest: str, ypath: tuple, files: list, links: list, by_path: dict) -> None:
        import posixpath
        import stat as statmod

        stack = [(src, dest)]
        # Depth-first in lexical order, as filepath.Walk.
        order: list[tuple[str, str, os.stat_result]] = []

        def visit(sdir: str, ddir: str) -> None:
            try:
                names = sorted(os.listdir(sdir))
            except OSError as e:
                self.error(f"open {sdir}: {sugar.go_errno_text(e)}", ypath)
                return
            for name in names:
                sp = os.path.join(sdir, name)
                dp = posixpath.join(ddir, name)
                try:
                    st = os.lstat(sp)
                except OSError as e:
                    self.error(f"lstat {sp}: {sugar.go_errno_text(e)}", ypath)
                    continue
                order.append((sp, dp, st))
                if statmod.S_ISDIR(st.st_mode):
                    visit(sp, dp)

        del stack
        visit(src, dest)
        for sp, dp, st in order:
            mode = st.st_mode
            if statmod.S_ISDIR(mode):
                continue
            if statmod.S_ISREG(mode):
                got = by_path.get(dp)
                if got is not None:
                    kind, node = got
                    if kind != "file" or ((node.get("contents") or {}).get("source")):
                        self.error(ERR_NODE_EXISTS, ypath)
                        continue
                else:
                    node = self.out.reg({"path": dp}, ypath)
                    files.append(node)
                    by_path[dp] = ("file", node)
                try:
                    with open(sp, "rb") as f:
                        data = f.read()
                except OSError as e:
                    self.error(f"open {sp}: {sugar.go_errno_text(e)}", ypath)
                    continue
                contents = node.get("contents")
                if contents is None:
                    contents = self.out.reg({}, ypath)
                    node["contents"] = contents
                url, comp = self.data_url(data, contents.get("compression"))
                contents["source"] = url
                self.out.leaf_from(contents, "source", ypath)
                if comp is not None:
                    contents["compression"] = comp
                    self.out.leaf_from(contents, "compression", ypath)
                if node.get("mode") is None:
                    node["mode"] = 0o755 if mode & 0o111 else 0o644
                    self.out.leaf_from(node, "mode", ypath)
            elif statmod.S_ISLNK(mode):
                got = by_path.get(dp)
                if got is not None:
                    kind, node = got
                    if kind != "link" or node.get("target"):
                        self.error(ERR_NODE_EXISTS, ypath)
                        continue
                else:
                    node = self.out.reg({"path": dp}, ypath)
                    links.append(node)
                    by_path[dp] = ("link", node)
                node["target"] = os.readlink(sp)
                self.out.leaf_from(node, "target", ypath)
            else:
                self.error(ERR_FILE_TYPE, ypath)

    # -- mount units ----------------------------------------------------------
    def _mount_units(self, out: dict, cfg: dict) -> dict:
        storage = cfg.get("storage") or {}
        tang_luks = {
            lk.get("name") for lk in storage.get("luks") or [] if (lk.get("clevis") or {}).get("tang")
        }
        units = []
        for i, fs in enumerate(storage.get("filesystems") or []):
            if fs.get("with_mount_unit") is not True:
                continue
            dev = fs.get("device") or ""
            remote = False
            for prefix in ("/dev/mapper/", "/dev/disk/by-id/dm-name-"):
                if dev.startswith(prefix) and dev[len(prefix) :] in tang_luks:
                    remote = True
            name, contents = sugar.mount_unit(
                dev,
                fs.get("path"),
                fs.get("format") or "",
                fs.get("mount_options"),
                remote,
                self.spec.base >= 4,
            )
            unit = self.out.reg(
                {"contents": contents, "enabled": True, "name": name},
                ("storage", "filesystems", i, "with_mount_unit"),
            )
            units.append(unit)
        rendered = self.out.reg({"systemd": self.out.reg({"units": self.out.reg(units, ())}, ())}, ())
        return merge_configs(rendered, out, self.out)

    # -- boot device ----------------------------------------------------------
    def _boot_device(self, out: dict, bd: dict) -> dict:
        luks = bd.get("luks") or {}
        mirror = (bd.get("mirror") or {}).get("devices") or []
        want_luks = luks.get("tpm2") is True or bool(luks.get("tang"))
        if (luks.get("cex") or {}).get("enabled") is True:
            want_luks = True
        if not want_luks and not mirror:
            return out
        layout = bd.get("layout") or "x86_64"
        bios = layout == "x86_64"
        efi = layout in ("x86_64", "aarch64")
        prep = layout == "ppc64le"
        reg = self.out.reg
        disks: list = []
        filesystems: list = []
        raids: list = []
        luks_list: list = []
        if mirror:
            for i, device in enumerate(mirror):
                n = len(disks) + 1
                dpath = ("boot_device", "mirror", "devices", i)
                parts = []
                if bios:
                    parts.append({"label": f"bios-{n}", "sizeMiB": 1, "typeGuid": BIOS_GUID})
                elif prep:
                    parts.append({"label": f"prep-{n}", "sizeMiB": 4, "typeGuid": PREP_GUID})
                else:
                    parts.append({"label": f"reserved-{n}", "sizeMiB": 1, "typeGuid": RESERVED_GUID})
                if efi:
                    parts.append({"label": f"esp-{n}", "sizeMiB": 127, "typeGuid": ESP_GUID})
                else:
                    parts.append({"label": f"reserved-{n}", "sizeMiB": 1, "typeGuid": RESERVED_GUID})
                parts.append({"label": f"boot-{n}", "sizeMiB": 384})
                parts.append({"label": f"root-{n}"})
                for p in parts:
                    reg(p, dpath)
                disks.append(
                    reg({"device": device, "partitions": reg(parts, dpath), "wipeTable": True}, dpath)
                )
                if efi:
                    filesystems.append(
                        reg(
                            {
                                "device": f"/dev/disk/by-partlabel/esp-{n}",
                                "format": "vfat",
                                "label": f"esp-{n}",
                                "wipeFilesystem": True,
                            },
                            dpath,
                        )
                    )
            count = len(disks)
            mpath = ("boot_device", "mirror")
            raids.append(
                reg(
                    {
                        "devices": [f"/dev/disk/by-partlabel/boot-{k + 1}" for k in range(count)],
                        "level": "raid1",
                        "name": "md-boot",
                        "options": ["--metadata=1.0"],
                    },
                    mpath,
                )
            )
            raids.append(
                reg(
                    {
                        "devices": [f"/dev/disk/by-partlabel/root-{k + 1}" for k in range(count)],
                        "level": "raid1",
                        "name": "md-root",
                    },
                    mpath,
                )
            )
            filesystems.append(
                reg(
                    {"device": "/dev/md/md-boot", "format": "ext4", "label": "boot", "wipeFilesystem": True},
                    mpath,
                )
            )
        if want_luks:
            lpath = ("boot_device", "luks")
            if layout == "s390x-eckd":
                device = (luks.get("device") or "") + "2"
            elif layout == "s390x-zfcp":
                device = (luks.get("device") or "") + "4"
            elif mirror:
                device = "/dev/md/md-root"
            else:
                device = "/dev/disk/by-partlabel/root"
            clevis: dict[str, Any] = reg({}, lpath)
            if luks.get("tang"):
                clevis["tang"] = self.convert(luks["tang"], ("list", "Tang"), (*lpath, "tang"))
            if "threshold" in luks:
                clevis["threshold"] = luks["threshold"]
            if "tpm2" in luks:
                clevis["tpm2"] = luks["tpm2"]
            entry: dict[str, Any] = {}
            if (luks.get("cex") or {}).get("enabled") is True:
                entry["cex"] = reg({"enabled": True}, (*lpath, "cex"))
            entry["clevis"] = clevis
            entry["device"] = device
            if "discard" in luks:
                entry["discard"] = luks["discard"]
            entry.update({"label": "luks-root", "name": "root", "wipeVolume": True})
            luks_list.append(reg(entry, lpath))
        root_dev = "/dev/mapper/root" if want_luks else "/dev/md/md-root"
        filesystems.append(
            reg(
                {"device": root_dev, "format": "xfs", "label": "root", "wipeFilesystem": True},
                ("boot_device",),
            )
        )
        storage: dict[str, Any] = {}
        if disks:
            storage["disks"] = reg(disks, ("boot_device", "mirror", "devices"))
        storage["filesystems"] = reg(filesystems, ("boot_device",))
        if luks_list:
            storage["luks"] = reg(luks_list, ("boot_device", "luks"))
        if raids:
            storage["raid"] = reg(raids, ("boot_device", "mirror"))
        rendered = reg({"storage": reg(storage, ("boot_device",))}, ())
        return merge_configs(rendered, out, self.out)

    def _reserved_labels(self, out: dict) -> None:
        """Partitions reusing a label of the OS layout at another number get a new partition."""
        for i, disk in enumerate((out.get("storage") or {}).get("disks") or []):
            if disk.get("wipeTable") is True:
                continue
            for j, part in enumerate(disk.get("partitions") or []):
                want = _RESERVED_LABELS.get(part.get("label"))
                if want is not None and (part.get("number") or 0) != want:
                    self.warn(
                        ERR_WRONG_PARTITION_NUMBER,
                        self.out.yaml_path(out, ("storage", "disks", i, "partitions", j, "label")),
                    )

    def _grub(self, out: dict, users: list) -> dict:
        ypath = ("grub", "users")
        names = [u.get("name", "") for u in users]
        cmds = [f"password_pbkdf2 {u.get('name', '')} {u.get('password_hash', '')}" for u in users]
        text = "# Generated by Butane\n\n" + f'set superusers="{" ".join(names)}"\n' + "\n".join(cmds) + "\n"
        url, comp = self.data_url(text.encode("utf-8", "surrogateescape"))
        reg = self.out.reg
        res = reg({"compression": comp, "source": url}, ypath)
        rendered = reg(
            {
                "storage": reg(
                    {
                        "files": reg(
                            [reg({"path": "/boot/grub2/user.cfg", "append": reg([res], ypath)}, ypath)], ypath
                        ),
                        "filesystems": reg(
                            [
                                reg(
                                    {"device": "/dev/disk/by-label/boot", "format": "ext4", "path": "/boot"},
                                    ypath,
                                )
                            ],
                            ypath,
                        ),
                    },
                    ypath,
                )
            },
            (),
        )
        return merge_configs(rendered, out, self.out)

    # -- phase 4: filters --------------------------------------------------------
    def filters(self, out: dict) -> None:
        if self.spec.variant != "flatcar":
            return
        for i, lk in enumerate((out.get("storage") or {}).get("luks") or []):
            clevis = lk.get("clevis")
            if clevis and any(v not in (None, [], {}) for v in clevis.values()):
                self.error(ERR_CLEVIS_UNSUPPORTED, self.out.yaml_path(out, ("storage", "luks", i, "clevis")))

    # -- phase 5: duplicates ------------------------------------------------------
    def duplicates(self, out: dict) -> list[tuple[tuple, str]]:
        """Output paths of entries that repeat a key, as Ignition's ValidateDups."""
        found: list[tuple[tuple, str]] = []
        storage = out.get("storage") or {}
        seen: set = set()
        for kind in ("directories", "files", "links"):
            for i, node in enumerate(storage.get(kind) or []):
                p = node.get("path")
                if p in seen:
                    found.append((("storage", kind, i), ERR_DUPLICATE))
                seen.add(p)
        for kind, key in (("disks", "device"), ("filesystems", "device"), ("luks", "name"), ("raid", "name")):
            seen = set()
            for i, node in enumerate(storage.get(kind) or []):
                k = node.get(key)
                if k in seen:
                    found.append((("storage", kind, i), ERR_DUPLICATE))
                seen.add(k)
        passwd = out.get("passwd") or {}
        for kind in ("users", "groups"):
            seen = set()
            for i, node in enumerate(passwd.get(kind) or []):
                if node.get("name") in seen:
                    found.append((("passwd", kind, i), ERR_DUPLICATE))
                seen.add(node.get("name"))
        for i, user in enumerate(passwd.get("users") or []):
            seen = set()
            for j, key in enumerate(user.get("sshAuthorizedKeys") or []):
                if key in seen:
                    found.append((("passwd", "users", i, "sshAuthorizedKeys", j), ERR_DUPLICATE))
                seen.add(key)
        seen = set()
        for i, unit in enumerate((out.get("systemd") or {}).get("units") or []):
            if unit.get("name") in seen:
                found.append((("systemd", "units", i), ERR_DUPLICATE))
            seen.add(unit.get("name"))
            dseen: set = set()
            for j, d in enumerate(unit.get("dropins") or []):
                if d.get("name") in dseen:
                    found.append((("systemd", "units", i, "dropins", j), ERR_DUPLICATE))
                dseen.add(d.get("name"))
        return found


def decimal_mode_suspicious(mode: int, directory: bool) -> bool:
    corrected = _decimal_to_octal(mode)
    if corrected is None:
        return False
    return not _typical_mode(mode, directory) and _typical_mode(corrected, directory)


def _decimal_to_octal(mode: int) -> int | None:
    if mode < 0 or mode > 7777:
        return None
    ret = 0
    for divisor in (1000, 100, 10, 1):
        digit = (mode // divisor) % 10
        if digit > 7:
            return None
        ret = (ret << 3) | digit
    return ret


def _typical_mode(mode: int, directory: bool) -> bool:
    if mode == 0:
        return True
    had_r = had_w = had_x = False
    for perm in (mode & 0o7, (mode >> 3) & 0o7, (mode >> 6) & 0o7):
        r, w, x = bool(perm & 4), bool(perm & 2), bool(perm & 1)
        # A more specific class has every bit of the less specific ones (r--rw---- is odd).
        if (not r and had_r) or (not w and had_w) or (not x and had_x):
            return False
        if x and had_r and not had_x:
            return False
        if (w or x) and not r:
            return False
        had_r, had_w, had_x = had_r or r, had_w or w, had_x or x
    if not had_r:
        return False
    if directory:
        if not had_x or mode & 0o4000:
            return False
        if mode & 0o3000 and not had_w:
            return False
    else:
        if mode & 0o6000 and (not had_x or mode & 2):
            return False
        if mode & 0o1000:
            return False
    return True


# -- merging a rendered (parent) config with the user's (child) ----------------------
_KEYS = {
    ("storage", "disks"): "device",
    ("storage", "filesystems"): "device",
    ("storage", "luks"): "name",
    ("storage", "raid"): "name",
    ("storage", "files"): "path",
    ("storage", "directories"): "path",
    ("storage", "links"): "path",
    ("systemd", "units"): "name",
    ("unit", "dropins"): "name",
    ("disk", "partitions"): None,  # number or label
    ("file", "append"): "",  # concatenated
    ("passwd", "users"): "name",
    ("passwd", "groups"): "name",
}
_OWNER = {"disks": "disk", "units": "unit", "files": "file"}


def _pkey(p: dict) -> Any:
    return ("n", p["number"]) if p.get("number") else ("l", p.get("label"))


def merge_configs(parent: dict, child: dict, out: Out) -> dict:
    """Ignition's merge of ``child`` over ``parent``; origins of merged entries are the child's."""
    return _merge_obj(parent, child, "config", out)


def _merge_obj(parent: dict, child: dict, owner: str, out: Out) -> dict:
    result = dict(parent)
    if id(child) in out.origin:
        out.reg(result, out.origin[id(child)])
    elif id(parent) in out.origin:
        out.reg(result, out.origin[id(parent)])
    for k, v in child.items():
        if (id(child), k) in out.leaf:
            out.leaf_from(result, k, out.leaf[(id(child), k)])
        if k not in parent or parent[k] is None:
            result[k] = v
            continue
        pv = parent[k]
        if isinstance(v, dict) and isinstance(pv, dict):
            result[k] = _merge_obj(pv, v, k, out)
        elif isinstance(v, list) and isinstance(pv, list):
            result[k] = _merge_list(pv, v, owner, k, out)
        elif v is not None:
            result[k] = v
    for k in parent:
        if k not in child and (id(parent), k) in out.leaf:
            out.leaf_from(result, k, out.leaf[(id(parent), k)])
    return result


def _merge_list(parent: list, child: list, owner: str, name: str, out: Out) -> list:
    kind = _KEYS.get((owner, name), "set")
    if kind == "" or (kind == "set" and any(isinstance(x, dict) for x in (*parent, *child))):
        merged = parent + child  # lists of objects we have no key for: both, in order
    elif kind == "set":
        merged = list(parent) + [x for x in child if x not in parent]
    else:
        keyf = _pkey if kind is None else (lambda e, k=kind: e.get(k) if isinstance(e, dict) else e)
        merged = list(parent)
        index = {keyf(e): i for i, e in enumerate(merged)}
        for e in child:
            key = keyf(e)
            if key in index and isinstance(e, dict):
                i = index[key]
                merged[i] = _merge_obj(merged[i], e, _OWNER.get(name, name), out)
            else:
                index[key] = len(merged)
                merged.append(e)
    if id(child) in out.origin:
        out.reg(merged, out.origin[id(child)])
    elif id(parent) in out.origin:
        out.reg(merged, out.origin[id(parent)])
    return merged


__all__ = ["OBJECTS", "Translator", "decimal_mode_suspicious", "merge_configs"]
