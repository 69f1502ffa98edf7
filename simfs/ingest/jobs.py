"""Encoding jobs for the worker processes: pure functions of file bytes and reference pixels (codec only).

They run in separate processes (simfs/ingest/pool.py) so that minutes of CPU never hold the daemon's
GIL, and so that an unmount can stop them at once. Nothing here touches the store or the catalog.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Ref:
    ref_id: bytes  # the base's object id (written into the blob)
    pixels: np.ndarray
    depth: int  # depth the encoded object would get with this base
    pixel_duplicate: bool = False
    pending: bool = False  # the base is still verbatim: coding against it makes it a base coded on its own


@dataclass
class Knobs:
    effort: int = 7
    tiny: float = 0.02  # an inter blob below this fraction of the file: intra is not even tried
    good_enough: float = 0.6  # inter below this fraction of intra: no further candidate is tried
    hopeless: float = 0.97  # the best candidate's inter above this fraction of intra: no others tried
    margin_per_depth: float = 0.02  # inter must be this fraction of intra smaller, times its depth
    final_effort: int = 0  # > effort: a first pass (the polish pass re-codes later); if nothing it
    # codes is smaller than the file, the job tries again at final_effort (JPEG XL effort 1 can lose to
    # a well-compressed PNG where effort 7 wins)


@dataclass
class JobResult:
    blob: bytes | None  # None: keep the file verbatim
    mode: str = "verbatim"  # "intra" | "inter" | "verbatim"
    ref: int = -1  # index into refs of the chosen base (inter)
    intra_len: int = 0  # bytes of the intra blob, when it was coded
    sizes: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


UPSCALE_BASE = 0.7  # a reference with fewer than this fraction of the target's pixels...
UPSCALE_ACCEPT = 0.25  # ...is used only when it makes the target this small against intra
FIRST_PASS_USEFUL = 0.9  # a first-pass blob above this fraction of the file is redone at the final effort
# Inter against a base still verbatim is kept only when it is at most this fraction of intra. Such a
# base is then coded on its own and can never be coded against this image (a cycle): an original
# ingested just before its copies would be predicted, for little gain, from a degraded copy, and each
# copy, nearly free against the original, would cost its full size instead.
PENDING_ACCEPT = 0.5


def inter_accepted(inter_bytes: int, intra_bytes: int | None, depth: int, knobs: Knobs, pending: bool = False) -> bool:
    """Inter wins only with a margin over intra that grows with depth (longer chains cost decode time),
    and against a base not encoded yet only when it is a large gain (PENDING_ACCEPT)."""
    if intra_bytes is None:
        return True
    bar = min(1.0 - knobs.margin_per_depth * depth, PENDING_ACCEPT if pending else 1.0)
    return inter_bytes <= intra_bytes * bar


def encode_png(content: bytes, refs: list[Ref], knobs: Knobs, *, full_analysis: bool = False) -> JobResult:
    """The smallest verified coding of a PNG: against one of refs (best first) or on its own.

    Every encode runs unverified; only the coding finally chosen is decoded and compared (and, if
    that ever failed, the next one): one verification per file instead of one per encode."""
    import codec

    t0 = time.perf_counter()
    # quick: deflate parameters checked on a prefix; the one verification below checks the rest
    analysis = codec.analyze(content, quick=not full_analysis)
    if not analysis.ok:
        return JobResult(None, reason=analysis.reason, seconds=time.perf_counter() - t0)
    sizes: dict[str, int] = {}
    inter_cands: list[tuple[bytes, int]] = []  # (blob, index into refs), every candidate of every ref
    intra_cands: list[bytes] = []
    intra_done = False

    def best_inter() -> bytes | None:
        """The smallest inter blob that could still be kept (against a verbatim base: a large gain)."""
        il = intra_len()
        return min((b for b, i in inter_cands
                    if not refs[i].pending or il is None or len(b) <= PENDING_ACCEPT * il), key=len, default=None)

    def intra_len() -> int | None:
        return len(intra_cands[0]) if intra_cands else None

    def code_intra() -> None:
        nonlocal intra_done
        intra_done = True
        r = codec.encode(content, effort=knobs.effort, analysis=analysis, try_inter=False, verify=False,
                         allow_larger=True)  # a first pass larger than the file may still be re-coded
        intra_cands.extend(b for b, mode, _ in r.unverified if mode == "intra")
        if intra_cands:
            sizes["intra"] = len(intra_cands[0])

    for i, ref in enumerate(refs):
        if inter_cands and not intra_done:
            if min(len(b) for b, _ in inter_cands) <= knobs.tiny * len(content):
                break  # near-free already: candidates come best first
            code_intra()  # after the first candidate: tells whether more are worth trying
        best = best_inter()
        if best is not None:
            if len(best) <= knobs.tiny * len(content):
                break
            il = intra_len()
            if il is not None and (len(best) <= knobs.good_enough * il or (i >= 2 and len(best) >= knobs.hopeless * il)):
                break  # good enough; or two references tried and neither pays
        elif i > 0 and not intra_done:
            code_intra()
        r = codec.encode(content, codec.Reference(ref.pixels, ref.ref_id), effort=knobs.effort,
                         analysis=analysis, include_intra=False, verify=False, allow_larger=True)
        got = [b for b, mode, _ in r.unverified if mode == "inter"]
        if not got:
            continue
        sizes[f"inter:{ref.ref_id.hex()[:12]}"] = min(map(len, got))
        inter_cands.extend((b, i) for b in got)
        if ref.pixel_duplicate:
            break
    best = best_inter()
    if not intra_done and (best is None or len(best) > knobs.tiny * len(content)):
        code_intra()
    two_pass = knobs.final_effort > knobs.effort
    smallest = min([len(b) for b, _ in inter_cands] + [len(b) for b in intra_cands], default=None)
    pays = smallest is not None and smallest <= FIRST_PASS_USEFUL * len(content)
    res = None
    if pays or not two_pass:
        res = _first_verified(content, analysis, refs, inter_cands, intra_cands, sizes, knobs, t0)
        if res is None and analysis.quick:  # the prefix-matched parameters did not rebuild the file: search it all
            return encode_png(content, refs, knobs, full_analysis=True)
    if two_pass and (res is None or len(res.blob or b"") > FIRST_PASS_USEFUL * len(content)):
        # A first pass that does not pay (a well-compressed PNG can beat JPEG XL effort 1): code at the
        # final effort now instead of keeping the file verbatim or nearly as big. The predictions are
        # not searched again: the first pass's best payloads are re-coded at the final effort. Only
        # when none was made or none verifies does the whole job run again at the final effort.
        again = _recoded(content, analysis, refs, inter_cands, intra_cands, sizes, knobs, t0)
        if again is None:
            again = encode_png(content, refs, dataclasses.replace(knobs, effort=knobs.final_effort, final_effort=0),
                               full_analysis=full_analysis)
        if again is not None and again.blob is not None and (res is None or len(again.blob) < len(res.blob or b"")):
            return again
    if res is not None:
        return res
    return JobResult(None, reason="no coding smaller than the file", sizes=sizes, seconds=time.perf_counter() - t0)


RECODE_INTER = 2  # first-pass inter codings re-coded at the final effort (smallest first), with intra


def _recoded(content: bytes, analysis, refs: list[Ref], inter_cands: list[tuple[bytes, int]],
             intra_cands: list[bytes], sizes: dict[str, int], knobs: Knobs, t0: float) -> JobResult | None:
    """The first pass's intra and its RECODE_INTER smallest inter codings with their payloads re-coded
    at the final effort (codec.repack: same prediction, payload checked to decode to the same
    pixels), then the same choice and verification as a first pass."""
    import codec

    def recode(blob: bytes) -> bytes:
        try:
            return codec.repack(blob, knobs.final_effort) or blob
        except Exception:  # a payload that cannot be re-coded keeps its first-pass form
            return blob

    inter_best = sorted(inter_cands, key=lambda c: len(c[0]))[:RECODE_INTER]
    new_inter = [(recode(b), i) for b, i in inter_best]
    new_intra = [recode(b) for b in intra_cands[:1]]
    if new_intra:
        sizes["intra:final"] = len(new_intra[0])
    for b, i in new_inter:
        key = f"inter:{refs[i].ref_id.hex()[:12]}:final"
        sizes[key] = min(len(b), sizes.get(key, len(b)))
    return _first_verified(content, analysis, refs, new_inter, new_intra, sizes,
                           dataclasses.replace(knobs, effort=knobs.final_effort, final_effort=0), t0)


def _first_verified(content: bytes, analysis, refs: list[Ref], inter_cands: list[tuple[bytes, int]],
                    intra_cands: list[bytes], sizes: dict[str, int], knobs: Knobs, t0: float) -> JobResult | None:
    """In order of size: accepted inter candidates, then intra; the first that decodes to exactly the
    file. A failure (never seen, but the contract) only moves on to the next candidate; after a
    prefix-matched analysis (``analyze(quick=True)``) the first failure is taken for wrong deflate
    parameters (levels 7-9 often agree for the first 256 KiB: ImageMagick writes level 7): a
    whole-stream search then gives every candidate its recipe, and nothing is coded again."""
    import codec

    # intra's size sets the bar for inter only when intra itself is kept (smaller than the file)
    il = len(intra_cands[0]) if intra_cands and len(intra_cands[0]) < len(content) else None
    tried_full = False
    full = None  # the whole-stream analysis, once a prefix-matched recipe failed

    def check(blob: bytes, ref: codec.Reference | None) -> bytes | None:
        nonlocal tried_full, full
        if full is not None:
            blob = codec.with_recipe(blob, full)
        checked = codec.verified_blob(blob, content, ref)
        if checked is None and analysis.quick and not tried_full:
            tried_full = True
            full = codec.whole_stream_analysis(content, analysis)
            if full is not None:
                checked = codec.verified_blob(codec.with_recipe(blob, full), content, ref)
        return checked

    for blob, i in sorted(inter_cands, key=lambda c: len(c[0])):
        if len(blob) >= len(content):
            break  # no coding larger than the file is kept (the first pass keeps them for re-coding)
        if il is not None and not inter_accepted(len(blob), il, refs[i].depth, knobs):
            break  # sorted by size: no larger one is accepted either
        if not inter_accepted(len(blob), il, refs[i].depth, knobs, refs[i].pending):
            continue  # a verbatim base and not a large gain: a larger one against an encoded base may be
        if (il is not None and analysis.pixels is not None
                and refs[i].pixels.size < UPSCALE_BASE * analysis.pixels.size
                and len(blob) > UPSCALE_ACCEPT * il):
            # Predicting a big image from a much smaller one (a thumbnail stored first) only
            # half works, and the big one would then be stuck as the others' base: code it on
            # its own, and re-planning codes the small one against it.
            continue
        checked = check(blob, codec.Reference(refs[i].pixels, refs[i].ref_id))
        if checked is not None:
            return JobResult(checked, "inter", i, il or 0, sizes, seconds=time.perf_counter() - t0)
    for blob in intra_cands:
        if len(blob) >= len(content):
            break
        checked = check(blob, None)
        if checked is not None:
            return JobResult(checked, "intra", -1, len(checked), sizes, seconds=time.perf_counter() - t0)
    return None


def encode_against(content: bytes, ref: Ref, knobs: Knobs) -> bytes | None:
    """Inter blob of content against ref alone (re-planning), or None if none verifies."""
    import codec

    r = codec.encode(content, codec.Reference(ref.pixels, ref.ref_id), effort=knobs.effort, include_intra=False)
    return r.blob if r.mode == "inter" else None


def encode_swapped(dep_content: bytes, content: bytes, dep_id: bytes, knobs: Knobs) -> tuple[JobResult, bytes | None]:
    """A base swap's two codings: the dependent on its own, then content against the dependent's pixels
    (None when that gives no verified inter blob)."""
    import codec

    job = encode_png(dep_content, [], knobs)
    if job.blob is None or job.mode != "intra":
        return job, None
    px = codec.png_pixels(dep_content)
    if px is None:
        return job, None
    return job, encode_against(content, Ref(dep_id, px, 1), knobs)


def repack_blob(blob: bytes, effort: int) -> bytes | None:
    """The polish pass: a blob's JPEG XL payload re-encoded at the final effort (None: not smaller)."""
    import codec

    return codec.repack(blob, effort)
