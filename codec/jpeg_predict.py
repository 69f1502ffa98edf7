"""The quantized JPEG coefficients an encoder would give a predicted picture, in integer arithmetic only.

An edited copy that was saved as a JPEG (flipped, rotated, turned grey, re-saved) has coefficients
close to those of its reference transformed the same way and quantized with the copy's own tables.
The inter-JPEG coding stores only the difference, so the decoder must compute exactly the same
prediction on every machine: colour conversion (libjpeg's jccolor.c fixed point), chroma
downsampling (jcsample.c, with its alternating bias) and the forward DCT (an integer matrix scaled by
2^12; numpy's integer matmul is exact, unlike a float one whose rounding depends on the BLAS build)
are all integers. Matching libjpeg's own forward DCT bit for bit is not needed: a coefficient that
rounds the other way only costs a few bits in the difference planes.
"""

from __future__ import annotations

import numpy as np

from . import jpeg_decoder as jd

_SCALE_BITS = 16
_ONE_HALF = 1 << (_SCALE_BITS - 1)
_CBCR_OFFSET = 128 << _SCALE_BITS


def _fix(x: float) -> int:
    return int(x * (1 << _SCALE_BITS) + 0.5)


def _dct_int_matrix() -> np.ndarray:
    m = np.zeros((8, 8), dtype=np.int64)
    for u in range(8):
        c = np.sqrt(0.5) if u == 0 else 1.0
        for x in range(8):
            m[u, x] = int(round(c / 2 * np.cos((2 * x + 1) * u * np.pi / 16) * (1 << DCT_BITS)))
    return m


DCT_BITS = 12
_MI = _dct_int_matrix()  # fixed at import from exact constants rounded to integers: the same everywhere
COEF_LIMIT = 2047


def rgb_to_ycc(rgb: np.ndarray) -> list[np.ndarray]:
    """jccolor.c's RGB -> Y, Cb, Cr (integer, rounded as libjpeg rounds). int32 holds every sum
    (at most 2^16 * 255 + 2^23 + 2^15 < 2^31), so the result is the int64 one, faster."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    y = (_fix(0.29900) * r + _fix(0.58700) * g + _fix(0.11400) * b + _ONE_HALF) >> _SCALE_BITS
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALE_BITS
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + _CBCR_OFFSET + _ONE_HALF - 1) >> _SCALE_BITS
    return [y, cb, cr]


def downsample(plane: np.ndarray, hs: int, vs: int) -> np.ndarray:
    """jcsample.c's h2v1 / h2v2 downsampling (box average with an alternating rounding bias), after
    replicating the right and bottom edges to whole sampling cells."""
    if hs == 1 and vs == 1:
        return plane
    h, w = plane.shape
    ch, cw = -(-h // vs), -(-w // hs)
    p = np.pad(plane, ((0, ch * vs - h), (0, cw * hs - w)), mode="edge").astype(np.int64)
    cells = p.reshape(ch, vs, cw, hs).sum(axis=(1, 3))
    if vs == 2:
        bias = np.tile(np.array([1, 2], dtype=np.int64), -(-cw // 2))[:cw]
        return (cells + bias) >> 2
    bias = np.tile(np.array([0, 1], dtype=np.int64), -(-cw // 2))[:cw]
    return (cells + bias) >> 1


_MF = _MI.astype(np.float64)


def fdct_int(blocks: np.ndarray) -> np.ndarray:
    """N x 8 x 8 level-shifted integer samples -> DCT coefficients scaled by 2^(2 * DCT_BITS), exact.
    Two float64 matrix products over all blocks at once: with samples in [-255, 255] and matrix
    entries below 2^11 every product and partial sum is an integer below 2^36, which float64 holds
    exactly whatever the summation order or FMA (so every BLAS gives the int64 result)."""
    b = np.asarray(blocks)
    if b.size and int(np.abs(b).max()) > 255:  # not samples: the plain integer products
        b64 = b.astype(np.int64)
        return np.matmul(np.matmul(_MI, b64), _MI.T)
    n = len(b)
    cols = _MF @ b.astype(np.float64).transpose(1, 0, 2).reshape(8, n * 8)  # [u, (block, x)]
    rows = cols.reshape(8, n, 8).transpose(1, 0, 2).reshape(n * 8, 8) @ _MF.T  # [(block, u), v]
    return rows.reshape(n, 8, 8).astype(np.int64)


def quantize(scaled: np.ndarray, qt: np.ndarray) -> np.ndarray:
    """Scaled DCT coefficients / table, rounded half away from zero, clipped to the 12-bit range."""
    den = qt.astype(np.int64).reshape(1, 8, 8) << (2 * DCT_BITS)
    q = (np.abs(scaled) + den // 2) // den
    return np.clip(np.where(scaled < 0, -q, q), -COEF_LIMIT, COEF_LIMIT)


def _blocks(plane: np.ndarray, bh: int, bw: int) -> np.ndarray:
    h, w = plane.shape
    p = np.pad(plane, ((0, max(0, 8 * bh - h)), (0, max(0, 8 * bw - w))), mode="edge")[: 8 * bh, : 8 * bw]
    return jd.plane_to_blocks(p)


def predicted_coefficients(pixels: np.ndarray, qts: list[np.ndarray], sampling: tuple[int, int]) -> list[np.ndarray]:
    """Per component, the N x 8 x 8 quantized coefficients of ``pixels`` (H x W grey or H x W x 3)
    coded with ``qts`` and ``sampling``, in the block layout of jpeg_decoder."""
    h, w = pixels.shape[:2]
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1):
        planes = [pixels.reshape(h, w).astype(np.int64)]
    else:
        planes = rgb_to_ycc(pixels)
    out = []
    for ci, plane in enumerate(planes):
        if ci > 0:
            plane = downsample(plane, sampling[0], sampling[1])
        bh, bw = jd.blocks_shape(h, w, ci, sampling)
        out.append(quantize(fdct_int(_blocks(plane, bh, bw) - 128), qts[min(ci, len(qts) - 1)]))
    return out
