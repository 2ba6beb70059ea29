"""The writer's thread pool: writes in flight at once, buffers released only after every write
queued before them is done (whatever order they finish in), errors raised to the producer."""

from __future__ import annotations

import threading

import pytest

from pineinstall.image import writer

WAIT = 10  # seconds: generous, for a loaded machine; the tests never wait this long when correct


@pytest.fixture
def pool():
    p = writer._Pool(writer.THREADS, 2 * writer.THREADS)
    yield p
    p.stop()


def test_writes_run_at_once() -> None:
    # Each job waits for all the others: this completes only if the four of them run concurrently.
    pool = writer._Pool(4, 8)
    try:
        barrier = threading.Barrier(4, timeout=WAIT)
        for _ in range(4):
            pool.submit(barrier.wait)
        pool.drain()
        assert not barrier.broken
    finally:
        pool.stop()


def test_release_waits_for_earlier_jobs_finishing_out_of_order() -> None:
    # Two threads: one held by the slow job, so the probe below runs on the thread that ran the fast
    # job, after that thread's bookkeeping (where a wrong release would have happened).
    pool = writer._Pool(2, 4)
    try:
        events: list[str] = []
        slow_may_go = threading.Event()
        probe = threading.Event()

        def slow() -> None:
            assert slow_may_go.wait(WAIT)
            events.append("slow")

        pool.submit(slow)
        pool.submit(events.append, "fast")
        pool.after(events.append, "released")
        pool.submit(probe.set)
        assert probe.wait(WAIT)
        # The later job is done, the earlier one is not: the buffer must not be released yet.
        assert events == ["fast"]
        slow_may_go.set()
        pool.drain()
        assert events == ["fast", "slow", "released"]
    finally:
        pool.stop()


def test_release_with_nothing_in_flight_runs_at_once(pool: writer._Pool) -> None:
    got: list[int] = []
    pool.drain()
    pool.after(got.append, 1)
    assert got == [1]


def test_error_raised_to_producer_later_jobs_skipped_releases_still_run(pool: writer._Pool) -> None:
    ran: list[str] = []
    released: list[str] = []
    failed = threading.Event()

    def boom() -> None:
        failed.set()
        raise OSError(5, "Input/output error")

    pool.submit(boom)
    assert failed.wait(WAIT)
    pool.drain(check=False)  # the barrier itself does not raise when asked not to
    with pytest.raises(OSError, match="Input/output error"):
        pool.submit(ran.append, "after the error")
    pool.after(released.append, "buffer")
    with pytest.raises(OSError):
        pool.drain()
    assert ran == []
    assert released == ["buffer"]


def test_jobs_queued_before_an_error_are_skipped_not_run(pool: writer._Pool) -> None:
    ran: list[int] = []

    def fail() -> None:
        raise OSError(28, "No space left on device")

    def hold_until_failed() -> None:
        for _ in range(WAIT * 100):
            if pool.error is not None:
                return
            threading.Event().wait(0.01)
        raise AssertionError("the failing job did not fail")

    # Every thread busy until the failure is recorded: the jobs queued behind them start after it.
    for _ in range(writer.THREADS - 1):
        pool.submit(hold_until_failed)
    pool.submit(fail)
    for i in range(writer.THREADS):
        pool.submit(ran.append, i)
    released: list[int] = []
    pool.after(released.append, 1)
    with pytest.raises(OSError, match="No space"):
        pool.drain()
    assert ran == []
    assert released == [1]
