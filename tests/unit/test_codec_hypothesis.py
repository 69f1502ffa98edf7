"""Property test: any image (1x1 up, every colour type/bit depth, interlace, filters) round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from codec_helpers import write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec

COMBOS = [(0, 1), (0, 2), (0, 4), (0, 8), (0, 16), (2, 8), (2, 16), (3, 1), (3, 2), (3, 4), (3, 8),
          (4, 8), (4, 16), (6, 8), (6, 16)]
PARAMS = [(6, 8, 0, 15), (9, 9, 1, 15), (1, 8, 0, 15), (6, 9, 1, 15), (9, 8, 3, 15), (4, 9, 1, 12), (0, 8, 0, 15)]


@st.composite
def images(draw):
    ct, bd = draw(st.sampled_from(COMBOS))
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    hi = (1 << bd) - 1
    kind = draw(st.sampled_from(["noise", "flat", "gradient"]))
    shape = (h, w) if ch == 1 else (h, w, ch)
    if kind == "noise":
        px = rng.integers(0, hi + 1, shape)
    elif kind == "flat":
        px = np.full(shape, rng.integers(0, hi + 1))
    else:
        px = (np.indices(shape).sum(axis=0) * max(1, hi // 40)) % (hi + 1)
    px = px.astype(np.uint16 if bd == 16 else np.uint8)
    pal = bytes(rng.integers(0, 256, 3 * (1 << min(bd, 8))).astype(np.uint8)) if ct == 3 else None
    interlace = draw(st.integers(0, 1))
    params = draw(st.sampled_from(PARAMS))
    fmode = draw(st.sampled_from(["none", "random", "paeth"]))
    filters = {"none": 0, "paeth": 4, "random": lambda n, r: r.integers(0, 5, n)}[fmode]
    split = draw(st.sampled_from([0, 1, 7, 100]))
    return px, bd, ct, interlace, pal, params, filters, split


@pytest.mark.timeout(240)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images())
def test_any_png_round_trips(case):
    px, bd, ct, interlace, pal, params, filters, split = case
    data = write_png(px, bd, ct, interlace=interlace, palette=pal, filters=filters, params=params, idat_split=split)
    a = codec.analyze(data)
    assert a.ok, a.reason
    assert np.array_equal(a.pixels, px)
    r = codec.encode(data, effort=1, allow_larger=True)
    assert r.mode == "intra", r.reason
    assert codec.decode(r.blob) == data
    assert np.array_equal(codec.decode_pixels(r.blob), px)


@st.composite
def pairs(draw):
    h = draw(st.integers(1, 40))
    w = draw(st.integers(1, 40))
    ch = draw(st.sampled_from([1, 2, 3, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ref = rng.integers(0, 256, (h, w, ch) if ch > 1 else (h, w), dtype=np.uint8)
    op = draw(st.sampled_from(["rot", "crop", "lut", "noise", "grey", "same"]))
    t = ref
    if op == "rot":
        t = np.rot90(ref, draw(st.integers(1, 3)))
    elif op == "crop" and h > 2 and w > 2:
        t = ref[1:, 1:]
    elif op == "lut":
        t = (255 - ref).astype(np.uint8)
    elif op == "noise":
        t = (ref.astype(np.int16) + rng.integers(-2, 3, ref.shape)).clip(0, 255).astype(np.uint8)
    elif op == "grey" and ch >= 3:
        t = ref[:, :, 1]
    tch = 1 if t.ndim == 2 else t.shape[2]
    return ref, np.ascontiguousarray(t), {1: 0, 2: 4, 3: 2, 4: 6}[tch]


@pytest.mark.timeout(240)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_any_inter_pair_round_trips(case):
    ref_px, tgt, ct = case
    data = write_png(tgt, 8, ct, params=(6, 9, 1, 15))
    ref = codec.Reference(ref_px, b"ref")
    r = codec.encode(data, ref, effort=1, allow_larger=True)
    assert r.blob is not None, r.reason
    assert "inter failed" not in r.reason  # the inter search must not crash on odd shapes
    assert len(r.blob) <= r.sizes["intra"]
    assert codec.decode(r.blob, ref if r.mode == "inter" else None) == data
