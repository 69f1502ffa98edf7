"""Format stability: blobs written by format version 1 still decode byte-exactly today."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import codec

GOLDEN = Path(__file__).parent / "data" / "codec_golden"
MANIFEST = json.loads((GOLDEN / "MANIFEST.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_blob_decodes(name):
    meta = MANIFEST[name]
    blob = (GOLDEN / f"{name}.simc").read_bytes()
    info = codec.blob_info(blob)
    assert info["format_version"] == 1 and info["mode"] == meta["mode"]
    ref = None
    if meta["reference"]:
        ref = codec.Reference(np.load(GOLDEN / "reference.npy"), b"golden-ref")
    before = codec.api.FALLBACKS[0]
    data = codec.decode(blob, ref)
    assert len(data) == meta["file_size"]
    assert hashlib.sha256(data).hexdigest() == meta["file_sha256"]
    if meta.get("splits"):  # recorded split points must keep working: the parallel path, no fallback
        assert info["recipe"]["splits"] and codec.api.FALLBACKS[0] == before
