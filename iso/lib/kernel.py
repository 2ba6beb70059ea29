"""Pine's kernel: Linux from Debian's ``linux-source-6.1`` package, built with a small config
(``pine-kernel.config`` merged over ``make tinyconfig``), everything Pine uses built in, no modules.

Why a build: Alpine's ``linux-virt`` 6.18 (the wheel's) keeps ~44 MiB reserved at ``-m 64`` (a 30 MiB
image: 14.7 MiB code, 9.9 MiB rodata) and leaves 18 MiB, too little for Pine's boot; Debian's prebuilt
``cloud-amd64`` kernel reserves as much (46 MiB at 128 MiB) and does not even start at 64 MiB. This one
leaves ~43 MiB (figures in iso/README.md). The source comes from Debian's archive, the one package
source these machines reach; the package's version is the apt candidate, so a security update of the
source gives a new cache key.

    from iso.lib.kernel import pine_kernel, install_kernel
    directory, manifest = pine_kernel()       # vmlinuz, config, modules.builtin*
    release = install_kernel(root)            # /boot/vmlinuz-RELEASE, /lib/modules/RELEASE (builtin lists)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .cache import cache_dir, cached_build
from .debian import deb_cache, log, run

PACKAGE = "linux-source-6.1"
FRAGMENT = Path(__file__).with_name("pine-kernel.config")
# What the build leaves: the kernel, its full config, and the built-in module lists that kmod's
# modprobe reads (a modprobe of a built-in driver then succeeds and loads nothing).
KEPT = ("vmlinuz", "config", "modules.builtin", "modules.builtin.modinfo")


def source_version() -> str:
    """The apt candidate version of the source package (no download)."""
    out = run(["apt-cache", "show", "--no-all-versions", PACKAGE]).stdout
    for line in out.splitlines():
        if line.startswith("Version: "):
            return line.split(" ", 1)[1].strip()
    raise RuntimeError(f"kernel build: apt knows no {PACKAGE} (run apt-get update?)")


def build_key(version: str) -> str:
    """The source version, the config fragment and this module's source."""
    h = hashlib.sha256(f"{PACKAGE}={version}\0".encode())
    for path in (FRAGMENT, Path(__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _source_deb(version: str) -> Path:
    """The source package's .deb of that version, from the shared .deb cache (downloaded first)."""
    debs = deb_cache()
    name = f"{PACKAGE}_{version.replace(':', '%3a')}_all.deb"
    if (debs / name).is_file():
        return debs / name
    log(f"apt-get download {PACKAGE}={version}")
    work = debs / f".download-{os.getpid()}"
    work.mkdir()
    try:
        run(["apt-get", "download", f"{PACKAGE}={version}"], cwd=work)
        (deb,) = work.glob(f"{PACKAGE}_*.deb")
        os.replace(deb, debs / name)
    finally:
        shutil.rmtree(work)
    return debs / name


def _unpack(deb: Path, dest: Path) -> None:
    """The tree of /usr/src/PACKAGE.tar.xz inside deb, into dest (no copy of the tarball on disk)."""
    dest.mkdir()
    member = f"./usr/src/{PACKAGE}.tar.xz"
    fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    inner = subprocess.Popen(["tar", "-xOf", "-", member], stdin=fsys.stdout, stdout=subprocess.PIPE)
    assert fsys.stdout is not None and inner.stdout is not None
    fsys.stdout.close()
    run(["tar", "-xJf", "-", "-C", dest, "--strip-components=1"], stdin=inner.stdout)
    inner.stdout.close()
    if inner.wait() != 0 or fsys.wait() != 0:
        raise RuntimeError(f"kernel build: {member} not read from {deb}")


def _wanted(fragment: str) -> dict[str, str]:
    """The fragment's settings: name -> value ("n" for an option that must stay off)."""
    wanted = {}
    for line in fragment.splitlines():
        if line.startswith("CONFIG_"):
            name, _, value = line.partition("=")
            wanted[name] = value
    return wanted


def check_config(config: str, fragment: str) -> list[str]:
    """The fragment's lines the final config does not honour (a dependency missing, a typo)."""
    have = _wanted(config)
    return [
        f"{name}={value} (got {have.get(name, 'unset')})"
        for name, value in _wanted(fragment).items()
        if (name in have if value == "n" else have.get(name) != value)
    ]


def _build(tmp: Path, version: str) -> dict:
    deb = _source_deb(version)
    src, out = tmp / "src", tmp / "out"
    log(f"unpacking {deb.name}")
    _unpack(deb, src)
    fragment = FRAGMENT.read_text()
    run(["make", "-s", "-C", src, f"O={out}", "tinyconfig"])
    run([src / "scripts" / "kconfig" / "merge_config.sh", "-m", "-O", out, out / ".config", FRAGMENT])
    run(["make", "-s", "-C", src, f"O={out}", "olddefconfig"])
    config = (out / ".config").read_text()
    missed = check_config(config, fragment)
    if missed:
        raise RuntimeError(f"kernel build: {FRAGMENT.name} not honoured by the config: {', '.join(missed)}")
    jobs = str(os.cpu_count() or 1)
    log(f"make bzImage ({PACKAGE} {version}, -j{jobs}, nice)")
    # nice: a cold CI run builds this beside TCG guests, whose timeouts matter more
    run(["nice", "-n", "19", "make", "-s", "-C", src, f"O={out}", f"-j{jobs}", "bzImage"])
    release = (out / "include" / "config" / "kernel.release").read_text().strip()
    shutil.copyfile(out / "arch" / "x86" / "boot" / "bzImage", tmp / "vmlinuz")
    shutil.copyfile(out / ".config", tmp / "config")
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        shutil.copyfile(out / name, tmp / name)
    shutil.rmtree(src)
    shutil.rmtree(out)
    return {
        "package": PACKAGE,
        "version": version,
        "release": release,
        "vmlinuz_size": (tmp / "vmlinuz").stat().st_size,
        "fragment": FRAGMENT.name,
    }


def pine_kernel() -> tuple[Path, dict]:
    """(directory, manifest) of the cached kernel build, built first if needed (~10 min on 2 cores)."""
    version = source_version()
    directory = cache_dir("kernel") / f"pine-{version}-{build_key(version)}"
    manifest = cached_build(directory, lambda tmp: _build(tmp, version), keep=KEPT)
    return directory, manifest


def install_kernel(root: Path) -> str:
    """Pine's kernel into root (a /usr-merged tree): ``/boot/vmlinuz-RELEASE`` and
    ``/lib/modules/RELEASE`` with the built-in lists and depmod's indexes; other kernels' module
    trees are removed (nothing could load them). Returns RELEASE."""
    directory, manifest = pine_kernel()
    release = manifest["release"]
    modules = root / "usr" / "lib" / "modules"
    if modules.is_dir():
        shutil.rmtree(modules)
    (modules / release).mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        shutil.copyfile(directory / name, modules / release / name)
    (modules / release / "modules.order").write_text("")
    run(["depmod", "-b", root, release])
    (root / "boot").mkdir(exist_ok=True)
    shutil.copyfile(directory / "vmlinuz", root / "boot" / f"vmlinuz-{release}")
    return release


if __name__ == "__main__":
    # python -m iso.lib.kernel: build (or find) the kernel and print its path
    d, _ = pine_kernel()
    print(d / "vmlinuz")
