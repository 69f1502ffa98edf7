"""Large pictures' JPEG decode, recovery and polish run band by band: the banded decode and polish
equal the whole-picture ones sample for sample, and a banded recovery finds the JPEG's tables and
round-trips byte for byte, in memory bounded by the band."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import codec
from codec import jpeg_decoder, jpeg_origin, jpeg_polish


def _coefs(rng: np.random.Generator, h: int, w: int, sampling: tuple[int, int], n: int) -> list[np.ndarray]:
    out = []
    for ci in range(n):
        bh, bw = jpeg_decoder.blocks_shape(h, w, ci, sampling)
        c = rng.integers(-30, 30, (bh * bw, 8, 8)).astype(np.int16)
        c[:, 0, 0] = rng.integers(-120, 120, bh * bw)
        out.append(c)
    return out


@settings(max_examples=25, deadline=None)
@given(h=st.integers(17, 700), w=st.integers(9, 300), sampling=st.sampled_from([(1, 1), (2, 2), (2, 1)]),
       idct=st.sampled_from(sorted(jpeg_decoder.IDCTS)), fancy=st.booleans(), grey=st.booleans(),
       band=st.sampled_from([1 << 10, 1 << 12, 1 << 14]), seed=st.integers(0, 2**32 - 1))
def test_banded_decode_equals_whole_decode(h: int, w: int, sampling: tuple[int, int], idct: str, fancy: bool,
                                           grey: bool, band: int, seed: int) -> None:
    """Every size, sampling, decoder and band height: a band's rows decode as in the whole picture
    (the fancy up-sampler reads one chroma row across the band's edge, the context row gives it)."""
    if grey:
        sampling = (1, 1)
    spans = jpeg_decoder.bands(h, w, sampling, band)
    assert spans[0][0] == 0 and spans[-1][1] == h
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))  # the bands tile the rows
    rng = np.random.default_rng(seed)
    n = 1 if grey else 3
    coefs = _coefs(rng, h, w, sampling, n)
    qts = [rng.integers(1, 24, (8, 8)) for _ in range(n)]
    whole = jpeg_decoder.decode_whole(coefs, qts, sampling, h, w, idct, fancy)
    old = jpeg_decoder.BAND_PIXELS
    try:
        jpeg_decoder.BAND_PIXELS = band
        banded = jpeg_decoder.decode(coefs, qts, sampling, h, w, idct, fancy)
    finally:
        jpeg_decoder.BAND_PIXELS = old
    assert banded.shape == whole.shape and np.array_equal(banded, whole)


def _photo(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([120 + 80 * np.sin(x / 23.0) * np.cos(y / 31.0), 60 + 0.4 * x % 150,
                    200 - 0.3 * y + 30 * (x > w / 2)], axis=2) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _through_jpeg(px: np.ndarray, quality: int) -> tuple[np.ndarray, list[np.ndarray]]:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        tables = [np.array(im.quantization[i]).reshape(8, 8) for i in (0, 1)]
        return np.asarray(im.convert("RGB")), tables


@pytest.mark.parametrize("quality", [96, 80])
def test_banded_recovery_finds_the_tables_and_round_trips(monkeypatch: pytest.MonkeyPatch, quality: int) -> None:
    """A picture recovered in bands (small bands forced): the JPEG's own tables, nearly every sample
    decoded exactly (seams included), no worse than the whole-picture recovery, and the coded
    picture decodes back byte for byte."""
    px, tables = _through_jpeg(_photo(480, 352), quality)
    whole = jpeg_origin.recover_picture(px)
    monkeypatch.setattr(jpeg_origin, "RECOVER_BAND_PIXELS", 1 << 14)
    monkeypatch.setattr(jpeg_polish, "BAND_PIXELS", 1 << 14)
    monkeypatch.setattr(jpeg_decoder, "BAND_PIXELS", 1 << 13)
    assert len(jpeg_decoder.bands(*px.shape[:2], (2, 2), jpeg_origin.RECOVER_BAND_PIXELS)) > 4
    banded = jpeg_origin.recover_picture(px)
    assert whole is not None and banded is not None
    assert np.array_equal(banded.qts[0], tables[0]) and np.array_equal(banded.qts[1], tables[1])
    assert banded.exact >= 0.95 and banded.exact >= whole.exact - 0.002, (banded.exact, whole.exact)
    dec = jpeg_decoder.decode(banded.coefs, banded.qts, banded.sampling, *px.shape[:2], banded.idct, banded.fancy)
    assert np.array_equal(dec, banded.decoded) and float(np.mean(dec == px)) == banded.exact
    data = _png(px)
    res = codec.encode(data)  # banded recovery inside the codec: the coded file comes back byte for byte
    assert res.blob is not None and res.mode == "intra" and "jpeg" in res.chosen, (res.mode, res.chosen)
    assert codec.decode(res.blob) == data


def _png(px: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return buf.getvalue()


def test_banded_polish_equals_whole_polish(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block's moves depend on its own samples and the chroma over them: polishing band by band
    gives exactly the luma the whole-picture polish gives (and moves something)."""
    px, _ = _through_jpeg(_photo(400, 320), 98)
    rec = jpeg_origin.best_recovery(px)
    assert rec is not None
    qts = [q.astype(np.int64) for q in rec.qts]
    whole = jpeg_polish.polish_whole(px, rec.coefs, qts, rec.sampling, rec.idct, rec.fancy)
    monkeypatch.setattr(jpeg_polish, "BAND_PIXELS", 1 << 13)
    banded = jpeg_polish.polish_luma(px, rec.coefs, qts, rec.sampling, rec.idct, rec.fancy)
    assert whole is not None and banded is not None
    assert np.array_equal(banded, whole) and not np.array_equal(whole, rec.coefs[0])


def _ycc_formula(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """jdcolor.c ycc_rgb_convert written out, in int64."""
    jd = jpeg_decoder
    yy = y.astype(np.int64)
    rgb = [yy + jd.CR_R[cr], yy + ((jd.CB_G[cb] + jd.CR_G[cr]) >> 16), yy + jd.CB_B[cb]]
    return np.clip(np.stack(rgb, axis=-1), 0, 255).astype(np.uint8)


def test_colour_conversion_tables_equal_the_formula_on_every_input() -> None:
    """ycc_to_rgb's lookup tables give jdcolor.c's arithmetic for all 2^24 (Y, Cb, Cr) triples."""
    cb, cr = (a.astype(np.uint8) for a in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    for y0 in range(0, 256, 32):  # 32 luma values at a time: the formula's int64 planes stay small
        y = np.repeat(np.arange(y0, y0 + 32, dtype=np.uint8), 256 * 256).reshape(32, 256, 256)
        b = np.broadcast_to(cb, y.shape)
        r = np.broadcast_to(cr, y.shape)
        assert np.array_equal(jpeg_decoder.ycc_to_rgb(y, b, r), _ycc_formula(y, b, r))
