"""RocksDB-backed similarity index: exact Hamming ranking over in-memory arrays, verified candidate references.

Keys (to be registered in simfs/catalog/keys.py):
  b"S" object_id(32) -> compact record: >B B Q 16s 32s = version, flags (1 = low texture), copy hash,
                        pixel hash, global code (58 bytes). Loaded into RAM at mount.
  b"T" object_id(32) -> >B I I = version, width, height; then the packed local features: written with the
                        LOCAL_KEEP best spread keypoints (4.6 KB; older simfs wrote all 500, 18 KB: both read).
                        Read only for the few candidates being verified; a near miss on these few
                        keypoints is verified again on all of them, re-derived from the stored pixels.
Both keys of one object are written in the caller's WriteBatch, so they commit atomically with the
file's other metadata; the in-memory arrays change only when the caller reports the commit (applied()).
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codec.similarity import Descriptors, extract, relation_hint, thresholds, verify
from codec.similarity.descriptors import compact_local
from codec.similarity.verify import NO_MATCH, Match, Thresholds

log = logging.getLogger("simfs.similarity")

SIM_RECORD = b"S"
SIM_LOCAL = b"T"
RECORD_VERSION = 1
_REC = struct.Struct(">BBQ16s32s")
_LOC = struct.Struct(">BII")
_F_LOW = 1
ID_LEN = 32
FAR = 300  # distance given to rows that must not be ranked (deleted, excluded, other code space); > 256
COPY_SHORTLIST = 8
VERIFY_BUDGET_S = 0.17  # CPU s of verification per query: with extract (<30 ms) keeps a whole query <= 250 ms
MIRROR_PREFILTER = 2048  # rows whose first 64 bits are closest to the mirror code get its full distance
MIRROR_GAP = 16  # bits: below this gap between a candidate's distances to the query and its mirror, verify both
# Local features kept in T records: the first LOCAL_KEEP keypoints in spread order (codec spread_order), 128 x 36 B
# + 15 B = 4.6 KB instead of 18 KB for 500. The layout is the v1 layout (it always had a count), so the record
# version stays 1 and older readers read these records correctly (they only verify on fewer keypoints).
LOCAL_KEEP = 128
# A candidate whose compact features gave at least this many inliers but no relation is a near miss: it is
# verified again on its full features, re-derived from its stored pixels (pixel_source). Unrelated pairs
# reach 6 on 0.1% of candidates (bench: 4 of 3,709), pairs that need the full features on 32 of 35. 4, not
# 6: a half-size copy reached only 5 against its original's compact record (sacre-coeur, full dev-set run)
# and was coded against a sibling at 186 KB instead of 1 KB against the original.
REDERIVE_MIN_INLIERS = 4
# Near misses re-derived per query, most inliers first (each costs a decode + ~15 ms). 5, not 3: the half-size
# sacre-coeur copy's original (5 compact inliers) came fourth behind three rotated siblings with opencv 5.0's ORB.
REDERIVE_MAX = 5
FULL_CACHE_BYTES = 16 << 20  # re-derived full local features kept in RAM (~16 KB each: ~1000 images)
PixelSource = Callable[[bytes], "np.ndarray | None"]  # object id -> decoded pixels (None: not available)


def record_key(object_id: bytes) -> bytes:
    return SIM_RECORD + object_id


def local_key(object_id: bytes) -> bytes:
    return SIM_LOCAL + object_id


def encode_record(d: Descriptors) -> bytes:
    return _REC.pack(RECORD_VERSION, _F_LOW if d.low_texture else 0, d.copy_hash, d.pixel_hash, d.global_code)


def encode_local(d: Descriptors, keep: int | None = None) -> bytes:
    """T record: the first `keep` (LOCAL_KEEP) keypoints of d.local (extract() packs them best spread first)."""
    return _LOC.pack(RECORD_VERSION, d.width, d.height) + compact_local(d.local, LOCAL_KEEP if keep is None else keep)


def decode(rec: bytes, loc: bytes | None) -> Descriptors:
    version, flags, ch, ph, gc = _REC.unpack(rec)
    if version != RECORD_VERSION:
        raise ValueError(f"similarity record version {version}")
    w = h = 0
    local = b"\x00" * 6
    if loc is not None:
        v2, w, h = _LOC.unpack_from(loc, 0)
        if v2 != RECORD_VERSION:
            raise ValueError(f"similarity local-features version {v2}")
        local = bytes(loc[_LOC.size:])
    return Descriptors(ph, ch, gc, local, bool(flags & _F_LOW), w, h)


@dataclass
class Candidate:
    object_id: bytes
    global_distance: int  # Hamming bits of 256 (min over the query and its mirror image)
    copy_distance: int  # Hamming bits of 64
    inliers: int  # verified local matches (0 if not verified)
    score: float  # ranking score, 0..1: 1 = identical pixels
    relation: str  # "copy" / "edited" / "same scene" / "" (unverified)
    match: Match = field(default=NO_MATCH, repr=False)  # homography etc. for the inter coder


class QueryResult(list):
    """list[Candidate], best first, plus the 'worth trying inter' decision and stage timings (seconds)."""

    worth_trying_inter: bool = False
    timings: dict

    def __init__(self, items=(), worth: bool = False, timings: dict | None = None):
        super().__init__(items)
        self.worth_trying_inter = worth
        self.timings = timings or {}


@dataclass
class Pending:
    """A staged change; pass to SimilarityIndex.applied() once the batch holding it is committed."""

    kind: str  # "put" or "delete"
    object_id: bytes
    descriptors: Descriptors | None = None


class SimilarityIndex:
    """One per mounted store. Thread-safe; query() may run concurrently with staged writes."""

    def __init__(self, catalog, *, thresholds_: Thresholds | None = None, pixel_source: PixelSource | None = None):
        self.catalog = catalog
        self.t = thresholds_ or thresholds()
        # Decoded pixels of a stored object, to re-derive full local features for near misses (set by the
        # mount once its chain decoder exists; None: verification uses the compact T records only).
        self.pixel_source = pixel_source
        self._full: OrderedDict[bytes, bytes] = OrderedDict()  # re-derived full local features, LRU
        self._full_bytes = 0
        self._full_lock = threading.Lock()
        self.rederived = 0  # re-derivations done (cache misses), for the log and the bench
        self._lock = threading.RLock()
        self._in_use = False  # True once load() or applied() ran: the arrays then must mirror the records
        self._alloc(0)

    # ---- in-memory arrays ----

    def _alloc(self, cap: int) -> None:
        self._n = 0  # rows used (alive + dead)
        self._dead = 0
        self._codes = np.zeros((4, cap), np.uint64)  # column-major: 4 contiguous scans beat one (N,4) scan 9x
        self._copy = np.zeros(cap, np.uint64)
        self._low = np.zeros(cap, bool)
        self._alive = np.zeros(cap, bool)
        self._ids = np.zeros((cap, ID_LEN), np.uint8)
        self._base_keys = np.zeros(0, np.uint64)  # sorted _fold() keys of the live rows at the last rebuild
        self._base_rows = np.zeros(0, np.int64)
        self._delta: dict[bytes, int] = {}  # rows appended since the last rebuild of the sorted lookup

    def _grow(self, need: int) -> None:
        cap = self._copy.shape[0]
        if need <= cap:
            return
        new = max(need, int(cap * 1.5) + 1024)
        codes = np.zeros((4, new), np.uint64)
        codes[:, :cap] = self._codes
        self._codes = codes
        for name in ("_copy", "_low", "_alive"):
            old = getattr(self, name)
            arr = np.zeros(new, old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)
        ids = np.zeros((new, ID_LEN), np.uint8)
        ids[:cap] = self._ids
        self._ids = ids

    def _rebuild_lookup(self) -> None:
        n = self._n
        keys = _fold(self._ids[:n])
        rows = np.flatnonzero(self._alive[:n])
        order = np.argsort(keys[rows], kind="stable")
        self._base_keys = keys[rows][order]
        self._base_rows = rows[order]
        self._delta = {}

    def _row(self, object_id: bytes) -> int:
        r = self._delta.get(object_id)
        if r is not None:
            return r if self._alive[r] else -1
        key = _fold(np.frombuffer(object_id, np.uint8)[None, :])[0]
        i = int(np.searchsorted(self._base_keys, key))
        target = np.frombuffer(object_id, np.uint8)
        while i < len(self._base_keys) and self._base_keys[i] == key:
            r = int(self._base_rows[i])
            if self._alive[r] and np.array_equal(self._ids[r], target):
                return r
            i += 1
        return -1

    def _append(self, object_id: bytes, d: Descriptors) -> None:
        self._grow(self._n + 1)
        r = self._n
        self._codes[:, r] = np.frombuffer(d.global_code, "<u8")
        self._copy[r] = d.copy_hash
        self._low[r] = d.low_texture
        self._alive[r] = True
        self._ids[r] = np.frombuffer(object_id, np.uint8)
        self._delta[object_id] = r
        self._n += 1
        if len(self._delta) > max(4096, self._n // 8):
            self._rebuild_lookup()

    def _kill(self, object_id: bytes) -> bool:
        r = self._row(object_id)
        if r < 0:
            return False
        self._alive[r] = False
        self._delta.pop(object_id, None)
        self._dead += 1
        if self._dead > max(4096, self._n // 4):
            self.compact()
        return True

    def compact(self) -> None:
        """Drop tombstoned rows (amortised O(1) per delete: runs when a quarter of the rows are dead)."""
        with self._lock:
            keep = np.flatnonzero(self._alive[: self._n])
            self._codes = np.ascontiguousarray(self._codes[:, keep])
            self._copy = self._copy[keep]
            self._low = self._low[keep]
            self._alive = np.ones(len(keep), bool)
            self._ids = self._ids[keep]
            self._n = len(keep)
            self._dead = 0
            self._rebuild_lookup()

    def __len__(self) -> int:
        return self._n - self._dead

    def __contains__(self, object_id: bytes) -> bool:
        with self._lock:
            return self._row(object_id) >= 0

    def memory_bytes(self) -> int:
        arrays = (self._codes, self._copy, self._low, self._alive, self._ids, self._base_keys, self._base_rows)
        return sum(a.nbytes for a in arrays) + 120 * len(self._delta)

    # ---- persistence ----

    def load(self) -> int:
        """Read every S record into the arrays (at mount). Returns the number of records."""
        with self._lock:
            buf = bytearray()  # one flat buffer: ~90 B per record at peak, no per-record Python objects kept
            n = 0
            for key, value in self.catalog.scan(SIM_RECORD):
                if len(key) != 1 + ID_LEN or len(value) != _REC.size or value[0] != RECORD_VERSION:
                    continue  # reported by check_consistency(); must not stop the mount
                buf += key[1:]
                buf += value
                n += 1
            self._alloc(n + n // 16 + 1024)
            if n:
                raw = np.frombuffer(buf, np.uint8).reshape(n, ID_LEN + _REC.size)
                self._ids[:n] = raw[:, :ID_LEN]
                o = ID_LEN
                self._low[:n] = (raw[:, o + 1] & _F_LOW) != 0
                self._copy[:n] = raw[:, o + 2:o + 10].copy().view(">u8").ravel()
                codes = raw[:, o + 26:o + 58].copy().view("<u8")  # (n, 4)
                self._codes[:, :n] = codes.T
                self._alive[:n] = True
                del raw
            del buf
            self._n = n
            self._rebuild_lookup()
            self._in_use = True
            return n

    def stage_put(self, batch, object_id: bytes, d: Descriptors) -> Pending:
        if len(object_id) != ID_LEN or len(d.global_code) != 32:
            raise ValueError("object id must be 32 bytes and the global code 32 bytes")
        batch.put(record_key(object_id), encode_record(d))
        batch.put(local_key(object_id), encode_local(d))
        return Pending("put", object_id, d)

    def stage_delete(self, batch, object_id: bytes) -> Pending:
        batch.delete(record_key(object_id))
        batch.delete(local_key(object_id))
        return Pending("delete", object_id)

    def stage_drop_local(self, batch, object_id: bytes) -> None:
        """Drop an object's local features (T) but keep its ranking record (S): for near-free copies whose
        base holds the same features. It can still be ranked and found by copy hash, not verified."""
        batch.delete(local_key(object_id))

    def applied(self, *pending: Pending) -> None:
        """The batch holding these staged changes was written: update the in-memory arrays.

        If the write failed, simply drop the Pending objects (nothing in memory changed).
        """
        with self._full_lock:
            for p in pending:
                old = self._full.pop(p.object_id, None)
                self._full_bytes -= len(old) if old is not None else 0
        with self._lock:
            self._in_use = True
            for p in pending:
                self._kill(p.object_id)
                if p.kind == "put" and p.descriptors is not None:
                    self._append(p.object_id, p.descriptors)

    def put(self, object_id: bytes, d: Descriptors, *, sync: bool = False) -> None:
        batch = self.catalog.new_batch()
        p = self.stage_put(batch, object_id, d)
        self.catalog.write(batch, sync=sync)
        self.applied(p)

    def delete(self, object_id: bytes, *, sync: bool = False) -> None:
        batch = self.catalog.new_batch()
        p = self.stage_delete(batch, object_id)
        self.catalog.write(batch, sync=sync)
        self.applied(p)

    def get(self, object_id: bytes) -> Descriptors | None:
        """The stored descriptors (local features: the compact T record; see full_local())."""
        rec = self.catalog.get(record_key(object_id))
        if rec is None:
            return None
        return decode(rec, self.catalog.get(local_key(object_id)))

    def full_local(self, object_id: bytes, d: Descriptors) -> bytes | None:
        """All local features of a stored image (d: its stored descriptors): d.local when the T record kept
        them all, else re-derived from its pixels (pixel_source) and kept in a bounded LRU. None if unknown."""
        if d.n_keypoints != LOCAL_KEEP:
            return d.local  # fewer than a compact record keeps, or an older full record: complete
        with self._full_lock:
            hit = self._full.get(object_id)
            if hit is not None:
                self._full.move_to_end(object_id)
                return hit
        if self.pixel_source is None:
            return None
        try:
            px = self.pixel_source(object_id)
            if px is None:
                return None
            full = extract(px, mirror=False).local
        except Exception as exc:  # a damaged object must not break the query: verify on what T holds
            log.info("local features of %s not re-derived: %s", object_id.hex()[:16], exc)
            return None
        with self._full_lock:
            self.rederived += 1
            if object_id not in self._full:
                self._full[object_id] = full
                self._full_bytes += len(full)
            while self._full_bytes > FULL_CACHE_BYTES and self._full:
                _, old = self._full.popitem(last=False)
                self._full_bytes -= len(old)
        return full

    def _cached_full(self, object_id: bytes) -> bytes | None:
        with self._full_lock:
            return self._full.get(object_id)

    # ---- query ----

    def global_distances(self, code: bytes) -> np.ndarray:
        """uint16 Hamming distances of code to every row (dead rows included)."""
        n = self._n
        q = np.frombuffer(code, "<u8")
        out = np.bitwise_count(self._codes[0, :n] ^ q[0]).astype(np.uint16)
        for j in range(1, 4):
            out += np.bitwise_count(self._codes[j, :n] ^ q[j])
        return out

    def _row_distances(self, code: bytes, rows: np.ndarray) -> np.ndarray:
        q = np.frombuffer(code, "<u8")
        return np.bitwise_count(self._codes[:, rows] ^ q[:, None]).sum(axis=0, dtype=np.uint16)

    def shortlist(self, d: Descriptors, k: int, exclude: Iterable[bytes] = ()
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bool | None]]:
        """Global stage: rows of the k nearest codes + the nearest copy hashes.

        -> (rows, global distance, copy distance, orientation) where global distance is the min over the
        query and its mirror image and orientation is the `mirror` argument for verify() per row.
        """
        with self._lock:
            n = self._n
            if n == 0:
                e = np.zeros(0, np.int64)
                return e, e, e, []
            gd = self.global_distances(d.global_code)
            gm: Any = None  # mirror-image distances, known only for the rows the 64-bit prefilter kept
            if d.mirror_code and d.mirror_code != d.global_code:
                # A full second scan would double the stage (4 ms at 1M); flipped copies are near-duplicates
                # of the mirror code, so its first 64 bits find them (random codes sit ~32 of 64 bits away).
                qm = np.frombuffer(d.mirror_code, "<u8")
                pre = _smallest(np.bitwise_count(self._codes[0, :n] ^ qm[0]), MIRROR_PREFILTER)
                gm = (pre, self._row_distances(d.mirror_code, pre))
            # Thumbnail codes (low texture) and VLAD codes live in different spaces: never rank across.
            bad = (self._low[:n] != d.low_texture) | ~self._alive[:n]
            cd_all = np.bitwise_count(self._copy[:n] ^ np.uint64(d.copy_hash))  # uint8
            excluded = [r for r in (self._row(oid) for oid in exclude) if r >= 0]
            bad[excluded] = True
            # close copy hashes are a handful at most: filter liveness/exclusion on those only
            close = np.flatnonzero(cd_all <= 2 * self.t.copy_max_bits)
            close = close[self._alive[close] & ~np.isin(close, excluded)]
            crow = close[_smallest(cd_all[close].astype(np.uint16), COPY_SHORTLIST)]
            gd_direct: dict[int, int] = {}
            g = gd  # distances are modified in place: no 2 MB copy per query
            if gm is not None:
                gd_direct = dict(zip(gm[0].tolist(), gd[gm[0]].tolist(), strict=True))
                g[gm[0]] = np.minimum(gd[gm[0]], gm[1])
            np.copyto(g, FAR, where=bad)
            rows = np.unique(np.concatenate([_smallest(g, k), crow]))
            cd = cd_all[rows].astype(np.int64)
            # Which orientation to verify: the one whose code is clearly closer (flipped copies have a
            # large gap); None (both) when the codes do not tell, as for crops whose code moved a lot.
            mirror: list[bool | None] = [False] * len(rows)
            if gm is not None:
                known = dict(zip(gm[0].tolist(), gm[1].tolist(), strict=True))
                for i, r in enumerate(rows.tolist()):
                    if r in known:
                        diff = gd_direct[r] - known[r]
                        mirror[i] = None if abs(diff) < MIRROR_GAP else diff > 0
            gsel = g[rows].astype(np.int64)
            gsel[gsel >= FAR] = 256  # rows taken for their copy hash only (other code space): "far"
            return rows, gsel, cd, mirror

    def query(self, d: Descriptors, k: int = 10, exclude: Iterable[bytes] = (), *, verify_k: int | None = None,
              verify_candidates: bool = True, verify_budget: float | None = VERIFY_BUDGET_S,
              rederive: int = REDERIVE_MAX) -> QueryResult:
        """Top-k candidate references for d, verified and ranked; .worth_trying_inter is the yes/no decision.

        Candidates are verified most promising first (close copy hash, then global distance) until
        verify_budget seconds of this thread's CPU are spent; the rest keep their global rank unverified.
        Then up to `rederive` near misses (compact T record: >= REDERIVE_MIN_INLIERS inliers, no relation)
        are verified again on their full features (full_local(): a decode when not cached; outside the budget).
        """
        t0 = time.perf_counter()
        kk = max(k, verify_k if verify_k is not None else self.t.k)
        rows, gd, cd, mir = self.shortlist(d, kk, exclude)
        with self._lock:
            ids = [self._ids[r].tobytes() for r in rows]
        t1 = time.perf_counter()
        cpu0 = time.thread_time()
        order = sorted(range(len(ids)), key=lambda i: (cd[i] > self.t.copy_max_bits, gd[i], cd[i]))
        cands = []
        near: list[tuple[int, int, Descriptors, bool | None]] = []  # near misses on compact records
        skipped = 0
        for i in order:
            oid, g, c, mirror = ids[i], int(gd[i]), int(cd[i]), mir[i]
            over = verify_budget is not None and time.thread_time() - cpu0 > verify_budget
            want = verify_candidates and not over
            b = self.get(oid) if want or c <= self.t.copy_max_bits else None
            if b is None and want:
                continue  # deleted since the shortlist was taken
            m = NO_MATCH
            if b is not None and want and not d.low_texture and not b.low_texture:
                full = self._cached_full(oid)
                if full is not None:
                    b.local = full
                m = verify(d, b, mirror)
            skipped += verify_candidates and over
            rel = relation_hint(d, b, c, g, m, self.t) if b is not None else ""
            cands.append(Candidate(oid, g, c, m.inliers, _score(d, b, c, g, m, rel), rel, m))
            if (not rel and b is not None and m.inliers >= REDERIVE_MIN_INLIERS and b.n_keypoints == LOCAL_KEEP):
                near.append((m.inliers, len(cands) - 1, b, mirror))
        t2 = time.perf_counter()
        n_rederived = 0
        for _inl, i, b, mirror in sorted(near, key=lambda x: -x[0])[:max(0, rederive)]:
            full = self.full_local(cands[i].object_id, b)
            if full is None or full == b.local:
                continue
            n_rederived += 1
            b.local = full
            m = verify(d, b, mirror)
            c0 = cands[i]
            rel = relation_hint(d, b, c0.copy_distance, c0.global_distance, m, self.t)
            cands[i] = Candidate(c0.object_id, c0.global_distance, c0.copy_distance, m.inliers,
                                 _score(d, b, c0.copy_distance, c0.global_distance, m, rel), rel, m)
        t3 = time.perf_counter()
        cands.sort(key=lambda x: (x.relation != "", x.score, -x.global_distance), reverse=True)
        worth = any(x.relation for x in cands)
        return QueryResult(cands[:k], worth, {"global": t1 - t0, "verify": t2 - t1, "verified": len(cands) - skipped,
                                              "unverified_over_budget": skipped, "rederived": n_rederived,
                                              "rederive": t3 - t2})

    # ---- fsck ----

    def stage_repair(self, batch, object_ids_expected: Iterable[bytes]) -> list[Pending]:
        """Stage deletion of every record fsck reports as M401-M403; pass the result to applied()."""
        expected = set(object_ids_expected)
        recs = {k[1:]: v for k, v in self.catalog.scan(SIM_RECORD)}
        locs = {k[1:]: v for k, v in self.catalog.scan(SIM_LOCAL)}
        drop = set()
        for oid in set(recs) | set(locs):
            rec, loc = recs.get(oid), locs.get(oid)
            if (oid not in expected or rec is None or loc is None or len(oid) != ID_LEN
                    or _undecodable(rec, loc)):
                drop.add(oid)
        out = []
        for oid in sorted(drop):
            batch.delete(record_key(oid))
            batch.delete(local_key(oid))
            out.append(Pending("delete", oid))
        return out

    def check_consistency(self, object_ids_expected: Iterable[bytes], *, require_all: bool = False) -> list[str]:
        """Problems between the S/T records, the catalog's objects and (if loaded) the in-memory arrays.

        Objects without records are normal while background extraction catches up; they are reported
        only with require_all=True. Each problem starts with a stable code (proposed fsck codes):
          M401 record for an object not in the catalog   M402 S without T or T without S
          M403 malformed record                          M404 object without records (require_all)
          M405 in-memory arrays disagree with the records (a bug; a remount reloads them)
        M401-M403 are repaired by stage_repair(); M404 by extracting again.
        """
        problems: list[str] = []
        expected = set(object_ids_expected)
        on_disk: dict[bytes, bytes] = {}
        for key, value in self.catalog.scan(SIM_RECORD):
            oid = key[1:]
            if len(oid) != ID_LEN or len(value) != _REC.size or value[0] != RECORD_VERSION:
                problems.append(f"M403 S{oid.hex()}: malformed similarity record ({len(value)} bytes)")
                continue
            on_disk[oid] = value
        locals_ = set()
        for key, value in self.catalog.scan(SIM_LOCAL):
            oid = key[1:]
            locals_.add(oid)
            try:
                decode(on_disk[oid], value) if oid in on_disk else _LOC.unpack_from(value, 0)
            except Exception as exc:
                problems.append(f"M403 T{oid.hex()}: malformed local features ({exc})")
        for oid in sorted(set(on_disk) - locals_):
            problems.append(f"M402 S{oid.hex()}: similarity record without local features (T)")
        for oid in sorted(locals_ - set(on_disk)):
            problems.append(f"M402 T{oid.hex()}: local features without similarity record (S)")
        for oid in sorted(set(on_disk) - expected):
            problems.append(f"M401 S{oid.hex()}: similarity record for an object that is not in the catalog")
        if require_all:
            for oid in sorted(expected - set(on_disk)):
                problems.append(f"M404 O{oid.hex()}: object has no similarity record")
        with self._lock:
            n = self._n
            if self._in_use:
                mem = {}
                for r in np.flatnonzero(self._alive[:n]):
                    mem[self._ids[r].tobytes()] = int(r)
                for oid in sorted(set(on_disk) - set(mem)):
                    problems.append(f"M405 S{oid.hex()}: on disk but not in the in-memory index")
                for oid in sorted(set(mem) - set(on_disk)):
                    problems.append(f"M405 S{oid.hex()}: in the in-memory index but not on disk")
                for oid in set(mem) & set(on_disk):
                    row = mem[oid]
                    v = on_disk[oid]
                    code = self._codes[:, row].astype("<u8").tobytes()
                    if code != v[26:58] or int(self._copy[row]) != int.from_bytes(v[2:10], "big"):
                        problems.append(f"M405 S{oid.hex()}: in-memory code differs from the record")
                if len(mem) != len(self):
                    problems.append(f"M405 index counts {len(self)} live rows but holds {len(mem)}")
        return problems


def _undecodable(rec: bytes, loc: bytes) -> bool:
    try:
        decode(rec, loc)
        return False
    except Exception:
        return True


def _fold(ids: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 ids -> (n,) uint64 lookup keys: xor of the four words, so ids that share a prefix
    (not only sha256 ids are possible) still spread out."""
    w = np.ascontiguousarray(ids).view("<u8")
    return (w[:, 0] ^ w[:, 1] ^ w[:, 2] ^ w[:, 3]).astype(np.uint64)


def _smallest(dist: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k smallest distances below FAR (unordered; ties at the cut broken arbitrarily).

    The cut is estimated from a 1/16 sample's histogram (distances are small integers), so one
    comparison pass over all rows replaces np.argpartition (0.6 vs 2-3 ms at 1M rows); only the
    rows under the cut are partitioned. Falls back to the full histogram when the sample undershoots.
    """
    n = len(dist)
    if n == 0 or k <= 0:
        return np.zeros(0, np.int64)
    if n <= 65536:
        rows = np.flatnonzero(dist < FAR)
        if len(rows) > k:
            rows = rows[np.argpartition(dist[rows], k - 1)[:k]]
        return rows
    sample_cs = np.cumsum(np.bincount(dist[::16], minlength=FAR + 1)[:FAR])
    cut = int(np.searchsorted(sample_cs, (4 * k + 64) // 16))  # ~4k rows expected under the cut
    rows = np.flatnonzero(dist <= min(cut, FAR - 1))
    if len(rows) < k:  # unlucky sample: exact cut from the full histogram
        cs = np.cumsum(np.bincount(dist, minlength=FAR + 1)[:FAR])
        rows = np.flatnonzero(dist <= min(int(np.searchsorted(cs, k)), FAR - 1))
    if len(rows) > k:
        rows = rows[np.argpartition(dist[rows], k - 1)[:k]]
    return rows


def _score(d: Descriptors, b: Descriptors | None, copy_dist: int, global_dist: int, m: Match, rel: str) -> float:
    """0..1: identical pixels 1; copies by copy-hash closeness; verified matches by inlier share; else global."""
    if b is not None and d.pixel_hash == b.pixel_hash:
        return 1.0
    if rel == "copy":  # low texture: the thumbnail code is the stable signal, its pHash is noise
        return 0.9 + 0.09 * (1 - (global_dist / 256 if d.low_texture else copy_dist / 64))
    if m.inliers:
        return min(0.89, 0.3 + 0.6 * min(1.0, m.inliers / 150))
    return max(0.0, 0.29 * (1 - global_dist / 128))
