"""Debian roots for the images: mmdebstrap, the one pinned kernel, and the guest's Python packages.

Debian bookworm is the package source these machines reach. Every image uses the same kernel ABI
(``KERNEL_ABI``, overridden by PINE_VM_KERNEL=6.1.0-NN): the ``bookworm`` suite and
``bookworm-security`` carry different ABIs, so the kernel is fetched as one .deb and unpacked, never
installed by apt. If the pin has left the archive, the newest 6.1 ABI is used (the note says so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
KERNEL_ABI = "6.1.0-50"

DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)

# pyproject.toml's [project].dependencies -> the Debian package of the same library (None: not in
# Debian 12; the product imports these optionally, with a pure-Python fallback).
DEBIAN_NAMES = {
    "jsonschema": "python3-jsonschema",
    "pyyaml": "python3-yaml",
    "pyudev": "python3-pyudev",
    "requests": "python3-requests",
    "libpass": "python3-passlib",  # libpass is passlib's maintained fork: same `passlib` module
    "zstandard": "python3-zstandard",
    "tqdm": "python3-tqdm",
    "isal": None,
    "pybase64": None,
}


def log(msg: str) -> None:
    print(f"[images] {msg}", file=sys.stderr, flush=True)


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    """Run argv (str()'d), output captured; RuntimeError with the output's tail when it fails."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(
            f"image build: {' '.join(map(str, argv))} failed (rc {proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def python_packages() -> tuple[str, ...]:
    """python3 and the Debian packages of pyproject.toml's runtime dependencies (the guest's Python)."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        deps = tomllib.load(fh)["project"]["dependencies"]
    out = ["python3"]
    for spec in deps:
        name = re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")
        if name not in DEBIAN_NAMES:
            raise RuntimeError(
                f"pyproject.toml depends on {name}: add its Debian package to iso/lib/debian.py"
            )
        debian = DEBIAN_NAMES[name]
        if debian is not None and debian not in out:
            out.append(debian)
    return tuple(out)


def kernel_abi() -> str:
    return os.environ.get("PINE_VM_KERNEL", KERNEL_ABI)


def kernel_package() -> tuple[str, str]:
    """(package, note): the pinned ABI when apt knows it, else the newest 6.1 ABI."""
    wanted = f"linux-image-{kernel_abi()}-amd64"
    shown = subprocess.run(["apt-cache", "show", "--no-all-versions", wanted], capture_output=True, text=True)
    if shown.returncode == 0 and shown.stdout.strip():
        return wanted, "pinned"
    names = run(["apt-cache", "pkgnames", "linux-image-6.1.0-"]).stdout.split()
    abis = sorted(
        (int(m.group(1)), n) for n in names if (m := re.fullmatch(r"linux-image-6\.1\.0-(\d+)-amd64", n))
    )
    if not abis:
        raise RuntimeError(f"{wanted} is not known to apt (run apt-get update?) and no other 6.1 kernel is")
    log(f"warning: {wanted} is not available; using {abis[-1][1]} (PINE_VM_KERNEL pins another)")
    return abis[-1][1], f"fallback from {wanted}"


def deb_cache() -> Path:
    """The .deb files every build downloaded (shared: the images' roots have most packages in common)."""
    from .cache import cache_dir

    return cache_dir("debs")


def _link_or_copy(src: Path, dst: Path) -> None:
    """dst appears complete or not at all (a concurrent build may be reading the directory)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def sync_debs(src: Path, dst: Path) -> None:
    """The .deb files of src that dst lacks, into dst."""
    dst.mkdir(parents=True, exist_ok=True)
    for deb in src.glob("*.deb"):
        if not (dst / deb.name).exists():
            _link_or_copy(deb, dst / deb.name)


def mmdebstrap(packages: tuple[str, ...], out: Path, *extra: str) -> None:
    """A minbase bookworm root with packages at out (a directory, or a tarball by its suffix).

    Packages come from the shared .deb cache when it has them (apt checks their hashes) and the
    downloaded ones go into it, before extra's customize hooks run."""
    log(f"mmdebstrap --variant=minbase {SUITE} (+{len(packages)} packages)")
    sync = f"env PYTHONPATH={REPO} {sys.executable} -m iso.lib.debian"
    argv = ["mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(packages)]
    argv += [f"--dpkgopt={o}" for o in DPKG_EXCLUDES]
    argv += [
        "--skip=essential/unlink",
        f'--setup-hook={sync} debs-in "$1"',
        f'--customize-hook={sync} debs-out "$1"',
    ]
    run([*argv, *extra, SUITE, out])


def kernel_deb(package: str) -> Path:
    """The kernel package's .deb from the shared cache, downloaded into it first if missing."""
    debs = deb_cache()
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    log(f"apt-get download {package}")
    work = debs / f".download-{os.getpid()}"
    work.mkdir()
    try:
        run(["apt-get", "download", package], cwd=work)
        (deb,) = work.glob(f"{package}_*.deb")
        os.replace(deb, debs / deb.name)
    finally:
        shutil.rmtree(work)
    return debs / deb.name


def prune_modules(modules: Path, keep: tuple[str, ...] | None = None, drop: tuple[str, ...] = ()) -> None:
    """Delete the modules of the tree not under one of keep (None: all kept) or under one of drop
    (paths under modules/kernel/): udev loading drivers a guest never uses costs boot time under TCG."""
    kernel = modules / "kernel"
    kept = [kernel / k for k in keep] if keep is not None else None
    dropped = [kernel / d for d in drop]
    for ko in list(kernel.rglob("*.ko*")):
        if (kept is not None and not _under(ko, kept)) or _under(ko, dropped):
            ko.unlink()
    for d in sorted(kernel.rglob("*"), reverse=True):
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()


def _under(path: Path, dirs: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in dirs)


def install_kernel(
    root: Path,
    keep: tuple[str, ...] | None = None,
    drop: tuple[str, ...] = (),
    boot_files: tuple[str, ...] = ("vmlinuz", "config"),
) -> dict:
    """The pinned kernel into root: its modules (see prune_modules) under usr/lib/modules/K, depmod'ed
    by the root's own kmod, and ``boot_files`` as root/boot/NAME-K. Returns kernel_package,
    kernel_note and kernel_version for the manifest."""
    kpkg, note = kernel_package()
    work = root.parent / f"pine-kernel-{os.getpid()}"
    work.mkdir()
    try:
        run(["dpkg-deb", "-x", kernel_deb(kpkg), work / "k"])
        (modules,) = (work / "k" / "lib" / "modules").iterdir()
        version = modules.name
        prune_modules(modules, keep, drop)
        dest = root / "usr" / "lib" / "modules" / version
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(modules), dest)
        (root / "boot").mkdir(exist_ok=True)
        for name in boot_files:
            shutil.copy(work / "k" / "boot" / f"{name}-{version}", root / "boot" / f"{name}-{version}")
    finally:
        shutil.rmtree(work)
    run(["chroot", root, "depmod", version])  # the .deb ships no modules.dep
    return {"kernel_package": kpkg, "kernel_note": note, "kernel_version": version}


def installed_packages(root: Path) -> list[str]:
    """name=version of every package dpkg knows in root."""
    return run(["chroot", root, "dpkg-query", "-W", "-f", "${Package}=${Version}\\n"]).stdout.split()


def drop_apt_state(root: Path) -> None:
    """Downloaded .debs and package lists: large, and stale the day after the build."""
    shutil.rmtree(root / "var" / "cache" / "apt", ignore_errors=True)
    (root / "var" / "cache" / "apt").mkdir(parents=True)
    shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
    (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)


def vmlinux(bzimage: Path, out: Path) -> None:
    """The ELF vmlinux inside Debian's xz bzImage: QEMU's -kernel boots it directly (PVH entry point),
    which skips the ~7 s the guest spends decompressing xz under TCG."""
    import lzma

    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start >= 0:
        elf = lzma.LZMADecompressor().decompress(data[start:])
        if elf[:4] == b"\x7fELF":
            out.write_bytes(elf)
            return
    log("warning: no xz payload in the kernel image; booting the bzImage as it is")
    shutil.copy(bzimage, out)


def tar(root: Path, out: Path) -> None:
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-I", "zstd -T0 -3", "-cf", out, "."])


def untar(tarball: Path, root: Path) -> None:
    root.mkdir()
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-I", "zstd -T0", "-xf", tarball])


if __name__ == "__main__":
    # mmdebstrap's hooks: python -m iso.lib.debian debs-in|debs-out ROOT
    archives = Path(sys.argv[2]) / "var" / "cache" / "apt" / "archives"
    if sys.argv[1] == "debs-in":
        sync_debs(deb_cache(), archives)
    else:
        sync_debs(archives, deb_cache())
