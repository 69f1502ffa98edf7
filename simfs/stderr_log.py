"""Routes the daemon's file descriptor 2 (libfuse, fusermount3) into the simfs log, keeping the last line."""

from __future__ import annotations

import logging
import os
import threading
from typing import IO

log = logging.getLogger("simfs.libfuse")
_SYNC = b"\x00simfs-sync\n"


class StderrToLog:
    """libfuse reports mount failures only on stderr; a daemon's stderr is /dev/null, so read it ourselves.

    `console` is the original stderr (the terminal of a foreground mount): log handlers must write
    there, not to fd 2, or every log line would come back through the pipe.
    """

    def __init__(self) -> None:
        self._saved = os.dup(2)
        self.console: IO[str] = os.fdopen(os.dup(self._saved), "w", buffering=1)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "rb")
        self.last_line = ""
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="simfs-stderr", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for raw in self._reader:
            if raw == _SYNC:
                self._synced.set()
                continue
            line = raw.decode(errors="replace").rstrip()
            if line.strip():
                self.last_line = line.strip()
                log.warning("%s", line)

    def sync(self, timeout: float = 1.0) -> str:
        """Wait until everything written to fd 2 so far is logged; returns the last line."""
        self._synced.clear()
        try:
            os.write(2, _SYNC)
        except OSError:
            return self.last_line
        self._synced.wait(timeout)
        return self.last_line

    def close(self) -> None:
        os.dup2(self._saved, 2)  # closes the pipe's write end: the pump sees EOF and ends
        os.close(self._saved)
        self._thread.join(timeout=1.0)
