"""Palette PNG targets for inter coding: indices <-> colours through the file's own PLTE chunk.

A photo's copy saved as a palette PNG (ImageMagick picks one for an image of <= 256 colours, pngquant
and web optimisers quantise to one) is predicted from its reference in colour, not in palette
indices (whose order means nothing). When every palette entry has its own colour, the colours give
the indices back exactly, so the inter residual is coded on the colours and the decoder maps them
back with the palette the blob keeps anyway (the recipe's PNG prefix holds the PLTE chunk).

A quantised copy (pngquant, a web optimiser: a photo reduced to its 256 best colours, often
dithered) is not a colour edit of its reference, so its colours leave a noisy residual. Its indices
are coded instead as ranks: each pixel's entry among the palette ordered by distance to the
predicted colour, 0 wherever the quantiser picked the nearest entry, small where dithering picked a
near one (pngquant: 93% zeros, 99.8% below 4 on a real photo).
"""

from __future__ import annotations

import struct

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LOW_RANKS = 16  # ranks below this are found among each row's 16 nearest entries, one partial sort per block
_CHUNK = 8192  # distinct colours or pairs per distance block (8192 x 256 float32: 8 MB)
_DENSE_FROM = 1 << 18  # pixels from which the distinct colours are found through a table of all 2^24


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


def ranks_of(indices: np.ndarray, predicted: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """H x W uint8 rank of each pixel's entry among the palette ordered by distance to its predicted
    colour (0: the nearest entry). Squared RGB distance, ties broken by the lower index, so the order
    is the same on every machine; computed once per distinct (predicted colour, index) pair."""
    _check(palette)
    cinv, uniq = _distinct_colours(predicted)
    pairs, pinv = np.unique(cinv.astype(np.int64) * 256 + indices.reshape(-1), return_inverse=True)
    colour_of, entry = pairs // 256, pairs % 256
    if int(entry.max(initial=0)) >= len(palette):
        raise ValueError("palette index past the end of the palette")
    out = np.empty(len(pairs), dtype=np.uint8)
    cols = np.arange(len(palette))
    for s in range(0, len(pairs), _CHUNK):
        e = _scores(uniq[colour_of[s: s + _CHUNK]], palette)
        t = entry[s: s + _CHUNK]
        et = e[np.arange(len(t)), t][:, None]
        out[s: s + _CHUNK] = (e < et).sum(axis=1) + ((e == et) & (cols[None, :] < t[:, None])).sum(axis=1)
    return out[pinv.reshape(-1)].reshape(indices.shape)


def indices_from_ranks(ranks: np.ndarray, predicted: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """The H x W uint8 indices back from ``ranks_of``; ValueError for a rank past the palette."""
    _check(palette)
    if ranks.size and int(ranks.max()) >= len(palette):
        raise ValueError("palette rank past the end of the palette")
    keys = _keys(predicted.reshape(-1, 3))
    flat = ranks.reshape(-1)
    out = np.empty(flat.shape, dtype=np.uint8)
    zero = flat == 0
    if zero.any():  # most pixels: the nearest entry (the first on a tie), once per distinct colour
        zkeys = keys[zero]
        used = _used_keys(zkeys)
        nearest = np.empty(len(used), dtype=np.uint8)
        for s in range(0, len(used), _CHUNK):
            nearest[s: s + _CHUNK] = _scores(_colours_of(used[s: s + _CHUNK]), palette).argmin(axis=1)
        out[zero] = _lookup(used, nearest, zkeys)
    rest = ~zero
    if rest.any():  # distance, then index, as one distinct key per entry: a partial sort finds rank r
        pairs, pinv = np.unique(keys[rest].astype(np.int64) * 256 + flat[rest], return_inverse=True)
        colour_of, rank = pairs // 256, pairs % 256
        got = np.empty(len(pairs), dtype=np.uint8)
        cols = np.arange(len(palette), dtype=np.int32)[None, :]
        for s in range(0, len(pairs), _CHUNK):
            order_keys = _scores(_colours_of(colour_of[s: s + _CHUNK]), palette).astype(np.int32) * 256 + cols
            r = rank[s: s + _CHUNK]
            low = np.flatnonzero(r < _LOW_RANKS)
            if low.size:
                got[s + low] = _nth_smallest(order_keys[low], r[low])
            high = np.flatnonzero(r >= _LOW_RANKS)
            if high.size:  # the few far ones: a full sort of their rows (keys are distinct: any sort agrees)
                got[s + high] = np.argsort(order_keys[high], axis=1)[np.arange(high.size), r[high]]
        out[rest] = got[pinv.reshape(-1)]
    return out.reshape(ranks.shape)


def _nth_smallest(keys: np.ndarray, nth: np.ndarray) -> np.ndarray:
    """Per row of distinct int32 keys, the column of its nth[i]-th smallest key: rows ordered by nth,
    then rounds of argmin, each taking its minimum out of the rows that need a later one (a pass of
    SIMD argmin per rank instead of a partial sort of every row: dithered and quantised copies have
    ranks of 1-3 almost everywhere)."""
    order = np.argsort(nth, kind="stable")
    rows = keys[order]
    want = nth[order]
    out = np.empty(len(nth), dtype=np.uint8)
    big = np.iinfo(np.int32).max
    for t in range(int(want.max(initial=-1)) + 1):
        start = int(np.searchsorted(want, t))
        view = rows[start:]
        col = view.argmin(axis=1)
        done = want[start:] == t
        out[order[start:][done]] = col[done]
        more = np.flatnonzero(~done)
        view[more, col[more]] = big
    return out


def _used_keys(keys: np.ndarray) -> np.ndarray:
    """The sorted distinct 24-bit colour keys: marked in a table of every colour for a large image
    (a scan of 16 MB beats sorting millions of pixels), np.unique for a small one."""
    if len(keys) < _DENSE_FROM:
        return np.unique(keys)
    mark = np.zeros(1 << 24, dtype=bool)
    mark[keys] = True
    return np.flatnonzero(mark).astype(np.uint32)


def _lookup(used: np.ndarray, values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """values[i] for each key equal to used[i] (sorted): one gather from a table of every colour (16 MB)
    for a large image, a binary search for a small one."""
    if len(keys) < _DENSE_FROM:
        return values[np.searchsorted(used, keys)]
    table = np.zeros(1 << 24, dtype=values.dtype)
    table[used] = values
    return table[keys]


def _colours_of(keys: np.ndarray) -> np.ndarray:
    """n x 3 float32 colours of 24-bit colour keys (_keys)."""
    k = keys.astype(np.int64)
    return np.stack([(k >> 16) & 255, (k >> 8) & 255, k & 255], axis=1).astype(np.float32)


def _check(palette: np.ndarray) -> None:
    if palette.ndim != 2 or palette.shape[1] != 3 or not 0 < len(palette) <= 256:
        raise ValueError("a palette has 1 to 256 RGB entries")


def _distinct_colours(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-pixel index into the distinct colours, the distinct colours as n x 3 int)."""
    keys, inverse = np.unique(_keys(colours.reshape(-1, 3)), return_inverse=True)
    return inverse.reshape(-1), _colours_of(keys)


def _scores(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """n x N squared distances less the colour's own |c|^2 (the same order per row): |p|^2 - 2 c.p,
    one matrix product instead of n x N x 3 differences. Exact in float32 on every machine: every
    product and partial sum is an integer below 2^24 (|2c.p| <= 390150), whatever the BLAS order."""
    p = palette.astype(np.float32)
    return (p * p).sum(axis=1)[None, :] - (2.0 * colours.astype(np.float32)) @ p.T


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
