"""Recover the JPEG a picture was decoded from: sampling, quantization tables and coefficients.

A PNG made from a JPEG (an export, a format conversion, a decoded camera photo, an edit saved as
JPEG and reopened) holds no more information than the JPEG's quantized DCT coefficients. This
module finds them from the pixels alone: the colour planes are transformed back (YCbCr, chroma
down-sampling undone), every 8 x 8 block's DCT is divided by the quantization step that its values
cluster on, and a few passes of decode-compare-correct with the exact decoder (jpeg_decoder) fix
the coefficients rounding put on the wrong side. What still differs is left to the caller's
residual. Pure numpy; nothing here is trusted: the caller verifies the decoded result.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import jpeg_decoder as jd
from . import jpeg_polish
from . import jpeg_predict as jp

SAMPLINGS = ((2, 2), (1, 1), (2, 1))  # 4:2:0, 4:4:4, 4:2:2 (luma h, v sampling factors)
REFINE_PASSES = 4  # decode-compare-correct passes on the RGB result
PLANE_PASSES = 4  # correction passes in each component's plane before those
DOWNSAMPLE_STEPS = 8
CHROMA_PASSES = 3  # rounds of +-1 moves fitting the down-sampled chroma to its up-sampled samples  # fixed-point steps undoing the up-sampler's blur
NOISE = 0.35  # spread of a recovered DCT value around its true multiple (rounding, clipping)
# ...by decoder: the fast integer IDCT's own error roughly doubles it (measured: a q92 photo's luma
# table is found exactly with 0.5-0.7, not with 0.35 or 1.0)
IDCT_NOISE = {"islow": NOISE, "ifast": 0.6}
ZERO_BAND = 1.5  # |DCT value| below this: taken for a zero coefficient plus noise (says nothing of the step)
SURE_VALUES = 8  # a step is estimated only from this many nonzero values...
SURE_SHARE = 0.005  # ...and at least this share of the blocks (fewer: noise, the step is left open)
STD_SLACK = 0.2  # a standard table may explain the coefficients this much (log-likelihood share) worse
MAJOR_SHARE = 0.1  # coefficients with fewer votes than this share of the most voted do not judge tables
TABLE_VOTES = 600  # values per coefficient scoring the standard tables
MAX_VOTES = 3000  # values per coefficient that vote on its step (an even sample of them)
MIN_VOTERS = 64  # fewer unclipped blocks than this: all blocks vote
OUTLIER = 0.05
MIN_EXACT = 0.5  # a recovery matching fewer samples than this is not worth coding
GOOD_FIT = 0.98  # a sampling whose window recovery matches this share is taken without trying others
SAMPLING_WINDOW = 384  # side of the central window the chroma sampling is chosen on
PROBE_WINDOW = 384  # side of the central window looks_decoded examines
PROBE_GAIN = 0.15  # mean log-likelihood ratio per value a lattice must reach in looks_decoded  # share of values expected off the lattice (clipped samples, another decoder)


@dataclass
class Recovered:
    sampling: tuple[int, int]
    qts: list[np.ndarray]  # one 8 x 8 uint16 table per component (chroma components share one)
    coefs: list[np.ndarray]  # N x 8 x 8 int16 per component
    decoded: np.ndarray  # what jpeg_decoder.decode gives for them
    exact: float  # share of samples equal to the target
    idct: str = "islow"  # the decoder that made the picture: its IDCT (jpeg_decoder.IDCTS)...
    fancy: bool = True  # ...and whether it up-sampled the chroma with the triangle filter


_M = jd.dct_matrix()


def fdct(blocks: np.ndarray) -> np.ndarray:
    """N x 8 x 8 samples (float, level-shifted) -> JPEG-normalised DCT coefficients [v, u]."""
    return np.einsum("vy,nyx,ux->nvu", _M, blocks, _M, optimize=True)


def idct(coefs: np.ndarray) -> np.ndarray:
    return np.einsum("vy,nvu,ux->nyx", _M, coefs, _M, optimize=True)


def rgb_to_ycc(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168735892 * r - 0.331264108 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418687589 * g - 0.081312411 * b + 128
    return y, cb, cr


def decoder_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, Cb, Cr samples libjpeg-turbo's colour conversion turned into ``rgb``, where they can be
    told: the conversion adds integer table values to Y, so for the right (Cb, Cr) near the float
    estimate, R, G and B all give back the same integer Y. Elsewhere (clipped channels, another
    conversion) the float estimate stays. Float planes; exact integers where found."""
    y, cb, cr = rgb_to_ycc(rgb)
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    cb0 = np.clip(np.round(cb), 0, 255).astype(np.int64)
    cr0 = np.clip(np.round(cr), 0, 255).astype(np.int64)
    found = np.zeros(y.shape, dtype=bool)
    oy, ocb, ocr = y.copy(), cb.copy(), cr.copy()
    for dcb, dcr in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)):
        c_b = np.clip(cb0 + dcb, 0, 255)
        c_r = np.clip(cr0 + dcr, 0, 255)
        yr = r - jd.CR_R[c_r]
        yg = g - ((jd.CB_G[c_b] + jd.CR_G[c_r]) >> 16)
        yb = b - jd.CB_B[c_b]
        ok = ~found & (yr == yg) & (yr == yb) & (yr >= 0) & (yr <= 255)
        oy[ok], ocb[ok], ocr[ok] = yr[ok], c_b[ok], c_r[ok]
        found |= ok
    clipped = ((rgb == 0) | (rgb == 255)).any(axis=-1)
    keep = clipped & found  # a clipped channel can make a wrong (Cb, Cr) look consistent
    oy[keep], ocb[keep], ocr[keep] = y[keep], cb[keep], cr[keep]
    return oy, ocb, ocr


def _pad(plane: np.ndarray, bh: int, bw: int) -> np.ndarray:
    h, w = plane.shape
    return np.pad(plane, ((0, bh * 8 - h), (0, bw * 8 - w)), mode="edge")


def _fancy_filter(c: np.ndarray, hs: int, vs: int) -> np.ndarray:
    """What averaging the fancy up-sampled plane over each hs x vs cell gives: [1, 6, 1] / 8 per
    up-sampled axis (float, edges replicated)."""
    out = c
    if vs == 2:
        p = np.pad(out, ((1, 1), (0, 0)), mode="edge")
        out = (p[:-2] + 6 * p[1:-1] + p[2:]) / 8
    if hs == 2:
        p = np.pad(out, ((0, 0), (1, 1)), mode="edge")
        out = (p[:, :-2] + 6 * p[:, 1:-1] + p[:, 2:]) / 8
    return out


def _downsample(full: np.ndarray, hs: int, vs: int, fancy: bool = True) -> np.ndarray:
    """Estimate the chroma plane that up-sampling turned into ``full``: cell averages, then (fancy
    up-sampling) the up-sampler's blur undone by a few fixed-point steps."""
    h, w = full.shape
    ch, cw = -(-h // vs), -(-w // hs)
    p = np.pad(full, ((0, ch * vs - h), (0, cw * hs - w)), mode="edge")
    box = p.reshape(ch, vs, cw, hs).mean(axis=(1, 3))
    if not fancy:
        return box
    c = box.copy()
    for _ in range(DOWNSAMPLE_STEPS):
        c = c + (box - _fancy_filter(c, hs, vs))
    return c


def step_scores(v: np.ndarray, noise: float = NOISE) -> np.ndarray:
    """Log-likelihood ratio, summed over the values ``v`` of one coefficient, of "quantized with
    step s" against "not quantized", for s = 1 .. len(result). Under step s a value at distance d
    from its nearest multiple has density s * (N(d) + N(s - d)) relative to a smooth spread (an
    average ratio of 1 over a period), so uniformly spread values favour no step, and a coarser
    lattice that still fits wins over its divisors; OUTLIER keeps a few clipped values from
    vetoing the right step."""
    v = v[:: max(1, v.size // MAX_VOTES)]
    top = int(min(255, np.abs(v).max(initial=0.0) + 1))
    return lattice_scores(v, np.arange(1, top + 1), noise)


def lattice_scores(v: np.ndarray, steps: np.ndarray | list[int], noise: float = NOISE) -> np.ndarray:
    """step_scores for the given steps only. The values are binned at noise / 8 first (they crowd
    around the lattice points, so a few hundred bins stand for thousands of values: ~3x faster;
    the bin moves a value by at most noise / 16, far inside its spread)."""
    g = noise / 8
    bins, counts = np.unique(np.round(np.asarray(v, dtype=np.float64) / g), return_counts=True)
    vals = (bins * g)[None, :]
    st_ = np.asarray(steps, dtype=np.float64)[:, None]
    d = np.abs(vals - np.round(vals / st_) * st_)
    norm = 1.0 / (noise * np.sqrt(2 * np.pi))
    dens = norm * (np.exp(-0.5 * (d / noise) ** 2) + np.exp(-0.5 * ((st_ - d) / noise) ** 2))
    return (np.log((1 - OUTLIER) * st_ * dens + OUTLIER) * counts).sum(axis=1)


def estimate_table(dct: np.ndarray, noise: float = NOISE) -> np.ndarray:
    """The most likely quantization step of each coefficient, from its DCT values over all blocks
    (values within ZERO_BAND of 0 say nothing of the step and are left out)."""
    flat = dct.reshape(len(dct), 64)
    q = np.full(64, 255, dtype=np.int64)
    seen = np.zeros(64, dtype=np.int64)
    votes: list[np.ndarray] = []
    best = np.zeros(64)
    for k in range(64):
        v = flat[:, k]
        v = v[np.abs(v) > ZERO_BAND]
        seen[k] = v.size
        votes.append(v[:: max(1, v.size // TABLE_VOTES)])
        if v.size == 0:
            continue  # every block is 0 here: any step decodes the same
        sc = step_scores(v, noise)
        q[k] = int(np.argmax(sc)) + 1
    sure = seen >= max(SURE_VALUES, SURE_SHARE * len(flat))
    q[~sure] = 255  # a handful of values off zero is noise more likely than a coefficient
    for kk in np.flatnonzero(sure):
        best[kk] = lattice_scores(votes[kk], np.array([q[kk]]), noise)[0]
    return _standard_table(q, sure, votes, best, noise).reshape(8, 8)


# IJG's example tables (JPEG standard Annex K), which libjpeg, Pillow, OpenCV, ImageMagick and most
# cameras scale by a quality setting
_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
_STD_CHROMA = np.array([17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
                        47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32)


def _scaled(base: np.ndarray, quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255)


def _standard_table(q: np.ndarray, sure: np.ndarray, votes: list[np.ndarray], best: np.ndarray,
                    noise: float = NOISE) -> np.ndarray:
    """The scaled standard table (IJG luma or chroma base, quality 1-100) whose steps explain the
    well-observed coefficients best replaces the estimate when it explains them nearly as well as
    the free per-coefficient steps (within STD_SLACK of their log-likelihood gain): it knows the
    steps of coefficients that are zero almost everywhere, and overrules a step that noise made
    look finer or coarser. A custom table (a camera's) leaves the estimate alone."""
    # The DC step is left out: a flat block's DC is known only to within its rounding (+-4 for
    # steps below 8: the IDCT rounds all 64 samples the same way), so the DC votes are weak; the
    # table the AC steps agree on gives it.
    # Only the major coefficients judge (votes >= MAJOR_SHARE of the most voted): a rarely nonzero
    # one's few values are mostly recovery noise, and its estimated step with them.
    ks = np.flatnonzero(sure)
    ks = ks[ks != 0]
    if ks.size == 0:
        return q
    counts = np.array([len(votes[k]) for k in ks])
    ks = ks[counts >= MAJOR_SHARE * counts.max()]
    free = float(best[ks].sum())
    tables = [_scaled(base, quality) for base in (_STD_LUMA, _STD_CHROMA) for quality in range(100, 0, -1)]
    cand = np.stack(tables)  # T x 64
    score = np.zeros(len(tables))
    for k in ks:
        steps, inv = np.unique(cand[:, k], return_inverse=True)
        score += lattice_scores(votes[k], steps, noise)[inv]
    i = int(np.argmax(score))
    return tables[i] if free > 0 and score[i] >= free - STD_SLACK * abs(free) else q


def _ycc_error(err_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    e = err_rgb.astype(np.float64)
    r, g, b = e[..., 0], e[..., 1], e[..., 2]
    return (0.299 * r + 0.587 * g + 0.114 * b, -0.168735892 * r - 0.331264108 * g + 0.5 * b,
            0.5 * r - 0.418687589 * g - 0.081312411 * b)


def _clean_blocks(clip: np.ndarray, shape: tuple[int, int], factors: tuple[int, int]) -> np.ndarray:
    """Per block of a component plane (``shape`` blocks, each covering 8*factors pixels): no clipped sample."""
    bh, bw = shape
    fh, fw = 8 * factors[1], 8 * factors[0]
    h, w = clip.shape
    c = np.pad(clip, ((0, max(0, bh * fh - h)), (0, max(0, bw * fw - w))), mode="edge")[: bh * fh, : bw * fw]
    return ~c.reshape(bh, fh, bw, fw).any(axis=(1, 3)).ravel()


def _voters(dct: np.ndarray, clean: np.ndarray) -> np.ndarray:
    return dct[clean] if clean.sum() >= MIN_VOTERS else dct


def _refine_plane(coefs: np.ndarray, q: np.ndarray, target: np.ndarray, idct: str) -> np.ndarray:
    """Move coefficients by the rounded DCT of what their integer IDCT misses of ``target``."""
    transform = jd.IDCTS[idct]
    for _ in range(PLANE_PASSES):
        delta = np.round(fdct(target - transform(coefs, q)) / q).astype(np.int64)
        if not delta.any():
            break
        coefs = np.clip(coefs + delta, -2047, 2047)
    return coefs


RECOVER_BAND_PIXELS = 1 << 19  # a larger picture is recovered band by band (jd.bands): the work
# arrays take ~80 bytes per pixel, GBs for a 24 MP picture recovered whole
TABLE_STRIPS = 8  # ...its quantization tables estimated once, on this many strips spread over it
TABLE_SAMPLE_PIXELS = 1 << 20  # ...of this many pixels in all (as many blocks as a 1 MP picture has)


def recover(pixels: np.ndarray, sampling: tuple[int, int], chroma_table: np.ndarray | None = None,
            idct: str = "islow", fancy: bool = True) -> Recovered | None:
    """Coefficients that decode (jpeg_decoder, with ``idct`` and ``fancy`` up-sampling) as close to
    ``pixels`` as found, for one sampling; ``chroma_table`` (8 x 8) replaces the chroma table
    estimated from the picture."""
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        return None
    grey = pixels.ndim == 2
    if grey and sampling != (1, 1):
        return None
    spans = jd.bands(pixels.shape[0], pixels.shape[1], sampling, RECOVER_BAND_PIXELS)
    if len(spans) > 1:
        return _recover_banded(pixels, sampling, spans, chroma_table, idct, fancy)
    planes, shapes, dcts, clean = _component_dcts(pixels, sampling, fancy)
    qts = _estimate_tables(dcts, clean, grey, chroma_table, IDCT_NOISE[idct])
    return _recover_with(pixels, sampling, qts, idct, fancy, planes, shapes, dcts)


def _component_dcts(pixels: np.ndarray, sampling: tuple[int, int], fancy: bool
                    ) -> tuple[list[np.ndarray], list[tuple[int, int]], list[np.ndarray], list[np.ndarray]]:
    """Per component: the decoder's samples as found (planes), its blocks' shape, their DCT, and
    which blocks hold no clipped sample."""
    h, w = pixels.shape[:2]
    grey = pixels.ndim == 2
    hs, vs = sampling
    if grey:
        planes = [pixels.astype(np.float64)]
    else:
        y, cb, cr = decoder_planes(pixels)
        if sampling == (1, 1):
            planes = [y, cb, cr]
        else:  # the decoder's chroma samples are integers
            planes = [y, np.round(_downsample(cb, hs, vs, fancy)), np.round(_downsample(cr, hs, vs, fancy))]
    shapes = [jd.blocks_shape(h, w, ci, sampling) for ci in range(len(planes))]
    dcts = [fdct(jd.plane_to_blocks(_pad(p, *s)) - 128.0) for p, s in zip(planes, shapes, strict=True)]
    # Clipped samples (0 or 255 in any channel) break the way back from RGB: their blocks do not
    # vote on the quantization steps.
    clip = (pixels == 0) | (pixels == 255)
    if not grey:
        clip = clip.any(axis=2)
    clean = [_clean_blocks(clip, s, (1, 1) if ci == 0 else sampling) for ci, s in enumerate(shapes)]
    return planes, shapes, dcts, clean


def _estimate_tables(dcts: list[np.ndarray], clean: list[np.ndarray], grey: bool,
                     chroma_table: np.ndarray | None, noise: float) -> list[np.ndarray]:
    qy = estimate_table(_voters(dcts[0], clean[0]), noise)
    qts = [qy]
    if not grey:
        if chroma_table is not None:
            qc = np.asarray(chroma_table, dtype=np.int64).reshape(8, 8)
        else:
            qc = estimate_table(np.concatenate([_voters(dcts[1], clean[1]), _voters(dcts[2], clean[2])]), noise)
        qts += [qc, qc]
    return qts


def _recover_with(pixels: np.ndarray, sampling: tuple[int, int], qts: list[np.ndarray], idct: str, fancy: bool,
                  planes: list[np.ndarray], shapes: list[tuple[int, int]], dcts: list[np.ndarray]) -> Recovered:
    """recover() of the whole ``pixels`` with these tables (planes, shapes, dcts: _component_dcts')."""
    h, w = pixels.shape[:2]
    grey = pixels.ndim == 2
    hs, vs = sampling
    coefs = [np.clip(np.round(d / q), -2047, 2047).astype(np.int64) for d, q in zip(dcts, qts, strict=True)]
    # First in each component's own plane (the targets are the decoder's samples, exact where
    # decoder_planes found them): the coefficients whose integer IDCT gives those samples.
    targets = [jd.plane_to_blocks(_pad(p, *s)) for p, s in zip(planes, shapes, strict=True)]
    coefs = [_refine_plane(c, q, t, idct) for c, q, t in zip(coefs, qts, targets, strict=True)]
    best = None
    for _ in range(REFINE_PASSES + 1):
        dec = jd.decode(coefs, qts, sampling, h, w, idct, fancy)
        exact = float(np.mean(dec == pixels))
        if best is None or exact > best.exact:
            best = Recovered(sampling, [q.astype(np.uint16) for q in qts], [c.astype(np.int16) for c in coefs],
                             dec, exact, idct, fancy)
        if exact == 1.0:
            break
        err = pixels.astype(np.float64) - dec
        errs = [err] if grey else list(_ycc_error(err))
        if not grey and sampling != (1, 1):
            errs = [errs[0]] + [_downsample(e, hs, vs, fancy) for e in errs[1:]]
        for ci, (e, s, q) in enumerate(zip(errs, shapes, qts, strict=True)):
            delta = fdct(jd.plane_to_blocks(_pad(e, *s))) / q
            coefs[ci] = np.clip(coefs[ci] + np.round(delta).astype(np.int64), -2047, 2047)
    assert best is not None
    return best


def _recover_banded(pixels: np.ndarray, sampling: tuple[int, int], spans: list[tuple[int, int, int, int]],
                    chroma_table: np.ndarray | None, idct: str, fancy: bool) -> Recovered:
    """recover() of a large picture in bounded memory: the tables estimated on TABLE_STRIPS strips
    spread over it, then every band (with its MCU row of context on each side, so its own rows see
    their neighbours) recovered with those tables, its own block rows kept. What a band's seam
    recovers less well is left to the residual, like any other miss."""
    h, w = pixels.shape[:2]
    grey = pixels.ndim == 2
    strips = jd.bands(h, w, sampling, TABLE_SAMPLE_PIXELS // TABLE_STRIPS)
    picks = sorted({strips[i * (len(strips) - 1) // max(1, TABLE_STRIPS - 1)] for i in range(TABLE_STRIPS)})
    ncomp = 1 if grey else 3
    dcts: list[list[np.ndarray]] = [[] for _ in range(ncomp)]
    clean: list[list[np.ndarray]] = [[] for _ in range(ncomp)]
    for y0, y1, c0, c1 in picks:  # with context: a strip's edge blocks would see edge-replicated chroma
        _, _, d, cl = _component_dcts(pixels[c0:c1], sampling, fancy)
        own_d = jd.band_coefs(d, c1 - c0, w, sampling, y0 - c0, y1 - c0)
        own_c = jd.band_coefs(cl, c1 - c0, w, sampling, y0 - c0, y1 - c0)
        for ci in range(ncomp):
            dcts[ci].append(own_d[ci])
            clean[ci].append(own_c[ci])
    qts = _estimate_tables([np.concatenate(d) for d in dcts], [np.concatenate(c) for c in clean],
                           grey, chroma_table, IDCT_NOISE[idct])
    del dcts, clean
    kept: list[list[np.ndarray]] = [[] for _ in range(ncomp)]
    for y0, y1, c0, c1 in spans:
        band = pixels[c0:c1]
        r = _recover_with(band, sampling, qts, idct, fancy, *_component_dcts(band, sampling, fancy)[:3])
        for ci, c in enumerate(jd.band_coefs(r.coefs, c1 - c0, w, sampling, y0 - c0, y1 - c0)):
            kept[ci].append(c)
    coefs = [np.concatenate(k) for k in kept]
    dec = jd.decode(coefs, qts, sampling, h, w, idct, fancy)
    exact = float(np.mean(dec == pixels))
    return Recovered(sampling, [q.astype(np.uint16) for q in qts], coefs, dec, exact, idct, fancy)


def window(pixels: np.ndarray, side: int) -> np.ndarray:
    """A central side x side window whose corner lies on the 16-pixel MCU grid (so its blocks are
    the picture's blocks)."""
    h, w = pixels.shape[:2]
    y0, x0 = max(0, (h - side) // 2) // 16 * 16, max(0, (w - side) // 2) // 16 * 16
    return pixels[y0: y0 + side, x0: x0 + side]


def paired_chroma_table(luma: np.ndarray) -> np.ndarray | None:
    """The IJG chroma table of the quality whose luma table ``luma`` is, or None when it is none of
    them. libjpeg's quality setting (cjpeg, Pillow, OpenCV, ImageMagick, libvips, most cameras)
    scales both tables at once, so a standard luma table names its chroma table, which the
    chroma's own values (half or a quarter as many, noisier after chroma sub-sampling) estimate
    less surely."""
    flat = np.asarray(luma).reshape(64).astype(np.int64)
    for quality in range(100, 0, -1):
        if np.array_equal(_scaled(_STD_LUMA, quality), flat):
            return _scaled(_STD_CHROMA, quality).reshape(8, 8)
    return None


def envelope_table(q: np.ndarray) -> np.ndarray:
    """``q`` with each unsure step (1, 2, or 255 = never seen) raised to the largest step of its
    lower-frequency neighbours (left and above, themselves raised first). Encoders' tables grow
    towards the high frequencies, and a coefficient that is zero in nearly every block (coarse
    steps of a fine custom table: a camera's or an editor's) gets its step estimated from
    recovery noise, as 1 or 2, or not at all. The caller keeps this table only when it decodes
    the picture better."""
    src = np.asarray(q, dtype=np.int64).reshape(8, 8)
    e = src.copy()
    for u in range(8):
        for v in range(8):
            prev = [int(e[u - 1, v])] if u else []
            if v:
                prev.append(int(e[u, v - 1]))
            m = max([x for x in prev if x < 255] or [0])
            if m > src[u, v] and src[u, v] <= 2 or src[u, v] == 255 and m > 0:
                e[u, v] = m
    return e


# Decoders other than libjpeg-turbo's default (accurate IDCT, fancy up-sampling), tried in this
# order when that one matches a picture poorly: djpeg -dct fast -nosmooth / TurboJPEG's fast flags,
# djpeg -dct fast, djpeg -nosmooth.
OTHER_DECODERS = (("ifast", False), ("ifast", True), ("islow", False))
OTHER_DECODER_FIT = 0.3  # below this the default decoder's fit says the picture is no decoded JPEG
DECODER_GAIN = 0.01  # another decoder is recovered for only when it decodes the default's coefficients this much better
DECODER_TRIALS = 3  # ...and only the most promising ones
RANKING_FIT = 0.8  # below this the default's coefficients are too far off to rank decoders by: all are tried


def _decoder_order(win: np.ndarray, fit_of, tried: list, samplings: list[tuple[int, int]], ranked: bool
                   ) -> list[tuple[tuple[int, int], str, bool, np.ndarray | None]]:
    """(sampling, idct, fancy, chroma table) to recover the window with, among OTHER_DECODERS.
    ``ranked``: the default decoder's recoveries are close, so their coefficients decoded with each
    other decoder (cheap) tell which are worth a recovery of their own (0.5 s each on the window):
    those gaining DECODER_GAIN, best first, at most DECODER_TRIALS. Otherwise every decoder and
    sampling in order, each chroma table estimated."""
    combos = [(s, idct, fancy) for idct, fancy in OTHER_DECODERS for s in samplings
              if fancy or s != (1, 1)]  # nothing to up-sample at 4:4:4: the same decode as with fancy
    if not ranked:
        return [(s, idct, fancy, None) for s, idct, fancy in combos]
    h, w = win.shape[:2]
    hopes: dict[tuple[tuple[int, int], str, bool], tuple[float, np.ndarray | None]] = {}
    for f0, _, s0, chroma, _, _, r in tried:
        coefs = [c.astype(np.int64) for c in r.coefs]
        qts = [q.astype(np.int64) for q in r.qts]
        for s, idct, fancy in combos:
            if s != s0:
                continue
            f = fit_of(jd.decode(coefs, qts, s, h, w, idct, fancy))
            if f >= f0 + DECODER_GAIN and f > hopes.get((s, idct, fancy), (-1.0, None))[0]:
                hopes[(s, idct, fancy)] = (f, chroma)
    order = sorted(hopes.items(), key=lambda kv: -kv[1][0])[:DECODER_TRIALS]
    return [(s, idct, fancy, chroma) for (s, idct, fancy), (_, chroma) in order]


def best_recovery(pixels: np.ndarray) -> Recovered | None:
    """The sampling, decoder and chroma table (estimated, or the one paired with a standard luma
    table) whose recovery matches best on a central window, recovered on the whole picture; None
    when nothing can be recovered (not 8-bit grey or RGB) or the window's best fit is below MIN_EXACT."""
    grey = pixels.ndim == 2
    win = window(pixels, SAMPLING_WINDOW)
    inner = win[16:-16, 16:-16]  # the window's borders lack their neighbours' chroma

    def fit_of(decoded: np.ndarray) -> float:
        return float(np.mean(decoded[16:-16, 16:-16] == inner)) if inner.size else float(np.mean(decoded == win))

    samplings = [(1, 1)] if grey else list(SAMPLINGS)
    # (fit, preference, sampling, chroma table, idct, fancy, recovery); ties go to the earlier choice
    tried: list[tuple[float, int, tuple[int, int], np.ndarray | None, str, bool, Recovered]] = []

    def best() -> tuple[float, int, tuple[int, int], np.ndarray | None, str, bool, Recovered]:
        return max(tried, key=lambda t: t[:2])

    def attempt(s: tuple[int, int], idct: str, fancy: bool, chroma: np.ndarray | None = None) -> None:
        r = recover(win, s, chroma, idct, fancy)
        if r is None:
            return
        tried.append((fit_of(r.decoded), -len(tried), s, chroma, idct, fancy, r))
        if grey or chroma is not None:
            return
        paired = paired_chroma_table(r.qts[0])
        if paired is not None and not np.array_equal(paired, r.qts[1]):
            rp = recover(win, s, paired, idct, fancy)
            if rp is not None:
                tried.append((fit_of(rp.decoded), -len(tried), s, paired, idct, fancy, rp))
        elif paired is None and tried[-1][0] < GOOD_FIT:  # a custom table: its unsure chroma steps
            env = envelope_table(r.qts[1])
            if not np.array_equal(env, r.qts[1]):
                re = recover(win, s, env, idct, fancy)
                if re is not None:
                    tried.append((fit_of(re.decoded), -len(tried), s, env, idct, fancy, re))

    for s in samplings:  # most common first; a near-exact fit ends the search
        attempt(s, "islow", True)
        if tried and best()[0] >= GOOD_FIT:
            break
    if not tried:
        return None
    if OTHER_DECODER_FIT <= best()[0] < GOOD_FIT:
        # the picture's coefficients are mostly found whichever decoder made it (_decoder_order)
        ranked = best()[0] >= RANKING_FIT
        for s, idct, fancy, chroma in _decoder_order(win, fit_of, tried, samplings, ranked):
            attempt(s, idct, fancy, chroma)
            if best()[0] >= GOOD_FIT:
                break
    fit, _, sampling, chroma, idct, fancy, _ = best()
    if fit < MIN_EXACT:  # the window is the picture's sample: a recovery of the whole would not be kept either
        return None
    return recover(pixels, sampling, chroma, idct, fancy)


# --------------------------------------------------------------------------- coding


COEF_OFFSET = 2048  # coefficients are kept in [-2047, 2047]: stored as uint16 samples + this


def coef_image(c: np.ndarray, bh: int, bw: int, offset: int = COEF_OFFSET) -> np.ndarray:
    """N x 8 x 8 coefficients -> one uint16 image of the 64 frequency planes tiled 8 x 8 (plane of
    frequency (v, u) at tile (v, u)): neighbouring blocks' same-frequency values lie side by side,
    which is what a lossless image coder predicts well."""
    planes = c.reshape(bh, bw, 8, 8).transpose(2, 3, 0, 1)  # v, u, by, bx
    img = planes.transpose(0, 2, 1, 3).reshape(8 * bh, 8 * bw)
    return (img.astype(np.int32) + offset).astype(np.uint16)


def coefs_from_image(img: np.ndarray, bh: int, bw: int, offset: int = COEF_OFFSET) -> np.ndarray:
    if img.shape != (8 * bh, 8 * bw):
        raise ValueError(f"coefficient image {img.shape} does not match {bh} x {bw} blocks")
    planes = img.astype(np.int32).reshape(8, bh, 8, bw).transpose(0, 2, 1, 3) - offset  # v, u, by, bx
    return planes.transpose(2, 3, 0, 1).reshape(bh * bw, 8, 8)


def describe(r: Recovered) -> dict:
    """The bitstream's record of a recovery (sampling and tables; the coefficients go in sections).
    A decoder other than libjpeg-turbo's default is named ("decoder": [idct, fancy]); the default
    is left out, so those descriptions stay what the first jpeg-coefficients format wrote."""
    d: dict = {"sampling": list(r.sampling), "qts": [q.reshape(64).astype(int).tolist() for q in r.qts]}
    if (r.idct, r.fancy) != ("islow", True):
        d["decoder"] = [r.idct, int(r.fancy)]
    return d


DESC_KEYS = {"sampling", "qts", "predicted", "decoder"}


def desc_decoder(desc: dict) -> tuple[str, bool]:
    """The (idct, fancy up-sampling) a description names; ValueError for one this codec lacks."""
    dec = desc.get("decoder", ["islow", 1])
    if not isinstance(dec, list) or len(dec) != 2 or dec[0] not in jd.IDCTS or dec[1] not in (0, 1):
        raise ValueError(f"unknown JPEG decoder {dec!r}")
    return str(dec[0]), bool(dec[1])


def desc_tables(desc: dict) -> tuple[tuple[int, int], list[np.ndarray]]:
    """A description's sampling and quantization tables, checked; ValueError for keys or a
    sampling this codec does not know."""
    unknown = set(desc) - DESC_KEYS
    if unknown:
        raise ValueError(f"JPEG coefficients use features this codec does not know: {sorted(unknown)}")
    sampling = (int(desc["sampling"][0]), int(desc["sampling"][1]))
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sampling}")
    return sampling, [np.asarray(q, dtype=np.int64).reshape(8, 8) for q in desc["qts"]]


def decode_coefficients(desc: dict, coef_imgs: list[np.ndarray], shape: tuple[int, ...],
                        predicted: np.ndarray | None = None,
                        predicted_coefs: list[np.ndarray] | None = None) -> np.ndarray:
    """Decoder side: the picture the recorded coefficients decode to (before the residual). A
    "predicted" description stores differences from the coefficients of ``predicted``
    (``predicted_coefs``: those coefficients, when the caller computed them already)."""
    sampling, qts = desc_tables(desc)
    if bool(desc.get("predicted")) != (predicted is not None):
        raise ValueError("predicted JPEG coefficients need their prediction (and only they take one)")
    h, w = int(shape[0]), int(shape[1])
    if len(qts) != len(coef_imgs) or len(qts) not in (1, 3) or (len(qts) == 1) != (len(shape) == 2):
        raise ValueError("coefficient planes do not match the picture")
    if predicted is None:
        coefs = [coefs_from_image(img, *jd.blocks_shape(h, w, ci, sampling)) for ci, img in enumerate(coef_imgs)]
    else:
        if predicted.shape[:2] != (h, w):
            raise ValueError(f"prediction {predicted.shape} does not match the picture {shape}")
        pred = predicted_coefs if predicted_coefs is not None else jp.predicted_coefficients(predicted, qts, sampling)
        coefs = [coefs_from_image(img, *jd.blocks_shape(h, w, ci, sampling), PRED_OFFSET) + pred[ci]
                 for ci, img in enumerate(coef_imgs)]
    return jd.decode(coefs, qts, sampling, h, w, *desc_decoder(desc))


def _probe_dct(pixels: np.ndarray, sample_blocks: int) -> np.ndarray | None:
    """Luma DCT (N x 64) of a sample of the unclipped blocks of the picture's central window, or
    None when the picture is no 8-bit grey or RGB, or too small to tell."""
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        return None
    h, w = pixels.shape[:2]
    if h < 16 or w < 16:
        return None
    pixels = window(pixels, PROBE_WINDOW)  # keeps the probe cheap
    h, w = pixels.shape[:2]
    y = pixels.astype(np.float64) if pixels.ndim == 2 else decoder_planes(pixels)[0]
    clip = (pixels == 0) | (pixels == 255)
    if pixels.ndim == 3:
        clip = clip.any(axis=2)
    hb, wb = h // 8 * 8, w // 8 * 8
    ok = ~jd.plane_to_blocks(clip[:hb, :wb]).any(axis=(1, 2))
    blocks = jd.plane_to_blocks(y[:hb, :wb])[ok]
    if len(blocks) < 64:
        return None
    return fdct(blocks[:: max(1, len(blocks) // sample_blocks)] - 128.0).reshape(-1, 64)


def _coarse_lattice(d: np.ndarray) -> bool:
    """Do the luma's three lowest AC frequencies each sit on a lattice coarser than 1?"""
    for k in (1, 8, 9):  # low AC frequencies (the DC of flat blocks is blurred by rounding)
        v = d[:, k]
        v = v[np.abs(v) > ZERO_BAND]
        if v.size < SURE_VALUES:
            return False
        sc = step_scores(v)
        best = int(np.argmax(sc))
        if best == 0 or sc[best] < PROBE_GAIN * v.size:
            return False
    return True


STD_PROBE_QUALITIES = range(50, 100)  # fine qualities, whose low-frequency steps (1-3) _coarse_lattice misses
STD_PROBE_GAIN = 0.2  # mean log-likelihood ratio per value the best standard table must reach
STD_PROBE_VOTES = 600  # values per coefficient


def standard_table_fit(d: np.ndarray) -> tuple[int, float]:
    """(quality, mean log-likelihood ratio per value) of the IJG luma table, among
    STD_PROBE_QUALITIES, that explains the luma DCT values ``d`` (N x 64) best, judged on every AC
    coefficient at once with each decoder's noise. One hypothesis over 63 coefficients is a far
    stronger test than each coefficient's own best step: at quality 90-98, or with a fast IDCT's
    error, the lowest frequencies' steps of 1-3 drown in noise, but the coarser steps of the
    middle frequencies still show. Photos that never were JPEGs score at or below 0.05."""
    votes = []
    for k in range(1, 64):
        v = d[:, k]
        v = v[np.abs(v) > ZERO_BAND]
        votes.append(v[:: max(1, v.size // STD_PROBE_VOTES)])
    tables = np.stack([_scaled(_STD_LUMA, q) for q in STD_PROBE_QUALITIES])  # Q x 64
    best = (0, float("-inf"))
    for noise in sorted(set(IDCT_NOISE.values())):  # the accurate IDCT's first: it mostly settles it
        score = np.zeros(len(tables))
        count = np.zeros(len(tables))
        for k in range(1, 64):
            v = votes[k - 1]
            if v.size == 0:
                continue
            steps, inv = np.unique(tables[:, k], return_inverse=True)
            sc = lattice_scores(v, steps, noise)
            informative = steps[inv] > 1  # a step of 1 fits any integer-ish value: says nothing
            score += np.where(informative, sc[inv], 0.0)
            count += np.where(informative, v.size, 0)
        per = np.where(count > 0, score / np.maximum(count, 1), float("-inf"))
        i = int(np.argmax(per))
        if per[i] > best[1]:
            best = (int(STD_PROBE_QUALITIES[i]), float(per[i]))
        if best[1] >= STD_PROBE_GAIN:
            break
    return best


FREE_PROBE_STEPS = np.arange(2, 17)  # steps a custom table's middle frequencies take at fine qualities
FREE_PROBE_GAIN = 0.5  # mean log-likelihood ratio per value of a coefficient's best step...
FREE_PROBE_COEFS = 8  # ...that this many AC coefficients must reach
FREE_PROBE_VALUES = 64  # values off zero a coefficient needs to take part


def free_table_fit(d: np.ndarray) -> int:
    """How many AC coefficients of the luma DCT values ``d`` (N x 64) sit on a lattice of some step
    of 2-16, each judged alone (FREE_PROBE_GAIN per value). A fine custom table (1 at the lowest
    frequencies, 2-6 at the middle ones) escapes both the low-frequency lattice test and the IJG
    tables, but its middle frequencies each show their own step. On the dev set the photos that never
    were JPEGs have none such coefficient (the best single one scores 0.28), decoded ones 18-55."""
    n = 0
    for k in range(1, 64):
        v = d[:, k]
        v = v[np.abs(v) > ZERO_BAND]
        if v.size < FREE_PROBE_VALUES:
            continue
        v = v[:: max(1, v.size // STD_PROBE_VOTES)]
        if float(lattice_scores(v, FREE_PROBE_STEPS).max()) >= FREE_PROBE_GAIN * v.size:
            n += 1
            if n >= FREE_PROBE_COEFS:
                break
    return n


def looks_decoded(pixels: np.ndarray, sample_blocks: int = 2048) -> bool:
    """Cheap test before a recovery (which costs seconds): do the luma's DCT values, over a sample of
    unclipped blocks, sit on a quantization lattice? Either the three lowest AC frequencies each
    on a lattice coarser than 1 (any table), or all AC frequencies on a standard table of a fine
    quality (standard_table_fit), or enough middle frequencies each on a lattice of its own
    (free_table_fit: a fine custom table)."""
    d = _probe_dct(pixels, sample_blocks)
    if d is None:
        return False
    return (_coarse_lattice(d) or standard_table_fit(d)[1] >= STD_PROBE_GAIN
            or free_table_fit(d) >= FREE_PROBE_COEFS)


def recover_picture(pixels: np.ndarray) -> Recovered | None:
    """The picture's JPEG coefficients when it looks decoded from a JPEG and enough of it is matched."""
    if not looks_decoded(pixels):
        return None
    r = best_recovery(pixels)
    if r is None or r.exact < MIN_EXACT:
        return None
    return _polished(pixels, r) if r.exact < 1.0 else r


def _polished(pixels: np.ndarray, r: Recovered) -> Recovered:
    """``r`` with jpeg_polish's luma moves when they decode more samples exactly."""
    qts = [q.astype(np.int64) for q in r.qts]
    luma = jpeg_polish.polish_luma(pixels, r.coefs, qts, r.sampling, r.idct, r.fancy)
    if luma is None:
        return r
    coefs = [luma, *r.coefs[1:]]
    h, w = pixels.shape[:2]
    dec = jd.decode(coefs, qts, r.sampling, h, w, r.idct, r.fancy)
    exact = float(np.mean(dec == pixels))
    if exact <= r.exact:
        return r
    return Recovered(r.sampling, r.qts, coefs, dec, exact, r.idct, r.fancy)


def encode(pixels: np.ndarray, effort: int, recovered: Recovered | None = None
           ) -> tuple[dict, dict[str, bytes], bytes] | None:
    """The picture as recovered JPEG coefficients (JPEG XL lossless of each component's frequency
    planes) plus a JPEG XL residual: (description, sections, payload), or None when the picture does
    not look decoded from a JPEG. The caller compares the size with plain intra and verifies."""
    from . import intra

    r = recovered if recovered is not None else recover_picture(pixels)
    if r is None:
        return None
    h, w = pixels.shape[:2]
    sections = {}
    for ci, c in enumerate(r.coefs):
        bh, bw = jd.blocks_shape(h, w, ci, r.sampling)
        sections[f"c{ci}"] = intra.encode_pixels(coef_image(c, bh, bw), effort)
    return describe(r), sections, residual_payload(r, pixels, effort)


def residual_payload(r: Recovered, pixels: np.ndarray, effort: int) -> bytes:
    """What the recovered coefficients' decode misses, mod 256 around 128, as JPEG XL."""
    from . import intra

    res = np.subtract(pixels, r.decoded, dtype=np.uint8)  # uint8 arithmetic wraps: mod 256 for free
    res += 128
    return intra.encode_pixels(res, effort)


PRED_OFFSET = 4096  # difference planes: coefficient - predicted coefficient, both in [-2047, 2047]


def encode_predicted(r: Recovered, predicted: np.ndarray, effort: int) -> tuple[dict, dict[str, bytes]]:
    """The recovered coefficients as their difference from those of ``predicted`` (the reference
    aligned by an inter prediction, coded with the recovered tables): (description, sections).
    The residual payload is the same as encode()'s."""
    from . import intra

    h, w = r.decoded.shape[:2]
    pred = jp.predicted_coefficients(predicted, r.qts, r.sampling)
    sections = {}
    for ci, c in enumerate(r.coefs):
        bh, bw = jd.blocks_shape(h, w, ci, r.sampling)
        d = c.astype(np.int32) - pred[ci].astype(np.int32)
        sections[f"c{ci}"] = intra.encode_pixels(coef_image(d, bh, bw, PRED_OFFSET), effort)
    return {**describe(r), "predicted": 1}, sections


def section_shape(desc: dict, ci: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """Shape of component ``ci``'s coefficient image for a picture of ``shape``."""
    bh, bw = jd.blocks_shape(int(shape[0]), int(shape[1]), ci, (int(desc["sampling"][0]), int(desc["sampling"][1])))
    return 8 * bh, 8 * bw


def reconstruct(desc: dict, sections: dict[str, bytes], payload: bytes, shape: tuple[int, ...],
                predicted: np.ndarray | None = None) -> np.ndarray:
    """Decoder: coefficients (or their differences from ``predicted``'s) -> decoded picture, plus
    the residual (mod 256) -> the pixels."""
    from . import intra

    # The JPEG XL payloads decode in threads (libjxl releases the GIL) while this thread computes
    # the prediction's coefficients: a small picture's payloads barely use libjxl's own threads.
    with ThreadPoolExecutor(max_workers=len(desc["qts"]) + 1) as pool:
        futs = [pool.submit(intra.decode_pixels, sections[f"c{ci}"], section_shape(desc, ci, shape), "uint16")
                for ci in range(len(desc["qts"]))]
        fres = pool.submit(intra.decode_pixels, payload, tuple(shape), "uint8")
        pred = None
        if predicted is not None and desc.get("predicted"):
            sampling, qts = desc_tables(desc)
            pred = jp.predicted_coefficients(predicted, qts, sampling)
        imgs = [f.result() for f in futs]
        res = fres.result()
    dec = decode_coefficients(desc, imgs, shape, predicted, pred)
    dec += res  # uint8 arithmetic wraps: (res + dec - 128) mod 256 in place
    dec -= 128
    return dec
