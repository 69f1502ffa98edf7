"""Keypoints and matching for inter coding: SIFT on a downscaled grey image, ratio test."""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

WORK_SIDE = 1024  # features are computed at most at this size: enough for sub-pixel H after scaling


def to_grey(img: np.ndarray) -> np.ndarray:
    """uint8 H x W x C (or H x W) -> H x W uint8 luminance (for alignment only, not for coding)."""
    if img.ndim == 2:
        return img
    c = img.shape[2]
    if c in (1, 2):
        return np.ascontiguousarray(img[:, :, 0])
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_RGB2GRAY)


def downscale(grey: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """Return (image, s) with image ~= grey scaled by s (s <= 1)."""
    import cv2

    h, w = grey.shape
    s = min(1.0, side / max(h, w))
    if s >= 1.0:
        return grey, 1.0
    out = cv2.resize(grey, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return out, s


# Recent detections by image content: an encoder codes each photo against several references and
# the next photo of a burst against this one, so the same image is detected again and again.
# SIFT is deterministic, so a hit returns exactly what a new detection would. ~2 MB per entry.
_DETECTED: OrderedDict[bytes, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
DETECT_CACHE = 8


def detect(grey: np.ndarray, nfeatures: int = 4000):
    import cv2

    g = np.ascontiguousarray(grey)
    h = hashlib.blake2b(repr((g.shape, g.dtype.str, nfeatures)).encode(), digest_size=16)
    h.update(g.data)
    key = h.digest()
    hit = _DETECTED.get(key)
    if hit is not None:
        _DETECTED.move_to_end(key)
        return hit
    sift = cv2.SIFT_create(nfeatures=nfeatures)  # type: ignore[attr-defined]
    kps, desc = sift.detectAndCompute(g, None)
    pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
    pts.flags.writeable = False  # shared by every caller that gets it from the cache
    if desc is not None:
        desc.flags.writeable = False
    _DETECTED[key] = (pts, desc)
    while len(_DETECTED) > DETECT_CACHE:
        _DETECTED.popitem(last=False)
    return pts, desc


def match(desc_a, desc_b, ratio: float = 0.8) -> np.ndarray:
    """Index pairs (i in a, j in b) passing Lowe's ratio test."""
    import cv2

    if desc_a is None or desc_b is None or len(desc_a) < 2 or len(desc_b) < 2:
        return np.zeros((0, 2), dtype=np.int32)
    bf = cv2.BFMatcher(cv2.NORM_L2)
    pairs = []
    for m in bf.knnMatch(desc_a, desc_b, k=2):
        if len(m) == 2 and m[0].distance < ratio * m[1].distance:
            pairs.append((m[0].queryIdx, m[0].trainIdx))
    return np.array(pairs, dtype=np.int32).reshape(-1, 2)
