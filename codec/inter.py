"""Inter coding: predict the target from a reference image, code (t - p + 128) mod 256 with JPEG XL.

The encoder searches a small, ordered family of deterministic predictions (exact dihedral
ops, integer shifts/crops, library resizes, SIFT+RANSAC homography warps), optionally followed
by a grey conversion and a per-channel LUT (exposure, gamma, levels), and keeps the candidate
whose coded residual is smallest. The decoder replays the recorded prediction exactly.
"""

from __future__ import annotations

import time

import numpy as np

from . import align, features, intra

GREY_METHODS = ("pil_l", "cv_gray", "mean", "green")


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
    if t == "homography":
        return align.warp(r, np.array(g["H"], dtype=np.float64).reshape(3, 3), shape, g["interp"])
    raise ValueError(f"unknown geometry {t}")


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
    h, w = tshape[:2]
    tc = tshape[2] if len(tshape) == 3 else 1
    r = colour_adapt(as3(ref), tc, desc["colour"])
    p = apply_geom(r, desc["geom"], (h, w))
    if p.shape != (h, w, tc):
        raise ValueError(f"prediction shape {p.shape} != target {(h, w, tc)}")
    if desc.get("lut"):
        lut = np.frombuffer(sections["lut"], dtype=np.uint8).reshape(tc, 256)
        p = apply_lut(p, lut)
    return p


def residual(t3: np.ndarray, p: np.ndarray) -> np.ndarray:
    # +128 centring: small errors of either sign stay near mid-grey instead of wrapping to 0/255
    return ((t3.astype(np.int16) - p + 128) & 255).astype(np.uint8)


def unresidual(res: np.ndarray, p: np.ndarray) -> np.ndarray:
    return ((res.astype(np.int16) + p - 128) & 255).astype(np.uint8)


def _cost(t3: np.ndarray, p: np.ndarray) -> float:
    """Cheap proxy of the coded residual size: mean |centred residual| on a 2x subsample."""
    d = t3[::2, ::2].astype(np.int16) - p[::2, ::2]
    d = ((d + 128) & 255) - 128
    return float(np.abs(d).mean())


def _payload_arr(res: np.ndarray) -> np.ndarray:
    return res[:, :, 0] if res.shape[2] == 1 else res


def search(target: np.ndarray, ref: np.ndarray, *, effort: int = 7, max_final: int = 2,
           timings: dict | None = None) -> list[tuple[dict, dict[str, bytes], bytes, str]]:
    """Inter candidates for ``target`` given ``ref``: list of (desc, sections, payload, label).

    Geometry is screened with a cheap proxy; the best few (with/without grey conversion and
    LUT) are coded with JPEG XL at ``effort``. The caller keeps the smallest.
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
        c = min(_cost(t3, p), _cost(t3, apply_lut(p, fit_lut(t3[::2, ::2], p[::2, ::2]))))
        scored.append((c, g))
        return c

    rh, rw = rb.shape[:2]
    best = float("inf")
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
            for lib, filters in (("cv", align.CV_INTERP), ("pil", align.PIL_FILTERS)):
                for f in filters:
                    best = min(best, score({"type": "resize", "k": k, "lib": lib, "filter": f}))
    timings["inter_exact"] = time.perf_counter() - t0
    if best > 0.01:
        t1 = time.perf_counter()
        H, inl = align.estimate_homography(features.to_grey(rb), features.to_grey(t3))
        timings["inter_align"] = time.perf_counter() - t1
        if H is not None:
            sh = align.as_integer_shift(H, (h, w))
            if sh is not None:
                best = min(best, score({"type": "shift", "dx": sh[0], "dy": sh[1]}))
            for interp in ("linear", "cubic", "lanczos"):
                best = min(best, score({"type": "homography", "H": [float(x) for x in H.ravel()],
                                        "interp": interp, "inliers": inl}))
    if not scored:
        return []
    scored.sort(key=lambda s: s[0])
    # Refine: colour variants and LUT on the best geometries, then code the best few for real.
    t2 = time.perf_counter()
    finals: list[tuple[float, dict, dict[str, bytes], np.ndarray]] = []
    for _, g in scored[:2]:
        for col in colours:
            r = rb if col == base_col else colour_adapt(r3, tc, col)
            p = apply_geom(r, g, (h, w))
            finals.append((_cost(t3, p), {"colour": col, "geom": g, "lut": False}, {}, p))
            lut = fit_lut(t3, p)
            if not np.array_equal(lut, np.tile(np.arange(256, dtype=np.uint8), (tc, 1))):
                pl = apply_lut(p, lut)
                finals.append((_cost(t3, pl), {"colour": col, "geom": g, "lut": True},
                               {"lut": lut.tobytes()}, pl))
    finals.sort(key=lambda f: f[0])
    out = []
    for _c, desc, sections, p in finals[:max_final]:
        res = residual(t3, p)
        payload = intra.encode_pixels(_payload_arr(res), effort)
        g = desc["geom"]
        label = f"inter:{g['type']}" + (f"/{g.get('interp') or g.get('filter')}" if g["type"] in ("homography", "resize") else "")
        label += ("+lut" if desc["lut"] else "") + ("" if desc["colour"] == "same" else f"+{desc['colour']}")
        out.append((desc, sections, payload, label))
    timings["inter_code"] = time.perf_counter() - t2
    return out


def reconstruct(desc: dict, sections: dict[str, bytes], payload: bytes, ref: np.ndarray,
                shape: tuple[int, ...]) -> np.ndarray:
    """Decoder: prediction + residual -> target pixels with the recorded shape."""
    p = predict(desc, sections, ref, shape)
    res = as3(intra.decode_pixels(payload, shape if len(shape) == 3 else shape[:2], "uint8"))
    t = unresidual(res, p)
    return t[:, :, 0] if len(shape) == 2 else t
