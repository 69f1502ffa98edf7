"""Fixtures for operation-level tests: a Vfs on a fresh store; each test ends with a clean fsck."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simfs.fsck.checker import Fsck, unclean
from simfs.storage import OpenStore
from simfs.vfs import Vfs


def fsck_findings(path: Path, verify_data: bool = True) -> list:
    opened = OpenStore(path, read_only=True)
    try:
        return Fsck(opened, verify_data=verify_data, progress=False).run()
    finally:
        opened.close()


@pytest.fixture
def vfs(tmp_path: Path) -> Iterator[Vfs]:
    store = OpenStore(tmp_path / "store", create=True)
    v = Vfs(store)
    yield v
    v.shutdown()
    store.close()
    left = unclean(fsck_findings(tmp_path / "store"))
    assert not left, [f.line() for f in left]
