"""Geometry for inter prediction: exact dihedral ops, resizes, integer shifts, homography warps.

Every operation here is replayed by the decoder, so each must be deterministic for a given
library build (OpenCV/Pillow versions are recorded in the blob; the rebuilt file hash catches
any drift and the blob is then reported corrupt rather than served wrong).
"""

from __future__ import annotations

import numpy as np

from . import features

CV_INTERP = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos": 4, "linear_exact": 5}
PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5}


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 exact rotations/flips: bit 2 = transpose first, bits 0-1 = quarter turns."""
    if k & 4:
        a = a.swapaxes(0, 1)
    return np.ascontiguousarray(np.rot90(a, k & 3))


def resize(a: np.ndarray, size: tuple[int, int], lib: str, filt: str) -> np.ndarray:
    """Resize an H x W x C uint8 array to size=(w, h) with a named library filter."""
    w, h = size
    if lib == "cv":
        import cv2

        out = cv2.resize(a, (w, h), interpolation=CV_INTERP[filt])
        return out.reshape(h, w, a.shape[2])
    from PIL import Image

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a, mode=mode)
    out = np.asarray(im.resize((w, h), resample=PIL_FILTERS[filt]))
    return out.reshape(h, w, a.shape[2])


def shift(a: np.ndarray, shape: tuple[int, int], dx: int, dy: int, fill: int = 128) -> np.ndarray:
    """Prediction p(x, y) = a(x + dx, y + dy); uncovered pixels get ``fill``."""
    h, w = shape
    out = np.full((h, w, a.shape[2]), fill, dtype=a.dtype)
    ys, xs = max(0, -dy), max(0, -dx)
    ye, xe = min(h, a.shape[0] - dy), min(w, a.shape[1] - dx)
    if ye > ys and xe > xs:
        out[ys:ye, xs:xe] = a[ys + dy: ye + dy, xs + dx: xe + dx]
    return out


def warp(a: np.ndarray, H: np.ndarray, shape: tuple[int, int], interp: str, fill: int = 128) -> np.ndarray:
    """Warp reference ``a`` by homography H (reference -> target pixel coordinates)."""
    import cv2

    h, w = shape
    c = a.shape[2]
    out = cv2.warpPerspective(
        a if c > 1 else a[:, :, 0], H, (w, h), flags=CV_INTERP[interp],
        borderMode=cv2.BORDER_CONSTANT, borderValue=(fill,) * 4,
    )
    return out.reshape(h, w, c)


def affine(a: np.ndarray, M: np.ndarray, shape: tuple[int, int], interp: str, fill: int) -> np.ndarray:
    """cv2.warpAffine replay (how many tools rotate/scale about the centre)."""
    import cv2

    h, w = shape
    c = a.shape[2]
    out = cv2.warpAffine(a if c > 1 else a[:, :, 0], M, (w, h), flags=CV_INTERP[interp],
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(fill,) * 4)
    return out.reshape(h, w, c)


def pil_rotate(a: np.ndarray, angle: float, resample: int, fill: int) -> np.ndarray:
    """Pillow's Image.rotate (about the centre, same canvas), as many scripts make rotated copies."""
    from PIL import Image

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[a.shape[2]]
    im = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a, mode=mode)
    fc = fill if a.shape[2] == 1 else (fill,) * a.shape[2]
    return np.asarray(im.rotate(angle, resample=Image.Resampling(resample), fillcolor=fc)).reshape(a.shape)


def scale_paste(a: np.ndarray, shape: tuple[int, int], size: tuple[int, int], lib: str, filt: str,
                dx: int, dy: int, fill: int) -> np.ndarray:
    """Resize to ``size`` then paste at (dx, dy) on a ``fill`` canvas (scaled-about-centre copies)."""
    r = resize(a, size, lib, filt)
    return shift(r, shape, -dx, -dy, fill)


def snap_similarity(H: np.ndarray) -> tuple[float, float] | None:
    """(angle in degrees, scale) of H if it is a similarity transform, else None."""
    if abs(H[2, 0]) > 1e-4 or abs(H[2, 1]) > 1e-4:
        return None
    A = H[:2, :2]
    s = float(np.sqrt(abs(np.linalg.det(A))))
    if s <= 0:
        return None
    return float(np.degrees(np.arctan2(A[0, 1], A[0, 0]))), s


def snapped_affines(H: np.ndarray, ref_shape: tuple[int, int]) -> list[list[float]]:
    """Exact rotation/scale-about-centre matrices near H (cv2.getRotationMatrix2D conventions).

    An estimated H is only accurate to ~0.1 px; tools generate their edits from round angles and
    scales, so replaying the snapped matrix can predict the copy exactly.
    """
    import cv2

    if abs(H[2, 0]) > 1e-4 or abs(H[2, 1]) > 1e-4:
        return []
    A = H[:2, :2]
    s = float(np.sqrt(abs(np.linalg.det(A))))
    theta = float(np.degrees(np.arctan2(A[0, 1], A[0, 0])))
    if s <= 0:
        return []
    rh, rw = ref_shape
    out = []
    for ang in {round(theta), round(theta * 2) / 2}:
        for sc in {round(s, 2), round(s * 20) / 20}:
            for cx, cy in ((rw / 2, rh / 2), ((rw - 1) / 2, (rh - 1) / 2)):
                M = cv2.getRotationMatrix2D((cx, cy), ang, sc)
                # keep only matrices that agree with the estimate (translation within a few px)
                if np.abs(M[:, 2] - H[:2, 2]).max() < 4 + 0.01 * max(rh, rw):
                    out.append([float(x) for x in M.ravel()])
    return out


def estimate_homographies(ref_grey: np.ndarray, tgt_grey: np.ndarray, min_inliers: int = 12,
                          max_models: int = 2) -> list[tuple[np.ndarray, int]]:
    """SIFT + ratio test + RANSAC at a working scale, scaled back to full resolution.

    Returns up to ``max_models`` (H mapping reference -> target, inlier count), best first: after
    the dominant plane, RANSAC runs again on the outliers to find a second region (another plane,
    an independently moved object) whose pixels one homography does not fit.
    """
    import cv2

    r, sr = features.downscale(ref_grey)
    t, st = features.downscale(tgt_grey)
    pr, dr = features.detect(r)
    pt, dt = features.detect(t)
    m = features.match(dr, dt)
    src = pr[m[:, 0]] / sr if len(m) else np.zeros((0, 2))
    dst = pt[m[:, 1]] / st if len(m) else np.zeros((0, 2))
    thr = 2.0 / min(sr, st)
    models: list[tuple[np.ndarray, int]] = []
    while len(models) < max_models and len(src) >= min_inliers:
        H, mask = cv2.findHomography(src, dst, cv2.RANSAC, thr, maxIters=5000, confidence=0.999)
        if H is None:
            break
        sel = mask.ravel().astype(bool)
        if sel.sum() < min_inliers:
            break
        # Least-squares refit on the inliers (full-resolution coordinates) for sub-pixel accuracy.
        H2, _ = cv2.findHomography(src[sel], dst[sel], 0)
        if H2 is not None:
            H = H2
        if abs(H[2, 2]) < 1e-12:
            break
        models.append((H / H[2, 2], int(sel.sum())))
        src, dst = src[~sel], dst[~sel]
    return models


def estimate_homography(ref_grey: np.ndarray, tgt_grey: np.ndarray, min_inliers: int = 12):
    """The dominant homography (reference -> target) and its inlier count, or (None, 0)."""
    models = estimate_homographies(ref_grey, tgt_grey, min_inliers, max_models=1)
    return models[0] if models else (None, 0)


def find_crop(ref_grey: np.ndarray, tgt_grey: np.ndarray, side: int = 400) -> tuple[int, int] | None:
    """Integer offset (dx, dy) of a crop: tgt(x, y) ~= ref(x + dx, y + dy), by template matching.

    Works where keypoints do not (flat or low-texture images): coarse search on downscaled images,
    then an exact full-resolution search of a central patch around the coarse position.
    """
    import cv2

    rh, rw = ref_grey.shape
    th, tw = tgt_grey.shape
    if th > rh or tw > rw or (th, tw) == (rh, rw):
        return None
    s = min(1.0, side / max(rh, rw))
    rs = cv2.resize(ref_grey, (max(1, round(rw * s)), max(1, round(rh * s))), interpolation=cv2.INTER_AREA)
    ts = cv2.resize(tgt_grey, (max(1, round(tw * s)), max(1, round(th * s))), interpolation=cv2.INTER_AREA)
    if ts.shape[0] < 4 or ts.shape[1] < 4 or ts.shape[0] > rs.shape[0] or ts.shape[1] > rs.shape[1]:
        return None
    res = cv2.matchTemplate(rs.astype(np.float32), ts.astype(np.float32), cv2.TM_SQDIFF)
    _, _, (xs, ys), _ = cv2.minMaxLoc(res)
    ph, pw = min(th, 128), min(tw, 128)
    cy, cx = (th - ph) // 2, (tw - pw) // 2
    patch = tgt_grey[cy: cy + ph, cx: cx + pw].astype(np.float32)
    margin = int(np.ceil(2 / s)) + 2
    ex, ey = round(xs / s) + cx, round(ys / s) + cy  # expected patch position in the reference
    x0, y0 = max(0, ex - margin), max(0, ey - margin)
    x1, y1 = min(rw, ex + pw + margin), min(rh, ey + ph + margin)
    roi = ref_grey[y0:y1, x0:x1].astype(np.float32)
    if roi.shape[0] < ph or roi.shape[1] < pw:
        return None
    res = cv2.matchTemplate(roi, patch, cv2.TM_SQDIFF)
    _, _, (bx, by), _ = cv2.minMaxLoc(res)
    return int(x0 + bx - cx), int(y0 + by - cy)


def as_integer_shift(H: np.ndarray, shape_t: tuple[int, int], tol: float = 0.25) -> tuple[int, int] | None:
    """(dx, dy) if H moves every target corner by the same integer offset (within tol px)."""
    h, w = shape_t
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64)
    Hi = np.linalg.inv(H)
    pts = np.c_[corners, np.ones(4)] @ Hi.T
    src = pts[:, :2] / pts[:, 2:3]
    d = src - corners
    dx, dy = np.round(d.mean(axis=0))
    if np.abs(d - [dx, dy]).max() <= tol:
        return int(dx), int(dy)
    return None
