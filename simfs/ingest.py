"""Background ingest: after an object is committed, processors derive data from it (descriptors, codings).

The write path stays at disk speed: `close()` only commits the bytes. A worker thread later reads each
new object *outside* the VFS lock, lets every processor compute its result, and records the results
under the lock in one batch together with the object's "done" flag bits, so a crash never leaves a
half-processed object: after a restart, objects whose flags are missing are simply processed again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from .catalog import keys
from .catalog.records import ObjectRecord
from .errors import CorruptObject

if TYPE_CHECKING:
    from .vfs import Txn, Vfs

log = logging.getLogger("simfs.ingest")


class Processor(Protocol):
    """Something derived from an object's content, stored in the catalog next to the object."""

    name: str
    flag: int  # ObjectRecord flag bit meaning "this processor is done with the object"

    def compute(self, object_id: bytes, content: bytes) -> Any:
        """Slow part, outside the lock; content is the object's verified bytes. Must not raise."""

    def stage(self, txn: Txn, object_id: bytes, result: Any, rec: ObjectRecord) -> int:
        """Add the result's keys to the object's batch (under the lock); may change rec; returns extra flags."""

    def discard(self, result: Any) -> None:
        """The result will not be recorded (object deleted or changed meanwhile): release what it holds."""

    def applied(self, object_id: bytes, result: Any) -> None:
        """The batch is committed: update in-memory structures."""

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        """The object is being deleted: remove what stage() added, in the same batch."""

    def freed(self, object_id: bytes) -> None:
        """The deleting batch is committed: update in-memory structures."""


class Ingestor:
    """One worker thread draining the set of objects that still lack some processor's flag."""

    def __init__(self, vfs: Vfs, processors: Iterable[Processor], *, max_bytes: int = 512 << 20):
        self.vfs = vfs
        self.processors = list(processors)
        self.max_bytes = max_bytes  # larger objects are left alone (bounded memory per item)
        self.all_flags = 0
        for p in self.processors:
            self.all_flags |= p.flag
        self._pending: OrderedDict[bytes, None] = OrderedDict()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.done = 0
        self.failed = 0

    # ---------------------------------------------------------------- queue
    def enqueue(self, object_id: bytes) -> None:
        with self._cond:
            self._pending[object_id] = None
            self._cond.notify()

    def enqueue_unfinished(self) -> int:
        """At start-up: every live object missing a flag (new, or interrupted by a crash) is queued."""
        n = 0
        for key, raw in self.vfs.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if rec.refcount > 0 and (rec.flags & self.all_flags) != self.all_flags:
                self.enqueue(bytes(key[1:]))
                n += 1
        return n

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + (1 if self._busy else 0)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """For tests and `simfs compact`: block until the queue is empty."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    # ---------------------------------------------------------------- thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="simfs-ingest", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or bool(self._pending))
                if self._stop:
                    return
                object_id, _ = self._pending.popitem(last=False)
                self._busy = True
            try:
                self.process(object_id)
            except Exception:
                self.failed += 1
                log.exception("ingest of object %s failed; it stays as it is", object_id.hex())
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # ---------------------------------------------------------------- work
    def process(self, object_id: bytes) -> bool:
        """Run every missing processor on one object. Returns True if something was recorded."""
        vfs = self.vfs
        with vfs.lock:
            raw = vfs.catalog.get(keys.object_key(object_id))
            if raw is None:
                return False
            rec = ObjectRecord.unpack(raw)
            todo = [p for p in self.processors if not rec.flags & p.flag]
            if rec.refcount == 0 or not todo:
                return False
            gen = rec.gen
        if rec.size > self.max_bytes:
            content = b""  # processors see an empty payload and record "nothing to do"
        else:
            try:
                content = vfs.object_content(object_id, rec)
            except CorruptObject as exc:
                log.error("ingest: %s", exc)
                return False
        results = [(p, p.compute(object_id, content)) for p in todo]
        from .vfs import Txn  # late: vfs imports this module

        with vfs.lock:
            stopping = self._stop  # unmounting: the catalog may be closing, record nothing
            raw = vfs.catalog.get(keys.object_key(object_id)) if not stopping else None
            now = ObjectRecord.unpack(raw) if raw is not None else None
            if now is None or now.refcount == 0 or now.gen != gen:
                for p, result in results:  # deleted or changed meanwhile
                    with contextlib.suppress(Exception):
                        p.discard(result)
                return False
            rec = now
            txn = Txn(vfs)
            for p, result in results:
                rec.flags |= p.flag | (p.stage(txn, object_id, result, rec) or 0)
            txn.put(keys.object_key(object_id), rec.pack())
            txn.commit(sync=False)  # derived data: a crash just means processing it again
            for p, result in results:
                with contextlib.suppress(Exception):
                    p.applied(object_id, result)
        self.done += 1
        return True

