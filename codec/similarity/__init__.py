"""Similarity descriptors and verification (pure functions): extract(pixels) -> Descriptors, verify(a, b) -> Match."""

from .descriptors import Descriptors, extract, grey_copy, phash64, pixel_hash
from .verify import (
    Match,
    Thresholds,
    false_positive_rate,
    hamming64,
    relation_hint,
    thresholds,
    verify,
    worth_trying,
)

__all__ = [
    "Descriptors", "Match", "Thresholds", "extract", "false_positive_rate", "grey_copy", "hamming64",
    "phash64", "pixel_hash", "relation_hint", "thresholds", "verify", "worth_trying",
]
