"""Palette PNG targets for inter coding: indices <-> colours through the file's own PLTE chunk.

A photo's copy saved as a palette PNG (ImageMagick picks one for an image of <= 256 colours, pngquant
and web optimisers quantise to one) is predicted from its reference in colour, not in palette
indices (whose order means nothing). When every palette entry has its own colour, the colours give
the indices back exactly, so the inter residual is coded on the colours and the decoder maps them
back with the palette the blob keeps anyway (the recipe's PNG prefix holds the PLTE chunk).
"""

from __future__ import annotations

import struct

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def invertible(palette: np.ndarray | None) -> bool:
    """True when no two entries of the N x 3 palette share a colour (the colours name the indices)."""
    if palette is None or palette.ndim != 2 or palette.shape[1] != 3 or len(palette) == 0:
        return False
    return len(np.unique(_keys(palette))) == len(palette)


def expand(indices: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """H x W x 3 colours of H x W palette indices; ValueError for an index past the palette."""
    if indices.size and int(indices.max()) >= len(palette):
        raise ValueError("palette index past the end of the palette")
    return palette[indices]


def indices_of(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The H x W uint8 indices whose entries have these H x W x 3 colours; ValueError when a colour
    is in no entry (a damaged residual) or the palette is not invertible."""
    if not invertible(palette):
        raise ValueError("palette has repeated colours: its colours do not name its indices")
    keys = _keys(palette)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    want = _keys(colours.reshape(-1, 3))
    pos = np.clip(np.searchsorted(sorted_keys, want), 0, len(keys) - 1)
    if not np.array_equal(sorted_keys[pos], want):
        raise ValueError("decoded colours are not in the palette")
    return order[pos].astype(np.uint8).reshape(colours.shape[:2])


def from_prefix(prefix: bytes) -> np.ndarray | None:
    """The N x 3 palette of the PLTE chunk among the chunks of a PNG's bytes before its image data
    (the recipe's prefix), or None when there is none. Chunk CRCs were checked by the analysis that
    made the recipe, and the rebuilt file is checked against its hash after this."""
    pos = len(PNG_SIGNATURE) if prefix.startswith(PNG_SIGNATURE) else 0
    while pos + 8 <= len(prefix):
        (length,) = struct.unpack(">I", prefix[pos: pos + 4])
        ctype = prefix[pos + 4: pos + 8]
        if ctype == b"PLTE":
            data = prefix[pos + 8: pos + 8 + length]
            if len(data) != length or length % 3 or not 0 < length <= 768:
                return None
            return np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).copy()
        pos += 12 + length
    return None


def _keys(colours: np.ndarray) -> np.ndarray:
    c = colours.astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
