"""Intra coding: pixels losslessly as JPEG XL (libjxl through imagecodecs)."""

from __future__ import annotations

import os

import numpy as np

DEFAULT_EFFORT = 7
# libjxl's thread pool: decoding a 12 MP effort-7 payload takes 2.2 s on one thread, 1.05 s on two.
THREADS = max(1, min(8, os.cpu_count() or 1))


def _jxl():
    import imagecodecs

    if not imagecodecs.JPEGXL.available:  # pragma: no cover - depends on the wheel
        raise RuntimeError("imagecodecs was built without JPEG XL")
    return imagecodecs


def encode_pixels(pixels: np.ndarray, effort: int = DEFAULT_EFFORT) -> bytes:
    """Lossless JPEG XL of an H x W (grey, palette indices) or H x W x C (C = 2, 3, 4) array."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"unsupported dtype {pixels.dtype}")
    arr = np.ascontiguousarray(pixels)
    out = bytes(_jxl().jpegxl_encode(arr, lossless=True, effort=int(effort), numthreads=THREADS))
    if int(effort) == 1:
        # Effort 1 is libjxl's separate fast-lossless encoder, which has produced payloads that decode
        # to other pixels (libjxl#2039, #2281; seen here on a 10x17 residual with imagecodecs
        # 2026.3.6). Its decode is cheap (~0.03 CPU s per MP), so check and fall back to effort 2.
        try:
            same = np.array_equal(decode_pixels(out, arr.shape, arr.dtype.name), pixels)
        except Exception:
            same = False
        if not same:
            out = bytes(_jxl().jpegxl_encode(arr, lossless=True, effort=2, numthreads=THREADS))
    return out


def decode_pixels(payload: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Decode a JPEG XL payload and check it has the recorded shape and dtype."""
    arr = _jxl().jpegxl_decode(payload, numthreads=THREADS)
    if arr.ndim == 3 and len(shape) == 2 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if tuple(arr.shape) != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise ValueError(f"JPEG XL payload decoded to {arr.shape} {arr.dtype}, expected {shape} {dtype}")
    return arr


def recode(payload: bytes, shape: tuple[int, ...], dtype: str, effort: int) -> bytes | None:
    """``payload`` re-encoded at ``effort`` when that is smaller and decodes to the same pixels, else None."""
    old = decode_pixels(payload, shape, dtype)
    new = encode_pixels(old, effort)
    if len(new) >= len(payload) or not np.array_equal(decode_pixels(new, shape, dtype), old):
        return None
    return new
