"""The mount daemon's log: a rotating file (STORE/simfs.log or --log FILE), plus the terminal in the foreground."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import IO

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


def setup_logging(path: Path, console: IO[str] | None, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.INFO
    handlers: list[logging.Handler] = [
        logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS)]
    if console is not None:  # a foreground mount also logs to its terminal
        handlers.append(logging.StreamHandler(console))
    logging.basicConfig(level=level, handlers=handlers, force=True, format=FORMAT)
    # mfusepy logs every ENOENT from getattr at debug level: too chatty for INFO logs.
    logging.getLogger("fuse").setLevel(logging.WARNING if not debug else logging.DEBUG)
    logging.getLogger("mfusepy").setLevel(logging.WARNING if not debug else logging.DEBUG)
