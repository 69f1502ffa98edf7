"""Helpers for the codec tests: a tiny independent PNG writer (imported by test modules)."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def png_chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def write_png(pixels: np.ndarray, bit_depth: int, color_type: int, *, interlace: int = 0,
              filters=None, params=(6, 8, 0, 15), idat_split: int = 0, palette: bytes | None = None,
              extra_chunks: list[tuple[bytes, bytes]] = ()) -> bytes:
    """Minimal independent PNG writer (any colour type/bit depth, Adam7, chosen filters/deflate)."""
    from codec import deflate as zd
    from codec.png import Header, filter_rows, pack_samples

    h, w = pixels.shape[:2]
    hdr = Header(w, h, bit_depth, color_type, interlace)
    img = pixels if pixels.ndim == 3 else pixels[:, :, None]
    rng = np.random.default_rng(0)
    parts = []
    for x0, y0, dx, dy, _pw, ph in hdr.passes():
        rows = pack_samples(img[y0::dy, x0::dx], bit_depth)
        ft = np.array(filters(ph, rng) if callable(filters) else [filters or 0] * ph, dtype=np.uint8)
        parts.append(filter_rows(rows, ft, hdr.bpp).tobytes())
    z = zd.compress(b"".join(parts), zd.DeflateParams(*params))
    out = [b"\x89PNG\r\n\x1a\n", png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, interlace))]
    if palette is not None:
        out.append(png_chunk(b"PLTE", palette))
    for ct, data in extra_chunks:
        out.append(png_chunk(ct, data))
    step = idat_split or len(z) or 1
    for i in range(0, max(1, len(z)), step):
        out.append(png_chunk(b"IDAT", z[i: i + step]))
    out.append(png_chunk(b"IEND", b""))
    return b"".join(out)
