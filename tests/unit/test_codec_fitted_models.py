"""Fitted colour transforms, fitted resampling and the quick deflate analysis: exact round trips, never chosen unless smaller."""

from __future__ import annotations

import numpy as np
import pytest
from codec_helpers import write_png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codec
from codec import colourmap, inter, resample


def _photo_like(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth colour gradients plus noise: many distinct colours, like a photo."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], axis=2) * 200 + 20
    base += rng.normal(0, 6, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


# --- colour maps -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 20), w=st.integers(1, 20),
       with_table=st.booleans(), min_count=st.integers(1, 3))
def test_colour_map_replays_exactly_from_its_parameters(seed, h, w, with_table, min_count):
    """Decoder determinism: any lattice and table, applied twice or to a copy, give the same pixels;
    inter.reconstruct with those parameters rebuilds an arbitrary target exactly."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lattice = colourmap.identity_lattice() + rng.integers(-400, 400, (colourmap.NODES ** 3, 3))
    uniq, counts, _inv = colourmap.colour_index(p)
    table = rng.integers(0, 256, (int((counts >= min_count).sum()), 3), dtype=np.uint8) if with_table else None
    a = colourmap.apply(p, lattice, table, min_count)
    assert np.array_equal(a, colourmap.apply(p.copy(), lattice.copy(), table, min_count))
    assert a.shape == p.shape and a.dtype == np.uint8
    t = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    desc = {"colour": "same", "geom": {"type": "dihedral", "k": 0}, "lut": False,
            "cmap": {"table": 0 if table is None else len(table), "min_count": min_count}}
    secs = {"cmap_lattice": lattice.astype(">i2").tobytes()}
    if table is not None:
        img = colourmap.table_image(table)
        secs["cmap_table"] = codec.intra.encode_pixels(img, 1)
        desc["cmap"]["table_shape"] = list(img.shape)
    payload = codec.intra.encode_pixels(inter.residual(t, inter.predict(desc, secs, p, t.shape)), 1)
    assert np.array_equal(inter.reconstruct(desc, secs, payload, p, t.shape), t)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), sat=st.floats(0.5, 1.6), hue=st.floats(-0.3, 0.3),
       gain=st.floats(0.8, 1.2))
def test_fitted_colour_map_predicts_any_pointwise_edit_exactly(seed, sat, hue, gain):
    """A pointwise colour edit (random saturation, hue mix and gain, rounded as a program would)
    is predicted without error by lattice + per-colour table."""
    rng = np.random.default_rng(seed)
    r = _photo_like(rng, 40, 50)
    f = r.astype(np.float64)
    grey = f.mean(axis=2, keepdims=True)
    e = grey + (f - grey) * sat
    e = e + hue * (np.roll(e, 1, axis=2) - e)
    t = np.clip(np.round(e * gain), 0, 255).astype(np.uint8)
    lattice, corr, _counts = colourmap.fit(t, r)
    assert np.array_equal(colourmap.apply(r, lattice, corr, 1), t)


def test_colour_edit_is_coded_far_below_intra_and_round_trips():
    rng = np.random.default_rng(7)
    r = _photo_like(rng, 96, 128)
    f = r.astype(np.float64)
    grey = f.mean(axis=2, keepdims=True)
    t = np.clip(np.round(grey + (f - grey) * 1.35 + [4, 0, -6]), 0, 255).astype(np.uint8)
    data = write_png(t, 8, 2)
    res = codec.encode(data, codec.Reference(r, b"ref"), effort=3)
    assert res.mode == "inter" and "cmap" in res.chosen, res.chosen
    assert res.sizes[res.chosen] < 0.5 * res.sizes["intra"]
    assert codec.decode(res.blob, codec.Reference(r, b"ref")) == data


# --- fitted resampling -------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), hh=st.integers(4, 40), ww=st.integers(4, 40),
       h=st.integers(1, 30), w=st.integers(1, 30), dx=st.integers(-5, 5), dy=st.integers(-5, 5),
       channels=st.sampled_from([1, 3, 4]), den=st.sampled_from([1, 7, resample.SUBPIXEL_DEN]))
def test_fitted_resampling_replays_exactly_from_its_parameters(seed, hh, ww, h, w, dx, dy, channels, den):
    """Any kernel within the format's limits, whole-pixel or sub-pixel geometry: the integer decoder
    is deterministic, in range, and inter.reconstruct rebuilds an arbitrary target exactly."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (hh, ww, channels), dtype=np.uint8)
    sw = max(1, int((w + rng.integers(-3, 4)) * den + rng.integers(0, den)))
    sh = max(1, int((h + rng.integers(-3, 4)) * den + rng.integers(0, den)))
    dx, dy = dx * den + int(rng.integers(0, den)), dy * den + int(rng.integers(0, den))
    tv, th = resample.taps_for(hh * den, sh), resample.taps_for(ww * den, sw)
    g = {"type": "fitres", "size": [int(sw), int(sh)], "dx": dx, "dy": dy, "tv": tv, "th": th, "k": 0, "den": den,
         "kv": rng.integers(-resample.MAX_TAP, resample.MAX_TAP, (resample.PHASES + 1) * tv).tolist(),
         "kh": rng.integers(-resample.MAX_TAP, resample.MAX_TAP, (resample.PHASES + 1) * th).tolist()}
    p = resample.apply(ref, g, (h, w))
    assert p.shape == (h, w, channels)
    assert np.array_equal(p, resample.apply(ref.copy(), g, (h, w)))
    t = rng.integers(0, 256, (h, w) if channels == 1 else (h, w, channels), dtype=np.uint8)
    desc = {"colour": "same", "geom": g, "lut": False}
    payload = codec.intra.encode_pixels(inter._payload_arr(inter.residual(inter.as3(t), inter.predict(desc, {}, ref, t.shape))), 1)
    assert np.array_equal(inter.reconstruct(desc, {}, payload, ref, t.shape), t)


@given(seed=st.integers(0, 2**32 - 1), hh=st.integers(1, 90), ww=st.integers(1, 90),
       h=st.integers(1, 80), w=st.integers(1, 80), dx=st.integers(-9, 9), dy=st.integers(-9, 9),
       channels=st.sampled_from([1, 3, 4]), tap_range=st.sampled_from([6000, resample.MAX_TAP]),
       den=st.sampled_from([1, resample.SUBPIXEL_DEN]))
@settings(max_examples=60, deadline=None)
def test_fast_resampling_gives_the_integer_loops_result(seed, hh, ww, h, w, dx, dy, channels, tap_range, den):
    """The banded float64 products (taken when every sum stays below 2^52) rebuild exactly the
    prediction of the int64 loop of taps, clipped edge taps included; blobs decode the same
    whichever path runs."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 256, (hh, ww, channels), dtype=np.uint8)
    sw, sh = int(rng.integers(1, (3 * w + 2) * den)), int(rng.integers(1, (3 * h + 2) * den))
    tv, th = resample.taps_for(hh * den, sh), resample.taps_for(ww * den, sw)
    g = {"type": "fitres", "size": [sw, sh], "dx": dx * den, "dy": dy * den, "tv": tv, "th": th, "k": 0, "den": den,
         "kv": rng.integers(-tap_range, tap_range + 1, (resample.PHASES + 1) * tv).tolist(),
         "kh": rng.integers(-tap_range, tap_range + 1, (resample.PHASES + 1) * th).tolist()}
    fast = resample.apply(ref, g, (h, w))
    old = resample.EXACT_FLOAT
    try:
        resample.EXACT_FLOAT = 0  # force the int64 loops
        slow = resample.apply(ref, g, (h, w))
    finally:
        resample.EXACT_FLOAT = old
    assert np.array_equal(fast, slow)


def test_fitted_resampling_recovers_an_unknown_filter():
    """A rescale by a filter no library replays (a random smooth kernel, applied in floats as
    another program would) is predicted within about a grey level."""
    rng = np.random.default_rng(3)
    ref = _photo_like(rng, 120, 160)
    h, w = 70, 90
    truth = resample.init_kernel(resample.taps_for(160, w), 160, w)
    truth = truth * (1 + 0.3 * np.cos(np.arange(truth.shape[1]))[None, :])
    truth /= truth.sum(axis=1, keepdims=True)
    tv = resample.taps_for(120, h)
    kv = resample.init_kernel(tv, 120, h)
    g = {"type": "fitres", "size": [w, h], "dx": 0, "dy": 0, "tv": tv, "th": truth.shape[1],
         "kv": np.round(kv * 4096).astype(int).ravel().tolist(), "kh": np.round(truth * 4096).astype(int).ravel().tolist()}
    t = resample.apply(ref, g, (h, w))
    fitted = resample.fit(ref, t, (w, h), (0, 0))
    err = np.abs(resample.apply(ref, fitted, (h, w)).astype(int) - t).mean()
    assert err < 1.0, err


def test_crop_then_rescale_is_fitted_at_sub_pixel_geometry(monkeypatch, devset):
    """A centre crop of a photo rescaled by 0.7 scales the whole reference to a size that is not a
    whole number of pixels (751 * 0.7 = 525.7; offsets 75 * 0.7 = 52.5, 56 * 0.7 = 39.2): the
    geometry registered to 1/64 pixel fits far better than the whole-pixel one, and the blob
    replays exactly."""
    import cv2
    from PIL import Image

    ref = np.asarray(Image.open(devset / "opencv-pairs" / "leuvenA.png").convert("RGB"))
    crop = ref[56:506, 75:675].astype(np.float32)
    t = np.clip(np.round(cv2.resize(crop, (420, 315), interpolation=cv2.INTER_AREA)), 0, 255).astype(np.uint8)
    data = write_png(t, 8, 2)
    reference = codec.Reference(ref, b"r")
    sub = codec.encode(data, reference, effort=1)
    assert sub.mode == "inter" and "fitres" in sub.chosen, (sub.chosen, sub.sizes)
    assert codec.decode(sub.blob, reference) == data
    monkeypatch.setattr(resample, "refine_geometry", lambda *a, **k: None)
    whole = codec.encode(data, reference, effort=1)
    assert len(sub.blob) < 0.7 * len(whole.blob), (len(sub.blob), len(whole.blob), whole.chosen)


def test_bad_fitted_resampling_parameters_are_refused():
    ref = np.zeros((8, 8, 3), np.uint8)
    g = {"type": "fitres", "size": [4, 4], "dx": 0, "dy": 0, "tv": 99, "th": 4, "kv": [], "kh": []}
    with pytest.raises(ValueError):
        resample.apply(ref, g, (4, 4))
    ok = {"type": "fitres", "size": [4, 4], "dx": 0, "dy": 0, "tv": 4, "th": 4,
          "kv": [0] * 4 * (resample.PHASES + 1), "kh": [0] * 4 * (resample.PHASES + 1)}
    for den in (0, -1, resample.MAX_DEN + 1):
        with pytest.raises(ValueError):
            resample.apply(ref, {**ok, "den": den}, (4, 4))


# --- choice -------------------------------------------------------------------------------------

def test_models_that_do_not_fit_are_never_chosen():
    """An unrelated target: whatever the fitted models predict, intra is kept because it is smaller;
    the chosen candidate is always the smallest coded one."""
    rng = np.random.default_rng(11)
    r = _photo_like(rng, 64, 80)
    t = _photo_like(np.random.default_rng(12), 64, 80)[::-1, ::-1].copy()
    data = write_png(t, 8, 2)
    res = codec.encode(data, codec.Reference(r, b"ref"), effort=3)
    assert res.sizes[res.chosen] == min(res.sizes.values())
    if res.mode == "inter":
        assert res.sizes[res.chosen] < res.sizes["intra"]


def test_unknown_prediction_stage_is_an_error_not_a_wrong_image():
    p = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="does not know"):
        inter.predict({"colour": "same", "geom": {"type": "dihedral", "k": 0}, "lut": False, "future": 1}, {}, p, p.shape)


# --- quick deflate analysis ---------------------------------------------------------------------

def test_quick_analysis_that_matched_only_a_prefix_falls_back_to_a_full_search(monkeypatch):
    """Parameters accepted on a prefix are checked by the one verification; if they do not rebuild
    the file, the encoder (and the ingest job) search the whole stream again: never a wrong byte,
    never a needless verbatim."""
    from codec import deflate as zd
    from codec import recipe
    from simfs.ingest import jobs

    real = recipe.find_params

    def wrong_on_prefix(raw, zstream, budget_s=60.0, prefix=None):
        if prefix is not None:
            return zd.DeflateParams(1, 8, 0, 15)  # "matches the prefix", wrong for the file
        return real(raw, zstream, budget_s, prefix)

    monkeypatch.setattr(recipe, "find_params", wrong_on_prefix)
    monkeypatch.setattr(recipe, "QUICK_PREFIX", 16)
    px = _photo_like(np.random.default_rng(5), 64, 64)
    data = write_png(px, 8, 2, params=(9, 9, 1, 15))
    assert codec.analyze(data, quick=True).quick
    res = codec.encode(data, effort=1)
    assert res.mode == "intra" and codec.decode(res.blob) == data
    job = jobs.encode_png(data, [], jobs.Knobs(effort=1))
    assert job.mode == "intra" and codec.decode(job.blob) == data


def test_resampling_is_fitted_for_a_rescale_and_not_for_another_picture(monkeypatch):
    """The kernel fit (seconds on a photo) runs when the best library rescale nearly explains the
    target (a blurred-then-resized copy no library replays) and not when it misses by more than
    the target's own texture (another picture of the rescaled size)."""
    import cv2

    calls = []
    real_fit = resample.fit
    monkeypatch.setattr(resample, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    rng = np.random.default_rng(11)
    ref = _photo_like(rng, 240, 320)
    ref = np.clip(ref.astype(np.int16) + cv2.resize(rng.integers(-40, 40, (30, 40, 3)).astype(np.int16),
                                                      (320, 240), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)
    geom = {"type": "resize", "k": 0, "lib": "pil", "filter": "lanczos"}

    def scored_for(t: np.ndarray) -> list:
        return [(inter._cost(t, inter.apply_geom(ref, geom, t.shape[:2])), geom)]

    copy = cv2.resize(cv2.GaussianBlur(ref, (5, 5), 1.1), (160, 120), interpolation=cv2.INTER_LINEAR)
    assert inter._fitted_resampling(copy, ref, scored_for(copy)) is not None and calls == [1]
    other = cv2.resize(_photo_like(np.random.default_rng(12), 240, 320)[:, ::-1], (160, 120),
                       interpolation=cv2.INTER_AREA)
    assert inter._fitted_resampling(other, ref, scored_for(other)) is None and calls == [1]
