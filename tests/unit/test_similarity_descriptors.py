"""Descriptors: hashes, serialisation, robustness to edits, input kinds, bounded cost; verify() and calibration."""

from __future__ import annotations

import time

import numpy as np
import pytest

from codec.similarity import (
    Descriptors,
    extract,
    false_positive_rate,
    hamming64,
    pixel_hash,
    synthetic,
    verify,
)
from codec.similarity.verify import calibrate, thresholds


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return synthetic.textured_image(np.random.default_rng(7), 480, 640)


@pytest.fixture(scope="module")
def scene_d(scene) -> Descriptors:
    return extract(scene)


def test_fields_and_round_trip(scene_d: Descriptors) -> None:
    d = scene_d
    assert len(d.pixel_hash) == 16 and len(d.global_code) == 32 and 0 <= d.copy_hash < 2**64
    assert not d.low_texture and d.n_keypoints >= 300 and (d.width, d.height) == (640, 480)
    assert len(d.local) < 40 * 500  # compact: 36 bytes per keypoint
    stored = Descriptors.from_bytes(d.to_bytes())
    assert stored.mirror_code == b"" and stored.local == d.local and stored.global_code == d.global_code
    assert Descriptors.from_bytes(d.to_bytes(include_mirror=True)) == d
    with pytest.raises(ValueError):
        Descriptors.from_bytes(b"\x09" + d.to_bytes()[1:])
    with pytest.raises(ValueError):
        Descriptors.from_bytes(d.to_bytes()[:-1])


def test_pixel_hash_sees_pixels_dtype_and_shape() -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    assert pixel_hash(a) == pixel_hash(a.copy())
    assert pixel_hash(a) != pixel_hash(a.reshape(4, 2, 3))
    assert pixel_hash(a) != pixel_hash(a.astype(np.uint16))
    b = a.copy()
    b[1, 1, 1] ^= 1
    assert pixel_hash(a) != pixel_hash(b)
    assert pixel_hash(a[:, ::-1]) == pixel_hash(np.ascontiguousarray(a[:, ::-1]))


@pytest.mark.parametrize("kind", ["resize", "jpeg", "exposure", "grey"])
def test_copy_hash_survives_copy_edits(scene, scene_d, kind) -> None:
    rng = np.random.default_rng(3)
    e = extract(synthetic.edit(scene, rng, kind))
    assert hamming64(e.copy_hash, scene_d.copy_hash) <= thresholds().copy_max_bits
    if kind == "grey":  # colour is not part of any descriptor
        assert e.global_code == scene_d.global_code or e.n_keypoints > 300


def test_copy_hash_separates_unrelated_images(scene_d) -> None:
    rng = np.random.default_rng(11)
    dists = [hamming64(extract(synthetic.textured_image(rng, 300, 400)).copy_hash, scene_d.copy_hash)
             for _ in range(12)]
    assert min(dists) > thresholds().copy_max_bits


@pytest.mark.parametrize("kind", ["crop", "rot90", "flip", "rotate", "perspective", "resize"])
def test_edits_verify_and_global_code_stays_closer_than_random(scene, scene_d, kind) -> None:
    rng = np.random.default_rng(5)
    e = extract(synthetic.edit(scene, rng, kind))
    m = verify(e, scene_d)
    assert m.inliers >= thresholds().min_inliers, m
    assert m.mirrored == (kind == "flip")
    g = min(_gdist(e.global_code, scene_d.global_code), _gdist(e.mirror_code, scene_d.global_code))
    assert g < 100, g  # random 256-bit codes sit ~128 apart


def _gdist(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def test_homography_maps_original_pixels_of_a_crop(scene) -> None:
    big = extract(scene)
    crop = scene[100:400, 150:600]
    m = verify(extract(np.ascontiguousarray(crop)), big)
    assert m.homography is not None and not m.mirrored
    pts = np.array([[10.0, 20.0, 1.0], [400.0, 250.0, 1.0]])
    mapped = (m.homography @ pts.T).T
    mapped = mapped[:, :2] / mapped[:, 2:]
    # RANSAC (5 px threshold) on a minimal sample: the far corner's error depends on the order of the
    # matches; 2.9 px with ORB's order, 3.1 px with the spread order T records are packed in.
    assert np.allclose(mapped, pts[:, :2] + [150, 100], atol=4.0), mapped


def test_unrelated_images_do_not_verify() -> None:
    rng = np.random.default_rng(21)
    ds = [extract(synthetic.textured_image(rng, 480, 640)) for _ in range(6)]
    worst = max(verify(a, b).inliers for i, a in enumerate(ds) for b in ds[i + 1:])
    assert worst < thresholds().min_inliers


def test_input_kinds_and_degenerate_images() -> None:
    rng = np.random.default_rng(2)
    rgb = synthetic.textured_image(rng, 200, 300)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    grey16 = (rgb[:, :, 1].astype(np.uint16) * 257)
    ga = np.dstack([rgb[:, :, 1], rgb[:, :, 0]])
    base = extract(rgb)
    for arr in (rgba, grey16, ga, rgb[:, :, :1]):
        d = extract(arr)
        assert len(d.global_code) == 32
    assert hamming64(extract(rgba).copy_hash, base.copy_hash) == 0
    for tiny in (np.zeros((1, 1), np.uint8), np.zeros((1, 5000, 3), np.uint8), np.full((64, 64), 200, np.uint8)):
        d = extract(tiny)
        assert d.low_texture and d.n_keypoints < 40
        assert Descriptors.from_bytes(d.to_bytes()).low_texture
        assert verify(d, d).inliers == 0  # nothing to verify; low texture is matched by hashes


def test_low_texture_images_get_distinct_codes() -> None:
    rng = np.random.default_rng(4)
    ds = [extract(synthetic.low_texture_image(rng, 240, 320)) for _ in range(30)]
    assert all(d.low_texture for d in ds)
    codes = {d.global_code for d in ds}
    assert len(codes) == len(ds)
    # ... and not merely distinct: most pairs are far apart
    near = sum(_gdist(a.global_code, b.global_code) < 16 for i, a in enumerate(ds) for b in ds[i + 1:])
    assert near <= 3


@pytest.mark.slow
def test_24_megapixel_image_is_bounded() -> None:
    rng = np.random.default_rng(0)
    img = np.kron(synthetic.textured_image(rng, 500, 750), np.ones((8, 8, 1), np.uint8))  # 4000x6000x3
    t = time.process_time()
    d = extract(img)
    assert time.process_time() - t < 3.0
    assert not d.low_texture and d.width == 6000


def test_false_positive_rate_and_calibration() -> None:
    assert false_positive_rate(0.0, 30) == 0.0
    assert abs(false_positive_rate(0.001, 10) - (1 - 0.999**10)) < 1e-12
    null = np.array([0] * 9000 + [12] * 900 + [25] * 10)
    t = calibrate(null, np.array([40, 50]), k=30, target=0.01)
    assert t.min_inliers == 26 and t.query_fp <= 0.01 and t.k == 30
    t = calibrate(null, np.array([40]), k=1, target=0.01)
    assert t.min_inliers == 13
    assert calibrate(null, np.array([40]), k=1, target=0.01, floor=20).min_inliers == 20


def test_calibration_respects_the_query_level_null() -> None:
    # Per pair the null looks safe at 20 (one pair of 100,000 at 25), but 3 of 100 queries had a candidate
    # with 22-24 inliers: the query-level share must bound the threshold as well (issue 11, 3b).
    pairs = np.array([0] * 99_990 + [12] * 9 + [25])
    assert calibrate(pairs, np.array([40]), k=30, target=0.05, floor=20).min_inliers == 20
    qmax = np.array([5] * 97 + [22, 23, 24])
    t = calibrate(pairs, np.array([40]), k=30, target=0.02, floor=20, query_max_inliers=qmax)
    assert t.min_inliers == 24 and t.query_fp <= 0.02
    assert abs(t.query_fp - 2 / 101) < 1e-12  # (count >= 24 + 1) / (n + 1): the query-level upper estimate
    t = calibrate(pairs, np.array([40]), k=30, target=0.01, floor=20, query_max_inliers=qmax)
    assert t.min_inliers == 25 and t.query_fp <= 0.01
