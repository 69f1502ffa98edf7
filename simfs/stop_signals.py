"""SIGINT/SIGTERM/SIGHUP of a mounted daemon: say what is happening, unmount cleanly; a second one forces."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger("simfs.mount")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """While the FUSE loop runs, the main thread is inside libfuse and runs no Python signal handler.

    Python's C-level handler still writes the signal number to the wakeup fd from whatever thread
    the kernel picked, so a watcher thread hears it at once. libfuse's own handlers are never
    installed (it only replaces SIG_DFL) because their exit could wait for a request to arrive.
    """

    def __init__(self, *, stop: Callable[[int], None], force: Callable[[int], None]) -> None:
        self._stop, self._force = stop, force
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._old = {sig: signal.signal(sig, self._noop) for sig in SIGNALS}
        self._old_wakeup = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self._closed = False
        threading.Thread(target=self._watch, name="simfs-signals", daemon=True).start()

    @staticmethod
    def _noop(signum: int, frame: object) -> None:
        """Runs in the main thread after the FUSE loop returned; the watcher did the work already."""

    def _watch(self) -> None:
        count = 0
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data or self._closed:
                os.close(self._read)
                return
            for signum in data:
                if signum not in SIGNALS:
                    continue
                count += 1
                try:
                    (self._stop if count == 1 else self._force)(signum)
                except Exception:
                    log.exception("handling signal %d failed", signum)

    def close(self) -> None:
        self._closed = True
        signal.set_wakeup_fd(self._old_wakeup)
        for sig, old in self._old.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, old)
        os.write(self._write, b"\0")  # wakes the watcher, which sees _closed and ends
        os.close(self._write)
