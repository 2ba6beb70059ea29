"""Progress modes: JSON lines for machines, periodic lines for logs."""

from __future__ import annotations

import io
import json

from pineinstall.image.progress import JsonProgress, LineProgress, make_progress


def test_json_lines() -> None:
    out = io.StringIO()
    p = JsonProgress(out, interval=0)
    p.start(100, "writing")
    p.update(50, 10)
    p.message("hello")
    p.done(image_size=100)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["start", "progress", "message", "done"]
    assert events[1]["bytes"] == 50 and events[1]["total"] == 100 and events[1]["source_bytes"] == 10
    assert events[3]["image_size"] == 100
    assert all(isinstance(e["t"], float | int) for e in events)


def test_lines_are_rate_limited() -> None:
    out = io.StringIO()
    p = LineProgress(out, interval=3600)
    p.start(1 << 30, "writing")
    for i in range(1000):
        p.update(i << 20)
    lines = out.getvalue().splitlines()
    assert lines == ["writing (1.0 GiB)"]


def test_auto_is_lines_when_not_a_terminal() -> None:
    assert type(make_progress("auto", io.StringIO())) is LineProgress


def test_a_phase_over_in_an_instant_draws_no_bar() -> None:
    # The bar appears only after its delay: no empty bar is left above the real one.
    import time

    from pineinstall.image.progress import BarProgress

    out = io.StringIO()
    p = BarProgress(out)
    p.phase("probing", 100)
    p.update(100)
    p.phase("writing", 1 << 20)
    assert out.getvalue() == ""
    time.sleep(0.6)
    p.update(1 << 19)
    p.done(image_size=1 << 20)
    assert "writing" in out.getvalue() and "probing" not in out.getvalue()


def test_sizes_in_human_units_beside_bytes() -> None:
    from pineinstall.image.progress import sized

    assert sized(10 << 30) == "10737418240 bytes (10.0 GiB)"
    assert sized(512) == "512 bytes"
