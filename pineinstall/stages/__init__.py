"""The engine's stages, in Ignition's order: disks -> mount -> files -> kargs -> umount.

Shared here: :class:`Log` (numbered, timed operations on stderr, the shape of Ignition's
``op(N): [started] ...`` lines) and :class:`StageError` (a failure with a message meant for people).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from pineinstall.errors import PineError


class StageError(PineError):
    """A stage cannot do what the config asks; the message says what and where."""


class Log:
    """Human-facing progress on stderr. ``op`` numbers and times each operation.

    ``records`` keeps ``(number, message, seconds, ok)`` of every operation, for the result record
    and for tests; ``quiet`` keeps only errors on the stream but still records everything.
    """

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, prefix: str = "") -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.prefix = prefix
        self.count = 0
        self.records: list[tuple[int, str, float, bool]] = []
        self.warnings: list[str] = []
        self._lock = threading.Lock()  # fetches may run in threads: numbers stay unique

    def _emit(self, level: str, text: str) -> None:
        if not self.quiet or level == "ERROR":
            prefix = f"{self.prefix}: " if self.prefix else ""
            print(f"{level:<8} {prefix}{text}", file=self.stream)

    def info(self, text: str) -> None:
        self._emit("INFO", text)

    def warning(self, text: str) -> None:
        self.warnings.append(text)
        self._emit("WARNING", text)

    def error(self, text: str) -> None:
        self._emit("ERROR", text)

    @contextmanager
    def stage(self, name: str) -> Iterator[Log]:
        """Prefix the lines logged inside with the stage's name."""
        saved = self.prefix
        self.prefix = f"{saved}: {name}" if saved else name
        try:
            yield self
        finally:
            self.prefix = saved

    @contextmanager
    def op(self, text: str) -> Iterator[None]:
        """One numbered operation: ``op(N): [started]``, then ``[finished]`` with its time or
        ``[failed]`` with the error (which propagates)."""
        with self._lock:
            self.count += 1
            n = self.count
        self._emit("INFO", f"op({n}): [started]  {text}")
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            took = time.perf_counter() - start
            self.records.append((n, text, took, False))
            self._emit("ERROR", f"op({n}): [failed]   {text}: {exc}")
            raise
        took = time.perf_counter() - start
        self.records.append((n, text, took, True))
        self._emit("INFO", f"op({n}): [finished] {text} ({took * 1000:.1f} ms)")
