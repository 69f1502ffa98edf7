"""The daemon's log on a full disk: lines are lost, the daemon never blocks (it hung at unmount).

logging's default Handler.handleError prints a traceback to sys.stderr, and in the daemon fd 2 is
StderrToLog's pipe: the pump thread logged each traceback line, that write failed too and printed
another traceback into the pipe, until the pipe was full and the pump blocked writing into its own
pipe; every thread that logged then waited for the handler's lock, and the daemon never exited after
`simfs umount` on a full disk (tests/mount/test_full_disk.py, the store and its log on one full disk).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import logging, sys, threading
    from pathlib import Path
    from simfs.log_setup import setup_logging
    from simfs.stderr_log import StderrToLog

    stderr = StderrToLog()
    setup_logging(Path(sys.argv[1]), None, False)  # /dev/full: every write fails with ENOSPC
    log = logging.getLogger("simfs.test")

    def chatter():
        for i in range(3000):
            log.info("ingest line %d %s", i, "x" * 100)

    threads = [threading.Thread(target=chatter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stderr.sync()
    log.info("unmounted")
    stderr.close()
    print("exited", file=stderr.console)
""")


def test_log_writes_failing_never_block_the_daemon() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    try:
        result = subprocess.run([sys.executable, "-c", SCRIPT, "/dev/full"], cwd=REPO, capture_output=True,
                                text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("logging to a full disk blocked the process (the stderr pipe filled with tracebacks)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.strip() == "exited"  # no "--- Logging error ---" tracebacks either


class _Full:
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self) -> None:
        pass

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return 0


def test_lost_lines_are_counted_once_the_log_works_again(tmp_path: Path) -> None:
    import logging

    from simfs.log_setup import QuietRotatingFileHandler

    path = tmp_path / "simfs.log"
    handler = QuietRotatingFileHandler(path, maxBytes=1 << 20, backupCount=1)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    record = logging.makeLogRecord({"name": "simfs.test", "levelno": logging.INFO, "levelname": "INFO"})
    real = handler.stream
    handler.stream = _Full()  # type: ignore[assignment]
    for i in range(3):
        record.msg = f"lost {i}"
        handler.handle(record)
    handler.stream = real
    record.msg = "back"
    handler.handle(record)
    handler.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "INFO back"
    assert lines[1].startswith("WARNING 3 log lines before this one could not be written")
    assert "No space left on device" in lines[1]
