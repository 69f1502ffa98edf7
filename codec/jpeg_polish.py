"""Single-coefficient moves that bring a recovered JPEG's luma closer to decoding the picture exactly.

At fine qualities (luma steps of 1 or 2) the DCT of the decoded samples sits within rounding noise
of several lattice points, and the least-squares refinement of jpeg_origin.recover stops with many
blocks a few samples off: the DCT of a handful of +-1 sample errors rounds to no correction at all.
Here each such block tries every +-1 move of its fine-step coefficients, scored by how many RGB
samples would then decode exactly (chroma held fixed), and keeps the best move that the exact
integer IDCT confirms. Fewer mismatched samples means a smaller residual to code.
"""
from __future__ import annotations

import numpy as np

from . import jpeg_decoder as jd

MAX_STEP = 2  # only coefficients quantized this finely are ambiguous enough to need moves
ROUNDS = 4  # passes of one move per block; later passes move few blocks (measured: 2594, 847, 245, 61)
_BIG = 1 << 12


def _blocks(a: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """H x W x C (padded to whole blocks) -> N x 64 x C, blocks row-major."""
    return a.reshape(bh, 8, bw, 8, -1).transpose(0, 2, 1, 3, 4).reshape(bh * bw, 64, a.shape[-1])


def _upsampled_chroma(coefs: list[np.ndarray], qts: list[np.ndarray], sampling: tuple[int, int],
                      h: int, w: int, idct: str, fancy: bool) -> tuple[np.ndarray, np.ndarray]:
    hs, vs = sampling
    ups = []
    for ci in (1, 2):
        ch, cw = jd.comp_size(h, w, ci, sampling)
        bh, bw = jd.blocks_shape(h, w, ci, sampling)
        p = jd.blocks_to_plane(jd.IDCTS[idct](coefs[ci], qts[ci]), bh, bw)[:ch, :cw]
        if (hs, vs) == (1, 1):
            ups.append(p)
        elif not fancy:
            ups.append(jd.upsample_replicate(p, hs, vs, h, w))
        elif (hs, vs) == (2, 2):
            ups.append(jd.upsample_h2v2(p, h, w))
        else:
            ups.append(jd.upsample_h2v1(p, h, w))
    return ups[0], ups[1]


def _exact_intervals(pixels: np.ndarray, coefs: list[np.ndarray], qts: list[np.ndarray],
                     sampling: tuple[int, int], idct: str, fancy: bool, bh: int, bw: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per luma block sample and channel, the range of Y [lo, hi] that decodes that channel exactly
    (ycc_to_rgb adds a chroma term to Y and clips); padding samples accept any Y."""
    h, w = pixels.shape[:2]
    H, W = bh * 8, bw * 8
    if pixels.ndim == 2:
        off = np.zeros((h, w, 1), dtype=np.int64)
        tgt = pixels[..., None].astype(np.int64)
    else:
        cb, cr = _upsampled_chroma(coefs, qts, sampling, h, w, idct, fancy)
        off = np.stack([jd.CR_R[cr], (jd.CB_G[cb] + jd.CR_G[cr]) >> 16, jd.CB_B[cb]], axis=-1)
        tgt = pixels.astype(np.int64)
    exact = tgt - off
    lo = np.where(tgt == 0, -_BIG, exact)
    hi = np.where(tgt == 255, _BIG, exact)
    plo = np.full((H, W, lo.shape[2]), -_BIG, dtype=np.int64)
    phi = np.full((H, W, lo.shape[2]), _BIG, dtype=np.int64)
    plo[:h, :w], phi[:h, :w] = lo, hi
    return _blocks(plo, bh, bw).astype(np.int16), _blocks(phi, bh, bw).astype(np.int16)


def _misses(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mismatched samples per block for luma samples ``y`` (M x 64)."""
    y3 = y[..., None]
    return ((y3 < lo) | (y3 > hi)).sum(axis=(1, 2))


def _float_samples(c: np.ndarray, q: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """The float IDCT (+128) of quantized coefficients c (M x 64): basis rows already carry the steps."""
    return c.astype(np.float64) @ basis + 128.0


BAND_PIXELS = 1 << 19  # larger pictures are polished band by band (the work arrays take ~100 bytes a pixel)


def polish_luma(pixels: np.ndarray, coefs: list[np.ndarray], qts: list[np.ndarray],
                sampling: tuple[int, int], idct: str, fancy: bool) -> np.ndarray | None:
    """Luma coefficients (N x 8 x 8 int16) with fewer mismatched samples, or None when no move helps
    (no fine steps, or nothing off). Band by band (jd.bands): a block's moves depend only on its
    own samples and the chroma decoded over them, which a band with its context decodes exactly
    as the whole picture does, so the result is the same as polishing the picture whole."""
    h, w = pixels.shape[:2]
    spans = jd.bands(h, w, sampling, BAND_PIXELS)
    if len(spans) == 1:
        return polish_whole(pixels, coefs, qts, sampling, idct, fancy)
    out = np.asarray(coefs[0], dtype=np.int16).copy()
    moved = False
    for y0, y1, c0, c1 in spans:
        luma = polish_whole(pixels[c0:c1], jd.band_coefs(coefs, h, w, sampling, c0, c1), qts, sampling, idct, fancy)
        if luma is None:
            continue
        own = jd.band_coefs([luma], c1 - c0, w, sampling, y0 - c0, y1 - c0)[0]
        dst = jd.band_coefs([out], h, w, sampling, y0, y1)[0]  # a view: written through
        moved |= not np.array_equal(dst, own)
        dst[...] = own
    return out if moved else None


def polish_whole(pixels: np.ndarray, coefs: list[np.ndarray], qts: list[np.ndarray],
                 sampling: tuple[int, int], idct: str, fancy: bool) -> np.ndarray | None:
    """polish_luma() of the picture in one piece."""
    q = np.asarray(qts[0], dtype=np.int64).reshape(64)
    ks = np.flatnonzero(q <= MAX_STEP)
    if ks.size == 0:
        return None
    h, w = pixels.shape[:2]
    bh, bw = jd.blocks_shape(h, w, 0, sampling)
    lo, hi = _exact_intervals(pixels, coefs, qts, sampling, idct, fancy, bh, bw)
    transform = jd.IDCTS[idct]
    qt = np.asarray(qts[0], dtype=np.int64)
    c = np.asarray(coefs[0], dtype=np.int64).reshape(-1, 64).copy()
    y = transform(c.reshape(-1, 8, 8), qt).reshape(-1, 64).astype(np.int16)
    cur = _misses(y, lo, hi)
    # the float IDCT of a unit coefficient k, scaled by its step: what a +-1 move adds to the samples
    m = jd.dct_matrix()
    basis = np.einsum("vy,ux->vuyx", m, m).reshape(64, 64) * q[:, None]
    # float samples before the IDCT's rounding: a fine step's move shifts them by an eighth of a
    # level or so, which only the unrounded values show
    yf = _float_samples(c, q, basis)
    moved_any = False
    for _ in range(ROUNDS):
        idx = np.flatnonzero(cur > 0)
        if idx.size == 0:
            break
        yi, li, hi_i, base = yf[idx], lo[idx], hi[idx], cur[idx]
        best_gain = np.zeros(idx.size, dtype=np.int64)
        best_move = np.full(idx.size, -1, dtype=np.int64)
        for k in ks.tolist():
            for sign in (1, -1):
                approx = np.clip(np.round(yi + sign * basis[k]), 0, 255).astype(np.int16)
                gain = base - _misses(approx, li, hi_i)
                better = gain > best_gain
                best_gain[better] = gain[better]
                best_move[better] = 2 * k + (sign < 0)
        sel = best_move >= 0
        if not sel.any():
            break
        bi, mv = idx[sel], best_move[sel]
        trial = c[bi].copy()
        trial[np.arange(bi.size), mv // 2] += np.where(mv % 2 == 1, -1, 1)
        ty = transform(trial.reshape(-1, 8, 8), qt).reshape(-1, 64).astype(np.int16)
        tm = _misses(ty, lo[bi], hi[bi])
        keep = tm < cur[bi]  # the exact IDCT has the last word on each move
        if not keep.any():
            break
        kb = bi[keep]
        c[kb], y[kb], cur[kb] = trial[keep], ty[keep], tm[keep]
        yf[kb] = _float_samples(c[kb], q, basis)
        moved_any = True
    return c.reshape(-1, 8, 8).astype(np.int16) if moved_any else None
