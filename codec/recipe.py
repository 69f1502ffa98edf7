"""PNG recipe: split a PNG into pixels + what is needed to rebuild its exact bytes, and rebuild it.

The recipe keeps every non-IDAT byte verbatim (so ancillary chunks, odd CRCs, APNG frames and
trailing junk survive untouched), the IDAT chunk sizes, the zlib header/trailer bytes, the per-row
filter types and the deflate parameters found by an ordered search with the pinned deflater.
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import deflate as zd
from . import split_deflate as sd
from .png import (
    Header,
    PngError,
    filter_rows,
    pack_samples,
    parse_chunks,
    parse_header,
    unfilter,
    unpack_samples,
)

DEFAULT_MAX_PIXELS = 100_000_000
MAX_EXTRA_INFLATED = 1 << 16  # bytes tolerated after the image data inside the zlib stream
MAX_TAIL = 1 << 16  # bytes tolerated after the zlib stream inside IDAT
MAX_SIDE_BYTES = 16 << 20  # more bytes than this outside IDAT (huge ancillary chunks): not coded (png.side_bytes)


@dataclass
class Recipe:
    """Everything besides the pixels that is needed to rebuild the file byte for byte."""

    prefix: bytes  # signature + chunks before the first IDAT, verbatim
    idat_sizes: list[int]  # data length of each IDAT chunk of the run
    suffix: bytes  # everything after the IDAT run, verbatim (IEND, APNG frames, junk)
    zhead: bytes  # the 2-byte zlib header as found (encoders rewrite CINFO/FLEVEL)
    method: str  # "deflate" (zlib parameters) or "stored" (level-0 block layout)
    params: list[int]  # deflate: [level, memLevel, strategy, windowBits]
    stored_blocks: list[int]  # stored: length of each stored block
    ztail: bytes  # bytes after the zlib stream inside the IDAT data
    extra: bytes  # inflated bytes after the image data
    filters: bytes  # filter type of every scanline (all passes, in stream order)
    # deflate: [[inflated offset, bit offset], ...] where a primed restart reproduces the stream
    # (codec.split_deflate); [] = rebuild as one stream. Optional: older readers ignore it.
    splits: list[list[int]] = field(default_factory=list)

    def header(self) -> Header:
        chunks, _ = parse_chunks(self.prefix)
        return parse_header(self.prefix, chunks)


@dataclass
class Analysis:
    """Result of analyze(): ok with pixels + recipe, or not rebuildable with a reason."""

    ok: bool
    reason: str = ""
    pixels: np.ndarray | None = None
    recipe: Recipe | None = None
    header: Header | None = None
    palette: np.ndarray | None = None  # N x 3 uint8 for colour type 3
    timings: dict[str, float] = field(default_factory=dict)
    quick: bool = False  # deflate parameters checked on a prefix of the stream only (QUICK_PREFIX)
    # What encode() derives from the pixels once per analysis, for the several encodes (one per
    # reference) a caller runs with it: e.g. the JPEG coefficient recovery (seconds of CPU).
    derived: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- deflate search


def _candidates(zhead: bytes) -> list[zd.DeflateParams]:
    """All deflate parameter sets, most likely first (FINDINGS §3 + the zlib header hints)."""
    cinfo = zhead[0] >> 4
    flevel = zhead[1] >> 6
    hdr_wbits = cinfo + 8 if cinfo <= 7 else 15
    wbits_order = [hdr_wbits] + [w for w in range(15, 8, -1) if w != hdr_wbits]
    # Encoders seen in the wild, in order (Pillow, libpng, OpenCV, optipng...).
    common = [
        (6, 8, 0), (6, 9, 1), (6, 8, 1), (9, 9, 1), (9, 8, 3), (9, 8, 0), (9, 9, 0), (6, 9, 0),
        (1, 8, 0), (1, 9, 0), (1, 9, 1), (2, 9, 0), (3, 9, 0), (4, 9, 1), (5, 9, 1), (7, 9, 1), (8, 9, 1),
        (2, 8, 0), (3, 8, 0), (4, 8, 0), (5, 8, 0), (7, 8, 0), (8, 8, 0), (4, 9, 0), (5, 9, 0),
        (7, 9, 0), (8, 9, 0), (9, 9, 3), (9, 8, 1), (1, 8, 3), (6, 8, 3), (9, 8, 2), (9, 9, 2),
    ]

    def flevel_of(level: int, strategy: int) -> int:
        # deflate.c: level_flags is 0 for huffman/rle or level < 2, then 1 (2-5), 2 (6), 3 (7-9)
        if strategy >= 2 or level < 2:
            return 0
        return 1 if level < 6 else (2 if level == 6 else 3)

    seen: set[tuple[int, int, int, int]] = set()
    first: list[zd.DeflateParams] = []
    rest: list[zd.DeflateParams] = []

    def add(level: int, mem: int, strat: int, wb: int) -> None:
        if strat in (2, 3):
            level = 9  # huffman-only / RLE ignore the level (except 0): one representative
        key = (level, mem, strat, wb)
        if key in seen:
            return
        seen.add(key)
        p = zd.DeflateParams(level, mem, strat, wb)
        (first if flevel_of(level, strat) == flevel else rest).append(p)

    for wb in wbits_order[:2]:
        for lv, mem, st in common:
            add(lv, mem, st, wb)
    for wb in wbits_order:
        for st in (0, 1, 3, 2, 4):
            for mem in (8, 9, 7, 6, 5, 4, 3, 2, 1):
                for lv in (6, 9, 1, 5, 4, 3, 2, 7, 8):
                    add(lv, mem, st, wb)
    return first + rest


# A quick analysis accepts the first parameters reproducing this much of the stream; the encoder's
# one verification of the rebuilt file checks the rest (a miss runs a full analysis and gives the
# codings already made its recipe: codec.with_recipe; levels 7-9 often agree this far).
QUICK_PREFIX = 1 << 18


def find_params(raw: bytes, zstream: bytes, budget_s: float = 60.0,
                prefix: int | None = None) -> zd.DeflateParams | None:
    t0 = time.monotonic()
    for p in _candidates(zstream[:2]):
        if zd.reproduces(raw, zstream, p, prefix=prefix):
            return p
        if time.monotonic() - t0 > budget_s:
            return None
    return None


def _parse_stored(zstream: bytes) -> list[int] | None:
    """Block lengths if the zlib stream consists only of byte-aligned stored blocks, else None."""
    pos, blocks, n = 2, [], len(zstream)
    while True:
        if pos + 5 > n:
            return None
        b = zstream[pos]
        if b not in (0, 1):
            return None
        ln, nln = struct.unpack("<HH", zstream[pos + 1: pos + 5])
        if ln ^ nln != 0xFFFF:
            return None
        blocks.append(ln)
        pos += 5 + ln
        if b == 1:
            break
    return blocks if pos + 4 == n else None


def _stored_stream(zhead: bytes, raw: bytes, blocks: list[int]) -> bytes:
    out = bytearray(zhead)
    pos = 0
    for i, ln in enumerate(blocks):
        out += bytes([1 if i == len(blocks) - 1 else 0]) + struct.pack("<HH", ln, ln ^ 0xFFFF)
        out += raw[pos: pos + ln]
        pos += ln
    out += struct.pack(">I", zlib.adler32(raw))
    return bytes(out)


# --------------------------------------------------------------------------- pixels <-> stream


def _pixels_from_raw(hdr: Header, raw: bytes) -> tuple[np.ndarray, bytes]:
    """Filtered stream -> (pixels, filter types). Raises PngError."""
    ch = hdr.channels
    dtype = np.uint16 if hdr.bit_depth == 16 else np.uint8
    img = np.zeros((hdr.height, hdr.width, ch), dtype=dtype)
    ftypes = bytearray()
    pos = 0
    for x0, y0, dx, dy, pw, ph in hdr.passes():
        rb = hdr.row_bytes(pw)
        size = ph * (rb + 1)
        stream = raw[pos: pos + size]
        pos += size
        ftypes += stream[:: rb + 1]
        rows = unfilter(stream, ph, rb, hdr.bpp)
        samples = unpack_samples(rows, pw, hdr.bit_depth, ch)
        if hdr.bit_depth < 8 and not np.array_equal(pack_samples(samples, hdr.bit_depth), rows):
            raise PngError("nonzero padding bits in scanlines")
        img[y0::dy, x0::dx] = samples
    pixels = img[:, :, 0] if ch == 1 else img
    return pixels, bytes(ftypes)


def filtered_stream(hdr: Header, pixels: np.ndarray, filters: bytes) -> bytes:
    """Pixels + recorded filter types -> the exact inflated IDAT stream (minus any extra bytes)."""
    return b"".join(filtered_chunks(hdr, pixels, filters))


# Pieces that fit in L2: numpy's whole-image temporaries made filtering 9x slower (1.9 s vs 0.21 s
# for 12 MP, measured).
FILTER_PIECE = 1 << 18


def filtered_chunks(hdr: Header, pixels: np.ndarray, filters: bytes, target_bytes: int = FILTER_PIECE):
    """Yield the filtered stream in pieces of about ``target_bytes`` (same bytes as filtered_stream)."""
    img = pixels if pixels.ndim == 3 else pixels[:, :, None]
    if img.shape != (hdr.height, hdr.width, hdr.channels):
        raise ValueError(f"pixel shape {pixels.shape} does not match the recipe")
    ft = np.frombuffer(filters, dtype=np.uint8)
    row = 0
    for x0, y0, dx, dy, pw, ph in hdr.passes():
        sub = img[y0::dy, x0::dx]
        step = max(1, target_bytes // max(1, hdr.row_bytes(pw) + 1))
        prev = None
        for a in range(0, ph, step):
            rows = pack_samples(sub[a: a + step], hdr.bit_depth)
            yield filter_rows(rows, ft[row + a: row + a + len(rows)], hdr.bpp, prev).tobytes()
            prev = rows[-1]
        row += ph


def _deflate_pipelined(hdr: Header, pixels: np.ndarray, recipe: Recipe, host: bool) -> bytes:
    """Filter rows in a worker thread while zlib deflates the previous piece (numpy, the ctypes
    call and Python's zlib all release the GIL, so the two overlap on a 2-core machine)."""
    from concurrent.futures import ThreadPoolExecutor

    comp = zd.stream_compressor(zd.DeflateParams(*recipe.params), host=host)
    gen = filtered_chunks(hdr, pixels, recipe.filters, 1 << 20)
    with ThreadPoolExecutor(1) as ex:
        fut = ex.submit(next, gen, None)
        while True:
            piece = fut.result()
            if piece is None:
                break
            fut = ex.submit(next, gen, None)
            comp.feed(piece)
    comp.feed(recipe.extra)
    return comp.finish()


def rebuild(pixels: np.ndarray, recipe: Recipe, *, host: bool = True, split: bool = True) -> bytes:
    """Rebuild the original file bytes from pixels and recipe. ``host``: deflate with the host's
    zlib when it passed the test vectors; ``split``: deflate the recorded segments in parallel.
    Either fast path can in principle differ from the pinned single stream: callers check the
    SHA-256 and call again with both off (codec.decode does)."""
    hdr = recipe.header()
    if recipe.method == "stored":
        raw = filtered_stream(hdr, pixels, recipe.filters) + recipe.extra
        zstream = _stored_stream(recipe.zhead, raw, recipe.stored_blocks)
    elif split and recipe.splits:
        raw = filtered_stream(hdr, pixels, recipe.filters) + recipe.extra
        n_body = sum(recipe.idat_sizes) - len(recipe.ztail) - 2 - 4
        body = sd.deflate_split(raw, recipe.params, recipe.splits, host=host)
        if not 0 < n_body <= len(body):
            raise ValueError("split re-deflate shorter than the recorded stream")
        zstream = recipe.zhead + body[:n_body] + sd.zlib_trailer(raw)
    else:
        body = _deflate_pipelined(hdr, pixels, recipe, host)
        zstream = recipe.zhead + body[2:]
    data = zstream + recipe.ztail
    if sum(recipe.idat_sizes) != len(data):
        raise ValueError("rebuilt IDAT data does not match the recorded chunk sizes")
    out = [recipe.prefix]
    pos = 0
    for n in recipe.idat_sizes:
        piece = data[pos: pos + n]
        pos += n
        out.append(struct.pack(">I", n) + b"IDAT" + piece + struct.pack(">I", zlib.crc32(b"IDAT" + piece)))
    out.append(recipe.suffix)
    return b"".join(out)


# --------------------------------------------------------------------------- analyze


def _inflate_bounded(zdata: bytes, limit: int) -> tuple[bytes, bytes]:
    """Inflate at most ``limit`` bytes. Returns (inflated, bytes after the zlib stream)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(zdata, limit + 1)
    except zlib.error as e:
        raise PngError(f"corrupt zlib stream in IDAT ({e})") from None
    if len(out) > limit:
        raise PngError("inflated image data larger than the image (decompression bomb?)")
    if not d.eof:
        raise PngError("truncated zlib stream in IDAT")
    return out, d.unused_data


def analyze(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, search_budget_s: float = 60.0,
            quick: bool = False) -> Analysis:
    """Parse ``data``; never raises. ok=False with a reason when it cannot be rebuilt exactly.
    ``quick``: accept deflate parameters that reproduce a prefix of the stream (see QUICK_PREFIX)."""
    try:
        return _analyze(bytes(data), max_pixels, search_budget_s, quick=quick)
    except PngError as e:
        return Analysis(False, str(e))
    except MemoryError:
        return Analysis(False, "out of memory while parsing")
    except Exception as e:  # a decoder bug must never escape: caller stores verbatim
        return Analysis(False, f"internal error while parsing: {type(e).__name__}: {e}")


def png_pixels(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray | None:
    """The pixels ``analyze`` would give, without the deflate search (for references); None if unreadable."""
    try:
        a = _analyze(bytes(data), max_pixels, 0.0, pixels_only=True)
    except Exception:
        return None
    return a.pixels


def _analyze(data: bytes, max_pixels: int, search_budget_s: float, pixels_only: bool = False,
             quick: bool = False) -> Analysis:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    chunks, _end = parse_chunks(data)
    hdr = parse_header(data, chunks)
    if hdr.width * hdr.height > max_pixels:
        raise PngError(f"pixel limit exceeded ({hdr.width}x{hdr.height} > {max_pixels})")
    idat_idx = [i for i, c in enumerate(chunks) if c.type == b"IDAT"]
    if not idat_idx:
        raise PngError("no IDAT chunk")
    first, last = idat_idx[0], idat_idx[-1]
    if last - first + 1 != len(idat_idx):
        raise PngError("IDAT chunks are not consecutive")
    run = chunks[first: last + 1]
    side = len(data) - sum(c.length for c in run)
    if side > MAX_SIDE_BYTES and not pixels_only:
        # The recipe keeps these bytes verbatim, so coding the image saves little, and the blob, its
        # verification and the rebuild would each hold another copy: a bounded-memory verbatim file.
        raise PngError(f"{side / 2**20:.0f} MiB outside the image data (ancillary chunks, trailing bytes): "
                       "stored verbatim")
    if not all(c.crc_ok for c in run):
        raise PngError("bad CRC in IDAT")
    palette = None
    if hdr.color_type == 3:
        plte = [c for c in chunks[:first] if c.type == b"PLTE"]
        if len(plte) != 1 or plte[0].length % 3 or not 0 < plte[0].length <= 768:
            raise PngError("missing or invalid PLTE")
        if not plte[0].crc_ok:
            raise PngError("bad CRC in PLTE")
        o = plte[0].data_offset
        palette = np.frombuffer(data[o: o + plte[0].length], dtype=np.uint8).reshape(-1, 3).copy()
    zdata = b"".join(data[c.data_offset: c.data_offset + c.length] for c in run)
    if len(zdata) < 2:
        raise PngError("IDAT data too short")
    zhead = zdata[:2]
    if ((zhead[0] << 8) | zhead[1]) % 31 or zhead[0] & 0x0F != 8 or zhead[1] & 0x20:
        raise PngError("invalid zlib header in IDAT")
    need = hdr.raw_size()
    raw, ztail = _inflate_bounded(zdata, need + MAX_EXTRA_INFLATED)
    if len(raw) < need:
        raise PngError("image data shorter than the image")
    if len(ztail) > MAX_TAIL:
        raise PngError("too much data after the zlib stream")
    zstream = zdata[: len(zdata) - len(ztail)]
    timings["inflate"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    pixels, ftypes = _pixels_from_raw(hdr, raw[:need])
    if pixels_only:
        return Analysis(True, "", pixels, None, hdr, palette, timings)
    if filtered_stream(hdr, pixels, ftypes) != raw[:need]:
        raise PngError("re-filtering does not reproduce the scanlines")  # should not happen
    timings["unfilter"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    blocks = _parse_stored(zstream)
    if blocks is not None and _stored_stream(zhead, raw, blocks) == zstream:
        method, params = "stored", []
    else:
        blocks = []
        zd.self_test()
        p = find_params(raw, zstream, search_budget_s, QUICK_PREFIX if quick else None)
        if p is None:
            raise PngError("deflate stream not reproducible (unknown encoder)")
        method, params = "deflate", p.as_list()
    timings["deflate_search"] = time.perf_counter() - t2
    splits: list[list[int]] = []
    if method == "deflate" and len(raw) >= sd.SPLIT_MIN:
        t3 = time.perf_counter()
        # Checked on one block per point here; the encoder's verification rebuild proves the rest.
        splits = sd.find_points(raw, zstream[2:-4], zd.DeflateParams(*params), full_check=False)
        timings["split_points"] = time.perf_counter() - t3

    recipe = Recipe(
        prefix=data[: run[0].offset],
        idat_sizes=[c.length for c in run],
        suffix=data[run[-1].end:],
        zhead=zhead,
        method=method,
        params=params,
        stored_blocks=blocks,
        ztail=ztail,
        extra=raw[need:],
        filters=ftypes,
        splits=splits,
    )
    timings["total"] = time.perf_counter() - t0
    return Analysis(True, "", pixels, recipe, hdr, palette, timings,
                    quick=quick and method == "deflate" and len(zstream) > QUICK_PREFIX)
