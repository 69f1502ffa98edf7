"""The background ingest starts no new object while programs write to the mount (bounded), then catches up."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from simfs.ingest import worker
from simfs.ingest.worker import Ingestor


def _take_in_thread(ing: Ingestor) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def run() -> None:
        job = ing._take()
        assert job is not None
        took.append(time.monotonic())

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, took


def test_ingest_waits_for_writes_to_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "QUIET_S", 0.3)
    vfs = SimpleNamespace(last_activity=0.0)
    ing = Ingestor(vfs, [])  # type: ignore[arg-type]
    ing.enqueue(b"a" * 32)
    start = time.monotonic()
    th, took = _take_in_thread(ing)  # no program active: taken at once
    th.join(2)
    assert took and took[0] - start < 0.2
    ing._busy = 0
    ing.enqueue(b"b" * 32)
    stop_writing = time.monotonic() + 1.0
    vfs.last_activity = time.monotonic()  # a program starts writing
    th, took = _take_in_thread(ing)
    while time.monotonic() < stop_writing:  # a program writes for one second
        vfs.last_activity = time.monotonic()
        time.sleep(0.02)
        if took:
            break
    assert not took, "a new object was started while a program was writing"
    assert ing.yielding
    th.join(2)
    assert took and took[0] >= stop_writing + 0.25
    assert not ing.yielding


def test_ingest_never_waits_longer_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "QUIET_S", 0.3)
    monkeypatch.setattr(worker, "MAX_YIELD_S", 0.8)
    vfs = SimpleNamespace(last_activity=time.monotonic())
    ing = Ingestor(vfs, [])  # type: ignore[arg-type]
    ing.enqueue(b"c" * 32)
    start = time.monotonic()
    th, took = _take_in_thread(ing)
    while not took and time.monotonic() - start < 3:  # writes without pause
        vfs.last_activity = time.monotonic()
        time.sleep(0.02)
    th.join(1)
    assert took and 0.75 <= took[0] - start < 2.0
