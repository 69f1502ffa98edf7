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
    whole_stream_analysis,
    with_recipe,
)
from .bitstream import FORMAT_VERSION, CorruptBlob
from .deflate import DeflaterUnavailable
from .png import pixel_chunks_only, side_bytes
from .recipe import DEFAULT_MAX_PIXELS, MAX_SIDE_BYTES, Analysis, Recipe, png_pixels

__all__ = [
    "Analysis", "CorruptBlob", "DEFAULT_MAX_PIXELS", "MAX_SIDE_BYTES", "DeflaterUnavailable", "EncodeResult", "FORMAT_VERSION", "Recipe", "Reference",
    "ReferenceMismatch", "analyze", "blob_effort", "blob_features", "blob_info", "blob_reference", "decode", "decode_pixels", "deflater_identity", "encode",
    "pixel_chunks_only", "png_pixels", "repack", "self_test", "side_bytes", "verified_blob", "verifies",
    "whole_stream_analysis", "with_recipe",
]
