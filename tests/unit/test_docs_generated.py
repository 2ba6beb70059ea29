"""Man pages and shell completions: up to date with the argument parsers, working in bash and zsh,
rendering without groff warnings, and installed by the wheel under <prefix>/share."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# These tests start real processes: they run the generator, groff, bash, zsh and pip.
pytestmark = pytest.mark.real_processes

ROOT = Path(__file__).resolve().parents[2]
SHARE = ROOT / "share"
PAGES = [
    "pineinstall",
    *(f"pineinstall-{n}" for n in ("validate", "apply", "install", "firstboot", "iso", "passwd", "hijack")),
    "pine-transpile",
]
COMPLETIONS = [
    "bash-completion/completions/pineinstall",
    "bash-completion/completions/pine-transpile",
    "zsh/site-functions/_pineinstall",
    "zsh/site-functions/_pine-transpile",
]
EXPECTED = sorted([*(f"man/man1/{p}.1" for p in PAGES), *COMPLETIONS])


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_committed_files_are_what_the_parsers_give(tmp_path):
    out = tmp_path / "share"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-docs"), str(out)], check=True, timeout=120)
    assert tree(out) == EXPECTED
    assert tree(SHARE) == EXPECTED
    stale = [rel for rel in EXPECTED if not filecmp.cmp(out / rel, SHARE / rel, shallow=False)]
    assert not stale, f"stale (run scripts/gen-docs): {stale}"


@pytest.mark.parametrize("page", PAGES)
def test_man_page_renders_without_warnings(page):
    p = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-P", "-cbou", str(SHARE / "man/man1" / f"{page}.1")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (p.returncode, p.stderr) == (0, "")
    assert page.upper() in p.stdout and "SYNOPSIS" in p.stdout


def test_man_pages_name_every_option():
    install = (SHARE / "man/man1/pineinstall-install.1").read_text()
    for flag in ("image\\-url", "image\\-sha256", "dry\\-run", "preserve\\-on\\-error"):
        assert f"\\fB\\-\\-{flag}\\fR" in install
    assert "yescrypt" in (SHARE / "man/man1/pineinstall-passwd.1").read_text()
    transpile = (SHARE / "man/man1/pine-transpile.1").read_text()
    assert "\\fB\\-s\\fR, \\fB\\-\\-strict\\fR" in transpile
    assert "\\fB\\-V\\fR, \\fB\\-\\-version\\fR" in transpile


def bash_complete(cwd: Path, prog: str, *words: str) -> list[str]:
    """COMPREPLY of the generated bash completion for the command line ``prog words...``, run in ``cwd``."""
    line = " ".join([prog, *words])
    script = (
        f"source {SHARE}/bash-completion/completions/{prog}\n"
        f"COMP_WORDS=({prog} {' '.join(repr(w) for w in words)}); COMP_CWORD={len(words)}; COMP_LINE={line!r}\n"
        f"_{prog.replace('-', '_')}; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    )
    p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, timeout=60, cwd=cwd)
    assert p.stderr == ""
    return p.stdout.split()


def test_bash_completes_subcommands_options_and_choices(tmp_path):
    def complete(*words: str) -> list[str]:
        return bash_complete(tmp_path, *words)  # an empty directory: no file names in the answers

    assert complete("pineinstall", "pas") == ["passwd"]
    assert complete("pineinstall", "passwd", "--m") == ["--method"]
    assert complete("pineinstall", "passwd", "--method", "") == ["yescrypt", "sha512crypt"]
    assert complete("pineinstall", "iso", "e") == ["embed"]
    assert "--config" in complete("pineinstall", "iso", "embed", "--")
    assert "--image-url" in complete("pineinstall", "install", "/dev/vda", "--image-")
    assert complete("pineinstall", "--ver") == ["--version"]
    assert complete("pine-transpile", "--st") == ["--strict"]


def test_bash_completes_file_names(tmp_path):
    (tmp_path / "node.bu").write_text("")
    assert bash_complete(tmp_path, "pine-transpile", "no") == ["node.bu"]
    assert bash_complete(tmp_path, "pine-transpile", "-o", "n") == ["node.bu"]
    assert bash_complete(tmp_path, "pineinstall", "validate", "n") == ["node.bu"]


ZSH_DRIVER = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -D; PROMPT='>'"
zpty -w -n z "$2"$'\t'
out=
for i in {1..100}; do
    while zpty -r -t z chunk; do out+=$chunk; done
    [[ $out == *"$3"* ]] && break
    sleep 0.1
done
zpty -d z
print -r -- "${out##*compinit -u -D}"
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (scripts/setup installs it)")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("pineinstall passwd --method ", "yescrypt"),
        ("pineinstall pas", "pineinstall passwd"),
        ("pineinstall iso em", "pineinstall iso embed"),
        ("pine-transpile --stri", "pine-transpile --strict"),
    ],
)
def test_zsh_completes(tmp_path, line, expected):
    driver = tmp_path / "drive.zsh"
    driver.write_text(ZSH_DRIVER)
    p = subprocess.run(
        ["zsh", "-f", str(driver), str(SHARE / "zsh/site-functions"), line, expected],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TERM": "dumb", "HOME": str(tmp_path)},
    )
    assert expected in p.stdout, p.stdout


# --- the wheel ------------------------------------------------------------------------------------------


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built from a copy of the tracked files (the build leaves nothing in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        if (ROOT / rel).is_file() or (ROOT / rel).is_symlink():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel, follow_symlinks=False)
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(src))
    (path,) = out.glob("pineinstall-*.whl")
    return path


def test_wheel_carries_license_and_metadata(wheel):
    z = zipfile.ZipFile(wheel)
    (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
    text = z.read(meta).decode()
    assert "License-Expression: Apache-2.0" in text
    assert "Classifier: Operating System :: POSIX :: Linux" in text
    assert "Author: " in text and "Keywords: " in text
    (lic,) = [n for n in z.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert z.read(lic) == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in z.read(lic) and b"Version 2.0, January 2004" in z.read(lic)


def test_installed_wheel_puts_man_pages_and_completions_under_share(wheel, tmp_path):
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall this checkout's own (editable) install
    pip("install", "--no-deps", "--no-index", "--ignore-installed", "--prefix", str(prefix), str(wheel))
    share = prefix / "share"
    assert tree(share) == EXPECTED
    for rel in EXPECTED:
        assert (share / rel).read_bytes() == (SHARE / rel).read_bytes()
    # man finds the installed page through the prefix
    p = subprocess.run(
        ["man", "-M", str(share / "man"), "-P", "cat", "pineinstall-passwd"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANWIDTH": "80"},
    )
    assert p.returncode == 0, p.stderr
    assert "--method" in p.stdout
