"""PNGs decoded from a JPEG: the numpy decoder equals libjpeg-turbo, recovered coefficients round-trip
byte for byte, are chosen only when smaller than intra, and never for pictures no JPEG made."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from codec_helpers import write_png
from conftest import DEVSET, needs_devset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import codec
from codec import bitstream, jpeg_decoder, jpeg_origin, jpeg_polish

jpeglib = pytest.importorskip("jpeglib")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients, edges and mild noise: photo-like content with every kind of block."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([120 + 80 * np.sin(x / 23.0) * np.cos(y / 31.0), 60 + 0.4 * x % 150,
                    200 - 0.3 * y + 30 * (x > w / 2)], axis=2)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, quality: int, subsampling: int) -> bytes:
    b = io.BytesIO()
    Image.fromarray(pixels).save(b, "JPEG", quality=quality, subsampling=subsampling)
    return b.getvalue()


def _decoded(jpeg: bytes, mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert(mode))


def _png(pixels: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(pixels).save(b, "PNG")
    return b.getvalue()


@pytest.mark.parametrize("subsampling,sampling", [(2, (2, 2)), (1, (2, 1)), (0, (1, 1))])
@pytest.mark.parametrize("shape", [(64, 96), (37, 53), (9, 17)])
def test_numpy_decoder_equals_libjpeg_turbo(tmp_path: Path, subsampling, sampling, shape) -> None:
    """The coefficients of a real JPEG (read with jpeglib) decode with codec/jpeg_decoder.py to
    exactly the pixels Pillow's libjpeg-turbo gives, for every chroma sampling and odd sizes."""
    px = _photo(*shape, seed=shape[0])
    data = _jpeg(px, 80, subsampling)
    f = tmp_path / "a.jpg"
    f.write_bytes(data)
    d = jpeglib.read_dct(str(f))
    coefs = [c.reshape(-1, 8, 8) for c in (d.Y, d.Cb, d.Cr)]
    qts = [d.qt[i] for i in d.quant_tbl_no]
    out = jpeg_decoder.decode(coefs, qts, sampling, *shape)
    assert np.array_equal(out, _decoded(data))


def test_grey_jpeg_decodes_exactly(tmp_path: Path) -> None:
    px = _photo(40, 56)[:, :, 1]
    b = io.BytesIO()
    Image.fromarray(px).save(b, "JPEG", quality=70)
    (tmp_path / "g.jpg").write_bytes(b.getvalue())
    d = jpeglib.read_dct(str(tmp_path / "g.jpg"))
    out = jpeg_decoder.decode([d.Y.reshape(-1, 8, 8)], [d.qt[0]], (1, 1), 40, 56)
    assert np.array_equal(out, _decoded(b.getvalue(), "L"))


@pytest.mark.parametrize("quality,subsampling", [(75, 2), (90, 0), (60, 1)])
def test_decoded_jpeg_is_coded_as_its_coefficients(quality, subsampling) -> None:
    """A PNG of a decoded JPEG: recovered (low-frequency steps as the encoder used them), coded well below
    intra, rebuilt byte for byte; the blob names the jpeg-coefficients feature."""
    px = _photo(192, 256)
    jpeg = _jpeg(px, quality, subsampling)
    data = _png(_decoded(jpeg))
    r = codec.encode(data, effort=3)
    assert r.chosen == "intra:jpeg", r.sizes
    assert len(r.blob) < 0.7 * r.sizes["intra"]
    assert codec.decode(r.blob) == data
    assert codec.blob_features(r.blob) == frozenset({"jpeg-coefficients"})
    rec = jpeg_origin.best_recovery(_decoded(jpeg))
    assert rec is not None and rec.exact > 0.9
    qt_luma = Image.open(io.BytesIO(jpeg)).quantization[0]  # the encoder's table, natural order
    # the well-observed low frequencies are found exactly (rarely used high ones may stay open)
    assert [int(rec.qts[0][0, 0]), int(rec.qts[0][0, 1]), int(rec.qts[0][1, 0])] == [qt_luma[0], qt_luma[1], qt_luma[8]]


def test_repack_of_a_jpeg_coded_blob_still_rebuilds_the_file() -> None:
    data = _png(_decoded(_jpeg(_photo(128, 128, 3), 80, 2)))
    r = codec.encode(data, effort=1)
    assert r.chosen == "intra:jpeg"
    p = codec.repack(r.blob, 7)
    assert p is not None and len(p) < len(r.blob)
    assert codec.decode(p) == data


def test_damaged_coefficients_never_give_wrong_bytes() -> None:
    data = _png(_decoded(_jpeg(_photo(96, 128, 5), 75, 2)))
    r = codec.encode(data, effort=3)
    assert r.chosen == "intra:jpeg"
    b = bitstream.unpack(r.blob)
    sec = dict(b.sections)
    sec["jpeg_c0"] = sec["jpeg_c1"]  # a valid JPEG XL image of the wrong plane
    bad = bitstream.pack(bitstream.Blob(b.mode, b.ref_id, b.meta, sec, b.payload, b.file_sha256))
    with pytest.raises(codec.CorruptBlob):
        codec.decode(bad)


def test_pictures_no_jpeg_made_are_not_taken_for_decoded_jpegs() -> None:
    """A photo-like picture that never went through a JPEG, and a flat synthetic one: the probe says
    no, and plain intra is what encode chooses."""
    for px in (_photo(160, 200, 7), np.full((64, 64, 3), 77, np.uint8)):
        assert not jpeg_origin.looks_decoded(px)
        r = codec.encode(_png(px), effort=3)
        assert r.chosen == "intra"


def test_a_resized_decoded_jpeg_is_not_taken_for_one() -> None:
    """Resampling destroys the block lattice: the probe must say no."""
    dec = _decoded(_jpeg(_photo(240, 320, 2), 75, 2))
    small = np.asarray(Image.fromarray(dec).resize((213, 160), Image.Resampling.LANCZOS))
    assert not jpeg_origin.looks_decoded(small)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 6), w=st.integers(1, 6),
       sampling=st.sampled_from(jpeg_origin.SAMPLINGS))
def test_coefficient_planes_round_trip(seed, h, w, sampling) -> None:
    """The frequency-plane layout of the bitstream inverts exactly, for any coefficients in range."""
    rng = np.random.default_rng(seed)
    for ci in range(3):
        bh, bw = jpeg_decoder.blocks_shape(8 * h - 3, 8 * w - 5, ci, sampling)
        c = rng.integers(-2047, 2048, (bh * bw, 8, 8))
        img = jpeg_origin.coef_image(c, bh, bw)
        assert img.dtype == np.uint16
        assert np.array_equal(jpeg_origin.coefs_from_image(img, bh, bw), c)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(16, 48), w=st.integers(16, 48),
       quality=st.integers(30, 95), subsampling=st.sampled_from([0, 1, 2]), grey=st.booleans())
def test_any_decoded_jpeg_round_trips_byte_exact(seed, h, w, quality, subsampling, grey) -> None:
    """Whatever encode chooses for a decoded JPEG of random content and size, the file comes back
    exactly, and the JPEG candidate is only kept when it is the smallest."""
    px = _photo(h, w, seed % 1000)
    if grey:
        px = px[:, :, 0]
    b = io.BytesIO()
    Image.fromarray(px).save(b, "JPEG", quality=quality, subsampling=subsampling)
    dec = _decoded(b.getvalue(), "L" if grey else "RGB")
    data = write_png(dec, 8, 0 if grey else 2)
    r = codec.encode(data, effort=1, allow_larger=True)
    assert r.blob is not None and codec.decode(r.blob) == data
    if r.chosen == "intra:jpeg":
        assert len(r.blob) <= r.sizes["intra"]


def test_standard_luma_table_names_its_chroma_table() -> None:
    """libjpeg's quality scales both IJG tables: each scaled luma table gives the chroma table of the
    same quality; a table that is none of them gives nothing."""
    for quality in (10, 50, 75, 85, 90, 95, 100):
        luma = jpeg_origin._scaled(jpeg_origin._STD_LUMA, quality).reshape(8, 8)
        chroma = jpeg_origin.paired_chroma_table(luma)
        assert chroma is not None
        assert np.array_equal(chroma.reshape(64), jpeg_origin._scaled(jpeg_origin._STD_CHROMA, quality))
    custom = jpeg_origin._scaled(jpeg_origin._STD_LUMA, 90).reshape(8, 8).copy()
    custom[3, 4] += 1
    assert jpeg_origin.paired_chroma_table(custom) is None


@needs_devset
def test_fine_chroma_table_of_a_real_photo_is_taken_from_its_luma_quality() -> None:
    """A real photo saved at quality 90, 4:2:2: its sub-sampled chroma alone misleads the table
    estimate (steps of 1-2 where the table has 20, 93.9% of the samples matched); the chroma table
    paired with the standard luma table is tried, and the recovery matches > 99%."""
    src = np.asarray(Image.open(DEVSET / "burst-vtest" / "f00000.png").convert("RGB"))
    px = np.ascontiguousarray(src[:384, :384])
    jpeg = _jpeg(px, 90, 1)
    dec = _decoded(jpeg)
    estimated = jpeg_origin.recover(dec, (2, 1))
    assert estimated is not None and estimated.exact < 0.96  # what this test guards against
    rec = jpeg_origin.best_recovery(dec)
    assert rec is not None and rec.sampling == (2, 1)
    chroma_table = Image.open(io.BytesIO(jpeg)).quantization[1]
    assert rec.qts[1].reshape(64).tolist() == list(chroma_table)
    assert rec.exact > 0.99


@needs_devset
@pytest.mark.parametrize("quality,idct,bound", [(95, "islow", 0.8), (98, "islow", 0.9), (92, "ifast", 0.8)])
def test_fine_quality_jpeg_of_a_real_photo_is_recognised(tmp_path: Path, quality, idct, bound) -> None:
    """A real photo saved at quality 92-98 (decoded with the accurate or the fast IDCT): the lowest
    frequencies' steps of 1-3 drown in rounding noise, so the per-coefficient lattice test alone
    says no; the whole standard table does say yes (and names the quality), the picture is coded
    as its coefficients well below intra, and rebuilt byte for byte."""
    src = np.asarray(Image.open(DEVSET / "burst-vtest" / "f00000.png").convert("RGB"))
    f = tmp_path / "a.jpg"
    f.write_bytes(_jpeg(np.ascontiguousarray(src[:384, :512]), quality, 2))
    px = np.ascontiguousarray(_libjpeg_decode(f, idct, True))
    d = jpeg_origin._probe_dct(px, 2048)
    assert d is not None and not jpeg_origin._coarse_lattice(d)  # what this test guards against
    q, gain = jpeg_origin.standard_table_fit(d)
    assert q == quality and gain >= jpeg_origin.STD_PROBE_GAIN
    assert jpeg_origin.looks_decoded(px)
    data = _png(px)
    r = codec.encode(data, effort=3)
    assert r.chosen == "intra:jpeg", r.sizes
    assert len(r.blob) < bound * r.sizes["intra"]
    assert codec.decode(r.blob) == data


@needs_devset
def test_real_photos_no_jpeg_made_score_far_below_the_standard_table_gain() -> None:
    """Dev-set photos that never were JPEGs (a video frame, a scanned test image), resized with
    Lanczos: the standard-table probe stays far below its threshold."""
    for path in (DEVSET / "burst-dinosaur" / "viff.000.png", DEVSET / "homog-graf" / "img1.png"):
        src = Image.open(path).convert("RGB")
        for px in (np.asarray(src), np.asarray(src.resize((src.width * 2 // 3, src.height * 2 // 3),
                                                          Image.Resampling.LANCZOS))):
            d = jpeg_origin._probe_dct(np.ascontiguousarray(px), 2048)
            assert d is not None
            assert jpeg_origin.standard_table_fit(d)[1] < jpeg_origin.STD_PROBE_GAIN / 2
            assert not jpeg_origin.looks_decoded(np.ascontiguousarray(px))


def _custom_tables() -> tuple[list[int], list[int]]:
    """A fine table pair no IJG quality gives, as a camera or an editor writes them: steps of 1 at
    the lowest frequencies, growing to single digits, and a chroma table capped at 9."""
    luma = [1 + (u + v) // 2 for v in range(8) for u in range(8)]
    chroma = [min(9, 1 + u + v) for v in range(8) for u in range(8)]
    return luma, chroma


def _custom_jpeg(pixels: np.ndarray, subsampling: int) -> bytes:
    luma, chroma = _custom_tables()
    b = io.BytesIO()
    Image.fromarray(pixels).save(b, "JPEG", qtables=[luma, chroma], subsampling=subsampling)
    return b.getvalue()


@needs_devset
@pytest.mark.parametrize("subsampling,sampling", [(1, (2, 1)), (2, (2, 2))])
def test_fine_custom_table_jpeg_of_a_real_photo_is_recognised_and_its_tables_found(subsampling, sampling) -> None:
    """A real photo saved with a fine custom table pair: neither the low-frequency lattice test nor
    the IJG tables recognise it, the middle frequencies' own lattices do (free_table_fit); the luma
    table is estimated, the chroma steps that recovery noise hides are raised by envelope_table,
    and the picture is coded as its coefficients below intra and rebuilt byte for byte. (The photo
    never was a JPEG: a video frame's own block lattice would blur which step is the table's.)"""
    luma, chroma = _custom_tables()
    assert all(not np.array_equal(jpeg_origin._scaled(jpeg_origin._STD_LUMA, q), luma) for q in range(1, 101))
    src = np.asarray(Image.open(DEVSET / "homog-graf" / "img1.png").convert("RGB"))
    jpeg = _custom_jpeg(np.ascontiguousarray(src[:384, :512]), subsampling)
    assert Image.open(io.BytesIO(jpeg)).quantization[0] == luma
    px = _decoded(jpeg)
    d = jpeg_origin._probe_dct(px, 2048)
    assert d is not None and not jpeg_origin._coarse_lattice(d)  # what this test guards against
    assert jpeg_origin.standard_table_fit(d)[1] < jpeg_origin.STD_PROBE_GAIN
    assert jpeg_origin.free_table_fit(d) >= jpeg_origin.FREE_PROBE_COEFS
    rec = jpeg_origin.recover_picture(px)
    assert rec is not None and rec.sampling == sampling
    estimated_only = jpeg_origin.recover(px, sampling)
    assert estimated_only is not None
    print(f"matched: {rec.exact:.4f} (chroma table estimated only: {estimated_only.exact:.4f})")
    assert rec.exact > 0.95
    # A coefficient's step is the true one wherever it is often nonzero; a rarely nonzero one's
    # few values may fit another step (the residual codes what that gets wrong).
    for got, true, coefs in ((rec.qts[0], luma, rec.coefs[:1]), (rec.qts[1], chroma, rec.coefs[1:])):
        got, true = got.reshape(64).astype(int), np.asarray(true)
        nonzero = np.concatenate([c.reshape(-1, 64) for c in coefs]) != 0
        often = nonzero.mean(axis=0) >= 0.05
        assert often.sum() >= 16
        assert got[often].tolist() == true[often].tolist()
    data = _png(px)
    r = codec.encode(data, effort=3)
    assert r.chosen == "intra:jpeg", r.sizes
    assert len(r.blob) < 0.85 * r.sizes["intra"]
    assert codec.decode(r.blob) == data


def test_envelope_table_raises_unsure_steps_to_their_neighbours_and_keeps_sure_ones() -> None:
    q = np.full((8, 8), 11)
    q[0, :4] = [1, 1, 2, 4]
    q[1, 0] = 1
    q[3, 5], q[6, 6], q[7, 7] = 1, 255, 2  # recovery noise's steps, and a step never seen
    q[4, 4] = 7  # a sure step finer than its neighbours: a custom table may dip
    e = jpeg_origin.envelope_table(q)
    assert e[3, 5] == 11 and e[6, 6] == 11 and e[7, 7] == 11
    assert e[4, 4] == 7
    assert e[0, :4].tolist() == [1, 1, 2, 4] and e[1, 0] == 1
    assert jpeg_origin.envelope_table(np.full((8, 8), 255)).tolist() == np.full((8, 8), 255).tolist()


@needs_devset
def test_luma_polish_matches_more_samples_and_leaves_coarse_tables_alone() -> None:
    """At steps of 1-2 the refinement leaves blocks a few samples off; single-coefficient moves
    match more of them (the exact IDCT confirms each), so the residual shrinks; with no step of 2
    or less there is nothing to move."""
    src = np.asarray(Image.open(DEVSET / "homog-graf" / "img1.png").convert("RGB"))
    px = _decoded(_custom_jpeg(np.ascontiguousarray(src[:256, :384]), 1))
    rec = jpeg_origin.best_recovery(px)
    assert rec is not None and rec.exact < 1.0
    polished = jpeg_origin._polished(px, rec)
    assert polished.exact > rec.exact
    qts = [q.astype(np.int64) for q in polished.qts]
    dec = jpeg_decoder.decode([c.astype(np.int64) for c in polished.coefs], qts, polished.sampling,
                              *px.shape[:2], polished.idct, polished.fancy)
    assert np.array_equal(dec, polished.decoded) and float(np.mean(dec == px)) == polished.exact
    coarse = jpeg_origin.best_recovery(_decoded(_jpeg(np.ascontiguousarray(src[:256, :384]), 75, 1)))
    assert coarse is not None
    assert jpeg_polish.polish_luma(px, [c.astype(np.int64) for c in coarse.coefs],
                                   [q.astype(np.int64) for q in coarse.qts], coarse.sampling,
                                   coarse.idct, coarse.fancy) is None


DECODERS = [("islow", True), ("ifast", True), ("ifast", False), ("islow", False)]


def _libjpeg_decode(path: Path, idct: str, fancy: bool) -> np.ndarray:
    """libjpeg's own decode with the given IDCT and up-sampling (jpeglib's bundled libjpeg)."""
    method = {"islow": jpeglib.JDCT_ISLOW, "ifast": jpeglib.JDCT_IFAST}[idct]
    return jpeglib.read_spatial(str(path), dct_method=method, flags=None if fancy else ["-DO_FANCY_UPSAMPLING"]).spatial


@pytest.mark.parametrize("idct,fancy", DECODERS)
@pytest.mark.parametrize("subsampling,sampling", [(2, (2, 2)), (1, (2, 1)), (0, (1, 1))])
def test_numpy_decoders_equal_libjpeg(tmp_path: Path, idct, fancy, subsampling, sampling) -> None:
    """The fast integer IDCT (jidctfst.c) and plain up-sampling decode real coefficients to exactly
    libjpeg's pixels, for every chroma sampling and an odd size."""
    h, w = 45, 67
    f = tmp_path / "a.jpg"
    f.write_bytes(_jpeg(_photo(h, w, seed=7), 70, subsampling))
    d = jpeglib.read_dct(str(f))
    coefs = [c.reshape(-1, 8, 8) for c in (d.Y, d.Cb, d.Cr)]
    qts = [d.qt[i] for i in d.quant_tbl_no]
    out = jpeg_decoder.decode(coefs, qts, sampling, h, w, idct, fancy)
    assert np.array_equal(out, _libjpeg_decode(f, idct, fancy))


@pytest.mark.parametrize("idct,fancy", [("ifast", False), ("ifast", True), ("islow", False)])
def test_picture_from_another_decoder_is_recovered_and_named(tmp_path: Path, idct, fancy) -> None:
    """A JPEG decoded with the fast IDCT or plain up-sampling (djpeg -dct fast / -nosmooth,
    TurboJPEG's fast flags): recovered for that decoder, which the blob names (feature
    jpeg-decoders), coded well below intra and rebuilt byte for byte."""
    f = tmp_path / "a.jpg"
    f.write_bytes(_jpeg(_photo(192, 256, seed=3), 75, 2))
    px = np.ascontiguousarray(_libjpeg_decode(f, idct, fancy))
    rec = jpeg_origin.best_recovery(px)
    assert rec is not None and (rec.idct, rec.fancy) == (idct, fancy) and rec.exact > 0.95
    data = _png(px)
    r = codec.encode(data, effort=3)
    assert r.chosen == "intra:jpeg", r.sizes
    assert len(r.blob) < 0.7 * r.sizes["intra"]
    assert codec.decode(r.blob) == data
    assert codec.blob_features(r.blob) == frozenset({"jpeg-coefficients", "jpeg-decoders"})
    assert bitstream.unpack(r.blob).meta["jpeg"]["decoder"] == [idct, int(fancy)]


def test_default_decoder_is_not_named() -> None:
    """Pictures from libjpeg-turbo's default decode keep the first jpeg-coefficients description."""
    px = _decoded(_jpeg(_photo(128, 160), 80, 2))
    r = codec.encode(_png(px), effort=3)
    assert r.chosen == "intra:jpeg"
    assert "decoder" not in bitstream.unpack(r.blob).meta["jpeg"]


def test_unknown_decoder_is_refused() -> None:
    """A description naming a decoder this codec lacks fails to decode (never a guess)."""
    px = _decoded(_jpeg(_photo(64, 64), 80, 2))
    rec = jpeg_origin.best_recovery(px)
    assert rec is not None
    desc, sections, payload = jpeg_origin.encode(px, 3, rec)
    for bad in (["float", 1], ["ifast", 2], "ifast"):
        with pytest.raises(ValueError):
            jpeg_origin.reconstruct({**desc, "decoder": bad}, sections, payload, px.shape)
    assert np.array_equal(jpeg_origin.reconstruct(desc, sections, payload, px.shape), px)
