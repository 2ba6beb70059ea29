"""Pine's SSH server: Dropbear from Debian's source package, built static against musl, with an
OpenRC service.

Why static musl Dropbear: the Alpine root is musl, no Alpine mirror is reachable here, and Debian's
glibc binaries would need their own loader and libraries carried along (a few MiB of glibc in a
~90 MiB system, a second libc to patch, and a binary that breaks when the two loaders' paths meet).
One static ~400 KiB multi-call binary (``dropbear``, ``dropbearkey``, ``scp``) has no run-time
dependency at all, and Dropbear is what small Alpine boxes run anyway. Debian's ``musl-dev`` carries no
``crypt()``, so password logins over SSH are compiled out: SSH takes keys (the console takes passwords,
through Alpine's own busybox ``login``).

The source comes from a private deb-src sources directory (the host's apt configuration is never
touched: its own lists and package caches stay as they are); the build is cached keyed by the
``.dsc``'s sha256 and the build options.

    from iso.lib.dropbear import install_dropbear
    install_dropbear(root)   # binary, links, /etc/init.d/sshd in the default runlevel
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .cache import cache_dir, cached_build, file_lock
from .debian import SUITE, log, run

PACKAGE = "dropbear"
SOURCES = f"""\
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
# Debian's localoptions.h is kept (PATH defaults); these override it: no crypt() in musl-dev, no sftp-server.
LOCAL_OPTIONS = "#define DROPBEAR_SVR_PASSWORD_AUTH 0\n#define DROPBEAR_SFTPSERVER 0\n"
CONFIGURE = (
    "--enable-static", "--disable-zlib", "--disable-pam", "--disable-syslog", "--disable-lastlog",
    "--disable-utmp", "--disable-utmpx", "--disable-wtmp", "--disable-wtmpx", "--disable-loginfunc",
    "--disable-pututline", "--disable-pututxline",
)  # fmt: skip
PROGRAMS = "dropbear dropbearkey scp"
COMPILER = "musl-gcc"  # Debian's musl-tools
# In the root: the multi-call binary and the names it answers to.
BINARY = "usr/sbin/dropbearmulti"
LINKS = {"usr/sbin/dropbear": "dropbearmulti", "usr/bin/dropbearkey": "../sbin/dropbearmulti",
         "usr/bin/scp": "../sbin/dropbearmulti"}  # fmt: skip
# The service is called sshd, the name Alpine's configs (and examples/pine-host.bu) enable.
SERVICE = "sshd"
# Host keys are made at the first connection that asks for each type (-R), into /etc/dropbear: every
# installed machine gets its own, none is baked into the image.
INIT_SCRIPT = """\
#!/sbin/openrc-run
# Pine's SSH server (static Dropbear); keys only, host keys generated on first use into /etc/dropbear.
description="SSH server (Dropbear)"
command="/usr/sbin/dropbear"
command_args="-R -P /run/dropbear.pid ${DROPBEAR_OPTS}"
pidfile="/run/dropbear.pid"

depend() {
	provide dropbear
	use logger dns
	need net
	after firewall pine-firstboot
}

start_pre() {
	checkpath --directory --mode 0700 /etc/dropbear
}
"""


def _apt_options(state: Path) -> list[str]:
    """apt reading only our deb-src list and keeping its lists and caches in state."""
    return [
        "-o", f"Dir::Etc::SourceParts={state / 'sources'}",
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::State::Lists={state / 'lists'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
    ]  # fmt: skip


def _source_index() -> Path:
    """The private apt state with deb-src lists (apt-get update the first time only)."""
    state = cache_dir("dropbear") / "apt"
    with file_lock(cache_dir("dropbear") / "apt.lock"):
        if not any((state / "lists").glob("*Sources*")):
            for d in ("sources", "lists/partial", "cache/archives/partial"):
                (state / d).mkdir(parents=True, exist_ok=True)
            (state / "sources" / "debian-src.sources").write_text(SOURCES)
            log("apt-get update (private deb-src lists)")
            run(["apt-get", "-q", *_apt_options(state), "update"])
    return state


def dsc_sha256(state: Path) -> tuple[str, str]:
    """(version, sha256 of the .dsc) of the newest dropbear source apt knows."""
    shown = run(["apt-cache", *_apt_options(state), "showsrc", "--only-source", PACKAGE]).stdout
    best: tuple[str, str] | None = None
    for record in shown.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in record.splitlines() if ": " in line and not line.startswith(" ")
        )
        version = fields.get("Version")
        sums = record.split("Checksums-Sha256:", 1)[-1].splitlines()
        dsc = [ln.split()[0] for ln in sums if ln.strip().endswith(".dsc")]
        if version and dsc and (best is None or _newer(version, best[0])):
            best = (version, dsc[0])
    if best is None:
        raise RuntimeError(f"apt knows no source package {PACKAGE} (deb-src lists in {state})")
    return best


def _newer(a: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def _build(tmp: Path, state: Path, version: str, sha: str) -> dict:
    if shutil.which(COMPILER) is None:
        raise RuntimeError(f"{COMPILER} is missing: apt-get install musl-tools (scripts/setup does)")
    log(f"apt-get source {PACKAGE}={version}, static musl build")
    run(["apt-get", "-q", *_apt_options(state), "source", "--download-only", f"{PACKAGE}={version}"], cwd=tmp)
    (dsc,) = tmp.glob("*.dsc")
    if hashlib.sha256(dsc.read_bytes()).hexdigest() != sha:
        raise RuntimeError(f"{dsc.name}: sha256 differs from apt's index")
    src = tmp / "src"
    run(["dpkg-source", "-x", dsc, src])  # verifies the tarballs' checksums, applies Debian's patches
    local = (src / "debian" / "localoptions.h").read_text() + LOCAL_OPTIONS
    (src / "localoptions.h").write_text(local)
    run(["./configure", "-q", f"CC={COMPILER}", "CFLAGS=-Os", *CONFIGURE], cwd=src)
    jobs = f"-j{min(2, os.cpu_count() or 1)}"
    run(["make", "-s", jobs, f"PROGRAMS={PROGRAMS}", "MULTI=1", "STATIC=1"], cwd=src)
    run(["strip", src / "dropbearmulti"])
    shutil.move(src / "dropbearmulti", tmp / "dropbearmulti")
    return {"package": PACKAGE, "version": version, "dsc_sha256": sha, "programs": PROGRAMS.split()}


def dropbear_binary() -> tuple[Path, dict]:
    """(the static multi-call binary, its manifest), built once per Debian source version."""
    state = _source_index()
    version, sha = dsc_sha256(state)
    directory = cache_dir("dropbear") / f"dropbear-{sha[:12]}-{build_key()}"
    manifest = cached_build(directory, lambda tmp: _build(tmp, state, version, sha), keep=("dropbearmulti",))
    return directory / "dropbearmulti", manifest


def build_key() -> str:
    """The build options (the source is keyed by its .dsc)."""
    return hashlib.sha256(f"{LOCAL_OPTIONS}{CONFIGURE}{PROGRAMS}".encode()).hexdigest()[:12]


def install_dropbear(root: Path) -> dict:
    """The binary, its links and the OpenRC service ``sshd`` (in the default runlevel) into root."""
    binary, manifest = dropbear_binary()
    shutil.copy(binary, root / BINARY)
    os.chmod(root / BINARY, 0o755)
    for link, target in LINKS.items():
        path = root / link
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)
    script = root / "etc" / "init.d" / SERVICE
    script.write_text(INIT_SCRIPT)
    script.chmod(0o755)
    runlevel = root / "etc" / "runlevels" / "default" / SERVICE
    if not runlevel.is_symlink():
        runlevel.symlink_to(f"/etc/init.d/{SERVICE}")
    (root / "etc" / "dropbear").mkdir(mode=0o700, exist_ok=True)
    return {"dropbear": manifest["version"], "dropbear_dsc_sha256": manifest["dsc_sha256"]}
