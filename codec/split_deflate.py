"""Split re-deflate: rebuild one zlib stream as several segments deflated in parallel.

A segment starts at a block boundary of the original deflate stream: a fresh compressor, its
window primed with the previous 32 KiB (deflateSetDictionary), usually emits exactly the bits the
original compressor emitted from there on. Whether it does is checked at encode time, segment by
segment against the original stream (``find_points``); only points that reproduce are recorded,
as (inflated offset, bit offset). At rebuild each segment is deflated in its own thread (zlib
releases the GIL), compressed a little past its end so every decision up to its end sees the same
look-ahead, cut at the recorded bit length and spliced at bit offsets (blocks are not byte
aligned). The caller still checks the whole file's SHA-256 and falls back to one stream.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor

from . import deflate as zd

SEGMENT_MIN = 1 << 20  # inflated bytes per segment at least (priming + margin cost ~40 KiB each)
MAX_SEGMENTS = 16
MARGIN = 1 << 13  # input deflated past a segment's end: > 258 (longest match) + 262 (look-ahead)
SPLIT_MIN = 2 * SEGMENT_MIN  # streams smaller than this are rebuilt as one
TRIES = 8  # block boundaries tried per split point

DeflateParamsLike = zd.DeflateParams | list[int]


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _bits(data: bytes, start: int, count: int) -> int:
    """``count`` bits of ``data`` from bit ``start`` (deflate's LSB-first order) as an int."""
    lo, hi = start // 8, (start + count + 7) // 8
    return (int.from_bytes(data[lo:hi], "little") >> (start % 8)) & ((1 << count) - 1)


def _segment(raw: memoryview, p: zd.DeflateParams, start: int, end: int | None, host: bool) -> bytes:
    """Raw deflate of raw[start:end] (+ MARGIN; to the end of ``raw`` when ``end`` is None)."""
    window = 1 << p.wbits
    zdict = bytes(raw[max(0, start - window): start])
    stop = len(raw) if end is None else min(len(raw), end + MARGIN)
    return zd.raw_deflate(raw[start:stop], p, zdict, host=host)


def _segment_matches(raw: memoryview, body: bytes, p: zd.DeflateParams, seg: tuple[int, int, int | None, int | None],
                     host: bool) -> bool:
    x0, b0, x1, b1 = seg
    out = _segment(raw, p, x0, x1, host)
    if x1 is None or b1 is None:  # last segment: everything that is left, padding included
        want = len(body) * 8 - b0
        return abs(len(out) * 8 - want) < 8 and _bits(out, 0, want) == _bits(body, b0, want)
    n = b1 - b0
    return len(out) * 8 >= n and _bits(out, 0, n) == _bits(body, b0, n)


def _segments(points: list[tuple[int, int]]) -> list[tuple[int, int, int | None, int | None]]:
    starts = [(0, 0), *points]
    return [(x, b, *(starts[i + 1] if i + 1 < len(starts) else (None, None))) for i, (x, b) in enumerate(starts)]


def plan(n_raw: int) -> int:
    """How many segments a stream of ``n_raw`` inflated bytes is split into."""
    if n_raw < SPLIT_MIN:
        return 1
    return max(1, min(MAX_SEGMENTS, n_raw // SEGMENT_MIN))


def find_points(raw: bytes, body: bytes, p: zd.DeflateParams, *, segments: int | None = None,
                host: bool = True, full_check: bool = True) -> list[list[int]]:
    """Split points [[inflated offset, bit offset], ...] of the raw deflate stream ``body`` (the zlib
    stream minus header and Adler-32) of ``raw`` that a primed restart reproduces; [] for none.
    Each point is checked on the block that follows it; with ``full_check`` every segment between
    consecutive points is then deflated and compared bit for bit (else the caller's verification
    rebuild is that check: codec.verified_blob drops the points when it fails)."""
    n = plan(len(raw)) if segments is None else segments
    if n < 2 or not 9 <= p.wbits <= 15 or p.level == 0:
        return []
    bounds = zd.block_boundaries(body, p.wbits)
    if not bounds:
        return []
    step = len(raw) / n
    view = memoryview(raw)
    # Candidates per target: the first few boundaries past it, each pre-checked on its own block
    # (a restart after a literal that zlib's lazy matcher still held pending does not reproduce).
    nxt = {bounds[j]: (bounds[j + 1] if j + 1 < len(bounds) else (None, None)) for j in range(len(bounds))}
    candidates: list[list[tuple[int, int]]] = []
    i = 0
    for k in range(1, n):
        while i < len(bounds) and bounds[i][0] < k * step:
            i += 1
        cands = [bd for bd in bounds[i: i + TRIES] if bd[0] < len(raw) - SEGMENT_MIN // 2]
        candidates.append(cands)
    chosen: list[tuple[int, int]] = []

    def first_good(cands: list[tuple[int, int]]) -> tuple[int, int] | None:
        for bd in cands:
            if _segment_matches(view, body, p, (*bd, *nxt[bd]), host):
                return bd
        return None

    with ThreadPoolExecutor(_workers()) as ex:
        for bd in ex.map(first_good, candidates):
            if bd is not None and (not chosen or bd[0] > chosen[-1][0]):
                chosen.append(bd)
    if not chosen or not full_check:
        return [[x, b] for x, b in chosen]
    with ThreadPoolExecutor(_workers()) as ex:
        for _round in range(3):  # a failing segment drops its start point; the merged one is re-checked
            segs = _segments(chosen)
            ok = list(ex.map(lambda s: _segment_matches(view, body, p, s, host), segs))
            if all(ok):
                return [[x, b] for x, b in chosen]
            if not ok[0]:
                return []  # the stream itself does not reproduce with these parameters
            chosen = [pt for pt, good in zip(chosen, ok[1:], strict=True) if good]
            if not chosen:
                return []
    return []


def deflate_split(raw: bytes, p: DeflateParamsLike, points: list[list[int]], *, host: bool = True,
                  executor: ThreadPoolExecutor | None = None) -> bytes:
    """The raw deflate stream of ``raw`` rebuilt from segments cut at ``points`` (see find_points)."""
    prm = p if isinstance(p, zd.DeflateParams) else zd.DeflateParams(*p)
    pts = [(int(x), int(b)) for x, b in points]
    # Deflate never expands by more than ~5 bytes per 16 KiB stored block: a bit offset past this bound
    # is damage, and would only cost memory in the bit arithmetic below.
    max_bits = 8 * (len(raw) + len(raw) // 1000 + 1024)
    if (any(b1 <= b0 or x1 <= x0 for (x0, b0), (x1, b1) in zip([(0, 0), *pts], pts, strict=False))
            or (pts and (pts[-1][0] >= len(raw) or pts[-1][1] >= max_bits))):
        raise ValueError("split points out of order or outside the stream")
    segs = _segments(pts)
    view = memoryview(raw)

    def run(s: tuple[int, int, int | None, int | None]) -> tuple[bytes, int | None]:
        x0, b0, x1, b1 = s
        return _segment(view, prm, x0, x1, host), (None if b1 is None else b1 - b0)

    if executor is None:
        with ThreadPoolExecutor(_workers()) as ex:
            parts = list(ex.map(run, segs))
    else:
        parts = list(executor.map(run, segs))
    return splice(parts)


def splice(parts: list[tuple[bytes, int | None]]) -> bytes:
    """Concatenate bit strings: each (bytes, bit count) in deflate bit order; None = all of it."""
    out = bytearray()
    used = 0  # bits used in out's last byte (0: byte aligned)
    for data, nbits in parts:
        if nbits is None:
            nbits = len(data) * 8
        v = _bits(data, 0, nbits) << used
        piece = v.to_bytes((nbits + used + 7) // 8, "little")
        if used:
            out[-1] |= piece[0]
            out += piece[1:]
        else:
            out += piece
        used = (used + nbits) % 8
    return bytes(out)


def zlib_trailer(raw: bytes) -> bytes:
    return zlib.adler32(raw).to_bytes(4, "big")

