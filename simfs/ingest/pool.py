"""Worker processes for the codec jobs: the daemon's threads only wait for them, so FUSE calls stay fast.

`-o workers=N` processes (spawned, not forked: the daemon's RocksDB and FUSE threads must not be
copied into a child). A job that crashes its process (a codec bug, out of memory) fails that one job
(`JobFailed`), the pool is rebuilt, and the object stays verbatim. `close()` kills the processes at once,
so an unmount never waits for a long encoding.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("simfs.ingest")
T = TypeVar("T")


def _worker_init(parent: int) -> None:
    """In each worker: run niced, and exit as soon as the daemon is gone (kill -9 leaves no orphan
    computing). Niced because the codec keeps every core busy for seconds per photo: the daemon's
    FUSE threads and the programs using the mount come first, as the read-ahead threads do."""
    import os
    import time

    try:
        os.nice(10)
    except OSError:
        pass

    def loop() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=loop, name="simfs-parent-watch", daemon=True).start()


class JobFailed(Exception):
    """The job's worker process died, or the pool is closing."""


class CodecPool:
    def __init__(self, processes: int):
        self.processes = processes
        self._lock = threading.Lock()
        self._closed = False
        self._executor: cf.ProcessPoolExecutor | None = None

    def _get(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise JobFailed("pool closed")
            if self._executor is None:
                self._executor = cf.ProcessPoolExecutor(self.processes,
                                                        mp_context=multiprocessing.get_context("spawn"),
                                                        initializer=_worker_init, initargs=(os.getpid(),))
            return self._executor

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in a worker process (inline when the pool has 0 processes)."""
        if self.processes <= 0:
            return fn(*args)
        executor = self._get()
        try:
            future = executor.submit(fn, *args)
        except RuntimeError as exc:  # shut down meanwhile
            raise JobFailed(str(exc)) from None
        try:
            return future.result()
        except cf.process.BrokenProcessPool:
            with self._lock:
                if self._executor is executor:
                    self._executor = None  # rebuilt for the next job
            if self._closed:
                raise JobFailed("pool closed") from None
            log.error("a codec worker process died during a job; the object stays as it is")
            with contextlib.suppress(Exception):
                executor.shutdown(wait=False, cancel_futures=True)
            raise JobFailed("worker process died") from None
        except cf.CancelledError:
            raise JobFailed("cancelled") from None

    def close(self) -> None:
        """Stop now: running jobs are abandoned (their callers get JobFailed)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is None:
            return
        procs = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)
