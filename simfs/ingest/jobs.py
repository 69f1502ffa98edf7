"""Encoding jobs for the worker processes: pure functions of file bytes and reference pixels (codec only).

They run in separate processes (simfs/ingest/pool.py) so that minutes of CPU never hold the daemon's
GIL, and so that an unmount can stop them at once. Nothing here touches the store or the catalog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Ref:
    ref_id: bytes  # the base's object id (written into the blob)
    pixels: np.ndarray
    depth: int  # depth the encoded object would get with this base
    pixel_duplicate: bool = False


@dataclass
class Knobs:
    effort: int = 7
    tiny: float = 0.02  # an inter blob below this fraction of the file: intra is not even tried
    good_enough: float = 0.6  # inter below this fraction of intra: no further candidate is tried
    hopeless: float = 0.97  # the best candidate's inter above this fraction of intra: no others tried
    margin_per_depth: float = 0.02  # inter must be this fraction of intra smaller, times its depth


@dataclass
class JobResult:
    blob: bytes | None  # None: keep the file verbatim
    mode: str = "verbatim"  # "intra" | "inter" | "verbatim"
    ref: int = -1  # index into refs of the chosen base (inter)
    intra_len: int = 0  # bytes of the intra blob, when it was coded
    sizes: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0


def inter_accepted(inter_bytes: int, intra_bytes: int | None, depth: int, knobs: Knobs) -> bool:
    """Inter wins only with a margin over intra that grows with depth (longer chains cost decode time)."""
    if intra_bytes is None:
        return True
    return inter_bytes <= intra_bytes * (1.0 - knobs.margin_per_depth * depth)


def encode_png(content: bytes, refs: list[Ref], knobs: Knobs) -> JobResult:
    """The smallest verified coding of a PNG: against one of refs (best first) or on its own."""
    import codec

    t0 = time.perf_counter()
    analysis = codec.analyze(content)
    if not analysis.ok:
        return JobResult(None, reason=analysis.reason, seconds=time.perf_counter() - t0)
    sizes: dict[str, int] = {}
    best: tuple[bytes, int] | None = None
    intra_blob: bytes | None = None
    intra_done = False

    def code_intra() -> None:
        nonlocal intra_blob, intra_done
        intra_done = True
        r = codec.encode(content, effort=knobs.effort, analysis=analysis, try_inter=False)
        intra_blob = r.blob if r.mode == "intra" else None
        if intra_blob is not None:
            sizes["intra"] = len(intra_blob)

    for i, ref in enumerate(refs):
        if best is not None:
            if len(best[0]) <= knobs.tiny * len(content):
                break  # near-free already: candidates come best first
            if not intra_done:
                code_intra()  # after the first candidate: tells whether more are worth trying
            if intra_blob is not None and (len(best[0]) <= knobs.good_enough * len(intra_blob)
                                           or (i >= 2 and len(best[0]) >= knobs.hopeless * len(intra_blob))):
                break  # good enough; or two references tried and neither pays
        elif i > 0 and not intra_done:
            code_intra()
        r = codec.encode(content, codec.Reference(ref.pixels, ref.ref_id), effort=knobs.effort,
                         analysis=analysis, include_intra=False)
        if r.mode != "inter" or r.blob is None:
            continue
        sizes[f"inter:{ref.ref_id.hex()[:12]}"] = len(r.blob)
        if best is None or len(r.blob) < len(best[0]):
            best = (r.blob, i)
        if ref.pixel_duplicate:
            break
    if not intra_done and (best is None or len(best[0]) > knobs.tiny * len(content)):
        code_intra()
    seconds = time.perf_counter() - t0
    intra_len = len(intra_blob) if intra_blob is not None else 0
    if best is not None and (intra_blob is None or inter_accepted(len(best[0]), intra_len, refs[best[1]].depth, knobs)):
        return JobResult(best[0], "inter", best[1], intra_len, sizes, seconds=seconds)
    if intra_blob is not None:
        return JobResult(intra_blob, "intra", -1, intra_len, sizes, seconds=seconds)
    return JobResult(None, reason="no coding smaller than the file", sizes=sizes, seconds=seconds)


def encode_against(content: bytes, ref: Ref, knobs: Knobs) -> bytes | None:
    """Inter blob of content against ref alone (re-planning), or None if none verifies."""
    import codec

    r = codec.encode(content, codec.Reference(ref.pixels, ref.ref_id), effort=knobs.effort, include_intra=False)
    return r.blob if r.mode == "inter" else None
