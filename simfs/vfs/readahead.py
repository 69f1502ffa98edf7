"""Read-ahead of encoded files: while a program opens the files of a directory one after another
(a viewer, `cp -r`, rsync), the next ones are rebuilt on an idle core into the rebuilt-file cache."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("simfs")

DEPTH = 2  # encoded files rebuilt ahead of the reader
SCAN_LIMIT = 32  # directory entries looked at per open, at most (verbatim files are skipped)


def _lower_priority() -> None:
    """Linux schedules threads one by one: a nice read-ahead thread yields the cores to the reader's own
    rebuild (zlib and JPEG XL release the GIL, so the kernel decides who runs)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (OSError, AttributeError):
        pass


class ReadAhead:
    """Sequential-open detector plus background rebuilders, one per core.

    One per core, not cores - 1: a sequential reader mostly waits for a file the read-ahead already
    started, so its own core is idle meanwhile (measured: with one rebuilder, a directory copy ran
    one rebuild at a time). They run niced, so a reader's own rebuild still comes first."""

    def __init__(self, workers: int | None = None):
        n = workers if workers is not None else max(1, os.cpu_count() or 1)
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="simfs-readahead", initializer=_lower_priority)
        self._lock = threading.Lock()
        self._last_dir: str | None = None
        self._queued: dict[tuple[bytes, int], Future[None]] = {}
        self._built: set[tuple[bytes, int]] = set()  # rebuilt ahead and not opened yet
        self._closed = False

    def sequential(self, directory: str) -> bool:
        """True when the previous encoded file opened was in the same directory (then read ahead)."""
        with self._lock:
            same = self._last_dir == directory
            self._last_dir = directory
            return same

    def submit(self, key: tuple[bytes, int], job: Callable[[], None]) -> bool:
        with self._lock:
            if self._closed or key in self._queued or len(self._queued) >= 2 * DEPTH:
                return False

            def run() -> None:
                try:
                    job()
                    with self._lock:
                        if len(self._built) > 64 * DEPTH:  # files never opened after all
                            self._built.clear()
                        self._built.add(key)
                except Exception as exc:  # the reader's own open reports damage (EIO + log); keep quiet here
                    log.debug("read-ahead of %s failed: %s", key[0].hex(), exc)
                finally:
                    with self._lock:
                        self._queued.pop(key, None)

            self._queued[key] = self.pool.submit(run)
        return True

    def consumed(self, key: tuple[bytes, int]) -> bool:
        """True (once) when the file being opened is one the read-ahead rebuilt: the reader caught up
        with it, so the next files are due."""
        with self._lock:
            if key in self._built:
                self._built.discard(key)
                return True
            return False

    def claim(self, key: tuple[bytes, int]) -> bool:
        """Take a queued job back before it starts (the reader builds that file itself): True if taken."""
        with self._lock:
            future = self._queued.get(key)
            if future is None or not future.cancel():
                return False  # not queued, or already being built (the reader waits for it)
            del self._queued[key]
            return True

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)
