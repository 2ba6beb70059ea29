"""Build the installer ISO and the PXE files from the cached live root and the current checkout.

Per build: unpack the live root (root.py), add pineinstall from a wheel of this checkout, squash it
(zstd), and lay out the medium::

    /live/vmlinuz  /live/initrd.img  /live/filesystem.squashfs   live-boot's layout
    /pine/embed.bin                                              the embed area (0400 root:root)
    /boot/grub/grub.cfg                                          "Install Pine" after 10 s, "Rescue shell"

``grub-mkrescue`` makes it hybrid: El Torito for BIOS (eltorito.img) and UEFI (efi.img), plus an MBR
and GPT, so the same file boots from a CD and written to a USB stick. ``-r`` (Rock Ridge) makes every
file world-readable, so native xorriso commands appended after ``--`` set the embed area back to 0400.

PXE: the same kernel, initramfs and squashfs (as ``rootfs.squashfs``); live-boot's initramfs fetches it
with ``fetch=http://SERVER/rootfs.squashfs ip=dhcp``.

Built results are cached in ``~/.cache/pineinstall-tests/installer/iso-<key>/``, key = the root's key
and the sources (pineinstall, butane_like, schemas, this package).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from iso.lib import cache, debian
from iso.lib.debian import run

from .root import REPO, ensure_root, installer_cache, log, root_key

HERE = Path(__file__).resolve().parent
ISO_NAME = "pine-installer.iso"
VOLUME_ID = "PINE_INSTALLER"
PXE_FILES = {"vmlinuz": "vmlinuz", "initrd.img": "initrd.img", "filesystem.squashfs": "rootfs.squashfs"}
# What goes into the wheel (and so into the cache key).
SOURCE_DIRS = ("pineinstall", "butane_like", "schemas")
SOURCE_FILES = ("pyproject.toml", "README.md")
# The fallback until pineinstall.providers.embedded lands (its constants are the contract).
FALLBACK_ISO_PATH = "pine/embed.bin"
FALLBACK_AREA_SIZE = 1 << 20
KEEP_BUILDS = 3  # cached ISO builds kept (older ones are deleted after a new build)

WRAPPER = """#!/usr/bin/python3
# {name}: the installer ISO's wrapper around the pineinstall package in dist-packages.
import sys

from {module} import main

sys.exit(main())
"""


@dataclass(frozen=True)
class BuiltIso:
    """A cached build: ``iso`` and the PXE files in ``pxe`` (read-only: copy them)."""

    directory: Path
    iso: Path
    pxe: dict[str, Path]
    manifest: dict


def embed_area() -> tuple[str, bytes]:
    """(path in the ISO, initial bytes) of the embed area, from pineinstall.providers.embedded."""
    try:
        from pineinstall.providers import embedded
    except ImportError:
        log("warning: pineinstall.providers.embedded is missing; the embed area is zeros")
        return FALLBACK_ISO_PATH, bytes(FALLBACK_AREA_SIZE)
    blank = embedded.blank_area()
    if len(blank) != embedded.AREA_SIZE:
        raise RuntimeError(f"blank_area() is {len(blank)} bytes, AREA_SIZE is {embedded.AREA_SIZE}")
    return embedded.ISO_PATH.lstrip("/"), blank


def _source_files() -> list[Path]:
    files = [REPO / f for f in SOURCE_FILES]
    for d in SOURCE_DIRS:
        files += [
            p
            for p in (REPO / d).rglob("*")
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    files += [p for p in HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(files)


def iso_key() -> str:
    h = hashlib.sha256(root_key().encode())
    for path in _source_files():
        h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _wheel(tmp: Path) -> Path:
    """A wheel of the checkout, built from a copy (the checkout's build/ and egg-info stay untouched)."""
    src = tmp / "src"
    src.mkdir()
    for f in SOURCE_FILES:
        shutil.copy(REPO / f, src / f)
    for d in SOURCE_DIRS:
        shutil.copytree(
            REPO / d, src / d, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    venv_python = REPO / ".venv" / "bin" / "python"
    python = venv_python if venv_python.exists() else Path(sys.executable)
    out = tmp / "wheel"
    run([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, src], cwd=src)
    (wheel,) = out.glob("pineinstall-*.whl")
    return wheel


def install_pineinstall(root: Path, tmp: Path) -> str:
    """Unpack the checkout's wheel into the root's dist-packages, with the two command wrappers."""
    wheel = _wheel(tmp)
    site = root / "usr" / "lib" / "python3" / "dist-packages"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    for name, module in (("pineinstall", "pineinstall.cli"), ("pine-transpile", "butane_like.cli")):
        path = root / "usr" / "local" / "bin" / name
        path.write_text(WRAPPER.format(name=name, module=module))
        path.chmod(0o755)
    # Byte-compiled ahead: the medium's root is read-only squashfs and Python starts slowly under TCG.
    run(["chroot", root, "python3", "-m", "compileall", "-q", "-j", "0",
         "/usr/lib/python3/dist-packages/pineinstall", "/usr/lib/python3/dist-packages/butane_like"])  # fmt: skip
    return wheel.name


def _finish_root(root: Path) -> None:
    # mmdebstrap leaves the build host's resolv.conf and hostname behind; the live system has its own.
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    (root / "etc" / "hostname").write_text("pine-installer\n")
    # live-boot's initramfs writes etc/network/interfaces for ifupdown (networkd ignores it); without
    # the directory it prints an error on the console.
    (root / "etc" / "network").mkdir(exist_ok=True)


def _build(tmp: Path) -> dict:
    started = time.monotonic()
    base_cached = (installer_cache() / f"root-{root_key()}" / "manifest.json").exists()
    base = ensure_root()
    root_done = time.monotonic()
    root = tmp / "root"
    log(f"unpacking {base.tarball}")
    debian.untar(base.tarball, root)
    log("pineinstall from this checkout")
    wheel = install_pineinstall(root, tmp)
    _finish_root(root)

    tree = tmp / "tree"
    live = tree / "live"
    live.mkdir(parents=True)
    version = base.manifest["kernel_version"]
    # The kernel and initramfs are on the medium; the squashfs does not need them.
    shutil.move(root / "boot" / f"vmlinuz-{version}", live / "vmlinuz")
    shutil.move(root / "boot" / f"initrd.img-{version}", live / "initrd.img")
    # zstd level 6: 2-3x faster to build than mksquashfs' default 15, a few percent larger.
    log("mksquashfs (zstd -6, 1 MiB blocks)")
    t0 = time.monotonic()
    run(["mksquashfs", root, live / "filesystem.squashfs", "-noappend", "-comp", "zstd", "-Xcompression-level", "6", "-b", "1M",
         "-no-progress", "-quiet", "-wildcards", "-e", "proc/*", "sys/*", "dev/*", "run/*", "tmp/*"])  # fmt: skip
    squash_seconds = time.monotonic() - t0
    shutil.rmtree(root)

    iso = tmp / ISO_NAME
    t0 = time.monotonic()
    iso_path, area_bytes = make_iso(tree, iso)
    mkrescue_seconds = time.monotonic() - t0

    pxe = tmp / "pxe"
    pxe.mkdir()
    for name, pxe_name in PXE_FILES.items():
        os.link(live / name, pxe / pxe_name)
    write_pxe_examples(pxe)
    shutil.rmtree(tree)
    return {
        "iso": ISO_NAME,
        "iso_bytes": iso.stat().st_size,
        "pxe": {name: (pxe / name).stat().st_size for name in PXE_FILES.values()},
        "embed_area": {"path": iso_path, "bytes": area_bytes},
        "kernel_version": version,
        "wheel": wheel,
        "root_key": root_key(),
        "root_was_cached": base_cached,
        "root_build_seconds": base.manifest["build_seconds"],
        "root_seconds": round(root_done - started, 1),
        "squashfs_seconds": round(squash_seconds, 1),
        "mkrescue_seconds": round(mkrescue_seconds, 1),
        "build_seconds": round(time.monotonic() - started, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def make_iso(tree: Path, iso: Path) -> tuple[str, int]:
    """Add the embed area and grub.cfg to tree (which holds live/) and write the hybrid ISO.

    Returns the area's path in the ISO and its size."""
    area_path, area = embed_area()
    (tree / area_path).parent.mkdir(parents=True, exist_ok=True)
    (tree / area_path).write_bytes(area)
    (tree / "boot" / "grub").mkdir(parents=True, exist_ok=True)
    (tree / "boot" / "grub" / "grub.cfg").write_text(grub_cfg())
    log("grub-mkrescue (BIOS + UEFI, hybrid)")
    # After grub-mkrescue's sources, "--" ends xorriso's mkisofs emulation: the rest are native commands
    # run before the image is written (mkisofs -r made the area 0444; the contract is 0400 root:root).
    iso_path = "/" + area_path
    run(["grub-mkrescue", "-o", iso, tree, "--", "-volid", VOLUME_ID,
         "-chmod", "0400", iso_path, "--", "-chown", "0", iso_path, "--", "-chgrp", "0", iso_path, "--"])  # fmt: skip
    check_embed_mode(iso, iso_path)
    return iso_path, len(area)


LIVE_ARGS = "boot=live components noeject"
CONSOLES = ("tty0", "ttyS0,115200n8")
RESCUE_NOTE = """systemd's rescue target: a root shell on the console with only local file systems mounted, no udev
coldplug beyond what sysinit starts, no network and no installer service: what is left when the normal
boot or the unattended install hangs. The live root has no root password, so sulogin lets you in."""


def grub_cfg() -> str:
    """The medium's menu: "Install Pine" after 10 s, "Rescue shell"; on the serial port and the screen."""
    from pineinstall.boot.grub import MenuEntry, render_config

    consoles = " ".join(f"console={c}" for c in CONSOLES)
    kernel, initrd = "/live/vmlinuz", "/live/initrd.img"
    entries = [
        MenuEntry("Install Pine", kernel, f"{LIVE_ARGS} quiet {consoles}", initrd),
        MenuEntry("Rescue shell", kernel, f"{LIVE_ARGS} {consoles} systemd.unit=rescue.target", initrd,
                  comment=RESCUE_NOTE),
    ]  # fmt: skip
    header = "Pine installer: GRUB menu on the serial port and the screen (BIOS and UEFI boot the same file)."
    return render_config(entries, tuple(reversed(CONSOLES)), header=header, timeout=10, timeout_style="menu")


def _place(src: Path, dst: Path) -> None:
    """Hard link when on the same file system (the squashfs is 100+ MiB), else copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


def remaster(built: BuiltIso, out: Path, extra: dict[str, Path]) -> Path:
    """A variant of the cached ISO with extra files on the medium (iso path -> file), e.g. a Pine image
    for an install without network (``pine.inst.image=/pine/pine.raw.zst``, or ``iso embed --image``).

    Reuses the cached kernel, initramfs and squashfs: only grub-mkrescue runs (seconds)."""
    with tempfile.TemporaryDirectory(prefix="pine-remaster-", dir=built.directory.parent) as tmp:
        tree = Path(tmp) / "tree"
        for name, pxe_name in PXE_FILES.items():
            _place(built.pxe[pxe_name], tree / "live" / name)
        for iso_path, src in extra.items():
            rel = iso_path.strip("/")
            if not rel or rel.split("/")[0] in ("live", "boot") or rel == embed_area()[0]:
                raise ValueError(
                    f"--add {iso_path}: not a path the ISO may take (live/, boot/, the embed area)"
                )
            _place(Path(src), tree / rel)
        make_iso(tree, Path(out))
    return Path(out)


def check_embed_mode(iso: Path, iso_path: str) -> None:
    """Fail the build unless the ISO's Rock Ridge entry of the embed area is -r-------- 0 0."""
    out = subprocess.run(
        ["xorriso", "-indev", str(iso), "-lsl", iso_path], capture_output=True, text=True
    ).stdout
    fields = out.split()
    if len(fields) < 4 or fields[0] != "-r--------" or fields[2] != "0" or fields[3] != "0":
        raise RuntimeError(f"{iso}: {iso_path} is not 0400 root:root in the ISO: {out.strip()!r}")


def write_pxe_examples(pxe: Path) -> None:
    args = "boot=live components noeject fetch=http://SERVER/pine/rootfs.squashfs ip=dhcp console=tty0 console=ttyS0,115200n8"
    unattended = "pine.inst.dest=/dev/sda pine.inst.config=http://SERVER/pine/node.ign pine.inst.image=http://SERVER/pine/pine.raw.zst pine.inst.image_sha256=HEX pine.inst.poweroff"
    (pxe / "boot.ipxe").write_text(
        "#!ipxe\n"
        "# Pine installer over the network: serve this directory at http://SERVER/pine/.\n"
        "# Unattended install: append " + unattended + "\n"
        "# (HEX: the first field of 'sha256sum pine.raw.zst'; an image URL is installed only with it)\n"
        "dhcp\n"
        f"kernel http://SERVER/pine/vmlinuz initrd=initrd.img {args}\n"
        "initrd http://SERVER/pine/initrd.img\n"
        "boot\n"
    )
    (pxe / "pxelinux.cfg").write_text(
        "# A pxelinux.cfg/default stanza (vmlinuz and initrd.img copied next to pxelinux.0).\n"
        f"# Unattended install: append {unattended}\n"
        "# (HEX: the first field of 'sha256sum pine.raw.zst'; an image URL is installed only with it)\n"
        "DEFAULT pine\n"
        "LABEL pine\n"
        "  KERNEL vmlinuz\n"
        "  INITRD initrd.img\n"
        f"  APPEND {args}\n"
    )


def _load(directory: Path) -> BuiltIso:
    manifest = json.loads((directory / "manifest.json").read_text())
    pxe = {name: directory / "pxe" / name for name in PXE_FILES.values()}
    return BuiltIso(directory, directory / manifest["iso"], pxe, manifest)


def ensure_iso() -> BuiltIso:
    """The cached ISO + PXE files for the current checkout, built first if needed (needs root)."""
    cache_parent = installer_cache()
    final = cache_parent / f"iso-{iso_key()}"
    fresh = not (final / "manifest.json").exists()
    cache.cached_build(final, _build, keep=(ISO_NAME, "pxe"))
    if fresh:
        _prune_old_builds(cache_parent, keep=KEEP_BUILDS)
    return _load(final)


def _prune_old_builds(cache: Path, keep: int) -> None:
    """Every checkout change makes a new ~330 MB build: keep the newest few (a guest still booting a
    deleted one keeps reading its open file)."""
    builds = sorted(
        (d for d in cache.glob("iso-*") if d.is_dir() and (d / "manifest.json").exists()),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        (cache / f"{old.name}.lock").unlink(missing_ok=True)


def copy_out(built: BuiltIso, out: Path, pxe_dir: Path | None = None) -> Path:
    """Copy the ISO to out (a file or a directory) and, with pxe_dir, the PXE files there."""
    out = Path(out)
    if out.is_dir():
        out = out / ISO_NAME
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", delete=False) as fh:
        tmp = Path(fh.name)
    run(["cp", "--reflink=auto", built.iso, tmp])
    tmp.chmod(0o644)
    os.replace(tmp, out)
    if pxe_dir is not None:
        copy_pxe(built, pxe_dir)
    return out


def copy_pxe(built: BuiltIso, pxe_dir: Path) -> None:
    """The PXE files (kernel, initramfs, rootfs.squashfs, boot.ipxe, pxelinux.cfg) into pxe_dir."""
    pxe_dir.mkdir(parents=True, exist_ok=True)
    for src in (built.directory / "pxe").iterdir():
        shutil.copy(src, pxe_dir / src.name)
