"""The ballast file: disk space held back in STORE/cache/ballast and given up when the disk is full."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from pathlib import Path

from ..format import fsync_dir

log = logging.getLogger("simfs.ballast")

BALLAST_NAME = "ballast"  # inside STORE/cache/ (see developer-notes/store-format.md for why there)
_CHUNK = 1 << 20


BALLAST_MAX = 16 << 20  # covers RocksDB's reopen: the WAL it replays holds at most two 8 MiB memtables


def reserve_bytes(path: Path) -> int:
    """The free-space reserve file data never uses: 2% of the disk, at least 1 MiB, at most 64 MiB."""
    st = os.statvfs(path)
    return min(64 << 20, max(1 << 20, st.f_blocks * st.f_frsize // 50))


def ballast_bytes(path: Path) -> int:
    """The ballast: as large as the reserve, at most 16 MiB (every test store and small disk carries one)."""
    return min(BALLAST_MAX, reserve_bytes(path))


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Ballast:
    """Space the catalog can always fall back on, like ZFS's slop space.

    RocksDB turns a failed write into a sticky error, and opening it writes files: with the disk
    full, a store could neither record deletes nor be mounted again. The ballast is an ordinary file
    of `size` bytes of allocated blocks; it is deleted the moment RocksDB (or a mount) runs out of
    space, and written again only once the disk has room for it *and* the free-space reserve.
    """

    def __init__(self, store: Path, size: int | None = None):
        self.path = store / "cache" / BALLAST_NAME
        self.size = ballast_bytes(store) if size is None else size
        self._lock = threading.Lock()
        # Set when this file system reports fewer blocks than were written (compression): the file's
        # size is then all we can go by, instead of rewriting it every second.
        self._count_size = False

    @property
    def held(self) -> bool:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        return (st.st_size if self._count_size else st.st_blocks * 512) >= self.size

    def release(self) -> bool:
        """Give the ballast's space back to the disk; True if there was some to give."""
        with self._lock:
            try:
                had = self.path.stat().st_blocks * 512
                self.path.unlink()
            except FileNotFoundError:
                return False
            with contextlib.suppress(OSError):
                fsync_dir(self.path.parent)
            log.warning("disk full: released the %d-byte ballast so the catalog can record changes (deleting "
                        "files frees space; the ballast is written again once there is room)", had)
            return had > 0

    def refill(self, reserve: int) -> bool:
        """Write the ballast if it is missing and the disk has room for it plus `reserve`; True if held."""
        with self._lock:
            if self.held:
                return True
            self.path.parent.mkdir(exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # a partial one from an interrupted refill
            if free_bytes(self.path.parent) < self.size + reserve:
                return False
            tmp = self.path.with_name(f".{BALLAST_NAME}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    _allocate(fd, self.size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.rename(tmp, self.path)
                fsync_dir(self.path.parent)
            except OSError as exc:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                if exc.errno != errno.ENOSPC:
                    raise
                return False  # someone else took the space meanwhile: tried again later
            if self.path.stat().st_blocks * 512 < self.size:
                self._count_size = True
                log.warning("this file system stores the ballast in fewer blocks than its size (compression?): "
                            "it may hold back less space than %d bytes", self.size)
            log.info("ballast of %d bytes written (space the catalog falls back on when the disk fills)", self.size)
            return True


def _allocate(fd: int, size: int) -> None:
    """Real blocks, not a sparse file: fallocate where the file system has it, else written bytes."""
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    chunk = os.urandom(_CHUNK)  # not zeros: a compressing file system would store them in nothing
    written = 0
    while written < size:
        written += os.pwrite(fd, chunk[: min(_CHUNK, size - written)], written)
