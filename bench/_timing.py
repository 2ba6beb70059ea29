"""Shared helpers of the benchmarks: wall time of a command (median of N runs) and peak RSS."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

VENV_BIN = os.path.dirname(sys.executable)


def wall_time(argv: Sequence[str], runs: int, stdin: bytes | None = None, warmup: int = 2) -> float:
    """Median wall time in seconds of ``argv`` over ``runs`` runs, after ``warmup`` untimed runs."""
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib(argv: Sequence[str], stdin: bytes | None = None) -> float:
    """Peak resident memory of one run of ``argv`` (it must be this process's only child then)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024


def row(name: str, seconds: float) -> str:
    return f"  {name:<42} {seconds * 1000:9.1f} ms"
