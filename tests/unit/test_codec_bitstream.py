"""Blob format: round trips, checksums, versions, reference checks, info."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from codec_helpers import write_png

import codec
from codec import bitstream


def _img(h=40, w=50, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8) // 8 * 8


@pytest.fixture(scope="module")
def intra_blob():
    data = write_png(_img(), 8, 2)
    r = codec.encode(data, effort=3, allow_larger=True)
    assert r.mode == "intra" and r.blob
    return data, r.blob


def test_round_trip_and_info(intra_blob):
    data, blob = intra_blob
    assert codec.decode(blob) == data
    info = codec.blob_info(blob)
    assert info["mode"] == "intra" and info["format_version"] == codec.FORMAT_VERSION
    assert info["file_size"] == len(data) and info["deflater"] == codec.deflater_identity()
    assert info["recipe"]["params"] == [6, 8, 0, 15]
    px = codec.decode_pixels(blob)
    assert np.array_equal(px, codec.analyze(data).pixels)


def test_every_single_byte_corruption_is_detected(intra_blob):
    data, blob = intra_blob
    for i in range(0, len(blob), max(1, len(blob) // 97)):
        bad = bytearray(blob)
        bad[i] ^= 0x41
        with pytest.raises(codec.CorruptBlob):
            codec.decode(bytes(bad))


def test_truncated_and_bad_magic(intra_blob):
    _, blob = intra_blob
    for n in (0, 3, 10, len(blob) // 2, len(blob) - 1):
        with pytest.raises(codec.CorruptBlob):
            codec.decode(blob[:n])
    with pytest.raises(codec.CorruptBlob, match="magic"):
        codec.decode(b"XXXX" + blob[4:])


def test_unknown_version_is_refused(intra_blob):
    _, blob = intra_blob
    body = bytearray(blob[:-4])
    body[4] = 99
    forged = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    with pytest.raises(codec.CorruptBlob, match="version 99"):
        codec.decode(forged)


def test_wrong_file_hash_is_detected(intra_blob):
    data, blob = intra_blob
    b = bitstream.unpack(blob)
    b.file_sha256 = bytes(32)
    with pytest.raises(codec.CorruptBlob, match="stored hash"):
        codec.decode(bitstream.pack(b))


def test_inter_reference_checks():
    ref_px = _img(60, 70, seed=9)
    tgt = np.ascontiguousarray(ref_px[::-1])  # vertical flip: exact dihedral prediction
    data = write_png(tgt, 8, 2)
    ref = codec.Reference(ref_px, b"ref-A")
    r = codec.encode(data, ref, effort=3, allow_larger=True)
    assert r.mode == "inter", r
    assert codec.blob_info(r.blob)["ref_id"] == b"ref-A".hex()
    assert codec.decode(r.blob, ref) == data
    with pytest.raises(codec.ReferenceMismatch):
        codec.decode(r.blob)
    with pytest.raises(codec.ReferenceMismatch):
        codec.decode(r.blob, codec.Reference(ref_px, b"ref-B"))
    other = ref_px.copy()
    other[0, 0, 0] ^= 1
    with pytest.raises(codec.ReferenceMismatch):
        codec.decode_pixels(r.blob, codec.Reference(other, b"ref-A"))
    with pytest.raises(codec.ReferenceMismatch):
        codec.decode(r.blob, codec.Reference(ref_px[:10], b"ref-A"))
