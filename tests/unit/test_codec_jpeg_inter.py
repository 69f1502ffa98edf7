"""Copies saved as a JPEG after their edit: coefficients coded as differences from the inter prediction's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import codec
from codec import bitstream, jpeg_predict

jpeglib = pytest.importorskip("jpeglib")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([120 + 80 * np.sin(x / 19.0) * np.cos(y / 27.0), 60 + 0.5 * x % 140,
                    190 - 0.3 * y + 40 * (x > w / 3)], axis=2)
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    b = io.BytesIO()
    Image.fromarray(pixels).save(b, "JPEG", quality=quality, subsampling=subsampling)
    return b.getvalue()


def _decoded_png(jpeg: bytes, mode: str = "RGB") -> bytes:
    b = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert(mode).save(b, "PNG")
    return b.getvalue()


@pytest.mark.parametrize("subsampling,sampling", [(2, (2, 2)), (1, (2, 1)), (0, (1, 1))])
def test_predicted_coefficients_match_a_real_encoder(tmp_path: Path, subsampling, sampling) -> None:
    """The integer colour conversion, downsampling and DCT give the coefficients libjpeg-turbo wrote
    for nearly every sample (read back with jpeglib)."""
    px = _photo(120, 152, 1)
    f = tmp_path / "a.jpg"
    f.write_bytes(_jpeg(px, 80, subsampling))
    d = jpeglib.read_dct(str(f))
    qts = [np.asarray(d.qt[i]) for i in d.quant_tbl_no]
    pred = jpeg_predict.predicted_coefficients(px, qts, sampling)
    for true, p in zip((d.Y, d.Cb, d.Cr), pred, strict=True):
        t = np.asarray(true).reshape(-1, 8, 8)
        assert t.shape == p.shape
        assert np.mean(t == p) > 0.99


def _coefficient_bytes(blob: bytes) -> int:
    return sum(len(v) for k, v in bitstream.unpack(blob).sections.items() if k.startswith("jpeg_c"))


@pytest.mark.parametrize("edit", ["hflip", "rot90", "grey", "same"])
def test_edited_copy_saved_as_jpeg_is_coded_against_its_reference(edit) -> None:
    """Each copy (an edit, then levels, then a JPEG save): the predicted-coefficient coding is chosen, far below coding the copy's coefficients
    on their own, and rebuilds the file byte for byte with the reference (and never without it)."""
    ref_px = _photo(160, 224, 2)
    im = Image.fromarray(ref_px)
    mode = "RGB"
    if edit == "hflip":
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif edit == "rot90":
        im = im.transpose(Image.Transpose.ROTATE_90)
    elif edit == "grey":
        im, mode = im.convert("L"), "L"
    im = im.point(lambda v: int(v * 0.9 + 12))  # levels before the save: no JPEG replay reproduces the copy
    b = io.BytesIO()
    im.save(b, "JPEG", quality=80)
    data = _decoded_png(b.getvalue(), mode)
    ref = codec.Reference(ref_px, b"ref-1")
    r = codec.encode(data, ref, effort=3)
    assert r.mode == "inter" and r.chosen.endswith("+jpegcoef"), r.sizes
    assert len(r.blob) < r.sizes["intra:jpeg"], r.sizes
    alone = codec.encode(data, effort=3)
    assert alone.chosen == "intra:jpeg"
    # The residual is the same in both (what the recovered coefficients miss); the coefficients shrink
    # (to 0.37-0.62 here: the unflipped copy's recovery is 94% exact, its wrong coefficients stay).
    assert _coefficient_bytes(r.blob) < 0.7 * _coefficient_bytes(alone.blob), (r.sizes, alone.sizes)
    assert codec.decode(r.blob, ref) == data
    assert "jpeg-coefficients" in codec.blob_features(r.blob)
    with pytest.raises(codec.ReferenceMismatch):
        codec.decode(r.blob)
    other = codec.Reference(_photo(160, 224, 9), b"ref-1")  # same id, other pixels
    with pytest.raises((codec.ReferenceMismatch, codec.CorruptBlob)):
        codec.decode(r.blob, other)
    p = codec.repack(r.blob, 7)
    assert codec.decode(p or r.blob, ref) == data


def test_damaged_difference_planes_never_give_wrong_bytes() -> None:
    ref_px = _photo(96, 128, 4)
    data = _decoded_png(_jpeg(np.clip(ref_px[:, ::-1].astype(int) + 9, 0, 255).astype(np.uint8), 75))
    ref = codec.Reference(ref_px, b"r")
    r = codec.encode(data, ref, effort=3)
    assert r.chosen.endswith("+jpegcoef"), r.sizes
    b = bitstream.unpack(r.blob)
    for bad_sections in ({**b.sections, "jpeg_c0": b.sections["jpeg_c1"]},
                         {k: v for k, v in b.sections.items() if k != "jpeg_c2"}):
        bad = bitstream.pack(bitstream.Blob(b.mode, b.ref_id, b.meta, bad_sections, b.payload, b.file_sha256))
        with pytest.raises(codec.CorruptBlob):
            codec.decode(bad, ref)
    meta = {**b.meta, "jpeg": {k: v for k, v in b.meta["jpeg"].items() if k != "predicted"}}
    bad = bitstream.pack(bitstream.Blob(b.mode, b.ref_id, meta, b.sections, b.payload, b.file_sha256))
    with pytest.raises(codec.CorruptBlob):
        codec.decode(bad, ref)


def test_an_unrelated_reference_never_makes_the_copy_bigger() -> None:
    """Against a reference that has nothing to do with the copy, the copy stays coded on its own."""
    data = _decoded_png(_jpeg(_photo(128, 160, 5), 80))
    noise = np.random.default_rng(0).integers(0, 256, (128, 160, 3), dtype=np.uint8)
    r = codec.encode(data, codec.Reference(noise, b"n"), effort=3)
    assert r.chosen == "intra:jpeg", r.sizes
    assert len(r.blob) <= min(r.sizes.values())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), h=st.integers(16, 72), w=st.integers(16, 72), quality=st.integers(40, 95),
       subsampling=st.sampled_from([0, 1, 2]), flip=st.booleans())
def test_any_jpeg_saved_copy_round_trips_byte_exact(seed, h, w, quality, subsampling, flip) -> None:
    ref_px = _photo(h, w, seed)
    src = ref_px[:, ::-1].copy() if flip else ref_px
    data = _decoded_png(_jpeg(src, quality, subsampling))
    ref = codec.Reference(ref_px, b"r")
    r = codec.encode(data, ref, effort=1)
    assert r.blob is None or codec.decode(r.blob, ref if r.mode == "inter" else None) == data


def test_integer_prediction_is_deterministic_and_exact_on_extremes() -> None:
    """The DCT stays in int64 and the clipped range for the most extreme blocks (all 0 / all 255 /
    a checkerboard), the same on every call."""
    blocks = np.stack([np.zeros((8, 8)), np.full((8, 8), 255), (np.indices((8, 8)).sum(0) % 2) * 255]) - 128
    q = np.ones((8, 8), np.int64)
    a = jpeg_predict.quantize(jpeg_predict.fdct_int(blocks.astype(np.int64)), q)
    b = jpeg_predict.quantize(jpeg_predict.fdct_int(blocks.astype(np.int64)), q)
    assert a.dtype == np.int64 and np.array_equal(a, b)
    assert a[0, 0, 0] == -1024 and a[1, 0, 0] == 1016 and np.abs(a).max() <= jpeg_predict.COEF_LIMIT
