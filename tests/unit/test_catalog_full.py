"""Catalog writes that RocksDB refuses for want of space: ballast released, RocksDB reopened, batch resent, else ENOSPC."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

import simfs.catalog.db as catalog_db
from simfs.catalog.db import Catalog

NO_SPACE = "IO error: No space left on device: While appending to file: 000012.log: No space left on device"


class FullDisk:
    """A RocksDB handle whose next `fails` writes fail as on a full disk (then the sticky error)."""

    def __init__(self, real: Any, fails: int):
        self.real = real
        self.fails = fails

    def write(self, batch: Any, opts: Any) -> None:
        if self.fails:
            self.fails -= 1
            raise Exception(NO_SPACE)
        self.real.write(batch, opts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_write_refused_for_space_is_resent_after_reopen(tmp_path: Path) -> None:
    released: list[bool] = []
    cat = Catalog(tmp_path / "catalog", on_full=lambda: released.append(True) or True)
    try:
        cat.put(b"a", b"1", sync=False)  # unsynced: must survive the reopen (replayed from the WAL)
        cat.db = FullDisk(cat.db, fails=1)  # type: ignore[assignment]
        batch = cat.new_batch()
        batch.put(b"b", b"2")
        batch.delete(b"a")
        cat.write(batch, sync=True)
        assert released == [True]  # the ballast was asked for its space once
        assert not isinstance(cat.db, FullDisk)  # reopened
        assert cat.get(b"b") == b"2" and cat.get(b"a") is None
        cat.put(b"c", b"3")
        assert cat.get(b"c") == b"3"
    finally:
        cat.close()


def test_no_room_even_after_reopen_is_enospc_and_reads_still_work(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cat = Catalog(tmp_path / "catalog", on_full=lambda: False)
    try:
        cat.put(b"a", b"1")
        cat.db = FullDisk(cat.db, fails=1)  # type: ignore[assignment]
        real_rdict = catalog_db.Rdict
        monkeypatch.setattr(catalog_db, "Rdict", lambda *a, **kw: FullDisk(real_rdict(*a, **kw), fails=10))
        with pytest.raises(OSError) as info:
            cat.put(b"b", b"2")
        assert info.value.errno == errno.ENOSPC  # never a bare RocksDB exception (EIO at the mount)
        assert cat.get(b"a") == b"1" and cat.get(b"b") is None
        monkeypatch.setattr(catalog_db, "Rdict", real_rdict)  # space is back: the next write reopens
        cat.put(b"b", b"2")
        assert cat.get(b"b") == b"2"
    finally:
        cat.close()
