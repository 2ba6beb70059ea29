"""Running the Ansible collection of ansible/ from tests: the collection found through a scratch
collections path (a link to the checkout's ansible/), Ansible's state kept in the test's directory,
the programs beside the Python that runs the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COLLECTION = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent


def need_ansible() -> None:
    """Skip the test when ansible-core is not installed (the test extra installs it)."""
    pytest.importorskip("ansible", reason="ansible-core is not installed (pip install -e '.[test]')")
    if not (BIN / "ansible-playbook").exists():
        pytest.skip(f"ansible-playbook is not in {BIN}")


def ansible_env(tmp: Path) -> dict[str, str]:
    """The environment of an Ansible command that sees the checkout's collection as pine.provision."""
    need_ansible()
    colls = tmp / "collections"
    link = colls / "ansible_collections" / "pine" / "provision"
    if not link.exists():
        link.parent.mkdir(parents=True)
        link.symlink_to(COLLECTION)
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(colls),
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }


def ansible(
    tmp: Path, program: str, *args: str, check: bool = True, collections: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an Ansible program (ansible-playbook, ansible-doc, ...) in ``tmp``; fail the test when it
    fails and ``check``. ``collections``: another collections path (an installed collection)."""
    env = ansible_env(tmp)
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    proc = subprocess.run(
        [str(BIN / program), *args], cwd=tmp, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=600, check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"{program} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of ansible-playbook's output: host -> {"ok": N, "changed": N, ...}."""
    tail = stdout.rsplit("PLAY RECAP", 1)[-1]
    return {
        m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", tail, re.MULTILINE)
    }
