"""RocksDB access through rocksdict (raw mode): open/lock handling, prefix scans, atomic batches."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from rocksdict import AccessType, Checkpoint, Options, Rdict, WriteBatch, WriteOptions

from ..errors import BadStore, ExitCode, StoreInUse

log = logging.getLogger("simfs.catalog")


class CatalogDamaged(BadStore):
    """RocksDB reported corruption while reading: the catalog cannot be trusted (never read as 'empty')."""

    exit_code = ExitCode.BAD_STORE


class Batch:
    """An atomic set of puts and deletes; kept as a list so that a write refused for want of space can
    be sent again after the reopen (rocksdict consumes a WriteBatch even when the write fails)."""

    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append((key, None))

    def build(self) -> WriteBatch:
        batch = WriteBatch(raw_mode=True)
        for key, value in self.ops:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        return batch


def _no_space(exc: BaseException) -> bool:
    """RocksDB's out-of-space error, or the sticky error it leaves behind ("Writer has previous error")."""
    text = str(exc)
    return "No space left on device" in text or "NoSpace" in text or "previous error" in text


class CatalogNoSpace(BadStore):
    """RocksDB cannot be opened for want of space even with the ballast released (not damage: no backup hint)."""


def _options() -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    # RocksDB's info LOG is rolled at every open (each `simfs stats` too): keep it from piling up
    opts.set_keep_log_file_num(2)
    opts.set_max_log_file_size(1 << 20)
    # Memtables of 8 MiB (RocksDB's default is 64): what a reopen after a full disk replays from the
    # WAL into an SST must fit in the ballast (16 MiB, simfs/store/ballast.py)
    opts.set_write_buffer_size(8 << 20)
    return opts


class Catalog:
    """The store's metadata database. One instance per process; callers serialise writes."""

    def __init__(self, path: Path, *, read_only: bool = False, create: bool = True,
                 on_full: Callable[[], bool] | None = None):
        self.path = path
        self.read_only = read_only
        # Called when RocksDB runs out of space (releases the store's ballast); True if it freed some.
        self.on_full = on_full
        self._wedged = False  # a write failed for want of space: RocksDB refuses writes until reopened
        self._reopen_lock = threading.Lock()
        self._sync = WriteOptions()
        self._sync.sync = True
        self._nosync = WriteOptions()
        self.db = self._open(read_only=read_only, create=create)

    def _open(self, *, read_only: bool, create: bool) -> Rdict:
        path = self.path
        try:
            # An existing store without its catalog is damage, never a reason to start an empty one
            # (an empty catalog would make every object file look leaked).
            if (read_only or not create) and not (path / "CURRENT").exists():
                raise BadStore(f"{path}: catalog database is missing")
            if read_only:
                return Rdict(str(path), _options(), access_type=AccessType.read_only())
            try:
                return Rdict(str(path), _options())
            except Exception as exc:
                # Opening writes (a new WAL, MANIFEST, the replayed WAL as an SST): on a full disk
                # give up the ballast and try once more.
                if not _no_space(exc) or self.on_full is None or not self.on_full():
                    raise
                return Rdict(str(path), _options())
        except BadStore:
            raise
        except Exception as exc:  # rocksdict raises bare Exception
            text = str(exc)
            # RocksDB's lock error says "While lock file: .../LOCK: Resource temporarily unavailable";
            # "block checksum mismatch" also contains "lock" and is damage, not a second mount.
            if "While lock file" in text or "Resource temporarily unavailable" in text:
                raise StoreInUse(f"{path.parent}: store is already mounted or in use ({text})") from None
            if "Corruption" in text or "checksum" in text.lower():
                raise CatalogDamaged(f"{path}: catalog database is damaged ({text})") from None
            if _no_space(exc):
                raise CatalogNoSpace(f"{path.parent}: cannot open the catalog, the disk is full ({text}); "
                               f"free some space on {path.parent} and mount again") from None
            raise BadStore(f"{path}: cannot open catalog: {text}") from None

    def get(self, key: bytes) -> bytes | None:
        try:
            return self.db.get(key)
        except Exception as exc:  # rocksdict raises bare Exception("Corruption: ...") for a damaged block
            if "Corruption" not in str(exc) and "checksum" not in str(exc).lower():
                raise
            raise CatalogDamaged(f"{self.path}: catalog damaged while reading key {key[:9].hex()}: {exc}") from None

    def scan(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Keys starting with prefix, in order (rocksdict's keys(from_key=) has no upper bound)."""
        it = self.db.iter()
        try:
            it.seek(start if start is not None else prefix)
            while it.valid():
                key = it.key()
                if not key.startswith(prefix):
                    return
                yield key, it.value()
                it.next()
            # The iterator also stops at a damaged block: an error then, never a short listing.
            try:
                it.status()
            except Exception as exc:
                raise CatalogDamaged(f"{self.path}: catalog damaged while reading keys {prefix[:9].hex() or 'all'}: "
                                     f"{exc}; simfs fsck --restore-catalog restores a metadata backup") from None
        finally:
            del it

    def new_batch(self) -> Batch:
        return Batch()

    def write(self, batch: Batch, *, sync: bool) -> None:
        """Apply a batch atomically; a full disk is ENOSPC (the catalog recovers once there is space)."""
        self._retrying_full(lambda: self.db.write(batch.build(), self._sync if sync else self._nosync))

    def flush_wal(self) -> None:
        """Make every batch written so far durable (group commit point)."""
        self._retrying_full(lambda: self.db.flush_wal(True))

    def _retrying_full(self, action: Callable[[], None]) -> None:
        """Run a write; on 'no space' release the ballast, reopen RocksDB and run it once more.

        rocksdict has no DB::Resume(), and RocksDB refuses every write after a failed WAL append
        (even once space is back), so the way out is close + reopen (callers hold the VFS lock; the
        unsynced batches before the failure are in the WAL file and replayed). Applying the same batch
        twice is harmless: it only holds puts and deletes of whole values.
        """
        if self._wedged:
            self._reopen()
        try:
            action()
            return
        except Exception as exc:
            if not _no_space(exc):
                raise
            log.warning("catalog: out of space (%s)", exc)
            self._wedged = True
        self._reopen()
        try:
            action()
        except Exception as exc:
            if not _no_space(exc):
                raise
            self._wedged = True
            raise OSError(errno.ENOSPC, "No space left on device (catalog)") from None

    def _reopen(self) -> None:
        """Get RocksDB out of its sticky error; raise ENOSPC (the old handle kept, for reads) when there is no room."""
        with self._reopen_lock:  # writers outside the VFS lock (offline tools' threads) reopen once
            if self._wedged:
                self._reopen_locked()

    def _reopen_locked(self) -> None:
        freed = self.on_full() if self.on_full is not None else False
        st = os.statvfs(self.path)
        if not freed and st.f_bavail * st.f_frsize < 64 << 10:
            raise OSError(errno.ENOSPC, "No space left on device (catalog)")
        with contextlib.suppress(Exception):  # close reports the same sticky error, and closes
            self.db.close()
        try:
            self.db = Rdict(str(self.path), _options())
        except Exception as exc:
            # no room to reopen read-write: a read-only handle keeps reads working; the next write tries again
            self.db = Rdict(str(self.path), _options(), access_type=AccessType.read_only())
            if _no_space(exc):
                raise OSError(errno.ENOSPC, "No space left on device (catalog)") from None
            raise
        self._wedged = False
        log.info("catalog reopened after running out of space; writes work again")

    def put(self, key: bytes, value: bytes, *, sync: bool = True) -> None:
        batch = self.new_batch()
        batch.put(key, value)
        self.write(batch, sync=sync)

    def checkpoint(self, path: Path) -> None:
        """A consistent copy of the database at path (RocksDB checkpoint: memtable flushed, SSTs hard-linked)."""
        Checkpoint(self.db).create_checkpoint(str(path))

    def flush(self) -> None:
        """Write the memtable to an SST file (data already durable through the WAL; this only moves it)."""
        self.db.flush(True)

    def sequence(self) -> int:
        """RocksDB's latest sequence number: grows with every write (a backup is skipped when unchanged)."""
        return int(self.db.latest_sequence_number())

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            if not self.read_only:
                with contextlib.suppress(OSError):  # a full disk: what is not in the WAL is lost anyway
                    self.flush_wal()
            try:
                self.db.close()
            except Exception as exc:
                if not _no_space(exc):
                    raise
                log.warning("catalog closed with an error left by a full disk: %s", exc)
            self.db = None  # type: ignore[assignment]
