"""Fitted resampling: a separable kernel, per sub-pixel phase, fitted by least squares to a rescale.

A copy rescaled by a program whose filter the codec cannot replay (ImageMagick, libvips, an
editor) is still, away from clipping, a separable linear filter of the reference. Given the
geometry (scaled size and offset, found by the exact-replay search), this module fits the taps
of that filter for each of PHASES sub-pixel phases (taps interpolated linearly between phases) by
alternating least squares on the two axes. The decoder applies the quantized taps in integer
arithmetic only, so the prediction replays bit-exactly on any machine.
"""

from __future__ import annotations

import numpy as np

PHASES = 16
TAP_BITS = 12     # taps stored as integers in 1/4096
ALPHA_BITS = 6    # phase interpolation weight in 1/64
MAX_TAPS = 24
FIT_SAMPLES = 120_000
MAX_TAP = 1 << 15  # |tap| <= 8.0: keeps the integer decoder far from int64 overflow
MAX_DEN = 1024     # finest sub-pixel unit of the geometry


def taps_for(n_in: int, n_scaled: int) -> int:
    """Enough taps for a Lanczos-3-wide kernel at this scale, plus one on each side."""
    s = min(1.0, n_scaled / n_in)
    return int(min(MAX_TAPS, 2 * int(np.ceil(3 / s)) + 2))


def positions(n_out: int, n_in: int, n_scaled: int, offset: int, taps: int, den: int = 1
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: first source tap index, phase bin and interpolation weight (0..63).

    Output pixel x samples the reference at u = (x - offset + 0.5) * n_in / n_scaled - 0.5 (the
    pixel-centre convention every common resizer uses), where n_scaled and offset are given in
    units of 1/den pixel (den 1: whole pixels); computed in integers."""
    x = np.arange(n_out, dtype=np.int64)
    num = (2 * den * x - 2 * offset + den) * n_in - n_scaled
    d = 2 * n_scaled
    fl = num // d
    frac = num - fl * d
    q = frac * PHASES * (1 << ALPHA_BITS) // d
    return fl - taps // 2 + 1, q >> ALPHA_BITS, q & ((1 << ALPHA_BITS) - 1)


def _coefs(kernel: np.ndarray, p0: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Per output index taps, kernel (PHASES+1) x T interpolated between phase bins."""
    return kernel[p0] * ((1 << ALPHA_BITS) - a)[:, None] + kernel[p0 + 1] * a[:, None]


def _gather(z: np.ndarray, start: np.ndarray, taps: int, n_in: int) -> np.ndarray:
    return np.clip(start[:, None] + np.arange(taps)[None, :], 0, n_in - 1)


def _resample_axis1_float(z: np.ndarray, idx: np.ndarray, coef: np.ndarray) -> np.ndarray:
    out = np.zeros((z.shape[0], idx.shape[0], z.shape[2]), dtype=np.float64)
    for j in range(idx.shape[1]):
        out += z[:, idx[:, j], :] * coef[None, :, j, None]
    return out


def init_kernel(taps: int, n_in: int, n_scaled: int) -> np.ndarray:
    """Lanczos-3 at the scale, per phase: the starting point of the fit and its ridge target."""
    s = min(1.0, n_scaled / n_in)
    ph = np.arange(PHASES + 1) / PHASES
    d = (np.arange(taps)[None, :] - (taps // 2 - 1)) - ph[:, None]
    k = np.sinc(d * s) * np.sinc(d * s / 3) * (np.abs(d * s) < 3)
    return k / k.sum(axis=1, keepdims=True)


def _fit_axis1(z: np.ndarray, t: np.ndarray, idx: np.ndarray, p0: np.ndarray, a: np.ndarray,
               prior: np.ndarray, ridge: float) -> np.ndarray:
    """Least-squares kernel (PHASES+1) x T such that resampling z along axis 1 gives t."""
    taps = idx.shape[1]
    n = (PHASES + 1) * taps
    ata = np.zeros((n, n))
    atb = np.zeros(n)
    seg = z[:, idx, :]                                     # rows x n_out x T x C
    g = np.einsum("ixtc,ixuc->xtu", seg, seg)
    b = np.einsum("ixtc,ixc->xt", seg, t)
    al = a / (1 << ALPHA_BITS)
    for x in range(idx.shape[0]):
        i0, i1 = p0[x] * taps, (p0[x] + 1) * taps
        w0, w1 = 1 - al[x], al[x]
        ata[i0:i0 + taps, i0:i0 + taps] += w0 * w0 * g[x]
        ata[i0:i0 + taps, i1:i1 + taps] += w0 * w1 * g[x]
        ata[i1:i1 + taps, i0:i0 + taps] += w0 * w1 * g[x]
        ata[i1:i1 + taps, i1:i1 + taps] += w1 * w1 * g[x]
        atb[i0:i0 + taps] += w0 * b[x]
        atb[i1:i1 + taps] += w1 * b[x]
    lam = ridge * np.trace(ata) / n + 1e-9
    sol = np.linalg.solve(ata + lam * np.eye(n), atb + lam * prior.ravel())
    return sol.reshape(PHASES + 1, taps)


def fit(ref: np.ndarray, target: np.ndarray, size: tuple[int, int], offset: tuple[int, int],
        rounds: int = 3, ridge: float = 1e-4, den: int = 1) -> dict:
    """Fit vertical and horizontal kernels mapping ref (H x W x C) to target (h x w x C), where the
    reference scaled to size (sw, sh) sits at offset (dx, dy) in the target, both in units of
    1/den pixel. Returns the geometry description (quantized taps included) for ``apply``."""
    hh, ww = ref.shape[:2]
    h, w = target.shape[:2]
    (sw, sh), (dx, dy) = size, offset
    tv, th = taps_for(hh * den, sh), taps_for(ww * den, sw)
    sv, pv, av = positions(h, hh, sh, dy, tv, den)
    s_h, ph, ah = positions(w, ww, sw, dx, th, den)
    iv, ih = _gather(ref, sv, tv, hh), _gather(ref, s_h, th, ww)
    r = ref.astype(np.float64)
    t = target.astype(np.float64)
    kv, kh = init_kernel(tv, hh * den, sh), init_kernel(th, ww * den, sw)
    prior_v, prior_h = kv.copy(), kh.copy()
    scale = float(1 << ALPHA_BITS)
    # subsample the rows (columns) used for each axis' fit: a few hundred taps need far fewer pixels
    row_step = max(1, int(np.ceil(h * w / FIT_SAMPLES)))
    for _ in range(rounds):
        cv = _coefs(kv, pv, av) / scale
        vert = _resample_axis1_float(r.transpose(1, 0, 2), iv, cv).transpose(1, 0, 2)  # h x W x C
        rows = slice(0, h, row_step)
        kh = _fit_axis1(vert[rows], t[rows], ih, ph, ah, prior_h, ridge)
        ch = _coefs(kh, ph, ah) / scale
        horiz = _resample_axis1_float(r, ih, ch)                                         # H x w x C
        cols = slice(0, w, row_step)
        kv = _fit_axis1(horiz.transpose(1, 0, 2)[cols], t.transpose(1, 0, 2)[cols], iv, pv, av, prior_v, ridge)
    q = float(1 << TAP_BITS)
    kv, kh = (np.clip(k, -MAX_TAP, MAX_TAP) for k in (kv * q, kh * q))
    sub = {"den": int(den)} if den != 1 else {}  # den 1 is left out: blobs from before it decode alike
    return {"type": "fitres", "size": [int(sw), int(sh)], "dx": int(dx), "dy": int(dy), **sub,
            "kv": np.round(kv).astype(np.int64).ravel().tolist(),
            "kh": np.round(kh).astype(np.int64).ravel().tolist(), "tv": tv, "th": th}


def apply(ref: np.ndarray, g: dict, shape: tuple[int, int]) -> np.ndarray:
    """Decoder: the fitted rescale of ref (H x W x C uint8) to shape, integer arithmetic only."""
    hh, ww = ref.shape[:2]
    h, w = shape
    (sw, sh), dx, dy, tv, th = g["size"], g["dx"], g["dy"], int(g["tv"]), int(g["th"])
    den = int(g.get("den", 1))
    if not (0 < tv <= MAX_TAPS and 0 < th <= MAX_TAPS and sw > 0 and sh > 0 and 1 <= den <= MAX_DEN
            and max(map(abs, g["kv"]), default=0) <= MAX_TAP and max(map(abs, g["kh"]), default=0) <= MAX_TAP):
        raise ValueError("bad fitted-resampling parameters")
    kv = np.asarray(g["kv"], dtype=np.int64).reshape(PHASES + 1, tv)
    kh = np.asarray(g["kh"], dtype=np.int64).reshape(PHASES + 1, th)
    sv, pv, av = positions(h, hh, sh, dy, tv, den)
    s_h, ph, ah = positions(w, ww, sw, dx, th, den)
    iv, ih = _gather(ref, sv, tv, hh), _gather(ref, s_h, th, ww)
    cv, ch = _coefs(kv, pv, av), _coefs(kh, ph, ah)            # scale 2^(TAP_BITS + ALPHA_BITS)
    shift = 2 * (TAP_BITS + ALPHA_BITS)
    bound = 255 * int(np.abs(cv).sum(axis=1).max(initial=0)) * int(np.abs(ch).sum(axis=1).max(initial=0))
    if bound < EXACT_FLOAT:
        # Every product and partial sum is an integer below 2^52: float64 matrix products (BLAS,
        # any summation order, FMA or not) give exactly the integer sums of the loop below.
        c = ref.shape[2]
        vert_f = _banded(ref.reshape(hh, ww * c).astype(np.float64), iv, cv, hh).reshape(h, ww, c)
        cols = np.ascontiguousarray(vert_f.transpose(1, 0, 2)).reshape(ww, h * c)
        out_f = _banded(cols, ih, ch, ww).reshape(w, h, c).transpose(1, 0, 2)
        return np.clip((out_f.astype(np.int64) + (1 << (shift - 1))) >> shift, 0, 255).astype(np.uint8)
    r = ref.astype(np.int64)
    vert = np.zeros((h, ww, ref.shape[2]), dtype=np.int64)
    for j in range(tv):
        vert += r[iv[:, j]] * cv[:, j, None, None]
    out = np.zeros((h, w, ref.shape[2]), dtype=np.int64)
    for j in range(th):
        out += vert[:, ih[:, j]] * ch[None, :, j, None]
    return np.clip((out + (1 << (shift - 1))) >> shift, 0, 255).astype(np.uint8)


EXACT_FLOAT = 1 << 52  # integers below this add and multiply exactly in float64
BAND_ROWS = 32  # output rows per banded block: a small dense matrix product each


def _banded(x: np.ndarray, idx: np.ndarray, coef: np.ndarray, n_in: int) -> np.ndarray:
    """out[i] = sum_j coef[i, j] * x[idx[i, j]] for a 2-D float64 x (rows = the resampled axis),
    as dense products of blocks of BAND_ROWS output rows with the input rows they read."""
    n_out = idx.shape[0]
    out = np.empty((n_out, x.shape[1]), dtype=np.float64)
    cf = coef.astype(np.float64)
    for b0 in range(0, n_out, BAND_ROWS):
        b1 = min(n_out, b0 + BAND_ROWS)
        bi = idx[b0:b1]
        lo, hi = int(bi.min()), int(bi.max()) + 1
        m = np.zeros((b1 - b0, hi - lo), dtype=np.float64)
        # clipped edge indices repeat: add.at sums their taps, as the loop of taps does
        np.add.at(m, (np.repeat(np.arange(b1 - b0), bi.shape[1]), (bi - lo).ravel()), cf[b0:b1].ravel())
        out[b0:b1] = m @ x[lo:hi]
    return out


SUBPIXEL_DEN = 64  # geometry refined to 1/64 pixel: a drift below 0.02 px across a 1000 px copy


def refine_geometry(ref: np.ndarray, target: np.ndarray, size: tuple[int, int], offset: tuple[int, int],
                    den: int = SUBPIXEL_DEN) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Scaled size and offset in 1/den pixel, registered by ECC (an axis-aligned scale and shift)
    from the whole-pixel geometry; None when ECC does not converge or finds a rotation/shear.

    A copy cropped and then rescaled (or shrunk in steps, as thumbnailers do) is a scale of the
    reference whose size is not a whole number of pixels; whole-pixel geometry then drifts by a
    fraction of a pixel across the picture, which no per-phase kernel can absorb."""
    import cv2

    (sw, sh), (dx, dy) = size, offset
    hh, ww = ref.shape[:2]
    grey_r = ref.astype(np.float32).mean(axis=2) if ref.ndim == 3 else ref.astype(np.float32)
    grey_t = target.astype(np.float32).mean(axis=2) if target.ndim == 3 else target.astype(np.float32)
    sx, sy = ww / sw, hh / sh
    # smooth the reference to the target's resolution so the registration sees no aliasing
    sigma = 0.5 * max(sx, sy)
    if sigma > 0.6:
        grey_r = cv2.GaussianBlur(grey_r, (0, 0), sigma)
    warp = np.array([[sx, 0, (0.5 - dx) * sx - 0.5], [0, sy, (0.5 - dy) * sy - 0.5]], dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
    try:
        _, warp = cv2.findTransformECC(grey_t, grey_r, warp, cv2.MOTION_AFFINE, crit, None, 5)  # type: ignore[call-overload]  # no mask: the stubs omit None
    except cv2.error:
        return None
    a = warp.astype(np.float64)
    if abs(a[0, 1]) > 1e-3 * a[0, 0] or abs(a[1, 0]) > 1e-3 * a[1, 1] or a[0, 0] <= 0 or a[1, 1] <= 0:
        return None
    nsx, nsy = ww / a[0, 0], hh / a[1, 1]
    ox, oy = 0.5 - (a[0, 2] + 0.5) / a[0, 0], 0.5 - (a[1, 2] + 0.5) / a[1, 1]
    if abs(nsx - sw) > 0.05 * sw + 2 or abs(nsy - sh) > 0.05 * sh + 2 or abs(ox - dx) > 4 or abs(oy - dy) > 4:
        return None  # ECC wandered off: not a refinement of this geometry
    return (int(round(nsx * den)), int(round(nsy * den))), (int(round(ox * den)), int(round(oy * den)))
