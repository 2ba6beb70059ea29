"""blkid: low-level probing of signatures (no cache) and lookups by tag."""

from __future__ import annotations

from dataclasses import dataclass

from pineinstall.run import run

BLKID = "blkid"
# Exit codes (blkid(8)): 2 = nothing found, 8 = ambivalent low-level probing result.
RC_NOT_FOUND = 2
RC_AMBIVALENT = 8

# Config names /dev/disk/by-<kind>/<value> and the blkid tag that holds <value>.
TAG_OF_BY_KIND = {
    "by-label": "LABEL",
    "by-uuid": "UUID",
    "by-partlabel": "PARTLABEL",
    "by-partuuid": "PARTUUID",
}


@dataclass(frozen=True)
class Signature:
    """What is on a device: ``type`` is "" when nothing was found."""

    type: str = ""
    label: str = ""
    uuid: str = ""
    ambivalent: bool = False
    usage: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        return dict(self.extra).get(key)


def probe_argv(device: str, offset: int | None = None, size: int | None = None) -> list[str]:
    argv = [BLKID, "-p", "-o", "export"]
    if offset is not None:
        argv += ["-O", str(offset)]
    if size is not None:
        argv += ["-S", str(size)]
    return [*argv, device]


def parse_export(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value
    return out


def probe(device: str, offset: int | None = None, size: int | None = None) -> Signature:
    """Signature on ``device`` (or in the byte range ``offset``/``size`` of it)."""
    proc = run(probe_argv(device, offset, size), check=False)
    if proc.returncode == RC_NOT_FOUND:
        return Signature()
    if proc.returncode == RC_AMBIVALENT:
        # Several signatures (e.g. an old one left behind): report them so the caller refuses to
        # reuse, and a wipe clears them all.
        listing = run(["wipefs", "--no-act", "--noheadings", "-o", "TYPE", device], check=False)
        types = sorted({t.strip() for t in listing.stdout.decode().split() if t.strip()})
        return Signature(type="ambivalent(" + ",".join(types) + ")", ambivalent=True)
    if proc.returncode != 0:
        from pineinstall.run import CommandError

        raise CommandError(proc.args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    fields = parse_export(proc.stdout.decode("utf-8", "replace"))
    return Signature(
        type=fields.get("TYPE", ""),
        label=fields.get("LABEL", ""),
        uuid=fields.get("UUID", ""),
        usage=fields.get("USAGE", ""),
        extra=tuple(sorted(fields.items())),
    )


def find_argv(tag: str, value: str) -> list[str]:
    # -c /dev/null: probe the devices now instead of trusting a cache file.
    return [BLKID, "-c", "/dev/null", "-o", "device", "-t", f"{tag}={value}"]


def find(tag: str, value: str) -> list[str]:
    """Devices whose ``tag`` (LABEL, UUID, PARTLABEL, PARTUUID) equals ``value``."""
    proc = run(find_argv(tag, value), check=False)
    if proc.returncode != 0:
        return []
    return [line.strip() for line in proc.stdout.decode().splitlines() if line.strip()]
