"""Progress of a write: a bar on a terminal, periodic lines otherwise, JSON lines for machines.

The bar is ``tqdm`` (imported only when a bar is drawn). Human-facing output goes to stderr; the
JSON-lines mode writes to the stream it is given (stdout by default: it is data for a program).
Every JSON line is an object with ``event`` (``start``, ``phase``, ``progress``, ``message``,
``done``), the time ``t`` in seconds since start, and event fields (``bytes``, ``total``,
``source_bytes``, ``phase``, ``text``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LINE_INTERVAL = 5.0
JSON_INTERVAL = 0.5


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def sized(n: int) -> str:
    """A size for people and scripts alike: ``1073741824 bytes (1.0 GiB)``."""
    return f"{n} bytes" + (f" ({human(n)})" if n >= 1024 else "")


class Progress:
    """Silent base: the interface every mode implements."""

    def start(self, total: int | None, what: str) -> None:
        pass

    def phase(self, name: str, total: int | None = None) -> None:
        pass

    def update(self, done: int, source_bytes: int | None = None) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def done(self, **fields: Any) -> None:
        pass


class LineProgress(Progress):
    """A line every few seconds on stderr (logs, serial consoles, CI)."""

    def __init__(self, stream: TextIO | None = None, interval: float = LINE_INTERVAL) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.total: int | None = None
        self.name = ""
        self.t0 = self.last = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, total: int | None, what: str) -> None:
        self.t0 = self.last = time.monotonic()
        self.phase(what, total)

    def phase(self, name: str, total: int | None = None) -> None:
        self.name, self.total = name, total
        self.phase_t0 = time.monotonic()
        self._print(f"{name}" + (f" ({human(total)})" if total else ""))

    def update(self, done: int, source_bytes: int | None = None) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = done / max(now - self.phase_t0, 1e-6)
        pct = f" ({100 * done / self.total:.0f}%)" if self.total else ""
        of = f" of {human(self.total)}" if self.total else ""
        self._print(f"{self.name}: {human(done)}{of}{pct}, {human(rate)}/s")

    def message(self, text: str) -> None:
        self._print(text)

    def done(self, **fields: Any) -> None:
        self._print(f"done in {time.monotonic() - self.t0:.1f} s")


class BarProgress(LineProgress):
    """tqdm on a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self.bar: Any = None
        self.pos = 0

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def phase(self, name: str, total: int | None = None) -> None:
        from tqdm import tqdm

        self._close()
        self.pos = 0
        self.bar = tqdm(
            total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream,
            dynamic_ncols=True, mininterval=0.25,
            delay=0.5,  # a phase over in an instant leaves no empty bar above the real one
        )  # fmt: skip

    def update(self, done: int, source_bytes: int | None = None) -> None:
        if self.bar is not None and done > self.pos:
            self.bar.update(done - self.pos)
            self.pos = done

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self._print(text)

    def done(self, **fields: Any) -> None:
        self._close()
        super().done(**fields)


class JsonProgress(Progress):
    def __init__(self, stream: TextIO | None = None, interval: float = JSON_INTERVAL) -> None:
        self.stream = stream or sys.stdout
        self.interval = interval
        self.t0 = time.monotonic()
        self.last = 0.0
        self.total: int | None = None

    def _emit(self, event: str, **fields: Any) -> None:
        import json

        obj = {"event": event, "t": round(time.monotonic() - self.t0, 3), **fields}
        self.stream.write(json.dumps(obj, sort_keys=True) + "\n")
        self.stream.flush()

    def start(self, total: int | None, what: str) -> None:
        self.t0 = time.monotonic()
        self.total = total
        self._emit("start", phase=what, total=total)

    def phase(self, name: str, total: int | None = None) -> None:
        self.total = total
        self._emit("phase", phase=name, total=total)

    def update(self, done: int, source_bytes: int | None = None) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        self._emit("progress", bytes=done, total=self.total, source_bytes=source_bytes)

    def message(self, text: str) -> None:
        self._emit("message", text=text)

    def done(self, **fields: Any) -> None:
        self._emit("done", **fields)


def make_progress(mode: str = "auto", stream: TextIO | None = None) -> Progress:
    """``auto`` (a bar on a terminal, lines otherwise), ``bar``, ``lines``, ``json``, ``none``."""
    if mode == "json":
        return JsonProgress(stream)
    if mode == "none":
        return Progress()
    err = stream or sys.stderr
    if mode == "bar" or (mode == "auto" and err.isatty()):
        return BarProgress(err)
    if mode in ("auto", "lines"):
        return LineProgress(err)
    raise ValueError(f"unknown progress mode {mode!r}")
