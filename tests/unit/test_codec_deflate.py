"""The pinned deflater: loads from cmeel-zlib, passes its test vectors, early-abort search works."""

import zlib

import pytest

from codec import deflate as zd
from codec import deflater_identity, self_test


def test_identity_and_self_test():
    assert deflater_identity().startswith("zlib-1.")
    self_test()  # raises if the pinned library would produce other bytes


def test_pinned_library_is_not_the_host_libz():
    zd.zlib_version()
    assert "cmeel.prefix" in str(zd._lib_path) or "SIMFS_CODEC_LIBZ" in __import__("os").environ


@pytest.mark.skipif("ng" in zlib.ZLIB_RUNTIME_VERSION, reason="host libz is zlib-ng")
@pytest.mark.parametrize("level,mem,strategy", [(1, 8, 0), (6, 8, 0), (6, 9, 1), (9, 9, 1), (9, 8, 3), (4, 9, 2)])
def test_matches_classic_zlib(level, mem, strategy):
    raw = b"".join(b"%d,%d;" % (i, i * i % 97) for i in range(20000))
    c = zlib.compressobj(level, zlib.DEFLATED, 15, mem, strategy)
    assert zd.compress(raw, zd.DeflateParams(level, mem, strategy, 15)) == c.compress(raw) + c.flush()


def test_reproduces_rejects_wrong_params():
    raw = bytes(range(256)) * 2000
    target = zd.compress(raw, zd.DeflateParams(9, 9, 1, 15))
    assert zd.reproduces(raw, target, zd.DeflateParams(9, 9, 1, 15))
    assert not zd.reproduces(raw, target, zd.DeflateParams(1, 8, 0, 15))
    assert not zd.reproduces(raw + b"x", target, zd.DeflateParams(9, 9, 1, 15))


def test_self_test_detects_a_different_deflater(monkeypatch):
    monkeypatch.setattr(zd, "_self_test_ok", False)
    monkeypatch.setattr(zd, "EXPECTED_VECTOR_DIGEST", "0" * 64)
    with pytest.raises(zd.DeflaterUnavailable):
        zd.self_test()
