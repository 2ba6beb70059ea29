"""Helpers of the disks-stage integration tests: ``sh`` and scratch loop devices (:class:`Loops`) that
are always detached (and unmounted, swapped off) at the end, even when a test fails; conftest.py makes
them the ``sh`` and ``loops`` fixtures. No tests here."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
from pathlib import Path

MIB = 1024 * 1024


def sh(*argv: str, check: bool = True, input: bytes | None = None) -> str:
    """Test-side setup and inspection (the product itself runs tools only through pineinstall.run)."""
    proc = subprocess.run(list(argv), capture_output=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc.stdout.decode()


def file_hash(path: Path) -> str:
    sh("sync")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sysfs_int(path: str) -> int:
    return int(Path(path).read_text())


def table(dev: str) -> dict:
    """sfdisk's JSON view of a table, partitions keyed by number."""
    data = json.loads(sh("sfdisk", "--json", dev))["partitiontable"]
    parts = {}
    for p in data.get("partitions", []):
        number = int(p["node"][len(dev) :].lstrip("p"))
        parts[number] = p
    data["by_number"] = parts
    return data


def _holders_cleanup(dev: str) -> None:
    name = os.path.basename(os.path.realpath(dev))
    names = [name] + [
        p.name for p in Path(f"/sys/class/block/{name}").iterdir() if (p / "partition").exists()
    ]
    devnos = {}
    for n in names:
        with contextlib.suppress(OSError):
            devnos[Path(f"/sys/class/block/{n}/dev").read_text().strip()] = n
    # Unmount deepest first whatever lives on this device or its partitions.
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[2] in devnos:
            points.append(fields[4])
    for point in sorted(points, key=len, reverse=True):
        sh("umount", "-l", point, check=False)
    for n in names:
        sh("swapoff", f"/dev/{n}", check=False)


class Loops:
    """Creates sparse backing files and loop devices on them; :meth:`cleanup` undoes it all."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.devices: list[tuple[str, Path]] = []

    def make(self, size_mib: int = 64) -> tuple[str, Path]:
        image = self.directory / f"disk{len(self.devices)}.img"
        with open(image, "wb") as f:
            f.truncate(size_mib * MIB)
        dev = sh("losetup", "-f", "--show", str(image)).strip()
        self.devices.append((dev, image))
        # A reused loop number may still carry the kernel partitions of an earlier user.
        sh("partx", "-d", dev, check=False)
        return dev, image

    def cleanup(self) -> None:
        for dev, _ in reversed(self.devices):
            _holders_cleanup(dev)
            sh("partx", "-d", dev, check=False)
            sh("losetup", "-d", dev, check=False)


def config(storage: dict):
    from pineinstall.config import model

    return model.from_dict({"ignition": {"version": "3.6.0"}, "storage": storage})


def quiet_log():
    """A real Log writing to a buffer (``log.stream.getvalue()``) instead of stderr."""
    import io

    from pineinstall.stages import Log

    return Log(io.StringIO())
