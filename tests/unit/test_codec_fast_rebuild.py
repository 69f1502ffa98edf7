"""Fast rebuild paths (host zlib, split parallel re-deflate) against the pinned single stream:
identical bytes, fallback when a fast path disagrees, split points rejected when they do not reproduce."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

import codec
from codec import api, recipe
from codec import deflate as zd
from codec import split_deflate as sd


def _photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([np.sin(x / 37) * 60 + y / h * 120, np.cos(y / 23) * 50 + x / w * 90, (x + y) / (h + w) * 200],
                    axis=2) + 40
    base += rng.normal(0, 1.5, base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def _pillow_png(px: np.ndarray, level: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """1200 x 1000 RGB (3.6 MB of rows: several segments), Pillow's default level."""
    return _pillow_png(_photo_like(1000, 1200), 6)


def test_host_zlib_is_used_only_when_it_reproduces_the_vectors():
    assert zd.host_ok() == (zd.host_vector_digest() == zd.EXPECTED_VECTOR_DIGEST)


@pytest.mark.parametrize("level", [6, 9])
def test_every_rebuild_path_gives_the_original_bytes(level):
    data = _pillow_png(_photo_like(1000, 1200, seed=level), level)
    a = codec.analyze(data)
    assert a.ok and a.recipe is not None and a.pixels is not None
    assert len(a.recipe.splits) >= 2, "a 3.6 MB stream of Pillow's deflate should split at verified points"
    for host in (True, False):
        for split in (True, False):
            assert recipe.rebuild(a.pixels, a.recipe, host=host, split=split) == data, (host, split)


def test_split_segments_splice_to_the_pinned_stream(big_png):
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters) + a.recipe.extra
    p = zd.DeflateParams(*a.recipe.params)
    whole = zd.compress(raw, p)
    body = sd.deflate_split(raw, p, a.recipe.splits, host=False)
    assert body[: len(whole) - 6] == whole[2:-4]


def test_encoded_blob_records_split_points_and_decodes(big_png):
    r = codec.encode(big_png, effort=1, allow_larger=True)
    assert r.mode == "intra" and r.blob is not None
    info = codec.blob_info(r.blob)
    assert len(info["recipe"]["splits"]) >= 2
    before = api.FALLBACKS[0]
    assert codec.decode(r.blob) == big_png
    assert api.FALLBACKS[0] == before, "the fast path should have matched"


def test_fast_path_that_disagrees_falls_back_to_the_pinned_deflater(big_png, monkeypatch):
    r = codec.encode(big_png, effort=1, allow_larger=True)
    assert r.blob is not None
    real = zd.raw_deflate

    def wrong(data, p, zdict=b"", *, host=False):
        out = bytearray(real(data, p, zdict, host=host))
        out[len(out) // 2] ^= 0x10  # a deflater with other output than zlib's
        return bytes(out)

    monkeypatch.setattr(zd, "raw_deflate", wrong)
    monkeypatch.setattr(zd, "_HostStreamCompressor", _BrokenHost)
    before = api.FALLBACKS[0]
    assert codec.decode(r.blob) == big_png
    assert api.FALLBACKS[0] == before + 1


class _BrokenHost:
    def __init__(self, p):
        self.c = zlib.compressobj(1)  # wrong parameters: other bytes

    def feed(self, data):
        self.out = getattr(self, "out", b"") + self.c.compress(data)

    def finish(self):
        return getattr(self, "out", b"") + self.c.flush()


def test_wrong_recorded_split_points_still_decode_exactly(big_png):
    """A blob whose split points are off (damage, a bug) must still give the file, via the fallback."""
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    a.recipe.splits = [[x, b + 3] for x, b in a.recipe.splits]
    r = codec.encode(big_png, effort=1, analysis=a, verify=False, allow_larger=True)
    assert r.blob is not None
    before = api.FALLBACKS[0]
    assert codec.decode(r.blob) == big_png
    assert api.FALLBACKS[0] == before + 1


def test_points_that_are_not_block_boundaries_are_rejected(big_png, monkeypatch):
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters) + a.recipe.extra
    p = zd.DeflateParams(*a.recipe.params)
    body = zd.compress(raw, p)[2:-4]
    true_points = zd.block_boundaries(body)
    assert true_points and all(0 < x < len(raw) and 0 < b < len(body) * 8 for x, b in true_points)
    assert sd.find_points(raw, body, p)
    # boundaries a few bytes off: a restart there cannot emit the original bits
    monkeypatch.setattr(zd, "block_boundaries", lambda _b, _w=15: [(x + 5, b) for x, b in true_points])
    assert sd.find_points(raw, body, p) == []


def test_parameters_that_do_not_reproduce_give_no_split_points(big_png):
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters) + a.recipe.extra
    body = zd.compress(raw, zd.DeflateParams(6, 9, 1, 15))[2:-4]
    assert sd.find_points(raw, body, zd.DeflateParams(9, 8, 0, 15)) == []


def test_small_streams_are_not_split():
    data = _pillow_png(_photo_like(200, 300), 6)
    a = codec.analyze(data)
    assert a.ok and a.recipe is not None and a.recipe.splits == []


def test_splice_joins_bit_strings_in_deflate_order():
    # 3 bits 101, then 6 bits 110011, then the rest 0xff: LSB first
    got = sd.splice([(bytes([0b101]), 3), (bytes([0b110011]), 6), (b"\xff", None)])
    want = 0b101 | (0b110011 << 3) | (0xFF << 9)
    assert got == want.to_bytes(3, "little")


def test_verification_drops_split_points_that_do_not_rebuild(big_png):
    """The encoder checks split points on one block each; the verification rebuild proves them, and a
    blob whose points fail there is kept without them (single stream) instead of falling back forever."""
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.recipe.splits
    a.recipe.splits = [[x, b + 3] for x, b in a.recipe.splits]
    r = codec.encode(big_png, effort=1, analysis=a, verify=False, allow_larger=True)
    assert r.blob is not None and codec.blob_info(r.blob)["recipe"]["splits"]
    fixed = codec.verified_blob(r.blob, big_png)
    assert fixed is not None and "splits" not in codec.blob_info(fixed)["recipe"]
    before = api.FALLBACKS[0]
    assert codec.decode(fixed) == big_png
    assert api.FALLBACKS[0] == before
    # encode's own verification does the same
    a.recipe.splits = [[x, b + 3] for x, b in codec.analyze(big_png).recipe.splits]
    r2 = codec.encode(big_png, effort=1, analysis=a, allow_larger=True)
    assert r2.blob is not None and "splits" not in codec.blob_info(r2.blob)["recipe"]
    assert codec.verified_blob(r2.blob, big_png) == r2.blob
    assert codec.verified_blob(r2.blob, big_png + b"x") is None


def test_full_check_of_split_points_agrees_with_the_quick_one(big_png):
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters) + a.recipe.extra
    p = zd.DeflateParams(*a.recipe.params)
    body = zd.compress(raw, p)[2:-4]
    assert sd.find_points(raw, body, p, full_check=True) == sd.find_points(raw, body, p, full_check=False) == a.recipe.splits


def test_absurd_split_points_are_refused_not_computed(big_png):
    a = codec.analyze(big_png)
    assert a.recipe is not None and a.pixels is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters) + a.recipe.extra
    for bad in ([[10, 10**12]], [[len(raw) + 5, 100]], [[-4, 8]], [[1000, 80], [900, 90]]):
        with pytest.raises(ValueError):
            sd.deflate_split(raw, a.recipe.params, bad, host=False)
    a.recipe.splits = [[1000, 10**12]]
    r = codec.encode(big_png, effort=1, analysis=a, verify=False, allow_larger=True)
    assert r.blob is not None and codec.decode(r.blob) == big_png  # the single stream takes over
