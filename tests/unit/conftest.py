"""Shared fixtures for the codec unit tests: the dev image set and a tiny PNG writer."""

from __future__ import annotations

from pathlib import Path

import pytest

DEVSET = (Path(__file__).resolve().parents[2] / "../shared/data/devset").resolve()


@pytest.fixture(scope="session")
def devset() -> Path:
    if not DEVSET.is_dir():
        pytest.skip(f"dev image set not found at {DEVSET}")
    return DEVSET
