"""The ``agent`` test image: the raw Pine-shaped disk of ``iso.images`` plus Python and the libraries
``pineinstall`` imports, so that the booted guest can run ``pineinstall firstboot``.

    python -m iso.agent build [-o OUT]      # build (cached) and copy out
    python -m iso.agent path                # the cached disk.img

    from iso.agent import ensure_agent_image, prepare_firstboot_disk
    disk = prepare_firstboot_disk(tmp / "disk.img", kargs=["pine.test.poweroff"])

Made from the cached ``rootfs`` image of ``iso.images`` (same packages, kernel and initramfs): the
tarball is unpacked, ``AGENT_PACKAGES`` are resolved and downloaded by the host's apt against the
root's dpkg status (the host's apt configuration reaches the archive; the root's sources may not) and
installed with ``dpkg`` in a chroot, then ``iso.images.disk.build_raw`` makes the disk.

This module lives outside ``iso/images/`` on purpose: every file there is part of the cache key of
the ``raw`` and ``ostree`` disks, which other tests use. The key of this image hashes the ``raw``
key, the package list and ``BUILD_REVISION``.

``pineinstall`` itself is NOT in the cached image (the key does not follow its source): it is copied
from the current checkout into a copy of the disk by :func:`prepare_firstboot_disk`, together with a
``/usr/local/bin/pineinstall`` wrapper and the first-boot unit, installed and enabled by the product's
own :func:`pineinstall.firstboot.service.install_unit` (what ``pineinstall install --stash-config`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from iso.images import build as images
from iso.images import disk as raw_disk
from iso.lib import cache, debian
from iso.lib import disk as disks

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent

KIND = "raw-agent"
# pineinstall's runtime dependencies (pyproject.toml), as Debian packages.
AGENT_PACKAGES = debian.python_packages()
GUEST_PYTHON = (3, 11)  # Debian bookworm's python3
LIB_DIR = "usr/local/lib/pineinstall"  # where the checkout's package is copied in the guest
WRAPPER = "usr/local/bin/pineinstall"


# Bump when _build changes what ends up in the image. (The key does not hash this file: editing
# prepare_firstboot_disk must not rebuild the cached disk.)
BUILD_REVISION = 1


def agent_key() -> str:
    """The raw disk's key (its packages, kernel, builder source), the extra packages, the revision."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"kind": KIND, "raw": images.image_key("raw"), "packages": AGENT_PACKAGES, "rev": BUILD_REVISION}
        ).encode()
    )
    return h.hexdigest()[:16]


def _install_packages(root: Path, tmp: Path) -> list[str]:
    """AGENT_PACKAGES into root: downloaded by the host's apt (dependencies resolved against root's
    dpkg status), installed by the root's apt from those files (it orders the pre-dependencies that a
    plain ``dpkg -i`` of them all trips over)."""
    debs = tmp / "debs"
    (debs / "partial").mkdir(parents=True)
    debian.log(f"apt-get --download-only {' '.join(AGENT_PACKAGES)}")
    debian.run(
        [
            "apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends",
            f"-o=Dir::State::status={root / 'var/lib/dpkg/status'}",
            f"-o=Dir::Cache::archives={debs}", "-o=Debug::NoLocking=1",
            *AGENT_PACKAGES,
        ]
    )  # fmt: skip
    files = sorted(p.name for p in debs.glob("*.deb"))
    if not files:
        raise RuntimeError("image build: apt downloaded no packages (already installed?)")
    inside = root / "tmp" / "agent-debs"
    shutil.copytree(debs, inside, ignore=shutil.ignore_patterns("partial", "lock"))
    debian.log(f"apt-get install ({len(files)} local packages)")
    with _mounted_proc(root):
        debs_inside = [f"/tmp/agent-debs/{name}" for name in files]
        debian.run(
            ["chroot", root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *debs_inside]
        )
    shutil.rmtree(inside)
    return files


@contextmanager
def _mounted_proc(root: Path) -> Iterator[None]:
    (root / "proc").mkdir(exist_ok=True)
    debian.run(["mount", "-t", "proc", "proc", root / "proc"])
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], capture_output=True)


def _build(tmp: Path) -> dict:
    base = images.ensure_image("rootfs")
    info = {k: v for k, v in base.manifest.items() if k not in ("file", "build_seconds", "built_at", "key")}
    root = tmp / "root"
    debian.log(f"unpacking {base.path}")
    debian.untar(base.path, root)
    info["agent_debs"] = _install_packages(root, tmp)
    probe = debian.run(
        ["chroot", root, "python3", "-c", "import yaml, requests, pyudev, passlib, zstandard, tqdm; print('ok')"]
    )
    if probe.stdout.strip() != "ok":
        raise RuntimeError(f"image build: python3 in the agent image cannot import its libraries: {probe}")
    root_uuid = str(uuid.uuid4())
    info.update(raw_disk.build_raw(root, tmp / "disk.img", info["kernel_version"], root_uuid))
    shutil.rmtree(root, ignore_errors=True)
    info.update(
        file="disk.img",
        kind=KIND,
        agent_packages=list(AGENT_PACKAGES),
    )
    return info


def ensure_agent_image() -> images.BuiltImage:
    """The cached agent disk for the current inputs, built first if needed (needs root)."""
    final = images.cache_dir() / f"{KIND}-{agent_key()}"
    return images.load(KIND, final, cache.cached_build(final, _build, keep=("disk.img",)))


# --- a disk that runs first boot -------------------------------------------------------------------

WRAPPER_TEXT = f"""#!/bin/sh
# pineinstall from the checkout copied into this test image (iso/agent.py)
PYTHONPATH=/{LIB_DIR}${{PYTHONPATH:+:$PYTHONPATH}} exec python3 -m pineinstall.cli "$@"
"""


def copy_package(dest_lib: Path) -> None:
    """The checkout's ``pineinstall`` package (schemas link resolved) under dest_lib."""
    dest = dest_lib / "pineinstall"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        REPO / "pineinstall",
        dest,
        symlinks=False,  # pineinstall/schemas -> ../schemas: the guest needs the files
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    if sys.version_info[:2] == GUEST_PYTHON:
        # Byte-compiled here: importing from source costs the guest tens of seconds under TCG.
        import compileall

        compileall.compile_dir(dest, quiet=1)


def prepare_firstboot_disk(
    out: Path,
    *,
    kargs: Iterable[str] = (),
    stash: bytes | None = None,
    base: images.BuiltImage | None = None,
) -> Path:
    """A copy of the agent disk at out with this checkout's pineinstall, its wrapper and the first-boot
    unit installed and enabled (by the product's code); extra kernel arguments on its GRUB entry; an
    optional stashed config at /boot/ignition/config.ign."""
    from pineinstall.boot import apply_kargs
    from pineinstall.firstboot import service
    from pineinstall.install import stash as stashing
    from pineinstall.stages import Log
    from pineinstall.target import open_target

    base = base or ensure_agent_image()
    out = Path(out)
    debian.run(["cp", "--sparse=always", "--reflink=auto", base.path, out])
    with (
        disks.loop_device(out) as dev,
        tempfile.TemporaryDirectory(prefix="pine-agent-") as tmp,
        disks.mounted(f"{dev}p3", Path(tmp) / "mnt") as mnt,
    ):
        copy_package(mnt / LIB_DIR)
        wrapper = mnt / WRAPPER
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(WRAPPER_TEXT)
        wrapper.chmod(0o755)
        log = Log(sys.stderr)
        service.install_unit(open_target(mnt), log)
        if stash is not None:
            stashing.stash_config(mnt, stash, log)
        extra = list(kargs)
        if extra:
            apply_kargs(mnt, append=extra)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iso.agent", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or find cached) and copy to -o")
    b.add_argument("-o", "--output", type=Path)
    sub.add_parser("path", help="print the cached disk.img")
    f = sub.add_parser("firstboot-disk", help="a copy with this checkout's pineinstall and the unit")
    f.add_argument("output", type=Path)
    f.add_argument("--karg", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        if args.command == "firstboot-disk":
            print(prepare_firstboot_disk(args.output, kargs=args.karg))
            return 0
        image = ensure_agent_image()
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = image.path
    if args.command == "build" and args.output is not None:
        out = images.copy_out(image, args.output)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
