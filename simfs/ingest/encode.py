"""Ingest processor: re-encode verbatim PNG objects with the codec, on their own or against a similar stored image.

For each verbatim PNG: parse it (pixels + rebuild recipe), take the verified similar images the index
returns (a pixel-identical one first), code the PNG against the best K of them and, unless an inter
result is already tiny, on its own (intra); keep the smallest, where inter must beat intra by a
margin that grows with the chain depth. The codec has decoded and compared the chosen blob with the
file before returning it, and this processor checks that the file hashes to the object id; only then
is the blob written as a new generation and switched to in one batch (which also counts the base's
new dependent). The verbatim file is deleted only after the switch is durable. Reference rules
(git packfile discipline, developer-notes/reference-chains.md): depth limit, no cycles, and an object
others depend on keeps its depth, except in a base swap: a base whose only dependent is cheaper on its
own than the base itself is re-coded against that dependent, both switched in one batch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import xxhash

import codec

from ..catalog import keys
from ..catalog.records import (
    FLAG_ENCODE_TRIED,
    FLAG_LOCAL_DROPPED,
    FLAG_PIXEL_DUPLICATE,
    FLAG_POLISHED,
    NO_OBJECT,
    ObjectRecord,
)
from ..errors import CorruptObject
from ..format import fsync_dir
from ..store.chains import ChainDecoder
from ..store.envelope import CODEC_PNG, CODEC_VERBATIM, HEADER_SIZE, Header
from ..store.local import LocalObjectStore, StagingFile
from .jobs import Knobs, Ref, encode_against, encode_png, encode_swapped
from .object_log import log_object
from .pool import CodecPool, JobFailed
from .worker import NotNow

if TYPE_CHECKING:
    from ..similarity import SimilarityIndex
    from ..vfs.txn import Txn

log = logging.getLogger("simfs.encode")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FEATURE_CHAINS = "reference-chains"
FEATURE_ENCODED = "encoded-objects"


@dataclass
class EncodeOptions:
    effort: int = 7  # JPEG XL effort every payload ends at (-o effort=N)
    # First-pass effort (-o first_effort=N): files are encoded fast, then the polish pass re-codes
    # their payloads at `effort` in the background (polish.py). Equal to effort: one pass.
    first_effort: int = 1
    candidates: int = 3  # K: references tried per image
    max_depth: int = 4  # longest reference chain (-o maxdepth=N)
    margin_per_depth: float = 0.02  # inter must be this fraction of intra smaller, times its depth
    tiny: float = 0.02  # an inter blob below this fraction of the file: intra is not even tried
    good_enough: float = 0.6  # an inter blob below this fraction of intra: no further candidate is tried
    hopeless: float = 0.97  # the best candidate's inter above this fraction of intra: no others tried
    max_retries: int = 3  # stage refused (reference changed meanwhile) this often: intra only
    drop_local_below: float = 0.05  # inter blob below this fraction of the file: drop its local features
    # Base swap: tried when the only dependent's own (intra) coding is below this fraction of this
    # object's; kept when the pair gets this fraction smaller (a rewrite of two files must pay).
    swap_try_below: float = 0.9
    swap_margin: float = 0.05

    def knobs(self) -> Knobs:
        return Knobs(min(self.first_effort, self.effort), self.tiny, self.good_enough, self.hopeless,
                     self.margin_per_depth, self.effort)

    @property
    def two_pass(self) -> bool:
        return self.first_effort < self.effort


@dataclass
class Encoded:
    staging: StagingFile
    stored: int
    mode: str  # "intra" | "inter"
    base: bytes = NO_OBJECT
    depth: int = 0
    pixel_duplicate: bool = False
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    intra_bytes: int = 0  # envelope + intra blob, when measured
    features: frozenset[str] = frozenset()  # store FORMAT features the blob needs (fitted predictions)
    swap: Swap | None = None  # a better plan that also re-codes this object's only dependent


@dataclass
class Swap:
    """The pair the other way round: the dependent on its own, this object coded against it."""

    dependent: bytes
    dependent_gen: int  # the dependent's generation the plan was made from (changed: plan dropped)
    dependent_intra: Encoded  # the dependent coded on its own
    inter: Encoded  # this object coded against the dependent


@dataclass
class Candidate:
    object_id: bytes
    depth: int  # depth the new object would get
    pixel_duplicate: bool
    smaller: bool = False  # the base's file is much smaller than this one (a thumbnail, a crop)
    pending: bool = False  # the base is still stored verbatim (not encoded yet)


def fresh_descriptors(content: bytes) -> Any:
    """Descriptors extracted again from the content, mirror image included (the index stores no mirror
    features, and a flipped copy is only verified through them); tens of ms beside an encoding."""
    from .describe import describe_content

    return describe_content(content)


def chain_contains(record_of: Callable[[bytes], ObjectRecord | None], start: bytes, needle: bytes,
                   limit: int = 64) -> bool:
    """Does the reference chain from start (start included) pass through needle? (cycle check)"""
    cur = start
    for _ in range(limit):
        if cur == needle:
            return True
        rec = record_of(cur)
        if rec is None or not rec.has_base:
            return False
        cur = rec.base
    return True  # longer than any legal chain: treat as a cycle


class EncodeProcessor:
    name = "encode"
    flag = FLAG_ENCODE_TRIED
    slow = True  # run after every queued object has been described (simfs/ingest/worker.py)

    def __init__(self, objects: LocalObjectStore, *, chains: ChainDecoder | None = None,
                 index: SimilarityIndex | None = None,
                 record_of: Callable[[bytes], ObjectRecord | None] | None = None,
                 require_feature: Callable[[str], None] | None = None,
                 options: EncodeOptions | None = None, retries: Callable[[bytes], int] | None = None,
                 pool: CodecPool | None = None):
        self.objects = objects
        self.chains = chains
        self.index = index
        self.record_of = record_of
        self.require_feature = require_feature
        self.opts = options or EncodeOptions()
        self.retries = retries or (lambda _oid: 0)
        self.pool = pool or CodecPool(0)  # 0: jobs run inline (offline tools, tests)
        self.log_stats: dict[str, int] = {"intra": 0, "inter": 0, "pixel-duplicate": 0, "verbatim": 0,
                                          "replanned": 0, "swapped": 0}
        self._related: dict[bytes, list[bytes]] = {}  # object -> verified similar objects (re-planning)
        self._requeue: dict[bytes, list[bytes]] = {}  # object -> others its batch re-coded (base swap)

    @property
    def effort(self) -> int:
        return self.opts.effort

    # ------------------------------------------------------------------ candidates
    def candidates(self, object_id: bytes, rec: ObjectRecord, earlier: dict[str, Any]) -> list[Candidate]:
        """Verified similar stored images usable as a base (depth limit, no cycle), pixel-identical first."""
        if self.index is None or self.chains is None or self.record_of is None:
            return []
        d = earlier.get("descriptors") or self.index.get(object_id)
        if d is None:
            return []
        try:
            found = self.index.query(d, k=max(2 * self.opts.candidates, 6), exclude=[object_id])
        except Exception:
            log.exception("similarity query for %s failed; coding it on its own", object_id.hex())
            return []
        out: list[Candidate] = []
        related = [c.object_id for c in found if c.relation]
        # Even an object coded on its own may be the better base of copies stored before it (an
        # original arriving after copies that were coded against each other): re-planning needs them.
        self._related[object_id] = related[: 2 * self.opts.candidates]
        if rec.dependents > 0 or self.retries(object_id) >= self.opts.max_retries:
            return []  # others are coded against it: it keeps depth 0 (their depths stay exact)
        for c in found:
            if not c.relation:
                continue  # not verified: not worth an inter attempt
            crec = self.record_of(c.object_id)
            if crec is None or crec.collectable:
                continue  # deleted (a pinned base is fine: it is stored anyway while others need it)
            if crec.depth + 1 > self.opts.max_depth or chain_contains(self.record_of, c.object_id, object_id):
                continue
            other = self.index.get(c.object_id)
            dup = other is not None and other.pixel_hash == d.pixel_hash
            out.append(Candidate(c.object_id, crec.depth + 1, dup, smaller=crec.size < 0.7 * rec.size,
                                 pending=crec.codec == CODEC_VERBATIM))
        dups = [c for c in out if c.pixel_duplicate]
        if dups:
            return sorted(dups, key=lambda c: c.depth)[:1]
        # Bases at least about as large as the image first (an upscaled thumbnail predicts a photo
        # badly); then encoded ones before those still verbatim, whatever their depth (a verbatim base
        # is kept only for a large gain, jobs.PENDING_ACCEPT: it is usually itself a copy waiting to
        # be coded against the same original, or a burst's next frame); then the shallowest (as git
        # prefers short delta chains: an original beats its own edits, and chains stay short to
        # decode); the index's order otherwise (stable sort).
        out.sort(key=lambda c: (c.smaller, c.pending, c.depth))
        return out[: self.opts.candidates]

    # ------------------------------------------------------------------ compute (no lock held)
    def compute(self, object_id: bytes, content: bytes, rec: ObjectRecord | None = None,
                earlier: dict[str, Any] | None = None) -> Encoded | None:
        if rec is not None and rec.codec != CODEC_VERBATIM:
            return None
        stored = rec.stored if rec is not None else HEADER_SIZE + len(content)
        if not content.startswith(PNG_SIGNATURE):
            why = "not a PNG" if content or rec is None or not rec.size else "too large to look at"
            log_object(object_id, "verbatim", stored, stored, 0.0, why)
            return None
        side = codec.side_bytes(content)
        if side > codec.MAX_SIDE_BYTES:
            # Coding would keep these bytes verbatim anyway; not shipping the file to a worker keeps the
            # memory per object at one copy of the file.
            log_object(object_id, "verbatim", stored, stored, 0.0,
                       f"{side / 2**20:.0f} MiB outside the image data (ancillary chunks)")
            return None
        try:
            if hashlib.sha256(content).digest() != object_id:
                log.error("object %s: content does not match its id; left as it is", object_id.hex())
                return None
            earlier = dict(earlier or {})
            if earlier.get("descriptors") is None and rec is not None and rec.dependents == 0:
                earlier["descriptors"] = fresh_descriptors(content)
            cands = self.candidates(object_id, rec, earlier) if rec is not None else []
            refs = []
            for cand in cands:  # reference pixels come from the daemon's LRU (decoded once per base)
                try:
                    px = self.chains.pixels(cand.object_id) if self.chains is not None else None
                except CorruptObject as exc:
                    log.info("candidate %s not usable as a reference: %s", cand.object_id.hex()[:16], exc.why)
                    continue
                if px is not None:
                    refs.append(Ref(cand.object_id, px, cand.depth, cand.pixel_duplicate, cand.pending))
            job = self.pool.run(encode_png, content, refs, self.opts.knobs())
        except JobFailed as exc:
            log.info("encoding object %s not finished (%s); it stays verbatim for now", object_id.hex()[:16], exc)
            return None
        except Exception:
            log.exception("encoding object %s failed; kept verbatim", object_id.hex())
            return None
        blob = job.blob
        if blob is None or HEADER_SIZE + len(blob) >= len(content):
            log_object(object_id, "verbatim", stored, stored, job.seconds, job.reason or "coding not smaller")
            self.log_stats["verbatim"] += 1
            return None
        if job.mode == "inter":
            chosen_mode, base, depth, dup = "inter", refs[job.ref].ref_id, refs[job.ref].depth, \
                refs[job.ref].pixel_duplicate
        else:
            chosen_mode, base, depth, dup = "intra", NO_OBJECT, 0, False
        sizes = job.sizes
        intra_blob_len = job.intra_len
        staging = self._write_staging(object_id, blob, len(content))
        result = Encoded(staging, HEADER_SIZE + len(blob), chosen_mode, base, depth, dup, sizes,
                         job.seconds, HEADER_SIZE + intra_blob_len if intra_blob_len else 0,
                         codec.blob_features(blob))
        if rec is not None and rec.dependents == 1 and chosen_mode == "intra":
            try:
                result.swap = self._plan_swap(object_id, content, result)
            except OSError as exc:  # its stagings could not be written (a full disk): the plain plan stays
                log.info("base swap of %s not staged: %s", object_id.hex()[:16], exc)
        return result

    # ------------------------------------------------------------------ base swap
    def _only_dependent(self, object_id: bytes) -> tuple[bytes, ObjectRecord] | None:
        """The object coded against object_id, found among its verified similar images (the catalog keeps
        a dependents count, not a list); None unless it is a leaf whose coding a swap may replace."""
        if self.record_of is None:
            return None
        for other in self._related.get(object_id, []):
            orec = self.record_of(other)
            if (orec is not None and orec.refcount > 0 and orec.has_base and orec.base == object_id
                    and orec.dependents == 0 and orec.codec == CODEC_PNG and not orec.flags & FLAG_LOCAL_DROPPED):
                return other, orec
        return None

    def _plan_swap(self, object_id: bytes, content: bytes, mine: Encoded) -> Swap | None:
        """A base coded before its only dependent, which was coded against it while it was still
        verbatim (the original of a re-saved copy, ingested first, predicted from the copy): if the
        dependent alone costs clearly less than this object alone, code the dependent on its own and
        this object against it; kept when the pair gets swap_margin smaller."""
        found = self._only_dependent(object_id)
        if found is None or self.chains is None:
            return None
        dep, drec = found
        if not drec.intra_bytes or drec.intra_bytes >= self.opts.swap_try_below * mine.stored:
            return None  # the dependent is not the cheaper one on its own: the plan stays as it is
        t0 = time.perf_counter()
        try:
            dep_content = self.chains.rebuild(dep, drec.gen)
            if hashlib.sha256(dep_content).digest() != dep:
                return None
            job, blob = self.pool.run(encode_swapped, dep_content, content, dep, self.opts.knobs())
        except (CorruptObject, JobFailed) as exc:
            log.info("base swap of %s and %s not tried: %s", object_id.hex()[:16], dep.hex()[:16], exc)
            return None
        except Exception:
            log.exception("base swap of %s and %s failed; the plan stays as it is", object_id.hex(), dep.hex())
            return None
        if job.blob is None or blob is None:
            return None
        if 2 * HEADER_SIZE + len(job.blob) + len(blob) > (mine.stored + drec.stored) * (1.0 - self.opts.swap_margin):
            return None
        seconds = time.perf_counter() - t0
        dep_intra = Encoded(self._write_staging(dep, job.blob, len(dep_content)), HEADER_SIZE + len(job.blob),
                            "intra", seconds=seconds, intra_bytes=HEADER_SIZE + len(job.blob),
                            features=codec.blob_features(job.blob))
        try:
            inter = Encoded(self._write_staging(object_id, blob, len(content)), HEADER_SIZE + len(blob), "inter",
                            dep, 1, sizes={"inter": len(blob)}, seconds=seconds, intra_bytes=mine.stored,
                            features=codec.blob_features(blob))
        except BaseException:
            dep_intra.staging.discard()
            raise
        return Swap(dep, drec.gen, dep_intra, inter)

    def _stage_swap(self, txn: Txn, object_id: bytes, swap: Swap, rec: ObjectRecord) -> bool:
        """The dependent switches to its own coding and stops depending on object_id, in txn; False (nothing
        staged) when the graph changed since the plan was made."""
        drec = txn.object_record(swap.dependent)
        if (drec is None or drec.refcount == 0 or drec.gen != swap.dependent_gen or not drec.has_base
                or drec.base != object_id or drec.dependents != 0 or rec.dependents != 1 or rec.has_base):
            return False
        if self.require_feature is not None:
            for feature in sorted(swap.dependent_intra.features):
                self.require_feature(feature)
        rec.dependents = 0  # rec is written by the caller's batch
        old_stored = drec.stored
        self._switch_file(txn, swap.dependent, swap.dependent_intra, drec)
        drec.base, drec.depth, drec.intra_bytes = NO_OBJECT, 0, swap.dependent_intra.stored
        drec.flags &= ~(FLAG_PIXEL_DUPLICATE | FLAG_POLISHED)  # its new blob is at the first-pass effort
        txn.put(keys.object_key(swap.dependent), drec.pack())
        self._requeue.setdefault(object_id, []).append(swap.dependent)
        log_object(swap.dependent, "intra", old_stored, swap.dependent_intra.stored, swap.dependent_intra.seconds,
                   f"base swap: no longer coded against {object_id.hex()[:16]}")
        self.log_stats["swapped"] += 1
        return True

    def take_requeue(self, object_id: bytes) -> list[bytes]:
        """Other objects the batch recording object_id changed, which need another turn (their polish)."""
        return self._requeue.pop(object_id, [])

    # ------------------------------------------------------------------ stage (under the lock)
    def stage(self, txn: Txn, object_id: bytes, result: Encoded | None, rec: ObjectRecord) -> int:
        if result is None or rec.codec != CODEC_VERBATIM:
            self.discard(result)
            return 0
        if result.swap is not None:
            swap, result.swap = result.swap, None
            if self._stage_swap(txn, object_id, swap, rec):
                result.staging.discard()
                result = swap.inter
            else:
                swap.dependent_intra.staging.discard()
                swap.inter.staging.discard()
        extra = 0
        if result.mode == "inter":
            brec = txn.object_record(result.base)
            if brec is None or brec.collectable:
                raise NotNow  # the base was deleted meanwhile
            depth = brec.depth + 1
            if (depth > self.opts.max_depth or chain_contains(txn.object_record, result.base, object_id)
                    or (rec.dependents > 0 and depth != rec.depth)):
                raise NotNow  # another worker's switch changed the graph: compute again
            if self.require_feature is not None:
                for feature in (FEATURE_CHAINS, *sorted(result.features)):
                    self.require_feature(feature)  # before the first record that needs it
            txn.add_dependent(result.base)
            rec.base, rec.depth, rec.intra_bytes = result.base, depth, result.intra_bytes
            if result.pixel_duplicate:
                extra |= FLAG_PIXEL_DUPLICATE
            extra |= self.stage_drop_local(txn, object_id, rec, result.stored)
        old_stored = rec.stored
        self._switch_file(txn, object_id, result, rec)  # the verbatim file goes once this batch is durable
        kind = "pixel-duplicate" if result.pixel_duplicate else result.mode
        log_object(object_id, kind, old_stored, result.stored, result.seconds,
                   f"against {result.base.hex()[:16]} (depth {rec.depth})" if result.mode == "inter" else "")
        self.log_stats[kind] = self.log_stats.get(kind, 0) + 1
        return extra

    def stage_drop_local(self, txn: Txn, object_id: bytes, rec: ObjectRecord, stored: int) -> int:
        """FLAG_LOCAL_DROPPED when an inter object's new coding of `stored` bytes makes it a near-free copy
        (exact replay, re-save): its base carries the same local features, which would cost more than
        the copy itself (~4.6 KB). The S record stays. Judged again whenever the coding changes (the
        polish pass, re-planning): a copy is often near-free only once coded at the final effort."""
        if (self.index is None or not rec.has_base or rec.flags & FLAG_LOCAL_DROPPED
                or stored > self.opts.drop_local_below * rec.size):
            return 0
        self.index.stage_drop_local(txn.batch, object_id)
        return FLAG_LOCAL_DROPPED

    def discard(self, result: Encoded | None) -> None:
        if result is not None:
            result.staging.discard()
            if result.swap is not None:
                result.swap.dependent_intra.staging.discard()
                result.swap.inter.staging.discard()

    def applied(self, object_id: bytes, result: Encoded | None) -> None:
        pass

    # ------------------------------------------------------------------ re-planning
    def stage_follow_ups(self, txn: Txn, object_id: bytes, me: ObjectRecord) -> list[tuple[bytes, bytes]]:
        """Re-planning jobs, recorded (R keys) in the batch that records object_id: the similar objects it
        was not coded against, which might be coded against it (a thumbnail, crop or grey copy stored
        before its original). Persisted, so an unmount or a crash never loses them."""
        related = self._related.pop(object_id, [])
        if me.refcount == 0 or me.depth + 1 > self.opts.max_depth:
            return []
        out = []
        for other in related:
            if other == me.base or other == object_id:
                continue
            rec = txn.object_record(other)
            if (rec is None or rec.refcount == 0 or rec.dependents > 0 or rec.codec == CODEC_VERBATIM
                    or rec.base == object_id):
                continue  # gone, depended on (its depth must stay), not encodable, or already coded against it
            if chain_contains(txn.object_record, object_id, other):
                continue  # object_id is coded against it (directly or not): would form a cycle
            txn.put(keys.replan_key(other, object_id), b"")
            out.append((other, object_id))
        return out

    def compute_replan(self, object_id: bytes, content: bytes, rec: ObjectRecord, base: bytes) -> Encoded | None:
        """Code a stored object against a new base; kept only if it saves a margin over what it takes now."""
        if self.chains is None or not content.startswith(PNG_SIGNATURE):
            return None
        t0 = time.perf_counter()
        if codec.side_bytes(content) > codec.MAX_SIDE_BYTES:
            return None  # never coded (compute): nothing to re-plan
        try:
            if hashlib.sha256(content).digest() != object_id:
                return None
            brec = self.record_of(base) if self.record_of is not None else None
            if brec is None:
                return None
            px = self.chains.pixels(base)
            depth = brec.depth + 1
            blob = self.pool.run(encode_against, content, Ref(base, px, depth), self.opts.knobs())
            if blob is None:
                return None
            if HEADER_SIZE + len(blob) > rec.stored * (1.0 - self.opts.margin_per_depth * depth - 0.05):
                return None  # not worth a rewrite (and a longer decode)
        except CorruptObject as exc:
            log.info("re-planning %s against %s skipped: %s", object_id.hex()[:16], base.hex()[:16], exc.why)
            return None
        except JobFailed:
            return None
        except Exception:
            log.exception("re-planning %s failed; it stays as it is", object_id.hex())
            return None
        staging = self._write_staging(object_id, blob, len(content))
        intra = rec.intra_bytes if rec.has_base else rec.stored
        return Encoded(staging, HEADER_SIZE + len(blob), "inter", base, depth, False, {"inter": len(blob)},
                       time.perf_counter() - t0, intra, codec.blob_features(blob))

    def stage_replan(self, txn: Txn, object_id: bytes, result: Encoded, rec: ObjectRecord) -> list[tuple[bytes, bytes]]:
        """Switch a stored object to its new coding; the old base loses a dependent (maybe freed later).
        Returns the follow-up re-planning jobs recorded in txn (see _old_base_follow_up)."""
        brec = txn.object_record(result.base)
        if (brec is None or brec.refcount == 0 or rec.dependents > 0 or brec.depth + 1 > self.opts.max_depth
                or chain_contains(txn.object_record, result.base, object_id)):
            raise NotNow
        old_base = rec.base if rec.has_base else None
        if self.require_feature is not None:
            for feature in (FEATURE_CHAINS, *sorted(result.features)):
                self.require_feature(feature)
        txn.add_dependent(result.base)
        if old_base is not None:
            txn.drop_dependent(old_base)
        rec.base, rec.depth, rec.intra_bytes = result.base, brec.depth + 1, result.intra_bytes
        rec.flags &= ~FLAG_PIXEL_DUPLICATE
        rec.flags &= ~FLAG_POLISHED  # a new blob at the first-pass effort: polished again later
        rec.flags |= self.stage_drop_local(txn, object_id, rec, result.stored)
        txn.delete(keys.replan_key(object_id, result.base))
        old_stored = rec.stored
        self._switch_file(txn, object_id, result, rec)
        log_object(object_id, "inter", old_stored, result.stored, result.seconds,
                   f"re-planned against {result.base.hex()[:16]} (depth {rec.depth})")
        self.log_stats["replanned"] += 1
        return self._old_base_follow_up(txn, old_base, result.base) if old_base is not None else []

    def _old_base_follow_up(self, txn: Txn, old_base: bytes, new_base: bytes) -> list[tuple[bytes, bytes]]:
        """A copy re-planned away from its old base may have been the only thing keeping that base from
        being re-planned itself (a depended-on object keeps its depth): a thumbnail coded against a grey
        copy, both stored before their original. When the old base has no dependents left it gets a job
        against the same new base; compute_replan keeps it only if it saves a margin (one encode at most)."""
        orec = txn.object_record(old_base)
        brec = txn.object_record(new_base)
        if (orec is None or brec is None or orec.refcount == 0 or orec.dependents > 0 or orec.codec == CODEC_VERBATIM
                or (orec.has_base and orec.base == new_base) or brec.depth + 1 > self.opts.max_depth or chain_contains(txn.object_record, new_base, old_base)):
            return []
        txn.put(keys.replan_key(old_base, new_base), b"")
        return [(old_base, new_base)]

    def _write_staging(self, object_id: bytes, blob: bytes, content_len: int) -> StagingFile:
        staging = self.objects.new_staging("enc")
        try:
            os.pwrite(staging.fd, blob, HEADER_SIZE)
            header = Header(CODEC_PNG, 0, len(blob), content_len, xxhash.xxh3_64_intdigest(blob), object_id)
            os.pwrite(staging.fd, header.pack(), 0)
            os.fsync(staging.fd)  # durable before the catalog can name it
        except BaseException:
            staging.discard()
            raise
        return staging

    def _switch_file(self, txn: Txn, object_id: bytes, result: Encoded | Any, rec: ObjectRecord) -> None:
        """The new generation becomes the object's file in txn; the old one goes once txn is durable."""
        if self.require_feature is not None:
            # Only now, before the first encoded file: a store that never held one stays readable by
            # a simfs without the codec (FORMAT lists what the store contains, not what it might).
            self.require_feature(FEATURE_ENCODED)
        new_gen = rec.gen + 1
        final = self.objects.path_of(object_id, new_gen)
        result.staging.close()
        os.rename(result.staging.path, final)
        fsync_dir(final.parent)
        txn.put(keys.stale_key(object_id, rec.gen), b"")
        txn.vfs.garbage_pending = True
        txn.stored_delta += result.stored - rec.stored
        rec.codec, rec.gen, rec.stored = CODEC_PNG, new_gen, result.stored

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        pass

    def freed(self, object_id: bytes) -> None:
        pass
