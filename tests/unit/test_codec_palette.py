"""Palette PNG copies of a photo are inter coded by their colours and rebuilt byte for byte; a palette
whose colours repeat is never coded that way; damage gives CorruptBlob, never other indices."""

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


def _quantised(ref: np.ndarray, levels: int, order_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A palette copy of ``ref``: each channel posterised to ``levels`` values (a colour edit no
    library replays), entries in a shuffled order (palette order means nothing)."""
    step = 256 // levels
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
        assert codec.blob_features(r.blob) == frozenset({"palette-colours"})
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


def test_palette_with_repeated_colours_is_not_coded_by_colour() -> None:
    ref = _photo(64, 64, 3)
    idx, pal = _quantised(ref, 4, 4)
    pal = np.concatenate([pal, pal[:1]])  # entry N repeats entry 0's colour
    idx = idx.copy()
    idx[::2, ::2] = np.where(idx[::2, ::2] == 0, len(pal) - 1, idx[::2, ::2])  # and is used
    data = write_png(idx, 8, 3, palette=pal.tobytes())
    assert not palette.invertible(pal)
    r = codec.encode(data, codec.Reference(ref, b"ref"), effort=3, allow_larger=True)
    assert r.mode == "intra" and "palette" in r.reason
    assert codec.decode(r.blob) == data


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
