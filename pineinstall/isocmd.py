"""``pineinstall iso embed|show|remove``: the config embedded in an installer ISO, edited in place.

The installer ISO carries a 1 MiB file ``pine/embed.bin`` (``pineinstall.providers.embedded``).
Embedding overwrites that file's bytes inside the ISO image: no xorriso, no rebuild, and every other
byte of the ISO stays as it was (the boot records, the hybrid partition tables, the squashfs).

Finding the area: the ISO9660 directory records are read (the volume descriptor at sector 16, then
one directory per path component: a few KiB of reads), which names exactly the extent the live
system will read as ``/run/live/medium/pine/embed.bin``; the magic and the size are checked there.
Then, as a guard, every 2048-byte sector of the image is scanned for the magic: a second copy (say,
another Pine ISO stored inside this one) makes the image ambiguous to tools that search for the
magic, and it is refused. The scan reads the image once in 16 MiB blocks and only looks at the
first byte of each sector, so it costs about what reading the file costs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import struct
import sys
from typing import BinaryIO, NamedTuple

from pineinstall.providers import embedded
from pineinstall.resources import shown_url

SECTOR = 2048
FIRST_DESCRIPTOR = 16  # ISO9660: the system area is sectors 0-15
SCAN_BLOCK = 16 << 20  # a multiple of SECTOR
MAX_DIR_SIZE = 16 << 20  # a directory extent larger than this is not one we made


class IsoError(Exception):
    """The ISO cannot be used; it was not changed."""


class Area(NamedTuple):
    offset: int  # byte offset of the area in the image
    data: bytes  # its current content (AREA_SIZE bytes)


# --- ISO9660 ----------------------------------------------------------------------------------------


class _Record(NamedTuple):
    extent: int  # logical block number
    size: int
    is_dir: bool
    iso_name: str  # ISO9660 identifier without ";1" and trailing "."
    rr_name: str | None  # Rock Ridge NM, when present


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _primary_root(f: BinaryIO) -> tuple[_Record, int]:
    """The root directory record of the primary volume descriptor, and the logical block size."""
    for n in range(FIRST_DESCRIPTOR, FIRST_DESCRIPTOR + 64):
        vd = _read_at(f, n * SECTOR, SECTOR)
        if len(vd) < SECTOR or vd[1:6] != b"CD001":
            break
        if vd[0] == 255:  # set terminator
            break
        if vd[0] == 1:
            block = struct.unpack_from("<H", vd, 128)[0]
            if block not in (512, 1024, 2048):
                raise IsoError(f"unsupported ISO9660 logical block size {block}")
            root = _parse_record(vd[156 : 156 + 34])
            if root is None:
                break
            return root, block
    raise IsoError("not an ISO9660 image (no primary volume descriptor at sector 16)")


def _parse_record(rec: bytes) -> _Record | None:
    if len(rec) < 34 or rec[0] < 34 or rec[0] > len(rec):
        return None
    length = rec[0]
    extent, size = struct.unpack_from("<I", rec, 2)[0], struct.unpack_from("<I", rec, 10)[0]
    flags, name_len = rec[25], rec[32]
    if 33 + name_len > length:
        return None
    raw = rec[33 : 33 + name_len]
    iso_name = raw.decode("latin-1").split(";", 1)[0].rstrip(".")
    su_start = 33 + name_len + (1 - name_len % 2)  # a pad byte after an even-length name
    rr_name = _rock_ridge_name(rec[su_start:length])
    return _Record(extent, size, bool(flags & 0x02), iso_name, rr_name)


def _rock_ridge_name(su: bytes) -> str | None:
    """The Rock Ridge alternate name (``NM`` entries, possibly several parts) in a system use area."""
    parts: list[bytes] = []
    i = 0
    while i + 4 <= len(su):
        sig, length = su[i : i + 2], su[i + 2]
        if length < 4 or i + length > len(su):
            break
        if sig == b"NM" and length >= 5:
            flags = su[i + 4]
            if flags & 0x06:  # "." or ".." : not a name
                return None
            parts.append(su[i + 5 : i + length])
        elif sig == b"ST":
            break
        i += length
    if not parts:
        return None
    return b"".join(parts).decode("utf-8", "replace")


def _list_dir(f: BinaryIO, d: _Record, block: int) -> list[_Record]:
    if d.size > MAX_DIR_SIZE:
        raise IsoError(f"implausible ISO9660 directory size {d.size}")
    data = _read_at(f, d.extent * block, d.size)
    out: list[_Record] = []
    pos = 0
    while pos < len(data):
        length = data[pos]
        if length == 0:  # records do not cross sectors: the rest of this one is padding
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        rec = _parse_record(data[pos : pos + length])
        if rec is not None and rec.iso_name not in ("\0", "\1"):
            out.append(rec)
        pos += length
    return out


def _matches(rec: _Record, name: str) -> bool:
    # Rock Ridge names are what Linux shows; a plain ISO9660 name is shown lowercased.
    if rec.rr_name is not None:
        return rec.rr_name == name
    return rec.iso_name.lower() == name.lower()


def locate(f: BinaryIO, path: str = embedded.ISO_PATH) -> tuple[int, int]:
    """(byte offset, size) of the file ``path`` in the ISO9660 tree; IsoError when it is not there."""
    node, block = _primary_root(f)
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        found = [r for r in _list_dir(f, node, block) if _matches(r, part)]
        if not found:
            raise IsoError(f"no /{'/'.join(parts[: i + 1])} in the ISO: not a Pine installer ISO")
        if len(found) > 1:
            raise IsoError(f"/{'/'.join(parts[: i + 1])} appears {len(found)} times in the ISO directory")
        node = found[0]
        if node.is_dir != (i < len(parts) - 1):
            raise IsoError(
                f"/{'/'.join(parts[: i + 1])} in the ISO is not a {'directory' if i < len(parts) - 1 else 'file'}"
            )
    return node.extent * block, node.size


def _fill(f: BinaryIO, view: memoryview) -> int:
    """Read until ``view`` is full or the end of the file (reads may be short on devices)."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def scan(f: BinaryIO, magic: bytes = embedded.MAGIC) -> list[int]:
    """Offsets of every 2048-byte sector of ``f`` that starts with ``magic``.

    Only each sector's first byte is looked at first (a strided slice: one byte per sector), and the
    full magic is compared where that byte matches."""
    f.seek(0)
    buf = bytearray(SCAN_BLOCK)
    view = memoryview(buf)
    first = magic[:1]
    hits: list[int] = []
    base = 0
    with contextlib.suppress(OSError, AttributeError):
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
    while True:
        n = _fill(f, view)
        if not n:
            break
        heads = bytes(view[:n:SECTOR])
        i = heads.find(first)
        while i != -1:
            start = i * SECTOR
            if view[start : start + len(magic)] == magic:
                hits.append(base + start)
            i = heads.find(first, i + 1)
        base += n
        if n < len(buf):
            break
    return hits


def find_area(f: BinaryIO) -> Area:
    """The embed area of an ISO opened for reading; IsoError when it is missing or ambiguous."""
    offset, size = locate(f)
    if size != embedded.AREA_SIZE:
        raise IsoError(f"/{embedded.ISO_PATH} in the ISO is {size} bytes, not {embedded.AREA_SIZE}")
    data = _read_at(f, offset, size)
    if len(data) != size:
        raise IsoError(f"/{embedded.ISO_PATH} lies beyond the end of the image (truncated ISO?)")
    if not embedded.is_area(data):
        raise IsoError(f"/{embedded.ISO_PATH} in the ISO does not start with the embed area's magic")
    others = [o for o in scan(f) if o != offset]
    if others:
        where = ", ".join(str(o) for o in others[:5])
        raise IsoError(
            f"the embed area's magic also appears at byte offset(s) {where}: ambiguous, refusing to edit"
        )
    return Area(offset, data)


def open_area(iso: str) -> Area:
    try:
        with open(iso, "rb", buffering=0) as f:
            return find_area(f)
    except OSError as exc:
        raise IsoError(f"cannot read {iso}: {exc.strerror}") from exc


# --- writing ----------------------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_in_place(path: str, offset: int, old: bytes, new: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        # The image may have changed since it was read: write only over the area we checked.
        if os.pread(fd, len(old), offset) != old:
            raise IsoError(f"{path} changed while it was being edited; nothing written")
        written = os.pwrite(fd, new, offset)
        if written != len(new):
            raise IsoError(f"short write to {path} ({written} of {len(new)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_copy(src: str, out: str, offset: int, old: bytes, new: bytes) -> None:
    """Copy src to a temporary file beside out, put the new area in, fsync, rename over out."""
    import shutil
    import tempfile

    try:
        st = os.stat(out)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise IsoError(f"-o {out}: exists and is not a regular file")
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(out)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)  # sendfile / copy_file_range on Linux
        shutil.copymode(src, tmp)
        _write_in_place(tmp, offset, old, new)
        os.replace(tmp, out)
        _fsync_dir(out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_area(iso: str, area: Area, new: bytes, out: str | None) -> str:
    """Write ``new`` over ``area`` in ``iso`` (or in a copy at ``out``); returns the file written."""
    assert len(new) == embedded.AREA_SIZE
    if out is None or _same_file(iso, out):
        _write_in_place(iso, area.offset, area.data, new)
        return iso
    _write_copy(iso, out, area.offset, area.data, new)
    return out


# --- the command ------------------------------------------------------------------------------------

EPILOG = """\
examples:
  pineinstall iso embed pine-installer.iso --config node.ign --dest /dev/vda \
      --image https://example.com/pine.raw.xz \
      --image-sha256 "$(sha256sum pine.raw.xz | cut -d' ' -f1)" --poweroff
  pineinstall iso embed pine-installer.iso --config node.ign -o node-installer.iso
  pineinstall iso show pine-installer.iso > embedded.ign
  pineinstall iso remove pine-installer.iso

At boot the live system installs unattended when a target device is known (--dest here, or
pine.inst.dest= on the kernel command line) and an image (--image here, or pine.inst.image=); the
kernel command line wins over what is embedded. An image URL is installed only with its sha256 (of
the file as stored: --image-sha256 here, or pine.inst.image_sha256=); a path on the medium needs none. Without pine.inst.yes it only installs onto a blank
disk (no partition table, no filesystem signature).
The embedded config is readable by root only in the live system.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pineinstall iso",
        description="Embed an Ignition config (and a target device) into a Pine installer ISO, show "
        "it, remove it. The ISO is edited in place (or copied with -o); it is not rebuilt.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="embed|show|remove", required=True)
    e = sub.add_parser(
        "embed",
        help="embed a config",
        description="Embed an Ignition JSON config into ISO. Only Ignition JSON (spec 3.0.0-3.6.0) is "
        "accepted: transpile Butane-like YAML first (pine-transpile < node.bu > node.ign). The config "
        "is checked as 'pineinstall validate' checks it; with an error nothing is written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("iso", metavar="ISO", help="a Pine installer ISO (edited in place unless -o)")
    e.add_argument("--config", required=True, metavar="FILE", help="Ignition JSON config, or - for stdin")
    e.add_argument("--dest", metavar="DEV", help="target device to install onto at boot, e.g. /dev/vda")
    e.add_argument(
        "--image",
        metavar="URL|PATH",
        help="the Pine image to install: an http(s) URL, or a path on the medium or in the live system",
    )
    e.add_argument(
        "--image-sha256",
        metavar="HEX",
        help="sha256 of the image file as stored (sha256sum pine.raw.xz); required to install an image URL",
    )
    after = e.add_mutually_exclusive_group()
    after.add_argument("--reboot", action="store_true", help="reboot after a successful install")
    after.add_argument("--poweroff", action="store_true", help="power off after a successful install")
    e.add_argument("-o", "--output", metavar="OUT", help="write a modified copy to OUT; ISO is not changed")
    e.add_argument("--force", action="store_true", help="replace a config already embedded")
    s = sub.add_parser(
        "show",
        help="print the embedded config",
        description="Print the embedded config on stdout, the target device and the action after "
        "install on stderr. Exit status 1 when no config is embedded.",
    )
    s.add_argument("iso", metavar="ISO")
    s.add_argument(
        "--header",
        action="store_true",
        help="print the area's header (offset, format version, lengths, checksum) instead; exit 0 when readable",
    )
    r = sub.add_parser("remove", help="remove the embedded config", description="Reset the area to empty.")
    r.add_argument("iso", metavar="ISO")
    r.add_argument("-o", "--output", metavar="OUT", help="write a modified copy to OUT; ISO is not changed")
    return p


def _err(text: str) -> None:
    print(f"pineinstall iso: {text}", file=sys.stderr)


def _read_config(source: str) -> bytes:
    try:
        if source == "-":
            return sys.stdin.buffer.read()
        with open(source, "rb") as f:
            return f.read()
    except OSError as exc:
        raise IsoError(f"cannot read {source}: {exc.strerror}") from exc


def _current(area: Area) -> tuple[embedded.Embedded | None, str | None]:
    """(the embedded config or None, why it cannot be read or None)."""
    try:
        return embedded.decode(area.data), None
    except embedded.EmbedError as exc:
        return None, str(exc)


def _shown(source: str) -> str:
    """An image URL as messages show it: no credentials (shown_url), and a query only marked."""
    return shown_url(source) + ("?…" if "?" in source else "")


def needs_sha256_hint(image: str) -> str:
    """How to give the sha256 an unattended install of the image URL ``image`` needs."""
    from pineinstall.live import hex_of

    return (
        f"the image {_shown(image)} is a URL: the unattended install verifies it with its sha256 and "
        f"refuses it without one. Give it here with --image-sha256 HEX, or at boot with "
        f"pine.inst.image_sha256=HEX, where {hex_of(image)}"
    )


def cmd_embed(ns: argparse.Namespace) -> int:
    from pineinstall.config import check

    what = "stdin" if ns.config == "-" else ns.config
    data = _read_config(ns.config)
    if not data.strip():
        raise IsoError(f"{what} is empty")
    if not data.lstrip(b" \t\r\n").startswith(b"{"):
        raise IsoError(
            f"{what} is not Ignition JSON; only Ignition JSON is embedded "
            "(transpile YAML first: pine-transpile < node.bu > node.ign)"
        )
    report = check(data).report
    if report.entries:
        text = str(report)
        sys.stderr.write("".join(f"{what}: {line}\n" for line in text.splitlines()))
    if report.has_errors:
        raise IsoError(f"{what} is not a valid config; {ns.iso} not changed")
    if ns.dest is not None and not ns.dest.startswith("/"):
        raise IsoError(f"--dest must be an absolute device path such as /dev/vda, not {ns.dest!r}")
    if ns.image and "://" in ns.image and not ns.image.lower().startswith(("http://", "https://")):
        raise IsoError(f"--image must be an http(s) URL or a path, not {_shown(ns.image)!r}")
    if ns.image_sha256 is not None and not ns.image:
        raise IsoError("--image-sha256 is the sha256 of --image: give --image too")
    if ns.image and "://" in ns.image and ns.image_sha256 is None:
        _err(f"warning: {needs_sha256_hint(ns.image)}")
    after = "reboot" if ns.reboot else "poweroff" if ns.poweroff else None
    try:
        new = embedded.encode(data, ns.dest, after, ns.image, ns.image_sha256)
    except embedded.EmbedError as exc:
        raise IsoError(str(exc)) from exc
    area = open_area(ns.iso)
    old, damaged = _current(area)
    if (old is not None or damaged) and not ns.force:
        held = "a config" if old is not None else f"an unreadable area ({damaged})"
        raise IsoError(f"{ns.iso} already holds {held}; pass --force to replace it")
    written = write_area(ns.iso, area, new, ns.output)
    print(
        f"pineinstall iso: embedded {len(data)} bytes of config into {written} at byte {area.offset}"
        + (f", target {ns.dest}" if ns.dest else ", no target device (give pine.inst.dest= at boot)")
        + (f", image {_shown(ns.image)}" if ns.image else ", no image (give pine.inst.image= at boot)")
        + (" with its sha256" if ns.image_sha256 else "")
        + (f", then {after}" if after else ""),
        file=sys.stderr,
    )
    return 0


def cmd_show(ns: argparse.Namespace) -> int:
    area = open_area(ns.iso)
    if ns.header:
        try:
            h = embedded.header(area.data)
        except embedded.EmbedError as exc:
            raise IsoError(str(exc)) from exc
        state = {embedded.STATE_EMPTY: "empty", embedded.STATE_CONFIG: "config"}[h.state]
        sys.stdout.write(
            f"offset: {area.offset}\nsize: {len(area.data)}\nversion: {h.version}\nstate: {state}\n"
            f"after: {h.after or 'none'}\nconfig_length: {h.config_length}\n"
            f"dest_length: {h.dest_length}\nimage_length: {h.image_length}\n"
            f"image_sha256_length: {h.image_sha256_length}\nsha256: {h.sha256}\n"
            f"checksum: {'ok' if h.checksum_ok else 'MISMATCH'}\n"
        )
        return 0 if h.checksum_ok else 1
    current, damaged = _current(area)
    if damaged:
        raise IsoError(f"{ns.iso}: {damaged}")
    if current is None:
        _err(f"no config embedded in {ns.iso}")
        return 1
    sys.stdout.buffer.write(current.config)
    sys.stdout.flush()
    print(f"dest: {current.dest or '(none)'}", file=sys.stderr)
    print(f"image: {current.image or '(none)'}", file=sys.stderr)
    print(f"image sha256: {current.image_sha256 or '(none)'}", file=sys.stderr)
    print(f"after: {current.after or '(none)'}", file=sys.stderr)
    return 0


def cmd_remove(ns: argparse.Namespace) -> int:
    area = open_area(ns.iso)
    current, damaged = _current(area)
    blank = embedded.blank_area()
    if area.data == blank and ns.output is None:
        _err(f"no config embedded in {ns.iso}; nothing to do")
        return 0
    written = write_area(ns.iso, area, blank, ns.output)
    what = "the config" if current is not None else "an unreadable area" if damaged else "nothing"
    _err(f"removed {what} from {written}")
    return 0


def main(argv: list[str]) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return {"embed": cmd_embed, "show": cmd_show, "remove": cmd_remove}[ns.command](ns)
    except IsoError as exc:
        _err(str(exc))
        return 1
