"""Binary global code: TEBLID descriptors -> local PCA -> VLAD -> PCA-256 -> ITQ bits; thumbnail code for low texture."""

from __future__ import annotations

import functools
from importlib import resources

import cv2
import numpy as np

PARAMS_FILE = "global_code_v1.npz"
CODE_BITS = 256
LOCAL_DIM = 64  # TEBLID bits are projected to 64 dims before VLAD: keeps the shipped matrices ~1 MB
N_CLUSTERS = 32

# Low-texture code: a 4x4 colour thumbnail, each of its 48 values compared against 5 fixed pseudo-random
# thresholds (240 bits: absolute colour and layout, so flat images of different colours and gradients
# of different directions differ), plus 16 bits of the 4x4 grey layout against its mean. A mean-relative
# hash alone would give every flat image the same code.
_THUMB_THRESHOLDS = np.random.default_rng(20261121).uniform(16, 240, size=(48, 5)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def params() -> dict[str, np.ndarray]:
    with resources.files(__package__).joinpath(PARAMS_FILE).open("rb") as f:
        z = np.load(f)
        return {k: np.ascontiguousarray(z[k], dtype=np.float32) for k in z.files}


def _unpack(desc: np.ndarray) -> np.ndarray:
    return np.unpackbits(np.ascontiguousarray(desc, dtype=np.uint8), axis=1).astype(np.float32)


def vlad(desc: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Intra-normalised, power-normalised VLAD of binary descriptors (n,32) -> float32 (N_CLUSTERS*LOCAL_DIM,)."""
    x = (_unpack(desc) - p["local_mean"]) @ p["local_proj"]
    c = p["centroids"]
    d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
    assign = d2.argmin(1)
    v = np.zeros_like(c)
    np.add.at(v, assign, x - c[assign])
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.where(norms > 0, v / np.maximum(norms, 1e-12), 0).ravel()
    v = np.sign(v) * np.sqrt(np.abs(v))
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def project(v: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """VLAD vector(s) -> rotated PCA coordinates (the signs are the code bits)."""
    return ((v - p["pca_mean"]) @ p["pca_proj"]) @ p["itq_rot"]


def encode(desc: np.ndarray) -> bytes:
    p = params()
    z = project(vlad(desc, p), p)
    return np.packbits(z > 0).tobytes()


def thumbnail_code(thumb: np.ndarray) -> bytes:
    """256-bit code of a (4, 4, 3) float colour thumbnail (see colour_thumbnail)."""
    t = np.asarray(thumb, np.float32).reshape(48)
    grey = np.asarray(thumb, np.float32).mean(axis=2).ravel()
    # the +2 margin keeps flat images' layout bits at 0 instead of flipping on noise
    bits = np.concatenate([(t[:, None] > _THUMB_THRESHOLDS).ravel(), grey > grey.mean() + 2.0])
    return np.packbits(bits).tobytes()


def colour_thumbnail(pixels: np.ndarray) -> np.ndarray:
    """(4, 4, 3) float32 thumbnail in 0..255 of any HxW[xC] uint8/uint16 image (bounded cost)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w = a.shape[:2]
    step = max(1, max(h, w) // 256)
    a = a[::step, ::step].astype(np.float32)
    if pixels.dtype == np.uint16:
        a *= np.float32(1 / 257)
    c = a.shape[2]
    a = np.repeat(a[:, :, :1], 3, axis=2) if c < 3 else a[:, :, :3]
    return cv2.resize(np.ascontiguousarray(a), (4, 4), interpolation=cv2.INTER_AREA).reshape(4, 4, 3)


# ---- training (used by scripts/train_global_code.py) ----

def kmeans(x: np.ndarray, k: int, iters: int = 25, seed: int = 0) -> np.ndarray:
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, iters, 1e-4)
    cv2.setRNGSeed(seed)
    _, _, centers = cv2.kmeans(x.astype(np.float32), k, None, crit, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]  # bestLabels=None is valid; the stubs disagree
    return centers


def pca(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / max(1, len(x) - 1)
    w, v = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1][:dim]
    return mean.astype(np.float32), v[:, order].astype(np.float32)


def itq(v: np.ndarray, iters: int = 50, seed: int = 0) -> np.ndarray:
    """Iterative quantisation (Gong & Lazebnik): rotation minimising the binarisation error of v (n,d)."""
    rng = np.random.default_rng(seed)
    r, _ = np.linalg.qr(rng.standard_normal((v.shape[1], v.shape[1])))
    for _ in range(iters):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        u, _, wt = np.linalg.svd(b.T @ v)
        r = (u @ wt).T
    return r.astype(np.float32)


def train(desc_per_image: list[np.ndarray], *, sample_per_image: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sample = np.concatenate([
        d[rng.choice(len(d), min(len(d), sample_per_image), replace=False)] for d in desc_per_image
    ])
    bits = _unpack(sample)
    local_mean, local_proj = pca(bits, LOCAL_DIM)
    x = (bits - local_mean) @ local_proj
    centroids = kmeans(x, N_CLUSTERS, seed=seed)
    p = {"local_mean": local_mean, "local_proj": local_proj, "centroids": centroids}
    vl = np.stack([vlad(d, p) for d in desc_per_image])
    pca_mean, pca_proj = pca(vl, CODE_BITS)
    y = (vl - pca_mean) @ pca_proj
    p.update(pca_mean=pca_mean, pca_proj=pca_proj, itq_rot=itq(y, seed=seed))
    return p
