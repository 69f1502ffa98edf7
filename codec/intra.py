"""Intra coding: pixels losslessly as JPEG XL (libjxl through imagecodecs)."""

from __future__ import annotations

import numpy as np

DEFAULT_EFFORT = 7


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
    return bytes(_jxl().jpegxl_encode(arr, lossless=True, effort=int(effort), numthreads=2))


def decode_pixels(payload: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Decode a JPEG XL payload and check it has the recorded shape and dtype."""
    arr = _jxl().jpegxl_decode(payload, numthreads=2)
    if arr.ndim == 3 and len(shape) == 2 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if tuple(arr.shape) != tuple(shape) or arr.dtype != np.dtype(dtype):
        raise ValueError(f"JPEG XL payload decoded to {arr.shape} {arr.dtype}, expected {shape} {dtype}")
    return arr
