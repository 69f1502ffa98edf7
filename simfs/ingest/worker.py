"""Background ingest: after an object is committed, processors derive data from it (descriptors, codings).

The write path stays at disk speed: `close()` only commits the bytes. Worker threads later read each
new object *outside* the VFS lock, let every processor compute its result (the CPU-heavy parts are
numpy, OpenCV and libjxl calls that release the GIL), and record the results under the lock in one
batch together with the object's "done" flag bits, so a crash never leaves a half-processed object:
after a restart, objects whose flags are missing are simply processed again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from ..catalog import keys
from ..catalog.records import ObjectRecord
from ..errors import CorruptObject
from ..vfs.txn import Txn
from .meter import IngestMeter, png_megapixels

if TYPE_CHECKING:
    from ..vfs.core import Vfs

log = logging.getLogger("simfs.ingest")


class NotNow(Exception):
    """Raised by Processor.stage: the result no longer fits (its reference changed); compute again later."""


class Processor(Protocol):
    """Something derived from an object's content, stored in the catalog next to the object."""

    name: str
    flag: int  # ObjectRecord flag bit meaning "this processor is done with the object"

    def compute(self, object_id: bytes, content: bytes, rec: ObjectRecord, earlier: dict[str, Any]) -> Any:
        """Slow part, outside the lock; content is the object's verified bytes; earlier holds the results
        of the processors before this one. Must not raise."""

    def stage(self, txn: Txn, object_id: bytes, result: Any, rec: ObjectRecord) -> int:
        """Add the result's keys to the object's batch (under the lock); may change rec; returns extra
        flags. May raise NotNow (nothing staged)."""

    def discard(self, result: Any) -> None:
        """The result will not be recorded (object deleted or changed meanwhile): release what it holds."""

    def applied(self, object_id: bytes, result: Any) -> None:
        """The batch is committed: update in-memory structures."""

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        """The object is being deleted: remove what stage() added, in the same batch."""

    def freed(self, object_id: bytes) -> None:
        """The deleting batch is committed: update in-memory structures."""


# The ingest yields the cores to programs using the mount: it starts no new object while a file was
# created, opened for writing or written in the last QUIET_S seconds, for at most MAX_YIELD_S at a time.
QUIET_S = 0.5
MAX_YIELD_S = 20.0


class Ingestor:
    """Worker threads draining the set of objects that still lack some processor's flag."""

    def __init__(self, vfs: Vfs, processors: Iterable[Processor], *, max_bytes: int = 512 << 20,
                 workers: int = 1):
        self.vfs = vfs
        self.processors = list(processors)
        self.max_bytes = max_bytes  # larger objects are left alone (bounded memory per item)
        self.workers = max(1, workers)
        self.all_flags = 0
        for p in self.processors:
            self.all_flags |= p.flag
        self._pending: OrderedDict[bytes, None] = OrderedDict()
        self._replans: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()  # (object, new base)
        self._active: set[bytes] = set()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = 0
        self._threads: list[threading.Thread] = []
        self._retries: dict[bytes, int] = {}
        self._deferred: dict[bytes, float] = {}
        self.on_stop: list = []  # objects whose file was open for writing: retried later
        self.done = 0
        self.failed = 0
        self.started_at = time.monotonic()
        self.meter = IngestMeter()
        self.codec_processes = 0  # set by make_ingestor when the encoder runs
        self.yielding = False  # waiting for programs writing to the mount to pause (_yield_to_programs)

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
        for key, _ in self.vfs.catalog.scan(keys.REPLAN):
            self.enqueue_replan(bytes(key[1:33]), bytes(key[33:65]))
            n += 1
        return n

    def enqueue_replan(self, object_id: bytes, base: bytes) -> None:
        with self._cond:
            self._replans[(object_id, base)] = None
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._replans) + len(self._deferred) + self._busy

    def backlog(self) -> dict[str, int]:
        """Queued objects by the first step they still lack (catalog reads, no VFS lock), plus the rest."""
        with self._cond:
            queued = list(self._pending)
            out = {"replan": len(self._replans), "deferred": len(self._deferred), "in_progress": self._busy}
        for p in self.processors:
            out.setdefault(p.name, 0)
        for oid in queued:
            raw = self.vfs.catalog.get(keys.object_key(oid))
            if raw is None:
                continue
            flags = ObjectRecord.unpack(raw).flags
            step = next((p.name for p in self.processors if not flags & p.flag), None)
            if step is not None:
                out[step] += 1
        return out

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """For tests and `simfs compact`: block until both queues are empty."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._pending or self._replans or self._deferred or self._busy),
                                       timeout=timeout)

    def retries(self, object_id: bytes) -> int:
        return self._retries.get(object_id, 0)

    # ---------------------------------------------------------------- threads
    def start(self) -> None:
        queued = self.enqueue_unfinished()
        if queued:
            log.info("ingest: %d objects waiting from before", queued)
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"simfs-ingest-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 60.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for hook in self.on_stop:  # e.g. kill the codec worker processes: no waiting for an encoding
            with contextlib.suppress(Exception):
                hook()
        for t in self._threads:
            t.join(timeout=timeout)
        self._threads = []

    def _yield_to_programs(self) -> None:
        """Wait (lock of the queue held, released while waiting) while programs are writing
        files: a copy into the mount gets the cores first, and the ingest catches up once it is quiet
        for QUIET_S. Never more than MAX_YIELD_S in a row, so a store written to without pause still
        gets one object done between waits."""
        started = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            quiet_for = now - self.vfs.last_activity
            if quiet_for >= QUIET_S or now - started >= MAX_YIELD_S:
                self.yielding = False
                return
            self.yielding = True
            self._cond.wait(min(QUIET_S - quiet_for, MAX_YIELD_S - (now - started)) + 0.01)

    def _take(self) -> tuple[bytes, bytes | None] | None:
        """Next (object, None) no other worker is processing, else a re-plan (object, base); None: stopping."""
        with self._cond:
            while True:
                if self._stop:
                    return None
                if self._pending or self._replans or self._deferred:
                    self._yield_to_programs()
                    if self._stop:
                        return None
                oid = self._due_deferred()
                if oid is not None:
                    self._active.add(oid)
                    self._busy += 1
                    return oid, None
                for job in self._replans:  # first: one re-encoding turns a stored copy into a few KB
                    if job[0] not in self._active and job[1] not in self._active:
                        del self._replans[job]
                        self._active.add(job[0])
                        self._busy += 1
                        return job
                for oid in self._pending:
                    if oid not in self._active:
                        del self._pending[oid]
                        self._active.add(oid)
                        self._busy += 1
                        return oid, None
                self._cond.wait(timeout=1.0 if self._deferred else None)

    def _due_deferred(self) -> bytes | None:
        """A file that was still open for writing at its turn, 2 s later: it goes before everything
        queued, as it still needs its (fast) description, which must not wait behind every queued
        encoding and re-planning job (it used to come back only once both queues were empty)."""
        now = time.monotonic()
        for oid, since in list(self._deferred.items()):
            if now - since > 2.0 and oid not in self._active:
                del self._deferred[oid]
                return oid
        return None

    def _run(self) -> None:
        while True:
            job = self._take()
            if job is None:
                return
            object_id, base = job
            try:
                if base is None:
                    self.process(object_id)
                else:
                    self.replan(object_id, base)
            except Exception:
                self.failed += 1
                log.exception("ingest of object %s failed; it stays as it is", object_id.hex())
            finally:
                with self._cond:
                    self._busy -= 1
                    self._active.discard(object_id)
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
            # Fast processors (descriptors) first, for every queued object; the slow ones (encoding)
            # when the object comes round again: `simfs similar` works at once, and the encoder
            # knows every image already stored when it picks references.
            # Slow ones one per turn (encode, then polish on a later turn): the polish pass re-codes
            # at the final effort only after the queue has moved on to the next files.
            fast = [p for p in todo if not getattr(p, "slow", False)]
            slow = [p for p in todo if getattr(p, "slow", False)]
            todo = fast or slow[:1]
            again = len(todo) < len(fast) + len(slow)
            if vfs.open_for_writing(object_id):
                with self._cond:  # a file being written: its content will probably change; look later
                    self._deferred[object_id] = time.monotonic()
                return False
            gen = rec.gen
        if rec.size > self.max_bytes or not any(getattr(p, "needs_content", True) for p in todo):
            content = b""  # too big (processors record "nothing to do"), or not needed (polish)
        else:
            try:
                content = vfs.object_content(object_id, rec)
            except CorruptObject as exc:
                log.error("ingest: %s", exc)
                return False
        earlier: dict[str, Any] = {}
        results = []
        for p in todo:
            result = p.compute(object_id, content, rec, earlier)
            earlier[p.name] = result
            results.append((p, result))
        retry = False
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
            stored_before = rec.stored
            txn = Txn(vfs)
            staged = []
            for p, result in results:
                try:
                    extra = p.stage(txn, object_id, result, rec) or 0
                except NotNow:
                    retry = True
                    with contextlib.suppress(Exception):
                        p.discard(result)
                    continue
                rec.flags |= p.flag | extra
                staged.append((p, result))
            txn.put(keys.object_key(object_id), rec.pack())
            jobs: list[tuple[bytes, bytes]] = []
            requeue: list[bytes] = []
            for p, _result in staged:
                follow = getattr(p, "stage_follow_ups", None)
                if follow is not None:
                    jobs += follow(txn, object_id, rec)
                take = getattr(p, "take_requeue", None)
                if take is not None:
                    requeue += take(object_id)  # other objects this batch re-coded (a base swap)
            txn.commit(sync=False)  # derived data: a crash just means processing it again
            for p, result in staged:
                with contextlib.suppress(Exception):
                    p.applied(object_id, result)
            saved = stored_before - rec.stored
        for p, result in staged:
            if result is None:
                continue  # not an image, or kept verbatim: nothing described or encoded to count
            width, height = getattr(result, "width", 0), getattr(result, "height", 0)
            mp = width * height / 1e6 if width else png_megapixels(content)
            self.meter.record(p.name, mp, saved if getattr(p, "slow", False) else 0)
        if retry:
            self._retries[object_id] = self._retries.get(object_id, 0) + 1
            self.enqueue(object_id)
        else:
            self._retries.pop(object_id, None)
        for other, base in jobs:
            self.enqueue_replan(other, base)
        for other in requeue:
            self.enqueue(other)
        if again:
            self.enqueue(object_id)  # to the end of the queue: the slow processors' turn
        self.done += 1
        return True

    def take_pending(self) -> list[bytes]:
        """Offline: the queued objects (e.g. re-queued for their slow processors), removed from the queue."""
        with self._cond:
            out = list(self._pending)
            self._pending.clear()
            return out

    def run_replans(self) -> int:
        """Offline (`simfs compact`): run every queued re-planning job in this thread; returns how many switched."""
        switched = 0
        while True:
            with self._cond:
                if not self._replans:
                    return switched
                (object_id, base), _ = self._replans.popitem(last=False)
            switched += self.replan(object_id, base)

    def replan(self, object_id: bytes, base: bytes) -> bool:
        """Re-encode a stored object against a better base found later; True if it switched. The job's
        R key goes in the switching batch, or on its own when the job is dropped."""
        switched = self._replan(object_id, base)
        if not switched and not self._stop:
            with self.vfs.lock:
                if self.vfs.catalog.get(keys.replan_key(object_id, base)) is not None:
                    batch = self.vfs.catalog.new_batch()
                    batch.delete(keys.replan_key(object_id, base))
                    self.vfs.catalog.write(batch, sync=False)
        if switched:
            self.enqueue(object_id)  # its new blob was coded at the first-pass effort: the polish pass's turn
        return switched

    def _replan(self, object_id: bytes, base: bytes) -> bool:
        planner = next((p for p in self.processors if hasattr(p, "compute_replan")), None)
        if planner is None:
            return False
        vfs = self.vfs
        with vfs.lock:
            raw = vfs.catalog.get(keys.object_key(object_id))
            rec = ObjectRecord.unpack(raw) if raw is not None else None
            if rec is None or rec.refcount == 0 or rec.dependents > 0 or rec.size > self.max_bytes:
                return False
        try:
            content = vfs.object_content(object_id, rec)
        except CorruptObject as exc:
            log.error("re-planning: %s", exc)
            return False
        result = planner.compute_replan(object_id, content, rec, base)  # type: ignore[attr-defined]
        if result is None:
            return False
        with vfs.lock:
            raw = vfs.catalog.get(keys.object_key(object_id)) if not self._stop else None
            now = ObjectRecord.unpack(raw) if raw is not None else None
            if now is None or now.refcount == 0 or now.gen != rec.gen:
                planner.discard(result)
                return False
            txn = Txn(vfs)
            try:
                jobs = planner.stage_replan(txn, object_id, result, now) or []  # type: ignore[attr-defined]
            except NotNow:
                planner.discard(result)
                return False
            stored_before = now.stored
            txn.put(keys.object_key(object_id), now.pack())
            txn.commit(sync=False)
        self.meter.record("replan", png_megapixels(content), stored_before - now.stored)
        for other, new_base in jobs:
            self.enqueue_replan(other, new_base)
        return True
