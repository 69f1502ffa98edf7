"""Reference rules of the encoder: depth limit, no cycles, margin over intra, pixel-identical first."""

from __future__ import annotations

from dataclasses import dataclass

from simfs.catalog.records import FLAG_LOCAL_DROPPED, NO_OBJECT, ObjectRecord
from simfs.ingest.encode import Encoded, EncodeOptions, EncodeProcessor, chain_contains
from simfs.ingest.jobs import Knobs, inter_accepted
from simfs.store.envelope import CODEC_VERBATIM


def oid(n: int) -> bytes:
    return bytes([n]) * 32


def rec(base: int | None = None, depth: int = 0, refcount: int = 1, dependents: int = 0, size: int = 100) -> ObjectRecord:
    return ObjectRecord(1, refcount, size, 50, 1, 0, oid(base) if base is not None else NO_OBJECT, depth, dependents)


@dataclass
class FakeCandidate:
    object_id: bytes
    relation: str = "copy"


@dataclass
class FakeDescriptors:
    pixel_hash: bytes


class FakeIndex:
    def __init__(self, results: list[FakeCandidate], pixel_hashes: dict[bytes, bytes]):
        self.results = results
        self.pixel_hashes = pixel_hashes

    def get(self, object_id: bytes) -> FakeDescriptors | None:
        ph = self.pixel_hashes.get(object_id)
        return FakeDescriptors(ph) if ph is not None else None

    def query(self, d, k=10, exclude=()):
        return [c for c in self.results if c.object_id not in set(exclude)][:k]


def processor(records: dict[bytes, ObjectRecord], results, pixel_hashes=None, **opts) -> EncodeProcessor:
    hashes = {oid(1): b"me"} | (pixel_hashes or {})
    return EncodeProcessor(None, chains=object(), index=FakeIndex(results, hashes),  # type: ignore[arg-type]
                           record_of=records.get, options=EncodeOptions(**opts))


def test_chain_contains_detects_self_and_ancestors() -> None:
    records = {oid(2): rec(base=3, depth=2), oid(3): rec(base=4, depth=1), oid(4): rec()}
    assert chain_contains(records.get, oid(2), oid(4))
    assert chain_contains(records.get, oid(2), oid(2))
    assert not chain_contains(records.get, oid(2), oid(9))
    cyclic = {oid(5): rec(base=6, depth=1), oid(6): rec(base=5, depth=1)}
    assert chain_contains(cyclic.get, oid(5), oid(9), limit=10)  # a loop counts as "contains"


def test_candidates_respect_depth_limit_cycles_and_deleted_objects() -> None:
    records = {
        oid(1): rec(),  # the object being encoded
        oid(2): rec(depth=0),  # fine: depth 1 for us
        oid(3): rec(base=2, depth=4),  # at the limit already: would make depth 5
        oid(4): rec(base=1, depth=1),  # coded against us: a cycle
        oid(5): rec(refcount=0, dependents=0),  # deleted, garbage: never a base
        oid(6): rec(base=2, depth=1),  # fine: depth 2
    }
    p = processor(records, [FakeCandidate(oid(i)) for i in (3, 4, 5, 2, 6)] + [FakeCandidate(oid(7), "")],
                  max_depth=4)
    got = p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")})
    assert [(c.object_id, c.depth) for c in got] == [(oid(2), 1), (oid(6), 2)]


def test_shallower_candidates_are_tried_first() -> None:
    records = {oid(1): rec(), oid(2): rec(base=3, depth=1), oid(3): rec(), oid(4): rec(base=3, depth=1)}
    p = processor(records, [FakeCandidate(oid(2)), FakeCandidate(oid(3)), FakeCandidate(oid(4))])
    got = p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")})
    assert [c.object_id for c in got] == [oid(3), oid(2), oid(4)]


def test_object_with_dependents_is_coded_on_its_own() -> None:
    records = {oid(1): rec(dependents=1), oid(2): rec()}
    p = processor(records, [FakeCandidate(oid(2))])
    assert p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")}) == []


def test_base_swap_partner_is_a_leaf_coded_against_the_base_and_cheaper_on_its_own() -> None:
    """Only an encoded leaf coded directly against the object (its local features kept) can be turned
    round; and the swap is not even tried (no decode, no encode: chains is a bare object here) unless
    the leaf alone costs clearly less than the base alone."""
    def leaf(n: int, **kw: object) -> ObjectRecord:
        r = rec(base=1, depth=1)
        r.intra_bytes = 40
        for k, v in kw.items():
            setattr(r, k, v)
        return r

    records = {oid(1): rec(dependents=1), oid(2): leaf(2, dependents=1), oid(3): leaf(3, codec=CODEC_VERBATIM),
               oid(4): leaf(4, flags=FLAG_LOCAL_DROPPED), oid(5): leaf(5, base=oid(9)), oid(6): leaf(6, refcount=0),
               oid(7): leaf(7)}
    p = processor(records, [])
    p._related[oid(1)] = [oid(i) for i in (2, 3, 4, 5, 6)]
    assert p._only_dependent(oid(1)) is None
    p._related[oid(1)].append(oid(7))
    assert p._only_dependent(oid(1)) == (oid(7), records[oid(7)])
    rebuilt: list[bytes] = []

    class Chains:
        def rebuild(self, object_id: bytes, gen: int) -> bytes:
            rebuilt.append(object_id)
            return b"not the object"

    p.chains = Chains()  # type: ignore[assignment]
    assert p._plan_swap(oid(1), b"", Encoded(None, 44, "intra")) is None  # type: ignore[arg-type]
    assert rebuilt == []  # 40 >= 0.9 * 44: not worth two encodes
    assert p._plan_swap(oid(1), b"", Encoded(None, 1000, "intra")) is None  # type: ignore[arg-type]
    assert rebuilt == [oid(7)]  # worth a look (and its content, not matching its id, stops it)
    records[oid(7)].intra_bytes = 0  # never coded on its own (a near-free copy): no estimate, no swap
    assert p._plan_swap(oid(1), b"", Encoded(None, 1000, "intra")) is None  # type: ignore[arg-type]
    assert rebuilt == [oid(7)]


def test_pixel_identical_candidate_is_the_only_one_tried() -> None:
    records = {oid(1): rec(), oid(2): rec(), oid(3): rec()}
    p = processor(records, [FakeCandidate(oid(2)), FakeCandidate(oid(3))], {oid(3): b"me", oid(2): b"other"})
    got = p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")})
    assert [(c.object_id, c.pixel_duplicate) for c in got] == [(oid(3), True)]


def test_margin_over_intra_grows_with_depth() -> None:
    opts = Knobs(margin_per_depth=0.02)
    assert inter_accepted(97, 100, 1, opts)
    assert not inter_accepted(97, 100, 2, opts)  # needs <= 96 at depth 2
    assert inter_accepted(92, 100, 4, opts)
    assert not inter_accepted(93, 100, 4, opts)
    assert inter_accepted(10**9, None, 4, opts)  # intra not measured (inter was tiny)


def test_retries_exhausted_fall_back_to_intra() -> None:
    records = {oid(1): rec(), oid(2): rec()}
    p = processor(records, [FakeCandidate(oid(2))])
    p.retries = lambda _o: 3
    assert p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")}) == []


def test_codec_pool_runs_jobs_in_another_process_and_survives_a_dead_worker() -> None:
    import os

    import pytest

    from simfs.ingest.pool import CodecPool, JobFailed

    pool = CodecPool(1)
    try:
        assert pool.run(os.getpid) != os.getpid()
        # niced below the daemon (its FUSE threads come first), whatever the daemon's own nice value
        assert pool.run(os.getpriority, os.PRIO_PROCESS, 0) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
        with pytest.raises(JobFailed):
            pool.run(os._exit, 3)  # the worker dies mid-job: that job fails, the pool is rebuilt
        assert pool.run(abs, -5) == 5
    finally:
        pool.close()
    with pytest.raises(JobFailed):
        pool.run(abs, -1)


def test_codec_workers_exit_when_the_daemon_is_killed(tmp_path) -> None:
    """kill -9 of the process owning the pool leaves no orphan worker computing."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = ("import os, sys, time\n"
              "from simfs.ingest.pool import CodecPool\n"
              "p = CodecPool(1)\n"
              "print(p.run(os.getpid), flush=True)\n"
              "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError("the codec worker outlived its daemon")


def test_a_much_smaller_base_is_tried_after_the_full_size_ones() -> None:
    records = {oid(1): rec(size=100), oid(2): rec(size=30), oid(3): rec(base=4, depth=1, size=100), oid(4): rec()}
    p = processor(records, [FakeCandidate(oid(2)), FakeCandidate(oid(3))])
    got = p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")})
    assert [c.object_id for c in got] == [oid(3), oid(2)]  # the thumbnail last, though shallower


def test_encoded_bases_before_verbatim_ones_even_when_deeper() -> None:
    """A verbatim base is kept only for a large gain (jobs.PENDING_ACCEPT), so the encoded ones go first
    whatever their depth: a burst's frame is tried against an earlier, encoded frame before the next
    frames, still verbatim (which would otherwise fill the K candidates and all be refused)."""
    records = {oid(1): rec(), oid(2): ObjectRecord(0, 1, 100, 100), oid(3): rec(base=4, depth=1), oid(4): rec(),
               oid(5): ObjectRecord(0, 1, 100, 100)}
    p = processor(records, [FakeCandidate(oid(i)) for i in (2, 3, 5, 4)])
    got = p.candidates(oid(1), records[oid(1)], {"descriptors": FakeDescriptors(b"me")})
    assert [(c.object_id, c.pending) for c in got] == [(oid(4), False), (oid(3), False), (oid(2), True)]


def test_a_big_image_is_not_coded_by_upscaling_a_much_smaller_one_unless_nearly_free() -> None:
    """A thumbnail stored first must not become the base of its original (half-good prediction, and
    the original would be stuck as everyone's base): the original is coded intra; an exact
    replay from a same-size base is still taken."""
    import io

    import numpy as np
    from PIL import Image

    import codec
    from simfs.ingest import jobs

    rng = np.random.default_rng(4)
    y, x = np.mgrid[0:160, 0:200].astype(np.float64)
    big = np.clip(np.stack([x, y, x + y], axis=2) * 0.6 + rng.normal(0, 2, (160, 200, 3)), 0, 255).astype(np.uint8)
    small = np.asarray(Image.fromarray(big).resize((100, 80), Image.Resampling.LANCZOS))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    data = buf.getvalue()
    job = jobs.encode_png(data, [jobs.Ref(b"s" * 32, small, 0, False)], jobs.Knobs(effort=3))
    assert job.mode == "intra", (job.reason, job.sizes)
    flipped = np.ascontiguousarray(big[:, ::-1])
    job = jobs.encode_png(data, [jobs.Ref(b"f" * 32, flipped, 0, False)], jobs.Knobs(effort=3))
    assert job.mode == "inter" and codec.verifies(job.blob, data, codec.Reference(flipped, b"f" * 32))


def test_first_pass_that_does_not_pay_is_recoded_at_the_final_effort_without_a_second_search(monkeypatch) -> None:
    """JPEG XL effort 1 cannot beat a well-compressed PNG here: the job re-codes the first pass's
    payloads at the final effort (no second prediction search) and ends as small as a one-pass
    effort-7 job, verified."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    import codec
    from codec import inter
    from simfs.ingest import jobs

    def photo(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        small = rng.integers(0, 256, (15, 20, 3), dtype=np.uint8)
        img = cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        img += rng.integers(-3, 4, img.shape, dtype=np.int16)
        return np.clip(img, 0, 255).astype(np.uint8)

    buf = io.BytesIO()
    Image.fromarray(photo(5)).save(buf, format="PNG")
    data = buf.getvalue()
    ref = jobs.Ref(b"r" * 32, photo(2), 1, False)
    searches = []
    real_search = inter.search
    monkeypatch.setattr(inter, "search", lambda *a, **k: searches.append(k.get("effort")) or real_search(*a, **k))
    first = codec.encode(data, effort=1, verify=False, allow_larger=True)
    assert len(first.unverified[0][0]) > jobs.FIRST_PASS_USEFUL * len(data), "the case needs a first pass that does not pay"
    job = jobs.encode_png(data, [ref], jobs.Knobs(effort=1, final_effort=7))
    assert searches == [1], searches  # searched once, at the first-pass effort
    assert job.blob is not None and codec.blob_effort(job.blob) == 7
    assert codec.verifies(job.blob, data, codec.Reference(ref.pixels, ref.ref_id) if job.mode == "inter" else None)
    one_pass = jobs.encode_png(data, [ref], jobs.Knobs(effort=7))
    assert len(job.blob) <= 1.01 * len(one_pass.blob or b"")
