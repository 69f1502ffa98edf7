"""ReadAhead's queue: a reader takes back a job that has not started (and builds the file itself),
never one already running; a taken-back job never runs."""

from __future__ import annotations

import threading

from simfs.vfs.readahead import ReadAhead


def test_a_queued_job_is_claimed_and_never_runs_a_running_one_is_not() -> None:
    ra = ReadAhead(workers=1)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        started.set()
        release.wait(10)
        ran.append("a")

    try:
        assert ra.submit((b"a", 1), blocker)
        assert started.wait(10)
        assert ra.submit((b"b", 1), lambda: ran.append("b"))
        assert not ra.submit((b"b", 1), lambda: ran.append("b twice")), "one job per file"
        assert not ra.claim((b"a", 1)), "a job already running is not taken back"
        assert ra.claim((b"b", 1)), "a queued job is taken back"
        assert not ra.claim((b"b", 1)), "only once"
        assert not ra.claim((b"c", 1)), "never queued"
        done = threading.Event()
        assert ra.submit((b"c", 1), lambda: (ran.append("c"), done.set()))
        release.set()
        assert done.wait(10)
        for _ in range(100):  # the job's bookkeeping ends just after its last line
            if ra.consumed((b"c", 1)):
                break
            threading.Event().wait(0.01)
        else:
            raise AssertionError("a file rebuilt ahead is reported once as consumed")
        assert not ra.consumed((b"c", 1)), "only once"
        assert not ra.consumed((b"b", 1)), "a claimed job was never built"
    finally:
        release.set()
        ra.shutdown()
    assert ran == ["a", "c"]
