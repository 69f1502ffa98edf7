"""Palette PNG copies of a photo are inter coded by their colours, or (dithered, quantised copies) by
their indices' differences from the nearest entries, and rebuilt byte for byte; a palette whose colours
repeat is never coded that way; damage gives CorruptBlob, never other indices."""

from __future__ import annotations

import numpy as np
import pytest
from codec_helpers import write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec
from codec import bitstream, palette


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([120 + 80 * np.sin(x / 13.0) * np.cos(y / 17.0), 60 + 0.7 * x % 150, 200 - 0.9 * y], axis=2)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def _quantised(ref: np.ndarray, levels: int, order_seed: int, dither: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A palette copy of ``ref``: each channel posterised to ``levels`` values (a colour edit no
    library replays), entries in a shuffled order (palette order means nothing); ``dither``: noise of
    up to that many levels added first, as a dithering quantiser (pngquant) does."""
    step = 256 // levels
    if dither:
        noise = np.random.default_rng(order_seed + 1).integers(-dither, dither + 1, ref.shape)
        ref = np.clip(ref.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    q = (ref // step) * step + step // 2
    colours, inv = np.unique(q.reshape(-1, 3), axis=0, return_inverse=True)
    perm = np.random.default_rng(order_seed).permutation(len(colours))
    pal = np.empty_like(colours)
    pal[perm] = colours
    return perm[inv.reshape(-1)].reshape(ref.shape[:2]).astype(np.uint8), pal


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), h=st.integers(24, 72), w=st.integers(24, 72), levels=st.sampled_from([3, 4, 6]))
def test_palette_copy_is_inter_coded_by_its_colours_and_rebuilt_exactly(seed, h, w, levels) -> None:
    ref = _photo(h, w, seed)
    idx, pal = _quantised(ref, levels, seed)
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    assert r.blob is not None and codec.decode(r.blob, codec.Reference(ref, b"ref")) == data
    if r.mode == "inter":
        assert "palette-colours" in codec.blob_features(r.blob)
        assert len(r.blob) < r.sizes["intra"]  # inter is kept only when smaller


def test_palette_copy_of_a_photo_costs_a_fraction_of_intra() -> None:
    ref = _photo(160, 200, 1)
    idx, pal = _quantised(ref, 4, 2)
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3)
    assert r.mode == "inter" and len(r.blob) < 0.3 * r.sizes["intra"], r.sizes
    assert codec.decode(r.blob, codec.Reference(ref, b"ref")) == data
    p = codec.repack(r.blob, 5)  # the background polish keeps the colour residual's shape
    assert codec.decode(p or r.blob, codec.Reference(ref, b"ref")) == data


def test_palette_with_repeated_colours_is_coded_by_ranks_never_by_colour() -> None:
    ref = _photo(64, 64, 3)
    idx, pal = _quantised(ref, 4, 4)
    pal = np.concatenate([pal, pal[:1], np.zeros((5, 3), np.uint8)])  # entry N repeats entry 0; zero padding
    idx = idx.copy()
    idx[::2, ::2] = np.where(idx[::2, ::2] == 0, len(pal) - 6, idx[::2, ::2])  # and the repeat is used
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    assert not palette.invertible(pal)
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    assert r.mode == "inter" and r.chosen.endswith("+ranks"), (r.mode, r.reason, r.sizes)
    assert codec.blob_features(r.blob) == frozenset({"palette-colours", "palette-ranks"})
    assert codec.decode(r.blob, codec.Reference(ref, b"ref")) == data
    for _blob, mode, label in codec.encode(data, codec.Reference(ref, b"ref"), effort=3, verify=False,
                                          allow_larger=True).unverified:
        assert mode == "intra" or label.endswith("+ranks"), label  # colours cannot name repeated entries


def test_colours_outside_the_palette_give_corrupt_blob() -> None:
    ref = _photo(96, 96, 5)
    idx, pal = _quantised(ref, 4, 6)
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3)
    assert r.mode == "inter"
    b = bitstream.unpack(r.blob)
    secs = dict(b.sections)
    plte = secs["prefix"].index(b"PLTE")
    bad_prefix = bytearray(secs["prefix"])
    bad_prefix[plte + 4] ^= 0x01  # entry 0's red: its pixels' colours are in no entry now
    secs["prefix"] = bytes(bad_prefix)
    bad = bitstream.pack(bitstream.Blob(b.mode, b.ref_id, b.meta, secs, b.payload, b.file_sha256))
    with pytest.raises(codec.CorruptBlob):
        codec.decode(bad, codec.Reference(ref, b"ref"))


def test_indices_round_trip_through_colours() -> None:
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [1, 2, 3]], dtype=np.uint8)
    idx = np.array([[3, 2], [1, 0]], dtype=np.uint8)
    assert np.array_equal(palette.indices_of(palette.expand(idx, pal), pal), idx)
    with pytest.raises(ValueError):
        palette.indices_of(np.array([[[9, 9, 9]]], dtype=np.uint8), pal)
    with pytest.raises(ValueError):
        palette.expand(np.array([[4]], dtype=np.uint8), pal)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 256), h=st.integers(1, 40), w=st.integers(1, 40),
       grey=st.booleans())
def test_ranks_order_entries_by_distance_lower_index_first_and_invert(seed, n, h, w, grey) -> None:
    rng = np.random.default_rng(seed)
    pal = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    if n > 2:
        pal[-1] = pal[0]  # ties: the lower index ranks first, on every machine
        pal[1] = pal[0] + 1
    colours = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if grey:  # few distinct colours, many pixels sharing each
        colours[:] = colours[..., :1] // 64 * 64
    idx = rng.integers(0, n, (h, w)).astype(np.uint8)
    ranks = palette.ranks_of(idx, colours, pal)
    d = ((colours.reshape(-1, 1, 3).astype(np.int64) - pal[None].astype(np.int64)) ** 2).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(n), d.shape), d), axis=1)  # by distance, then index
    want = np.argmax(order == idx.reshape(-1, 1), axis=1)
    assert np.array_equal(ranks.reshape(-1), want)
    saved = palette._DENSE_FROM
    try:
        for dense_from in (saved, 0):  # distinct colours by np.unique, and by the table of every colour
            palette._DENSE_FROM = dense_from
            assert np.array_equal(palette.indices_from_ranks(ranks, colours, pal), idx)
            nearest = palette.indices_from_ranks(np.zeros_like(idx), colours, pal)
            assert np.array_equal(nearest.reshape(-1), d.argmin(axis=1))
    finally:
        palette._DENSE_FROM = saved
    if n < 256:
        with pytest.raises(ValueError):
            palette.indices_from_ranks(np.full_like(idx, n), colours, pal)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), levels=st.sampled_from([4, 6, 8]), dither=st.integers(8, 30))
def test_dithered_palette_copy_is_coded_by_nearest_entries_and_rebuilt_exactly(seed, levels, dither) -> None:
    ref = _photo(64, 80, seed)
    idx, pal = _quantised(ref, levels, seed, dither=dither)
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    assert r.blob is not None and codec.decode(r.blob, codec.Reference(ref, b"ref")) == data
    nearest = [k for k in r.sizes if k.endswith("+ranks")]
    assert nearest, r.sizes  # the index prediction is always tried for an invertible palette
    if r.chosen.endswith("+ranks"):
        assert codec.blob_features(r.blob) == frozenset({"palette-colours", "palette-ranks"})
    assert len(r.blob) <= min(r.sizes.values())  # the smallest candidate is kept


def test_dithered_palette_copy_of_a_photo_costs_a_fraction_of_intra_and_of_its_colours() -> None:
    import io

    from PIL import Image

    ref = _photo(160, 200, 7)
    im = Image.fromarray(ref)  # Floyd-Steinberg error diffusion to an adaptive 256-colour palette
    quantised = im.quantize(palette=im.quantize(256, dither=Image.Dither.NONE), dither=Image.Dither.FLOYDSTEINBERG)
    buf = io.BytesIO()
    quantised.save(buf, "PNG")
    data = buf.getvalue()
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    colours = min(v for k, v in r.sizes.items() if k.startswith("inter") and not k.endswith("+ranks"))
    assert r.mode == "inter" and r.chosen.endswith("+ranks"), r.sizes
    assert len(r.blob) < 0.7 * r.sizes["intra"] and len(r.blob) < 0.4 * colours, r.sizes
    assert codec.decode(r.blob, codec.Reference(ref, b"ref")) == data
    p = codec.repack(r.blob, 5)  # the background polish keeps the ranks' shape
    assert p is None or codec.decode(p, codec.Reference(ref, b"ref")) == data


def test_a_damaged_palette_of_a_nearest_coded_copy_gives_corrupt_blob() -> None:
    ref = _photo(96, 96, 9)
    idx, pal = _quantised(ref, 6, 10, dither=20)
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    assert r.chosen.endswith("+ranks"), r.sizes
    b = bitstream.unpack(r.blob)
    secs = dict(b.sections)
    plte = secs["prefix"].index(b"PLTE")
    bad_prefix = bytearray(secs["prefix"])
    bad_prefix[plte + 4: plte + 7] = bytes(255 - v for v in bad_prefix[plte + 4: plte + 7])  # entry 0 moved
    secs["prefix"] = bytes(bad_prefix)
    bad = bitstream.pack(bitstream.Blob(b.mode, b.ref_id, b.meta, secs, b.payload, b.file_sha256))
    with pytest.raises(codec.CorruptBlob):
        codec.decode(bad, codec.Reference(ref, b"ref"))
