"""PNG container level: chunk parsing, IHDR rules, scanline (un)filtering, Adam7, bit packing."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"

# colour type -> (channels, allowed bit depths)
COLOR_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),  # grey
    2: (3, (8, 16)),  # RGB
    3: (1, (1, 2, 4, 8)),  # palette
    4: (2, (8, 16)),  # grey + alpha
    6: (4, (8, 16)),  # RGBA
}

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


class PngError(Exception):
    """The file is not a PNG we can rebuild; the message is the user-facing reason."""


@dataclass
class Chunk:
    type: bytes
    offset: int  # offset of the length field
    length: int
    crc_ok: bool

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    bit_depth: int
    color_type: int
    interlace: int

    @property
    def channels(self) -> int:
        return COLOR_TYPES[self.color_type][0]

    @property
    def bits_per_pixel(self) -> int:
        return self.channels * self.bit_depth

    @property
    def bpp(self) -> int:
        """Filter distance in bytes (at least 1)."""
        return max(1, self.bits_per_pixel // 8)

    def row_bytes(self, width: int) -> int:
        return (width * self.bits_per_pixel + 7) // 8

    def passes(self) -> list[tuple[int, int, int, int, int, int]]:
        """(x0, y0, dx, dy, pass_width, pass_height) for every non-empty pass."""
        if self.interlace == 0:
            return [(0, 0, 1, 1, self.width, self.height)]
        out = []
        for x0, y0, dx, dy in ADAM7:
            pw = (self.width - x0 + dx - 1) // dx if self.width > x0 else 0
            ph = (self.height - y0 + dy - 1) // dy if self.height > y0 else 0
            if pw and ph:
                out.append((x0, y0, dx, dy, pw, ph))
        return out

    def raw_size(self) -> int:
        """Size of the inflated (filtered) image data: one filter byte + row bytes per row."""
        return sum(ph * (1 + self.row_bytes(pw)) for _, _, _, _, pw, ph in self.passes())

    def n_rows(self) -> int:
        return sum(ph for *_, ph in self.passes())


def side_bytes(data: bytes) -> int:
    """Bytes of a PNG outside its IDAT chunks' data (chunk headers walked, nothing read); 0 if not a PNG."""
    if not data.startswith(SIGNATURE):
        return 0
    pos, n, idat = len(SIGNATURE), len(data), 0
    while pos + 12 <= n:
        length, ctype = struct.unpack(">I4s", data[pos: pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            break
        if ctype == b"IDAT":
            idat += length
        pos += 12 + length
        if ctype == b"IEND":
            break
    return n - idat


PIXEL_CHUNKS = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")


def pixel_chunks_only(data: bytes) -> bytes:
    """The PNG with only the chunks that define its pixels (for decoders that would read, and hold,
    every ancillary chunk: Pillow reads unknown ones whole to skip them)."""
    out = [SIGNATURE]
    pos, n = len(SIGNATURE), len(data)
    while pos + 12 <= n:
        length, ctype = struct.unpack(">I4s", data[pos: pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            break
        if ctype in PIXEL_CHUNKS:
            out.append(data[pos: pos + 12 + length])
        pos += 12 + length
        if ctype == b"IEND":
            break
    return b"".join(out)


def parse_chunks(data: bytes) -> tuple[list[Chunk], int]:
    """Split a PNG into chunks. Returns (chunks, offset where parsing stopped).

    Parsing stops after IEND or at the first chunk that does not fit in the file; whatever
    follows is kept verbatim by the recipe.
    """
    if not data.startswith(SIGNATURE):
        raise PngError("not a PNG (bad signature)")
    chunks: list[Chunk] = []
    pos = len(SIGNATURE)
    n = len(data)
    while pos + 12 <= n:
        length, ctype = struct.unpack(">I4s", data[pos: pos + 8])
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            break  # truncated or absurd length: rest of the file is opaque
        crc = struct.unpack(">I", data[pos + 8 + length: pos + 12 + length])[0]
        crc_ok = zlib.crc32(memoryview(data)[pos + 4: pos + 8 + length]) == crc  # no copy of a huge chunk
        chunks.append(Chunk(ctype, pos, length, crc_ok))
        pos += 12 + length
        if ctype == b"IEND":
            break
    return chunks, pos


def parse_header(data: bytes, chunks: list[Chunk]) -> Header:
    if not chunks or chunks[0].type != b"IHDR":
        raise PngError("first chunk is not IHDR")
    c = chunks[0]
    if c.length != 13:
        raise PngError("bad IHDR length")
    if not c.crc_ok:
        raise PngError("bad CRC in IHDR")
    w, h, bd, ct, comp, filt, il = struct.unpack(">IIBBBBB", data[c.data_offset: c.data_offset + 13])
    if w == 0 or h == 0 or w > 0x7FFFFFFF or h > 0x7FFFFFFF:
        raise PngError("bad image size in IHDR")
    if ct not in COLOR_TYPES or bd not in COLOR_TYPES[ct][1]:
        raise PngError(f"invalid colour type/bit depth {ct}/{bd}")
    if comp != 0 or filt != 0 or il not in (0, 1):
        raise PngError("invalid compression/filter/interlace method in IHDR")
    return Header(w, h, bd, ct, il)


# ---------------------------------------------------------------------------------------------
# Scanline filters. Filtering (used on every rebuild) is vectorised over rows with numpy.
# Unfiltering is sequential within a row (Avg, Paeth), so it is delegated to OpenCV's PNG decoder
# (C code) on a synthetic PNG with the same byte-per-pixel distance: filters work on bytes, so
# the bytes come back unchanged whatever the original pixel format was.


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    pa = np.abs(b16 - c16)
    pb = np.abs(a16 - c16)
    pc = np.abs(a16 + b16 - 2 * c16)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def filter_rows(rows: np.ndarray, ftypes: np.ndarray, bpp: int, prev: np.ndarray | None = None) -> np.ndarray:
    """Apply per-row filter types to unfiltered rows (H x R uint8) -> H x (1+R) filtered stream.

    ``prev`` is the unfiltered row just above ``rows`` (None for the first row of a pass).
    """
    h, r = rows.shape
    out = np.empty((h, r + 1), dtype=np.uint8)
    out[:, 0] = ftypes
    if h == 0 or r == 0:
        return out
    up = np.empty_like(rows)
    up[0] = 0 if prev is None else prev
    up[1:] = rows[:-1]
    for f in np.unique(ftypes):
        idx = np.nonzero(ftypes == f)[0]
        x = rows[idx]
        if f == 0:
            out[idx, 1:] = x
            continue
        left = np.zeros_like(x)
        left[:, bpp:] = x[:, :-bpp] if r > bpp else left[:, bpp:]
        if f == 1:
            out[idx, 1:] = x - left
        elif f == 2:
            out[idx, 1:] = x - up[idx]
        elif f == 3:
            avg = ((left.astype(np.uint16) + up[idx]) >> 1).astype(np.uint8)
            out[idx, 1:] = x - avg
        elif f == 4:
            u = up[idx]
            ul = np.zeros_like(u)
            ul[:, bpp:] = u[:, :-bpp] if r > bpp else ul[:, bpp:]
            out[idx, 1:] = x - _paeth(left, u, ul)
        else:
            raise PngError(f"invalid filter type {int(f)}")
    return out


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


# synthetic 8/16-bit formats with the given filter distance: bpp -> (colour type, bit depth, samples)
_SYNTH = {1: (0, 8, 1), 2: (0, 16, 1), 3: (2, 8, 3), 4: (6, 8, 4), 6: (2, 16, 3), 8: (6, 16, 4)}


def unfilter(stream: bytes, rows: int, row_bytes: int, bpp: int) -> np.ndarray:
    """Undo PNG filtering of ``rows`` scanlines -> rows x row_bytes uint8."""
    if rows == 0 or row_bytes == 0:
        return np.zeros((rows, row_bytes), dtype=np.uint8)
    ftypes = np.frombuffer(stream, dtype=np.uint8).reshape(rows, row_bytes + 1)[:, 0]
    if (ftypes > 4).any():
        raise PngError("invalid filter type")
    if (ftypes == 0).all():
        return np.frombuffer(stream, dtype=np.uint8).reshape(rows, row_bytes + 1)[:, 1:].copy()
    import cv2

    ct, bd, spp = _SYNTH[bpp]
    width = row_bytes // bpp
    ihdr = struct.pack(">IIBBBBB", width, rows, bd, ct, 0, 0, 0)
    png = SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(stream, 0)) + _chunk(b"IEND", b"")
    img = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise PngError("scanline unfiltering failed")
    if img.ndim == 3:
        if spp == 3:
            img = img[:, :, ::-1]
        elif spp == 4:
            img = img[:, :, [2, 1, 0, 3]]
    if bd == 16:
        img = img.astype(">u2")
    out = np.ascontiguousarray(img).view(np.uint8).reshape(rows, row_bytes)
    return out


def unpack_samples(rows: np.ndarray, width: int, bit_depth: int, channels: int) -> np.ndarray:
    """Unfiltered row bytes -> samples (H x W x C, uint8 or uint16)."""
    h = rows.shape[0]
    if bit_depth == 8:
        return rows[:, : width * channels].reshape(h, width, channels)
    if bit_depth == 16:
        return rows[:, : width * channels * 2].copy().view(">u2").astype(np.uint16).reshape(h, width, channels)
    bits = np.unpackbits(rows, axis=1)  # MSB first, as PNG packs
    per = 8 // bit_depth
    bits = bits[:, : width * bit_depth].reshape(h, width, bit_depth)
    weights = (1 << np.arange(bit_depth - 1, -1, -1)).astype(np.uint8)
    vals = (bits * weights).sum(axis=2, dtype=np.uint8)
    del per
    return vals.reshape(h, width, 1)


def pack_samples(samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """Samples (H x W x C) -> unfiltered row bytes (H x R uint8); padding bits are zero."""
    h, w, c = samples.shape
    if bit_depth == 8:
        return np.ascontiguousarray(samples, dtype=np.uint8).reshape(h, w * c)
    if bit_depth == 16:
        return np.ascontiguousarray(samples.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    v = samples.reshape(h, w).astype(np.uint8)
    shifts = np.arange(bit_depth - 1, -1, -1, dtype=np.uint8)
    bits = ((v[:, :, None] >> shifts) & 1).astype(np.uint8).reshape(h, w * bit_depth)
    return np.packbits(bits, axis=1)
