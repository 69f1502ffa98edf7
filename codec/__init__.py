"""codec: pure library turning image files into compact blobs and back, byte for byte."""

from .api import (
    EncodeResult,
    Reference,
    ReferenceMismatch,
    analyze,
    blob_effort,
    blob_features,
    blob_info,
    blob_reference,
    decode,
    decode_pixels,
    deflater_identity,
    encode,
    repack,
    self_test,
    verified_blob,
    verifies,
)
from .bitstream import FORMAT_VERSION, CorruptBlob
from .deflate import DeflaterUnavailable
from .recipe import DEFAULT_MAX_PIXELS, Analysis, Recipe, png_pixels

__all__ = [
    "Analysis", "CorruptBlob", "DEFAULT_MAX_PIXELS", "DeflaterUnavailable", "EncodeResult", "FORMAT_VERSION", "Recipe", "Reference",
    "ReferenceMismatch", "analyze", "blob_effort", "blob_features", "blob_info", "blob_reference", "decode", "decode_pixels", "deflater_identity", "encode",
    "png_pixels", "repack", "self_test", "verified_blob", "verifies",
]
