"""The translation pipeline: parse, pick the variant/version, decode, validate, desugar, check."""

from __future__ import annotations

import itertools
import re

from pineinstall.config.gocompat import go_quote
from pineinstall.config.report import Report, shorten

from . import Result
from .decode import NULL, Decoder
from .errors import (
    ERR_GENERATED,
    ERR_INVALID_VERSION,
    ERR_NO_VARIANT,
    ERR_RHCOS_REMOVED,
    ERR_SOURCE,
    MISMATCH,
)
from .fields import VARIANTS, Spec
from .report import WARNING, Entry, format_path, struct_order
from .yamlload import FAILED, NeedPlaces, YAMLSyntaxError, compose, compose_light, light_ok, snippet

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


def supported() -> str:
    """The variants and versions there is a translator for, e.g. ``fcos 1.0.0-1.7.0, pine 1.0.0``."""
    parts = []
    for variant, versions in VARIANTS.items():
        names = list(versions)
        parts.append(f"{variant} {names[0]}" + (f" to {names[-1]}" if len(names) > 1 else ""))
    return ", ".join(parts)


_SEMVER = r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$"


def run(
    text: bytes | str, *, files_dir: str | None, pretty: bool, safety: bool = False, output: bool = True
) -> Result:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    # First without positions (light nodes, see yamlload); anything that needs a place before the
    # translation is done starts again with them, so what is reported does not depend on this.
    light = light_ok(data)
    if light:
        root = compose_light(data)
        if root is not FAILED:
            stamp("yaml")
            held, root = [root], None  # (no reference left here: the tree goes once decoded)
            try:
                return _translate(data, held, False, files_dir, pretty, safety, output)
            except NeedPlaces:
                stamp("light-abandoned")  # (the time of the attempt)
    return _run(data, files_dir, pretty, safety, output, consume=light)


def _run(
    data: bytes, files_dir: str | None, pretty: bool, safety: bool, output: bool, consume: bool
) -> Result:
    """The way with marks; ``consume``: the text has no anchor (see Decoder.consume)."""
    try:
        root = compose(data)
        stamp("yaml")
    except YAMLSyntaxError as e:
        res = Result()
        res.source = data
        res.error = f"Error unmarshaling yaml: {e}"
        if e.line:  # yaml.v3's line is that of the enclosing construct; this is the offending one
            res.hints = [
                f"the problem is at line {e.line}, column {e.column}:",
                *snippet(data, e.line, e.column),
            ]
        return res
    except RecursionError:
        res = Result()
        res.source = data
        res.error = "Error unmarshaling yaml: yaml: exceeded max depth"
        return res
    held, root = [root], None
    return _translate(data, held, True, files_dir, pretty, safety, output, consume)


def _translate(
    data: bytes,
    held: list,
    places: bool,
    files_dir: str | None,
    pretty: bool,
    safety: bool,
    output: bool,
    consume: bool = False,
) -> Result:
    """The translation of a composed document, the root node in ``held`` (taken out of it, so that
    the tree is freed once decoded); ``places``: its nodes carry positions."""
    root = held.pop()
    res = Result()
    res.source = data  # decoded when a report needs it
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
    if (variant, norm) == ("rhcos", "0.1.0"):
        res.error = ERR_RHCOS_REMOVED
        return res
    if variant not in VARIANTS or norm not in VARIANTS[variant]:
        res.error = f"No translator exists for variant {variant} with version {norm}"
        res.hints = [f"supported variants and versions: {supported()}"]
        return res
    spec = Spec(variant, norm)
    res.variant, res.version, res.ignition_version = variant, norm, spec.ign_version

    dec = Decoder(spec, data, places)
    dec.consume = dec.consume or consume
    cfg = dec.decode(root, "Config", ()) if root is not None else {}
    # The places are in dec.pos and dec.keypos now: the node tree (half of a large run's peak
    # memory) goes before the translation builds its output.
    del root
    if dec.errors:
        res.error = "yaml: unmarshal errors:\n" + "\n".join("  " + e for e in dec.errors)
        return res
    if cfg is None or cfg is NULL:
        cfg = {}
    stamp("decode")

    report = Report()
    # Butane reports unused keys walking its structs: a struct's own keys before its fields'; a
    # struct given as null is no map in its context tree, which that walk reports instead.
    walked = [(parent, key) for parent, key in dec.unused] + [(p, None) for p in dec.null_structs]
    order = sorted(range(len(walked)), key=lambda i: (_struct_key(spec, walked[i][0]), i))
    for i in order:
        parent, key = walked[i]
        if key is None:
            report.warning(MISMATCH.format(path=format_path(parent)), parent)
        else:
            report.warning(f"unused key {shorten(key)}", (*parent, key), at_key=True)
    for p, (line, col) in dec.mismatch[:1]:
        # Go's context tree still has the null node at this index: its position is reported.
        report.extend([Entry(WARNING, MISMATCH.format(path=format_path(p)), p, line, col)])

    from .base.translate import Translator
    from .base.validate import validate_source

    tr = Translator(spec, files_dir, report, safety=safety or spec.variant == "pine")
    validate_source(tr, cfg)
    if report.has_errors:
        return _finish(res, report, dec, ERR_SOURCE)
    stamp("validate")
    tr.consume = True  # (cfg's large lists: not read after the copy)
    out = tr.translate(cfg)
    del cfg  # the YAML side, not read from here on (300,000 files: 1064 -> 936 MiB peak)
    if not report.has_errors:  # Butane filters only what translated
        tr.variant.filters(tr, out)
    if report.has_errors:
        del out, tr  # (before _finish may compose the text again for places)
        return _finish(res, report, dec, ERR_SOURCE)

    stamp("desugar")
    from .gojson import encode_parts, prune_in_place
    from .output_check import check_output

    # (in place: ``out``'s own objects, as the origins know them, are the pruned config)
    pruned = prune_in_place(out, "Config") or {}
    check_output(tr, out, pruned)
    if report.has_errors:
        del out, tr, pruned
        return _finish(res, report, dec, ERR_GENERATED)
    res.config = pruned
    stamp("check")
    if output:  # a check alone (--check, validate) needs no JSON text: a seventh of a large run
        res._parts = encode_parts(out, pretty, tr.generated)
        stamp("json")
    del out, tr
    return _finish(res, report, dec, None)


def _struct_key(spec: Spec, path: tuple) -> tuple:
    """Position of a YAML path in the walk of Butane's structs (field order, list order)."""
    key = struct_order(path, lambda typ: list(spec.fields(typ).items()) if typ[:1].isupper() else ())
    key.append(-1)
    return tuple(key)


def _placed(light: Decoder) -> Decoder:
    """A decoder of the same text that recorded the positions ``light`` (without them) did not."""
    dec = Decoder(light.spec, light.text)
    dec.consume = True  # (no anchor in the text: no node is read twice)
    root = compose(light.text or b"")
    if root is not None:
        dec.decode(root, "Config", ())
    return dec


def _top_duplicates(root: Any) -> list[str]:
    keys = [k.value for k, _ in root.value if k.id == "scalar"]
    if len(set(keys)) == len(keys):
        return []  # (and no position asked of a light node)
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


def _finish(res: Result, report: Report, dec: Decoder, error: str | None) -> Result:
    if not dec.places and report.entries:
        dec = _placed(dec)  # the light path found something: its places, from the text again

    def find(path: tuple, at_key: bool) -> tuple[int, int] | None:
        """The place of a YAML path: the key's own for unused keys, else the value's or its
        nearest ancestor's."""
        pos = dec.keypos.get(path) if at_key else None
        while pos is None:
            pos = dec.pos.get(path)
            if pos is not None or not path:
                break
            path = path[:-1]
        return pos

    report.locate(find)
    root = dec.pos.get(())
    for entry in report:
        if entry.path is None and entry.line is None and root is not None:
            entry.line, entry.col = root  # a path-less entry is placed at the document, as Go's
    res.entries = report.entries
    res.error = error
    return res
