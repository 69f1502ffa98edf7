"""Start-up recovery after a crash, garbage collection of freed objects, shutdown."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from typing import Any

from ..catalog import keys
from ..catalog.records import Inode, ObjectRecord
from ..store.envelope import CODEC_VERBATIM
from .base import Background, VfsBase
from .common import fail, locked, log
from .txn import Txn


class MaintenanceMixin(VfsBase):
    def _recover(self) -> None:
        """Finish what a crash interrupted: staging leftovers, orphans, garbage, unrecorded objects."""
        removed = self.objects.clear_staging()
        if removed:
            log.info("removed %d staging files of uncommitted writes", removed)
        reclaimed = self._reclaim_orphans()
        if reclaimed:
            log.info("reclaimed %d orphan inodes (unlinked while open at the last shutdown)", reclaimed)
        if self.store.crashed:
            self._remove_unrecorded_objects()
        self.collect_all_garbage()

    def _reclaim_orphans(self) -> int:
        """Drop inodes unlinked while open (U keys) once nothing has them open; returns how many."""
        orphans = [keys.read_u64(k, 1) for k, _ in self.catalog.scan(keys.ORPHAN)]
        if orphans:
            txn = Txn(self)
            for ino in orphans:
                raw = txn.get(keys.inode_key(ino))
                if raw is not None:
                    txn.drop_inode(Inode.unpack(ino, raw))
                txn.delete(keys.orphan_key(ino))
            txn.commit(sync=True)
        return len(orphans)

    def _remove_unrecorded_objects(self) -> None:
        """After a crash, object files written but never recorded (commit interrupted) are deleted."""
        removed = 0
        for oid, gen, _size in self.objects.iter_files():
            if not oid:
                continue
            raw = self.catalog.get(keys.object_key(oid))
            if raw is None or ObjectRecord.unpack(raw).gen != gen:
                self.objects.delete(oid, gen)
                removed += 1
        if removed:
            log.info("crash recovery: removed %d object files no catalog record names", removed)

    def _count_usage(self) -> None:
        total = 0
        encoded = 0
        for _, raw in self.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            total += rec.stored
            encoded += rec.codec != CODEC_VERBATIM
        self.stored_bytes = total
        self.encoded_at_mount = encoded
        self.inode_count = sum(1 for _ in self.catalog.scan(keys.INODE))

    @locked
    def collect_garbage(self, *, force_sync: bool = False) -> int:
        """Delete object files whose refcount reached 0, once the batch that said so is durable."""
        if not self.garbage_pending and not force_sync:
            return 0
        if self.wal_unsynced or force_sync:
            self.catalog.flush_wal()
            self.wal_unsynced = False
        freed = 0
        freed_ids: list[bytes] = []
        chained = False  # a freed object's base became garbage: another round frees it
        txn = Txn(self)
        for key, _ in self.catalog.scan(keys.GARBAGE):
            oid = bytes(key[1:])
            rec = txn.object_record(oid)
            if rec is not None and rec.collectable:
                freed += self.objects.delete(oid, rec.gen)
                for processor in self.processors:
                    processor.stage_free(txn, oid)  # derived data (descriptors...) goes with it
                freed_ids.append(oid)
                self.rebuilt.drop(oid, rec.gen)
                self.chains.cache.drop(oid)
                txn.delete(keys.object_key(oid))
                txn.stored_delta -= rec.stored
                if rec.has_base:
                    # Bottom-up: the base loses a dependent; once it has none and no file names it,
                    # it is listed as garbage in this batch and freed by a later round, after this
                    # batch is durable (so a crash never leaves a dependent whose base is gone).
                    chained |= txn.drop_dependent(rec.base)
            txn.delete(key)
        for key, _ in self.catalog.scan(keys.STALE):
            # a superseded generation (the verbatim file an encoded one replaced); never the live one
            oid, gen = bytes(key[1:33]), int.from_bytes(key[33:37], "big")
            rec = txn.object_record(oid)
            if rec is None or rec.gen != gen:
                freed += self.objects.delete(oid, gen)
            txn.delete(key)
        txn.commit(sync=False)
        for oid in freed_ids:
            for processor in self.processors:
                processor.freed(oid)
        self.garbage_pending = chained
        return freed

    def collect_all_garbage(self) -> int:
        """Rounds of collect_garbage until whole chains are freed (each round after a WAL sync)."""
        freed = self.collect_garbage(force_sync=True)
        for _ in range(256):
            if not self.garbage_pending:
                break
            freed += self.collect_garbage(force_sync=True)
        return freed

    def free_bytes(self) -> int:
        st = os.statvfs(self.store.path)
        return st.f_bavail * st.f_frsize

    def data_reserve(self) -> int:
        """Free space file data may not use: the reserve, plus the ballast's size while it is released."""
        return self.space_reserve + (0 if self.ballast.held else self.ballast.size)

    def _ensure_space(self, growth: int) -> None:
        """ENOSPC for file data before the disk is completely full.

        RocksDB turns a failed metadata write into a sticky error (every later write fails until the
        store is reopened), so file contents may never use the last `space_reserve` bytes: commits,
        unlinks and garbage collection always have room. A released ballast is written again before
        file data may grow, so deleted files' space goes to the ballast first.
        """
        if growth <= 0:
            return
        if not self.ballast.held:
            self.ballast.refill(self.space_reserve)
        if self.free_bytes() - growth < self.data_reserve():
            if self.garbage_pending:
                self.collect_garbage(force_sync=True)
                if not self.ballast.held:
                    self.ballast.refill(self.space_reserve)
                if self.free_bytes() - growth >= self.data_reserve():
                    return
            fail(errno.ENOSPC)

    def _with_space(self, action: Callable[[], Any]) -> Any:
        """Run a disk write; on ENOSPC free pending garbage (deleted files) and try once more."""
        try:
            return action()
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.garbage_pending:
                raise
        self.collect_garbage(force_sync=True)
        return action()

    def start_background(self, ingestor: Background | None = None, interval: float = 1.0) -> None:
        """Daemon threads: free deleted files' space within about `interval` s; the ingest, if given."""
        if ingestor is not None and not self.read_only:
            self.ingestor = ingestor
            ingestor.start()
        self._stop = threading.Event()

        def loop() -> None:
            while not self._stop.wait(interval):
                if self.garbage_pending:
                    try:
                        self.collect_garbage()
                    except OSError as exc:  # a full disk: the next round tries again
                        log.warning("background garbage collection failed: %s", exc)
                    except Exception:
                        log.exception("background garbage collection failed")
                if not self.read_only and not self.ballast.held:
                    try:
                        self.ballast.refill(self.space_reserve)
                    except OSError as exc:
                        log.warning("could not write the ballast: %s", exc)

        self._gc_thread = threading.Thread(target=loop, name="simfs-gc", daemon=True)
        self._gc_thread.start()

    def stop_background(self) -> None:
        if self.ingestor is not None:
            self.ingestor.stop()
            self.ingestor = None
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
            self._gc_thread.join(timeout=30)

    def pending_writes(self) -> int:
        """Files open with writes not committed yet (what an unmount still has to commit); lock-free."""
        try:
            return sum(1 for of in list(self.open_files.values()) if of.dirty)
        except RuntimeError:  # the dict changed while we looked: an estimate is all that is asked
            return 0

    def shutdown(self) -> None:
        """Unmount: commit anything still open, free garbage, flush."""
        self.stop_background()
        self.readahead.shutdown()
        with self.lock:
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        for of in list(self.open_files.values()):
            with contextlib.suppress(OSError):
                self._commit(of, sync=True)
            self._close_open_file(of)
        self.open_files.clear()
        self.handles.clear()
        if not self.read_only:
            self.collect_all_garbage()
            # Orphans still open at unmount are gone now that every handle is closed.
            if self._reclaim_orphans():
                self.collect_all_garbage()
            self.catalog.flush_wal()
