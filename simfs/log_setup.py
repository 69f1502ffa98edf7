"""The mount daemon's log: a rotating file (STORE/simfs.log or --log FILE), plus the terminal in the foreground."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import IO, Any

from .options import UsageError

# 10 MiB per file, 5 old files (simfs.log.1 ... simfs.log.5): at most 60 MiB, about 100,000 ingest lines each.
MAX_BYTES = 10 << 20
BACKUPS = 5
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def check_log_file(path: Path, mountpoint: Path) -> Path:
    """An absolute, writable log path, checked before the daemon starts (a bad one is exit 2)."""
    path = path.absolute()  # the daemon changes to /
    real, mnt = Path(os.path.realpath(path)), Path(os.path.realpath(mountpoint))
    if real == mnt or mnt in real.parents:
        # the daemon would write its log through its own mount: every log line a FUSE request
        raise UsageError(f"--log {path}: is inside the mount point {mountpoint}; put the log elsewhere")
    if path.is_dir():
        raise UsageError(f"--log {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"--log {path}: {path.parent} is not a directory")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise UsageError(f"--log {path}: not writable")
    return path


class _QuietErrors(logging.Handler):
    """A handler whose failed writes are counted, never printed to sys.stderr.

    logging's own handleError prints a traceback to sys.stderr, and the daemon's fd 2 is StderrToLog's
    pipe: with the log on a full disk (STORE/simfs.log is on the store's disk) the pump thread logged
    each traceback line, that write failed too and printed another traceback into the pipe, until the
    pipe was full and the pump blocked writing into the pipe only it reads. Every thread that logged
    then waited for the handler's lock, and the daemon never exited after an unmount. Lines that
    cannot be written are lost instead; the next line that is written is followed by how many.
    """

    lost = 0
    lost_why = ""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.lost += 1
        exc = sys.exc_info()[1]
        self.lost_why = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"

    def emit(self, record: logging.LogRecord) -> None:
        lost = self.lost
        super().emit(record)
        if lost and self.lost == lost:  # written again after failures: say what is missing
            self.lost = 0
            note = logging.makeLogRecord({
                "name": "simfs.log", "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": "%d log lines before this one could not be written (%s); the log misses them",
                "args": (lost, self.lost_why)})
            super().emit(note)


class QuietRotatingFileHandler(_QuietErrors, logging.handlers.RotatingFileHandler):
    pass


class QuietStreamHandler(_QuietErrors, logging.StreamHandler[Any]):
    pass


def setup_logging(path: Path, console: IO[str] | None, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handlers: list[logging.Handler] = [
        QuietRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS)]
    if console is not None:  # a foreground mount also logs to its terminal
        handlers.append(QuietStreamHandler(console))
    logging.basicConfig(level=level, handlers=handlers, force=True, format=FORMAT)
    # mfusepy logs every ENOENT from getattr at debug level: too chatty for INFO logs.
    logging.getLogger("fuse").setLevel(logging.WARNING if not debug else logging.DEBUG)
    logging.getLogger("mfusepy").setLevel(logging.WARNING if not debug else logging.DEBUG)
