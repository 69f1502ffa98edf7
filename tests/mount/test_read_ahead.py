"""Read-ahead: opening the encoded files of a directory one after another rebuilds the next ones in the
background (into the rebuilt-file cache); a single open does not; every byte read back is exact."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from conftest import Mount, assert_fsck_clean, needs_fuse, run_simfs, smooth_png

pytestmark = [needs_fuse]


def _wait_encoded(store: Path, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(run_simfs("stats", str(store), "--json").stdout)
        if st["ingest_pending"] == 0 and st["objects_encoded"] >= n:
            return
        time.sleep(0.5)
    pytest.fail(f"ingest did not finish: {st}")


def _cached(store: Path, data: bytes) -> bool:
    return any((store / "cache").glob(hashlib.sha256(data).hexdigest() + ".*"))


@pytest.mark.timeout(600)
def test_sequential_opens_rebuild_the_next_files_ahead(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    files = {f"img{i:02d}.png": smooth_png(100 + i, 320) for i in range(6)}
    with Mount(store, mnt) as m:
        (m.mountpoint / "album").mkdir()
        for name, data in files.items():
            (m.mountpoint / "album" / name).write_bytes(data)
        _wait_encoded(store, len(files))
    names = sorted(files)
    with Mount(store, mnt) as m:  # the rebuilt-file cache is empty after a mount
        album = m.mountpoint / "album"
        assert (album / names[0]).read_bytes() == files[names[0]]
        time.sleep(1.5)
        assert not _cached(store, files[names[1]]), "one open is not a sequential reader: nothing ahead"
        assert (album / names[1]).read_bytes() == files[names[1]]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (_cached(store, files[names[2]]) and _cached(store, files[names[3]])):
            time.sleep(0.2)
        assert _cached(store, files[names[2]]) and _cached(store, files[names[3]]), "the next two were not rebuilt ahead"
        assert not _cached(store, files[names[5]]), "read-ahead goes only two files ahead"
        for name in names[2:]:
            assert (album / name).read_bytes() == files[name]
    assert_fsck_clean(store)
