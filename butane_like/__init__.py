"""Butane-compatible YAML to Ignition JSON translation (variants fcos, flatcar, pine).

The one entry point for programs is ``translate``; ``pine-transpile`` (``butane_like.cli``) is a
thin layer over it. The modules follow the concepts of Butane's own source:

- ``pipeline``: the phases in Butane's order; ``yamlload`` and ``decode``: YAML as Go's yaml.v3
  reads it; ``fields``: the data table of what every variant/version accepts;
- ``errors`` and ``report``: the messages and how the report is printed (entries are
  ``pineinstall.config.report`` entries);
- ``base``: what every variant shares (``base/v0_x``): the field copy with resources and local
  files, trees, mount units, data URLs, source validation, origins of output values;
- ``variants``: one module per variant's sugar (``fcos`` with ``boot_device``, ``flatcar``,
  ``pine``), merged under the user's config with ``pineinstall.config.merge``;
- ``output_check``: duplicates and Ignition's validation of the result; ``gojson``: the output
  bytes as Go's encoding/json writes them.
"""

from __future__ import annotations

from .report import ERROR, WARNING, Entry, format_entries

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; annotations are never evaluated
    from typing import Any

__all__ = ["ERROR", "WARNING", "Entry", "Result", "translate"]


class Result:
    """The outcome of one translation.

    - ``output``: the Ignition config as bytes (compact or pretty JSON, no trailing newline), or
      None when translation failed;
    - ``config``: the same as a dict (None on failure); ``ignition_version``: e.g. "3.5.0";
    - ``entries``: warnings and errors (``pineinstall.config.report.Entry``: ``kind``,
      ``message``, ``path`` — a YAML path tuple —, ``line``, ``col``), in Butane's order;
    - ``error``: the fatal message Butane prints after "Error translating config: ", or None;
    - ``hints``: lines that help a person with that error (the offending YAML line, the supported
      variants); not Butane's, so the CLI prints them only to a person (see ``butane_like.cli``);
    - ``ok``: no fatal error (warnings allowed); ``failed(strict)``: what the exit code says.
    - ``format(filename, raw=False)``: the report as Butane prints it on stderr.
    """

    __slots__ = (
        "_output",
        "_parts",
        "_source",
        "config",
        "entries",
        "error",
        "hints",
        "ignition_version",
        "variant",
        "version",
    )

    def __init__(self) -> None:
        self._output: bytes | None = None
        self._parts: list[str] | None = None  # the output's pieces, joined when asked for
        self.config: dict[str, Any] | None = None
        self.entries: list[Entry] = []
        self.error: str | None = None
        self.hints: list[str] = []
        self.ignition_version: str | None = None
        self.variant: str | None = None
        self.version: str | None = None
        self._source: bytes | str = ""

    @property
    def output(self) -> bytes | None:
        if self._output is None and self._parts is not None:
            from .gojson import join

            self._output = join(self._parts)
            self._parts = None
        return self._output

    @output.setter
    def output(self, value: bytes | None) -> None:
        self._output, self._parts = value, None

    def write_output(self, write: Any) -> None:
        """Write the output (no newline) through ``write(bytes)``, in pieces when not yet joined."""
        if self._parts is not None:
            from .gojson import write_parts

            write_parts(self._parts, write)
        elif self._output is not None:
            write(self._output)

    @property
    def source(self) -> str:
        """The input text (decoded only when asked for: reports need it, large inputs are big)."""
        if isinstance(self._source, bytes):
            self._source = self._source.decode("utf-8", "surrogateescape")
        return self._source

    @source.setter
    def source(self, text: bytes | str) -> None:
        self._source = text

    @property
    def ok(self) -> bool:
        return self.error is None

    def failed(self, strict: bool = False) -> bool:
        return self.error is not None or (strict and bool(self.entries))

    def format(self, filename: str = "<stdin>", raw: bool = False, color: bool = False) -> str:
        if not self.entries:
            return ""
        return format_entries(self.entries, filename, self.source, raw, color)


def translate(
    text: bytes | str,
    *,
    files_dir: str | None = None,
    strict: bool = False,
    pretty: bool = False,
    raw: bool = False,
    safety: bool = False,
    output: bool = True,
) -> Result:
    """Translate a Butane config (YAML text) to Ignition.

    ``files_dir`` is Butane's ``-d/--files-dir`` (None: local files are refused); ``pretty`` indents
    the output; ``raw`` is accepted for Butane's ``-r`` (our variants never wrap the output, so it
    changes nothing); ``strict`` does not change the result — ``Result.failed(strict)`` applies it;
    ``safety`` adds our rules beyond Ignition's to every variant (the ``pine`` variant always has them;
    Butane's own variants answer as Butane does without them); ``output=False`` checks only: the
    result has ``config`` but no ``output`` (the JSON text is not made).
    Never raises for bad input: every problem is in the result.
    """
    from pineinstall.config import paused_gc

    from .pipeline import run

    del strict, raw
    with paused_gc():
        return run(text, files_dir=files_dir, pretty=pretty, safety=safety, output=output)
