"""The background encoder runs codec calls in threads: concurrent encodes/decodes stay exact."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import codec


def _png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:120, 0:160]
    img = np.stack([(x + seed) % 256, (y * 2) % 256, (x * y) % 256], 2) + rng.integers(0, 4, (120, 160, 3))
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, "PNG", compress_level=int(seed % 10))
    return buf.getvalue()


@pytest.mark.timeout(240)
def test_concurrent_encode_decode():
    files = [_png(s) for s in range(8)]
    ref = codec.Reference(codec.analyze(files[0]).pixels, b"r0")

    def work(i: int) -> bool:
        data = files[i]
        r = codec.encode(data, ref if i % 2 else None, effort=1, allow_larger=True)
        return r.blob is not None and codec.decode(r.blob, ref if r.mode == "inter" else None) == data

    with ThreadPoolExecutor(4) as ex:
        assert all(ex.map(work, range(8)))
