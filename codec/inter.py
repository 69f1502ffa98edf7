"""Inter coding: predict the target from a reference image, code (t - p + 128) mod 256 with JPEG XL.

The encoder searches a small, ordered family of deterministic predictions (exact dihedral
ops, integer shifts/crops, library resizes, SIFT+RANSAC homography warps), optionally followed
by a grey conversion and a per-channel LUT (exposure, gamma, levels), and keeps the candidate
whose coded residual is smallest. The decoder replays the recorded prediction exactly.
"""

from __future__ import annotations

import time

import numpy as np

from . import align, colourmap, features, intra, resample

GREY_METHODS = ("pil_l", "cv_gray", "mean", "green")
# Every key an inter description may hold; a blob naming another was made by a newer codec.
KNOWN_STAGES = frozenset({"colour", "geom", "lut", "jpeg", "webp", "blocks", "cmap"})


class InterNotApplicable(Exception):
    pass


def as3(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a


def check_applicable(target: np.ndarray, ref: np.ndarray, bit_depth: int, color_type: int) -> None:
    if color_type == 3 or bit_depth != 8:
        raise InterNotApplicable("inter coding needs an 8-bit grey/RGB(A) target")
    if target.dtype != np.uint8 or ref.dtype != np.uint8:
        raise InterNotApplicable("inter coding needs 8-bit images")
    if ref.ndim not in (2, 3) or (ref.ndim == 3 and ref.shape[2] not in (1, 2, 3, 4)):
        raise InterNotApplicable("unsupported reference layout")
    if min(ref.shape[:2]) < 1:
        raise InterNotApplicable("empty reference")


def colour_adapt(ref3: np.ndarray, tc: int, how: str) -> np.ndarray:
    """Map the reference's channels to the target's layout (tc channels): grey<->colour, alpha."""
    rc = ref3.shape[2]
    col = ref3[:, :, :3] if rc >= 3 else ref3[:, :, :1]
    alpha = ref3[:, :, 3] if rc == 4 else (ref3[:, :, 1] if rc == 2 else None)
    tcol = 3 if tc >= 3 else 1
    if col.shape[2] == tcol:
        c = col
    elif tcol == 1:
        r, g, b = (col[:, :, i].astype(np.uint32) for i in range(3))
        if how == "pil_l":  # Pillow's convert("L"): ITU-R 601-2 in 16-bit fixed point
            c = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
        elif how == "cv_gray":
            import cv2

            c = cv2.cvtColor(np.ascontiguousarray(col), cv2.COLOR_RGB2GRAY)
        elif how == "mean":
            c = ((r + g + b + 1) // 3).astype(np.uint8)
        elif how == "green":
            c = col[:, :, 1].copy()
        else:
            raise ValueError(f"unknown grey method {how}")
        c = c[:, :, None]
    else:
        c = np.repeat(col, 3, axis=2)
    if tc in (2, 4):
        a = alpha if alpha is not None else np.full(c.shape[:2], 255, np.uint8)
        c = np.concatenate([c, a[:, :, None]], axis=2)
    return np.ascontiguousarray(c)


def apply_geom(r: np.ndarray, g: dict, shape: tuple[int, int]) -> np.ndarray:
    t = g["type"]
    if t == "dihedral":
        return align.dihedral(r, g["k"])
    if t == "resize":
        return align.resize(align.dihedral(r, g["k"]), (shape[1], shape[0]), g["lib"], g["filter"])
    if t == "shift":
        return align.shift(r, shape, g["dx"], g["dy"])
    if t == "affine":
        return align.affine(r, np.array(g["M"], dtype=np.float64).reshape(2, 3), shape, g["interp"], g["fill"])
    if t == "pil_rotate":
        return align.pil_rotate(r, g["angle"], g["resample"], g["fill"])
    if t == "scale_paste":
        return align.scale_paste(r, shape, tuple(g["size"]), g["lib"], g["filter"], g["dx"], g["dy"], g["fill"])
    if t == "fitres":
        return resample.apply(align.dihedral(r, g.get("k", 0)), g, shape)
    if t == "homography":
        return align.warp(r, np.array(g["H"], dtype=np.float64).reshape(3, 3), shape, g["interp"])
    raise ValueError(f"unknown geometry {t}")


def jpeg_replay(p: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    """Re-encode the prediction as a JPEG with Pillow and decode it: many copies were made this way
    (a flip saved at Pillow's default quality 75 is replayed exactly)."""
    import io

    from PIL import Image

    if p.shape[2] not in (1, 3):
        raise ValueError("JPEG replay needs a grey or RGB prediction")
    im = Image.fromarray(p[:, :, 0] if p.shape[2] == 1 else p)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(quality), subsampling=int(subsampling))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert(im.mode)).reshape(p.shape)


def webp_replay(p: np.ndarray, quality: int, method: int) -> np.ndarray:
    """Lossy WebP encode + decode of the prediction with Pillow (copies "converted" via WebP)."""
    import io

    from PIL import Image

    if p.shape[2] not in (1, 3):
        raise ValueError("WebP replay needs a grey or RGB prediction")
    im = Image.fromarray(p[:, :, 0] if p.shape[2] == 1 else p)
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=int(quality), method=int(method))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert(im.mode)).reshape(p.shape)


def apply_lut(p: np.ndarray, lut: np.ndarray) -> np.ndarray:
    out = np.empty_like(p)
    for c in range(p.shape[2]):
        out[:, :, c] = lut[c][p[:, :, c]]
    return out


def fit_lut(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per channel, map each predicted value to the most frequent target value (exact for any
    pointwise tone change: exposure, gamma, levels)."""
    luts = np.empty((p.shape[2], 256), dtype=np.uint8)
    for c in range(p.shape[2]):
        idx = p[:, :, c].astype(np.int32).ravel() * 256 + t[:, :, c].ravel()
        hist = np.bincount(idx, minlength=65536).reshape(256, 256)
        lut = hist.argmax(axis=1).astype(np.uint8)
        empty = hist.sum(axis=1) == 0
        lut[empty] = np.arange(256, dtype=np.uint8)[empty]
        luts[c] = lut
    return luts


def predict(desc: dict, sections: dict[str, bytes], ref: np.ndarray, tshape: tuple[int, ...]) -> np.ndarray:
    """Replay the prediction recorded in ``desc`` (decoder side). Returns H x W x C uint8."""
    unknown = set(desc) - KNOWN_STAGES
    if unknown:
        raise ValueError(f"inter prediction uses stages this codec does not know: {sorted(unknown)}")
    h, w = tshape[:2]
    tc = tshape[2] if len(tshape) == 3 else 1
    r = colour_adapt(as3(ref), tc, desc["colour"])
    p = apply_geom(r, desc["geom"], (h, w))
    if p.shape != (h, w, tc):
        raise ValueError(f"prediction shape {p.shape} != target {(h, w, tc)}")
    if desc.get("jpeg"):
        p = jpeg_replay(p, *desc["jpeg"])
    if desc.get("webp"):
        p = webp_replay(p, *desc["webp"])
    if desc.get("lut"):
        lut = np.frombuffer(sections["lut"], dtype=np.uint8).reshape(tc, 256)
        p = apply_lut(p, lut)
    if desc.get("cmap"):
        p = _apply_cmap(desc["cmap"], sections, p)
    if desc.get("blocks"):
        b = desc["blocks"]
        alts = ([p] + [np.roll(p, tuple(s), axis=(0, 1)) for s in b.get("shifts", [])]
                + [apply_geom(r, g, (h, w)) for g in b["alts"]] + [np.full_like(p, 128)])
        bmap = np.frombuffer(sections["blockmap"], dtype=np.uint8).reshape(-(-h // b["size"]), -(-w // b["size"]))
        p = compose_blocks(alts, bmap, b["size"])
    return p


def _apply_cmap(c: dict, sections: dict[str, bytes], p: np.ndarray) -> np.ndarray:
    if p.shape[2] != 3:
        raise ValueError("a fitted colour map needs an RGB prediction")
    lattice = np.frombuffer(sections["cmap_lattice"], dtype=">i2").astype(np.int32).reshape(-1, 3)
    table = None
    if c.get("table"):
        img = intra.decode_pixels(sections["cmap_table"], tuple(c["table_shape"]), "uint8")
        table = colourmap.table_from_image(img, int(c["table"]))
    return colourmap.apply(p, lattice, table, int(c.get("min_count", 1)))


def _cmap_fit(t3: np.ndarray, p: np.ndarray, desc: dict) -> tuple[float, dict, dict[str, bytes], np.ndarray] | None:
    """Fitted colour transform of the prediction: a least-squares 3D lattice, plus (when its
    estimated cost pays) exact per-colour corrections. Colour edits by any program (saturation,
    hue, white balance, curves, colour matrices) leave a near-zero residual. Returns (estimated
    bits, desc, sections, prediction); the table is JPEG XL-coded later, by _cmap_code."""
    if t3.shape[2] != 3 or p.shape[2] != 3:
        return None
    lattice, corr, counts = colourmap.fit(t3, p)
    secs = {"cmap_lattice": lattice.astype(">i2").tobytes()}
    p_lat = colourmap.apply(p, lattice, None, 1)
    p_tab = colourmap.apply(p, lattice, corr, 1)
    bits_lat = colourmap.entropy_bits(residual(t3, p_lat))
    bits_tab = colourmap.entropy_bits(residual(t3, p_tab)) + colourmap.entropy_bits(corr)
    if bits_tab < bits_lat:
        secs["cmap_table_raw"] = corr.tobytes()
        return bits_tab, {**desc, "cmap": {"table": len(corr), "min_count": 1}}, secs, p_tab
    return bits_lat, {**desc, "cmap": {"table": 0}}, secs, p_lat


CMAP_PROBE = 256  # the probe fits on a central 256 x 256 crop (spatial structure kept for JPEG XL)
CMAP_PROBE_GAIN = 0.97  # ...and the full fit runs only when it beats the per-channel LUT by 3% there


def _cmap_worth_fitting(t3: np.ndarray, p: np.ndarray) -> bool:
    """Whether a fitted colour transform could pay: fitted and coded (JPEG XL effort 1) on a
    central crop, against the per-channel LUT's residual and the crop itself (intra). Colour edits of the same
    picture code at a fraction of the LUT's bytes, other shots of a scene at about the same; the
    full fit (0.4-0.8 s per geometry on a 1 MP image, plus a coded candidate) runs only where the
    crop shows a gain. A zero-order entropy on a subsample was tried first and missed gains that
    only a spatially predicting coder sees (JPEG copies by other encoders, where the lattice takes
    out a smooth colour shift)."""
    if t3.shape[2] != 3 or p.shape[2] != 3:
        return False
    h, w = t3.shape[:2]
    if h * w <= 2 * CMAP_PROBE * CMAP_PROBE:
        return True  # small: the full fit is as cheap as the probe
    y0, x0 = max(0, (h - CMAP_PROBE) // 2), max(0, (w - CMAP_PROBE) // 2)
    win = (slice(y0, y0 + CMAP_PROBE), slice(x0, x0 + CMAP_PROBE))
    ts, ps = np.ascontiguousarray(t3[win]), np.ascontiguousarray(p[win])
    lut_bytes = len(intra.encode_pixels(residual(ts, apply_lut(ps, fit_lut(ts, ps))), 1))
    lattice, corr, _counts = colourmap.fit(ts, ps)
    lat_bytes = len(intra.encode_pixels(residual(ts, colourmap.apply(ps, lattice, None, 1)), 1))
    tab_bytes = (len(intra.encode_pixels(residual(ts, colourmap.apply(ps, lattice, corr, 1)), 1))
                 + colourmap.entropy_bits(corr) / 8)
    own_bytes = len(intra.encode_pixels(ts, 1))  # no prediction at all: a fit to noise lands here
    return min(lat_bytes, tab_bytes) < CMAP_PROBE_GAIN * min(lut_bytes, own_bytes)


def _cmap_code(cand: tuple[float, dict, dict[str, bytes], np.ndarray], effort: int
               ) -> tuple[float, dict, dict[str, bytes], np.ndarray]:
    bits, desc, secs, p = cand
    secs = dict(secs)
    raw = secs.pop("cmap_table_raw", None)
    if raw is not None:
        img = colourmap.table_image(np.frombuffer(raw, np.uint8).reshape(-1, 3))
        secs["cmap_table"] = intra.encode_pixels(img, effort)
        desc = {**desc, "cmap": {**desc["cmap"], "table_shape": list(img.shape)}}
    return bits, desc, secs, p


def compose_blocks(alts: list[np.ndarray], bmap: np.ndarray, size: int) -> np.ndarray:
    """Per-block choice among predictions: block (i, j) takes alts[bmap[i, j]]."""
    h, w = alts[0].shape[:2]
    full = np.repeat(np.repeat(bmap, size, axis=0), size, axis=1)[:h, :w]
    out = alts[0].copy()
    for k in range(1, len(alts)):
        sel = full == k
        out[sel] = alts[k][sel]
    return out


def _block_costs(t3: np.ndarray, p: np.ndarray, size: int) -> np.ndarray:
    """Per-block gradient energy of the centred residual: JPEG XL codes residuals with spatial
    prediction, so a smooth residual is cheap even when it is large (e.g. t itself vs 128)."""
    d = (((t3.astype(np.int16) - p + 128) & 255) - 128).astype(np.int16)
    g = np.zeros(d.shape[:2], dtype=np.float32)
    g[:, 1:] += np.abs(np.diff(d, axis=1)).sum(axis=2)
    g[1:, :] += np.abs(np.diff(d, axis=0)).sum(axis=2)
    h, w = g.shape
    hb, wb = -(-h // size), -(-w // size)
    pad = np.zeros((hb * size, wb * size), dtype=np.float32)
    pad[:h, :w] = g
    return pad.reshape(hb, size, wb, size).sum(axis=(1, 3))


BLOCK = 32
# Block refinement: each block may also take the main prediction moved by one pixel.
BLOCK_SHIFTS = [[-1, 0], [1, 0], [0, -1], [0, 1], [-1, -1], [-1, 1], [1, -1], [1, 1]]


def _blocks_candidate(t3: np.ndarray, p_main: np.ndarray, desc: dict, sections: dict[str, bytes],
                      r_main: np.ndarray, second_geoms: list[dict]) -> tuple[dict, dict[str, bytes], np.ndarray] | None:
    """Region-wise prediction: each 32x32 block picks the main prediction, the main prediction
    moved by one pixel (block refinement), a second homography or no prediction (128, i.e.
    intra-like), whichever has the cheaper residual there."""
    h, w = t3.shape[:2]
    alts = ([p_main] + [np.roll(p_main, tuple(s), axis=(0, 1)) for s in BLOCK_SHIFTS]
            + [apply_geom(r_main, g, (h, w)) for g in second_geoms] + [np.full_like(p_main, 128)])
    costs = np.stack([_block_costs(t3, a, BLOCK) for a in alts])
    costs[1:] *= 1.03  # switching has a cost (map entropy, seams): demand a clear gain
    bmap = costs.argmin(axis=0).astype(np.uint8)
    if (bmap == 0).all():
        return None
    p = compose_blocks(alts, bmap, BLOCK)
    d = {**desc, "blocks": {"size": BLOCK, "shifts": BLOCK_SHIFTS, "alts": second_geoms}}
    return d, {**sections, "blockmap": bmap.tobytes()}, p


def residual(t3: np.ndarray, p: np.ndarray) -> np.ndarray:
    # +128 centring: small errors of either sign stay near mid-grey instead of wrapping to 0/255
    return ((t3.astype(np.int16) - p + 128) & 255).astype(np.uint8)


def unresidual(res: np.ndarray, p: np.ndarray) -> np.ndarray:
    return ((res.astype(np.int16) + p - 128) & 255).astype(np.uint8)


def _cost(t3: np.ndarray, p: np.ndarray, step: int = 2) -> float:
    """Cheap proxy of the coded residual size: mean |centred residual| on a step x step subsample
    (step 1 for search windows, where a subsample would be too thin)."""
    d = t3[::step, ::step].astype(np.int16) - p[::step, ::step]
    d = ((d + 128) & 255) - 128
    return float(np.abs(d).mean())


def _payload_arr(res: np.ndarray) -> np.ndarray:
    return res[:, :, 0] if res.shape[2] == 1 else res


JPEG_QUALITIES = (75, 95, 90, 85, 80, 70, 100, 50, 60, 65)


SCALE_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pil", ("bicubic", "lanczos", "bilinear", "nearest", "box", "hamming")),
    ("cv", ("area", "linear", "cubic", "lanczos", "nearest")),
)
WEBP_QUALITIES = (80, 75, 90, 95, 85, 100, 70, 50, 60)
WEBP_AFTER_JPEG = 0.97  # the WebP search runs when the best JPEG replay cut the cost by 3%


LOSSY_WINDOW = 384  # side of the window the quality search runs on (multiple of 16: JPEG's MCU grid)
LOSSY_MARGIN = 16  # window pixels next to a cut edge: chroma upsampling reads across it


def _lossy_window(h: int, w: int) -> tuple[slice, slice, slice, slice] | None:
    """A centred, MCU-aligned window of the image and its interior, or None when the image is small.

    JPEG codes 8x8 blocks (16x16 MCUs with 4:2:0) on a grid anchored at the image's corner, so
    an MCU-aligned window encodes to the same blocks as the whole image; only pixels next to its
    cut edges differ (chroma upsampling), and those are left out of the cost. WebP is not local
    (segments, rate control), so there the window only ranks qualities and the whole image decides.
    """
    if h * w <= 2 * LOSSY_WINDOW * LOSSY_WINDOW:
        return None

    def axis(n: int) -> tuple[slice, slice]:
        if n <= LOSSY_WINDOW + 2 * LOSSY_MARGIN:
            return slice(0, n), slice(0, n)
        a = (n - LOSSY_WINDOW) // 2 // 16 * 16
        b = a + LOSSY_WINDOW
        return slice(a, b), slice(LOSSY_MARGIN, LOSSY_WINDOW - LOSSY_MARGIN)

    (wy, iy), (wx, ix) = axis(h), axis(w)
    return wy, wx, iy, ix


def _best_lossy(t3: np.ndarray, p: np.ndarray, kind: str = "jpeg") -> tuple[float, list[int]] | None:
    """Coarse-to-fine search of the Pillow JPEG (quality, subsampling) or WebP (quality, method)
    whose encode+decode of p best predicts t3. Returns the whole image's cost and the parameters.

    The search runs on a window of large images (see _lossy_window): ~40 replays of a 0.15 MP
    window instead of the whole photo; the parameters found are then replayed once on the whole
    image (WebP: the quality found and its two neighbours)."""
    if p.shape[2] not in (1, 3):
        return None
    replay = jpeg_replay if kind == "jpeg" else webp_replay
    win = _lossy_window(*t3.shape[:2])
    if win is None:
        ts, ps, interior = t3, p, None
    else:
        wy, wx, iy, ix = win
        ts, ps, interior = t3[wy, wx], np.ascontiguousarray(p[wy, wx]), (iy, ix)
    tried: dict[tuple[int, int], float] = {}

    def cost(q: int, ss: int) -> float:
        if (q, ss) not in tried:
            pr = replay(ps, q, ss)
            tried[(q, ss)] = _cost(ts, pr) if interior is None else _cost(ts[interior], pr[interior], 1)
        return tried[(q, ss)]

    qualities: tuple[int, ...]
    if kind == "jpeg":
        subs: tuple[int, ...] = (2, 0, 1) if p.shape[2] == 3 else (0,)  # 4:2:0, 4:4:4, 4:2:2
        qualities = JPEG_QUALITIES
    else:
        subs, qualities = (4,), WEBP_QUALITIES
    found: tuple[int, int] | None = None
    for q in qualities:
        for ss in subs:
            if cost(q, ss) == 0:
                found = (q, ss)
                break
        if found:
            break
    if found is None:
        (q0, ss0), _ = min(tried.items(), key=lambda kv: kv[1])
        for q in range(max(1, q0 - 4), min(100, q0 + 4) + 1):
            if cost(q, ss0) == 0:
                found = (q, ss0)
                break
    if found is None:
        found, _ = min(tried.items(), key=lambda kv: kv[1])
    if win is None:
        return tried[found], list(found)
    q, ss = found
    if tried[found] == 0:
        finalists = [found] if kind == "jpeg" else [(x, ss) for x in (q, q - 1, q + 1) if 1 <= x <= 100]
    else:  # no exact replay: the window only ranks; the whole image decides among the best three
        finalists = [k for k, _ in sorted(tried.items(), key=lambda kv: kv[1])[:3]]
    best: tuple[float, list[int]] | None = None
    for fq, fss in finalists:
        c = _cost(t3, replay(p, fq, fss))
        if best is None or c < best[0]:
            best = (c, [fq, fss])
        if c == 0:
            break
    return best


FITRES_MAX_MISS = 0.5  # fit a resampling kernel only when the best rescale misses by < 0.5x the texture


def _fitted_resampling(t3: np.ndarray, rb: np.ndarray, scored: list[tuple[float, dict]]) -> dict | None:
    """When the best rescale geometry found is not an exact replay, fit its filter (per-phase
    separable taps, least squares) so a resize by any program predicts within rounding noise."""
    best = min(((c, g) for c, g in scored if g["type"] in ("resize", "scale_paste")),
               key=lambda cg: cg[0], default=None)
    if best is None or best[0] <= 0.01:
        return None
    c, g = best
    # A rescale no library replays still predicts within a few grey levels (measured: 0.02-0.15x
    # the target's own neighbour differences for ImageMagick/libvips rescales, 0.3-0.5x for JPEG
    # copies of a rescale). Where the best rescale misses by more than half of those differences it
    # is not a rescale of this picture (other shots: 2.4-6x), and no filter fit can repair that; the
    # fit (2-4 CPU s on a 1 MP photo) is skipped.
    texture = float(np.abs(np.diff(t3[::2].astype(np.int16), axis=1)).mean())
    if c > FITRES_MAX_MISS * texture:
        return None
    h, w = t3.shape[:2]
    k = g.get("k", 0)
    r = align.dihedral(rb, k)
    if g["type"] == "resize":
        size, off = (w, h), (0, 0)
    else:
        size, off = (int(g["size"][0]), int(g["size"][1])), (int(g["dx"]), int(g["dy"]))
    try:
        g_int = {**resample.fit(r, t3, size, off), "k": k}
    except (np.linalg.LinAlgError, ValueError, MemoryError):
        return None
    # A crop that was then rescaled (or a copy shrunk in steps) scales the reference to a size that
    # is not a whole number of pixels: register the scale and offset to 1/64 pixel and fit again
    # when that moves the far edge by more than a twentieth of a pixel; the better fit is kept.
    sub = resample.refine_geometry(r, t3, size, off)
    if sub is None:
        return g_int
    den = resample.SUBPIXEL_DEN
    (nsw, nsh), (ndx, ndy) = sub
    drift = max(abs(w * (size[0] * den / nsw - 1)) + abs(ndx / den - off[0]),
                abs(h * (size[1] * den / nsh - 1)) + abs(ndy / den - off[1]))
    if drift < 0.05:
        return g_int
    try:
        g_sub = {**resample.fit(r, t3, (nsw, nsh), (ndx, ndy), den=den), "k": k}
    except (np.linalg.LinAlgError, ValueError, MemoryError):
        return g_int
    pi, ps = resample.apply(r, g_int, (h, w)), resample.apply(r, g_sub, (h, w))
    return g_sub if _cost(t3, ps) < _cost(t3, pi) else g_int


def search(target: np.ndarray, ref: np.ndarray, *, effort: int = 7, max_final: int = 2,
           timings: dict | None = None) -> list[tuple[dict, dict[str, bytes], bytes, str]]:
    """Inter candidates for ``target`` given ``ref``: list of (desc, sections, payload, label).

    Geometry is screened with a cheap proxy (mean |residual|); the best ones get the colour
    variants, a LUT and a JPEG-replay stage; the best few are coded with JPEG XL at ``effort``.
    The caller keeps the smallest coded size, so a misleading proxy can cost compression but
    never correctness.
    """
    timings = timings if timings is not None else {}
    t0 = time.perf_counter()
    t3 = as3(target)
    h, w, tc = t3.shape
    r3 = as3(ref)
    rcol = 3 if r3.shape[2] >= 3 else 1
    tcol = 3 if tc >= 3 else 1
    colours = list(GREY_METHODS) if (rcol == 3 and tcol == 1) else ["same"]
    base_col = colours[0]
    rb = colour_adapt(r3, tc, base_col)

    scored: list[tuple[float, dict]] = []

    def score(g: dict) -> float:
        try:
            p = apply_geom(rb, g, (h, w))
        except Exception:
            return float("inf")
        if p.shape != t3.shape:
            return float("inf")
        c = _cost(t3, p)
        if c > 0.01:  # a tone change hides an exact geometry: score it after a LUT too
            c = min(c, _cost(t3, apply_lut(p, fit_lut(t3[::2, ::2], p[::2, ::2]))))
        scored.append((c, g))
        return c

    rh, rw = rb.shape[:2]
    best = float("inf")
    second_geoms: list[dict] = []
    for k in range(8):
        dims = (rw, rh) if k & 1 ^ (k >> 2 & 1) else (rh, rw)
        if dims == (h, w):
            best = min(best, score({"type": "dihedral", "k": k}))
    if best > 0.01:
        for k in (0, 1):
            dh, dw = (rw, rh) if k else (rh, rw)
            if (dh, dw) == (h, w):
                continue
            # only orientations whose aspect ratio is plausible for a resize of this reference
            if abs(np.log((dw / dh) / (w / h))) > 0.35:
                continue
            for lib, fmap in (("cv", align.CV_INTERP), ("pil", align.PIL_FILTERS)):
                for f in fmap:
                    best = min(best, score({"type": "resize", "k": k, "lib": lib, "filter": f}))
        try:
            crop = align.find_crop(features.to_grey(rb), features.to_grey(t3))
        except Exception:
            crop = None
        if crop is not None:
            best = min(best, score({"type": "shift", "dx": crop[0], "dy": crop[1]}))
    timings["inter_exact"] = time.perf_counter() - t0
    if best > 0.01:
        t1 = time.perf_counter()
        models = align.estimate_homographies(features.to_grey(rb), features.to_grey(t3))
        timings["inter_align"] = time.perf_counter() - t1
        H = models[0][0] if models else None
        for H2, _n in models[1:]:
            second_geoms.append({"type": "homography", "H": [float(x) for x in H2.ravel()], "interp": "linear"})
        if H is not None:
            sh = align.as_integer_shift(H, (h, w))
            if sh is not None:
                best = min(best, score({"type": "shift", "dx": sh[0], "dy": sh[1]}))
            for interp in ("linear", "cubic", "lanczos"):
                best = min(best, score({"type": "homography", "H": [float(x) for x in H.ravel()],
                                        "interp": interp}))
            sim = align.snap_similarity(H)
            if sim is not None and abs(sim[1] - 1) < 0.02:
                for ang in sorted({round(sim[0]), round(sim[0] * 2) / 2}):
                    for rs in (0, 2, 3):
                        best = min(best, score({"type": "pil_rotate", "angle": ang, "resample": rs, "fill": 0}))
            if sim is not None and abs(sim[0]) < 0.5 and abs(sim[1] - 1) > 0.02:
                sc = sim[1]
                sizes = {(int(rw * round(sc, 2)), int(rh * round(sc, 2))), (round(rw * sc), round(rh * sc))}
                for nw, nh in sizes:
                    offs = {((w - nw) // 2, (h - nh) // 2), (int(round(H[0, 2])), int(round(H[1, 2])))}
                    for ox, oy in offs:
                        for lib, fnames in SCALE_FILTERS:
                            for f in fnames:
                                best = min(best, score({"type": "scale_paste", "size": [nw, nh], "lib": lib,
                                                        "filter": f, "dx": ox, "dy": oy, "fill": 0}))
            for M in align.snapped_affines(H, (rh, rw)):
                for interp in ("linear", "cubic", "nearest", "area", "lanczos"):
                    best = min(best, score({"type": "affine", "M": M, "interp": interp, "fill": 0}))
    if scored:
        t3b = time.perf_counter()
        fitted = _fitted_resampling(t3, rb, scored)
        if fitted is not None:
            score(fitted)
        timings["inter_fitres"] = time.perf_counter() - t3b
    if not scored:
        return []
    scored.sort(key=lambda s: s[0])
    # Refine the best geometries: colour conversion, JPEG replay, LUT; then code the best few.
    t2 = time.perf_counter()
    finals: list[tuple[float, dict, dict[str, bytes], np.ndarray]] = []
    cmap_best: tuple[float, dict, dict[str, bytes], np.ndarray] | None = None
    refined: list[np.ndarray] = []

    def refine(g: dict) -> bool:
        """Colour variants, LUT, 3D colour map and lossy replays of one geometry; False when another
        geometry already gave the same prediction."""
        nonlocal cmap_best
        variants = []
        for col in colours:
            r = rb if col == base_col else colour_adapt(r3, tc, col)
            p = apply_geom(r, g, (h, w))
            variants.append((_cost(t3, p), col, p))
        variants.sort(key=lambda v: v[0])
        c0, col, p = variants[0]
        if any(np.array_equal(p, q) for q in refined):
            return False  # another geometry already gave this prediction (identity vs a zero shift)
        refined.append(p)
        desc: dict = {"colour": col, "geom": g, "lut": False}
        finals.append((c0, desc, {}, p))
        if c0 == 0:
            return True
        ident = np.tile(np.arange(256, dtype=np.uint8), (tc, 1))
        lut = fit_lut(t3, p)
        cl = c0
        if not np.array_equal(lut, ident):
            pl = apply_lut(p, lut)
            cl = _cost(t3, pl)
            finals.append((cl, {**desc, "lut": True}, {"lut": lut.tobytes()}, pl))
        if min(c0, cl) > 0.01 and _cmap_worth_fitting(t3, p):
            # a colour edit no per-channel curve explains: fit one in 3D
            cm = _cmap_fit(t3, p, desc)
            if cm is not None and (cmap_best is None or cm[0] < cmap_best[0]):
                cmap_best = cm
        # Lossy replays only after deterministic geometries: a free homography is estimated, so
        # its prediction cannot match an encoder's blocks exactly (and the search is slow).
        replayable = g["type"] != "homography" and min(c0, cl) > 0.01
        jp, kind = (_best_lossy(t3, p, "jpeg") if replayable else None), "jpeg"
        # WebP only when some JPEG replay already came closer than the plain prediction: a lossy
        # copy of the reference (WebP too) loses detail a JPEG replay also loses, another shot
        # does not (its JPEG replays score within 1% of the plain prediction, and the WebP search,
        # ~17 encodes, was the largest remaining cost there)
        if jp is not None and 0.01 < jp[0] < WEBP_AFTER_JPEG * c0 and h * w <= 4_000_000:
            wp = _best_lossy(t3, p, "webp")
            if wp is not None and wp[0] < jp[0]:
                jp, kind = wp, "webp"
        if jp is not None and jp[0] < c0:
            pj = (jpeg_replay if kind == "jpeg" else webp_replay)(p, *jp[1])
            dj = {**desc, kind: jp[1]}
            finals.append((jp[0], dj, {}, pj))
            lut = fit_lut(t3, pj)
            if jp[0] > 0 and not np.array_equal(lut, ident):
                pl = apply_lut(pj, lut)
                finals.append((_cost(t3, pl), {**dj, "lut": True}, {"lut": lut.tobytes()}, pl))
        return True

    seen_geoms = 0
    for gc, g in scored:
        if seen_geoms == 2 or (seen_geoms and gc > 2 * scored[0][0] + 0.5):
            break
        seen_geoms += refine(g)
    # An interpolating warp estimated from features can score a hair below the exact geometry it
    # approximates (a JPEG copy: the warp's slight blur matches the codec's smoothing), and two such
    # warps then fill both refinement slots. Lossy replays need the exact geometry, so the best
    # deterministic one is always refined too when it is in the running.
    exact_best = next(((c, g) for c, g in scored if g["type"] != "homography"), None)
    if exact_best is not None and exact_best[0] <= 2 * scored[0][0] + 0.5 \
            and not any(f[1]["geom"] is exact_best[1] for f in finals):
        refine(exact_best[1])
    exact = next((g for _c, g in scored if g["type"] in ("dihedral", "shift")), None)
    if exact is not None and cmap_best is not None and exact is not cmap_best[1]["geom"]:
        # an exact alignment keeps pixel colours unmixed, so the per-colour table fits it best,
        # even when an interpolating warp (which blurs noise away) scored a little better
        cm = _cmap_fit(t3, apply_geom(rb, exact, (h, w)), {"colour": base_col, "geom": exact, "lut": False})
        if cm is not None and cm[0] < cmap_best[0]:
            cmap_best = cm
    finals.sort(key=lambda f: f[0])
    chosen: list[tuple[float, dict, dict[str, bytes], np.ndarray]] = finals[:max_final]
    if finals and finals[0][0] > 0.5:
        c0, d0, s0, p0 = finals[0]
        r_main = rb if d0["colour"] == base_col else colour_adapt(r3, tc, d0["colour"])
        bc = _blocks_candidate(t3, p0, d0, s0, r_main, second_geoms)
        if bc is not None:
            chosen = [(c0, bc[0], bc[1], bc[2]), *chosen]
    if cmap_best is not None and (not finals or finals[0][0] > 0.01):
        # coded last: its proxy cost ignores the table, so it must not stop the others
        chosen = [*chosen, _cmap_code(cmap_best, effort)]
    out = []
    for _c, cdesc, sections, p in chosen:
        desc = cdesc
        res = residual(t3, p)
        payload = intra.encode_pixels(_payload_arr(res), effort)
        geo: dict = desc["geom"]
        label = f"inter:{geo['type']}"
        label += f"/{geo.get('interp') or geo.get('filter')}" if "interp" in geo or "filter" in geo else ""
        label += (f"+jpeg{desc['jpeg'][0]}" if desc.get("jpeg") else "") + (f"+webp{desc['webp'][0]}" if desc.get("webp") else "")
        label += "+lut" if desc["lut"] else ""
        label += "+blocks" if desc.get("blocks") else ""
        label += ("+cmap" + ("+table" if desc["cmap"].get("table") else "")) if desc.get("cmap") else ""
        label += "" if desc["colour"] == "same" else f"+{desc['colour']}"
        out.append((desc, sections, payload, label))
        if _c == 0:
            break  # exact prediction: nothing can beat it meaningfully
    timings["inter_code"] = time.perf_counter() - t2
    return out


def reconstruct(desc: dict, sections: dict[str, bytes], payload: bytes, ref: np.ndarray,
                shape: tuple[int, ...]) -> np.ndarray:
    """Decoder: prediction + residual -> target pixels with the recorded shape."""
    p = predict(desc, sections, ref, shape)
    res = as3(intra.decode_pixels(payload, shape if len(shape) == 3 else shape[:2], "uint8"))
    t = unresidual(res, p)
    return t[:, :, 0] if len(shape) == 2 else t
