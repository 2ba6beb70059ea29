"""The translation pipeline: parse, pick the variant/version, decode, validate, desugar, check."""

from __future__ import annotations

import itertools
import re

from . import ERR_GENERATED, ERR_INVALID_VERSION, ERR_NO_VARIANT, ERR_SOURCE, MISMATCH, Result
from .decode import NULL, Decoder, go_quote
from .fields import VARIANTS, Spec
from .report import ERROR, WARNING, Entry, format_path
from .yamlload import YAMLSyntaxError, compose

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

# PINE_TRANSPILE_TIMES set: the wall and CPU time of each phase, printed by the CLI on stderr
# (bench/transpile reads them). CPU is the whole process's: it includes the worker threads.
_times: list[tuple[str, float, float]] | None = None


def times_start() -> None:
    global _times
    import time

    _times = [("start", time.perf_counter(), time.process_time())]


def stamp(name: str) -> None:
    if _times is not None:
        import time

        _times.append((name, time.perf_counter(), time.process_time()))


def times_report() -> str:
    """One line per phase: ``phase <name> <wall ms> <cpu ms>``; the first one is what the
    process did before (interpreter start-up and imports: CPU only)."""
    if not _times:
        return ""
    import time

    lines = [f"phase startup - {_times[0][2] * 1000:.1f}"]
    for (_, w0, c0), (name, w1, c1) in itertools.pairwise(_times):
        lines.append(f"phase {name} {(w1 - w0) * 1000:.1f} {(c1 - c0) * 1000:.1f}")
    w, c = time.perf_counter() - _times[0][1], time.process_time() - _times[0][2]
    lines.append(f"phase total {w * 1000:.1f} {c * 1000:.1f}")
    return "\n".join(lines) + "\n"


_SEMVER = r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$"


def run(text: bytes | str, *, files_dir: str | None, pretty: bool) -> Result:
    res = Result()
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    res.source = data  # decoded when a report needs it
    try:
        root = compose(data)
        stamp("yaml")
    except YAMLSyntaxError as e:
        res.error = f"Error unmarshaling yaml: {e}"
        return res
    except RecursionError:
        res.error = "Error unmarshaling yaml: yaml: exceeded max depth"
        return res

    # First pass, as Butane: only variant and version, from the top-level mapping.
    variant, version = "", ""
    if root is not None and root.id != "mapping":
        if not (root.id == "scalar" and Decoder.scalar(root)[0] == "!!null"):
            tag = "!!seq" if root.id == "sequence" else Decoder.scalar(root)[0]
            val = (
                ""
                if root.id == "sequence"
                else f" `{root.value[:7]}...`"
                if len(root.value) > 10
                else f" `{root.value}`"
            )
            res.error = (
                "Error unmarshaling yaml: yaml: unmarshal errors:\n"
                f"  line {root.start_mark.line + 1}: cannot unmarshal {tag}{val} into "
                "config.commonFields"
            )
            return res
        root = None
    if root is not None:
        dup = _top_duplicates(root)
        if dup:
            res.error = "Error unmarshaling yaml: yaml: unmarshal errors:\n" + "\n".join(
                "  " + d for d in dup
            )
            return res
        errs = []
        for k, v in root.value:
            if k.id == "scalar" and k.value in ("variant", "version"):
                if v.id != "scalar":
                    errs.append(
                        f"  line {v.start_mark.line + 1}: cannot unmarshal "
                        f"{'!!map' if v.id == 'mapping' else '!!seq'} into string"
                    )
                    continue
                s = "" if Decoder.scalar(v)[0] == "!!null" else v.value
                if k.value == "variant":
                    variant = s
                else:
                    version = s
        if errs:
            res.error = "Error unmarshaling yaml: yaml: unmarshal errors:\n" + "\n".join(errs)
            return res
    if not variant:
        res.error = ERR_NO_VARIANT
        return res
    m = re.match(_SEMVER, version)
    if not m:
        res.error = ERR_INVALID_VERSION
        return res
    norm = (
        f"{int(m[1])}.{int(m[2])}.{int(m[3])}" + (f"-{m[4]}" if m[4] else "") + (f"+{m[5]}" if m[5] else "")
    )
    if variant not in VARIANTS or norm not in VARIANTS[variant]:
        res.error = f"No translator exists for variant {variant} with version {norm}"
        return res
    spec = Spec(variant, norm)
    res.variant, res.version, res.ignition_version = variant, norm, spec.ign_version

    dec = Decoder(spec)
    cfg = dec.decode(root, "Config", ()) if root is not None else {}
    if dec.errors:
        res.error = "yaml: unmarshal errors:\n" + "\n".join("  " + e for e in dec.errors)
        return res
    if cfg is None or cfg is NULL:
        cfg = {}
    stamp("decode")

    entries: list[Entry] = []
    # Butane reports unused keys walking its structs: a struct's own keys before its fields'.
    order = sorted(range(len(dec.unused)), key=lambda i: (_struct_key(spec, dec.unused[i][0]), i))
    for i in order:
        parent, key = dec.unused[i]
        entries.append(Entry(WARNING, f"unused key {key}", (*parent, key), at_key=True))
    for p, (line, col) in dec.mismatch[:1]:
        # Go's context tree still has the null node at this index: its position is reported.
        entry = Entry(WARNING, MISMATCH.format(path=format_path(p)), p)
        entry.line, entry.col = line, col
        entries.append(entry)

    from .desugar import Translator

    tr = Translator(spec, files_dir)
    tr.validate_source(cfg)
    entries.extend(tr.entries)
    tr.entries = []
    if any(e.kind == ERROR for e in entries):
        return _finish(res, entries, dec, ERR_SOURCE)
    stamp("validate")
    out = tr.translate(cfg)
    tr.filters(out)
    entries.extend(tr.entries)
    tr.entries = []
    if any(e.kind == ERROR for e in entries):
        return _finish(res, entries, dec, ERR_SOURCE)

    stamp("desugar")
    from .gojson import encode_parts, prune

    pruned = prune(out, "Config") or {}
    for jpath, msg in tr.duplicates(pruned):
        entries.append(Entry(ERROR, msg, tr.out.yaml_path(out, _unprune_path(jpath))))
    seen = {(e.kind, e.message, e.path) for e in entries}
    for kind, msg, jpath in _ignition_check(_for_check(pruned, tr.generated, tr.invalid_utf8)):
        ypath = tr.out.yaml_path(out, jpath)
        if (kind, msg, ypath) in seen:
            continue
        seen.add((kind, msg, ypath))
        entries.append(Entry(kind, msg, ypath))
    if any(e.kind == ERROR for e in entries):
        return _finish(res, entries, dec, ERR_GENERATED)
    res.config = pruned
    stamp("check")
    res._parts = encode_parts(out, pretty, tr.generated)
    stamp("json")
    return _finish(res, entries, dec, None)


def _struct_key(spec: Spec, path: tuple) -> tuple:
    """Position of a YAML path in the walk of Butane's structs (field order, list order)."""
    key: list[int] = []
    typ: Any = "Config"
    for part in path:
        if isinstance(part, int):
            key.append(part)
            typ = typ[1] if isinstance(typ, tuple) else None
            continue
        names = list(spec.fields(typ)) if isinstance(typ, str) and typ[:1].isupper() else []
        idx = names.index(part) if part in names else len(names)
        key.append(idx)
        typ = spec.fields(typ).get(part) if names else None
    key.append(-1)
    return tuple(key)


def _unprune_path(jpath: tuple) -> tuple:
    return jpath


_SPECIAL_BITS_PREFIX = "setuid/setgid/sticky bits are not supported in spec versions older than"
_SPECIAL_BITS_BUTANE = (
    "setuid/setgid/sticky bits are not supported or functional in spec versions older than 3.6.0"
)


def _ignition_check(cfg: dict) -> list[tuple[str, str, tuple]]:
    """Ignition's validation of the generated config (pineinstall.config.check_dict)."""
    try:
        from pineinstall.config import check_dict
    except ImportError:  # pragma: no cover - the package ships with pineinstall
        return []
    out = []
    for e in sorted(check_dict(cfg), key=lambda e: _walk_key(tuple(e.path or ()), e.message)):
        msg = e.message
        if msg.startswith(_SPECIAL_BITS_PREFIX):
            # Butane 0.29 links a newer Ignition than Debian's 2.14, with this wording.
            msg = _SPECIAL_BITS_BUTANE
        out.append((ERROR if e.kind == "error" else WARNING, msg, tuple(e.path or ())))
    return out


# Checks Ignition runs from Storage.Validate / Config.Validate, i.e. before walking into the fields.
_STORAGE_LEVEL = frozenset(
    (
        "file path includes link in config",
        "directory path includes link in config",
        "link path includes link in config",
        "link target is required",
        "hard link target is a directory",
        "filesystem overwrites partitioned device",
        "device matches disk with wipeTable enabled; filesystem will be wiped",
    )
)
_CONFIG_LEVEL = frozenset(("path conflicts with systemd unit or dropin",))


def _walk_key(jpath: tuple, message: str) -> tuple:
    """Sort key giving the order of Ignition's validation walk (struct field order, parent first)."""
    from .fields import OUTPUT_ORDER

    if message in _CONFIG_LEVEL:
        return (-1,)
    if message in _STORAGE_LEVEL:
        jpath = ("storage",)
    key: list[int] = []
    typ: Any = "Config"
    for part in jpath:
        if isinstance(part, int):
            key.append(part)
            typ = typ[1] if isinstance(typ, tuple) else None
            continue
        fields = OUTPUT_ORDER.get(typ) if isinstance(typ, str) else None
        if not fields:
            key.append(99)
            typ = None
            continue
        idx = next((i for i, (k, _) in enumerate(fields) if k == part), 99)
        key.append(idx)
        typ = fields[idx][1] if idx != 99 else None
    if message in _STORAGE_LEVEL:
        key.append(-1)
    return tuple(key)


def _for_check(v: Any, generated: set[int], surrogates: bool) -> Any:
    """The config as Ignition's validation should see it, cheaply.

    Data URLs we generated are valid by construction; Ignition's check would scan every byte
    of them, so they are shown to it as an empty ``data:,``. Invalid UTF-8 from local files
    becomes U+FFFD, as in Go's JSON.
    """
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "source" and id(x) in generated:
                out[k] = "data:,"
            else:
                out[k] = _for_check(x, generated, surrogates)
        return out
    if isinstance(v, list):
        return [_for_check(x, generated, surrogates) for x in v]
    if surrogates and isinstance(v, str):
        return _replace_surrogates(v)
    return v


def _replace_surrogates(v: Any) -> Any:
    """Strings as Go sees them after JSON: invalid bytes (lone surrogates here) are U+FFFD."""
    if isinstance(v, str):
        return re.sub(_SURROGATES, "\ufffd", v)
    if isinstance(v, list):
        return [_replace_surrogates(x) for x in v]
    if isinstance(v, dict):
        return {k: _replace_surrogates(x) for k, x in v.items()}
    return v


_SURROGATES = "[\ud800-\udfff]"


def _top_duplicates(root: Any) -> list[str]:
    first: dict[str, int] = {}
    errs = []
    for k, _ in root.value:
        if k.id != "scalar":
            continue
        line = k.start_mark.line + 1
        if k.value in first:
            errs.append(
                f"line {line}: mapping key {go_quote(k.value)} already defined at line {first[k.value]}"
            )
        else:
            first[k.value] = line
    return errs


def _locate(entries: list[Entry], dec: Decoder) -> None:
    for e in entries:
        if e.line is not None:
            continue
        pos = None
        if e.at_key:
            pos = dec.keypos.get(e.path)
        p = e.path
        while pos is None:
            pos = dec.pos.get(p)
            if pos is not None or not p:
                break
            p = p[:-1]
        if pos is not None:
            e.line, e.col = pos


def _finish(res: Result, entries: list[Entry], dec: Decoder, error: str | None) -> Result:
    _locate(entries, dec)
    res.entries = entries
    res.error = error
    return res
