"""`simfs compact` finishes offline what a -o noencode mount left verbatim; files stay byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import DEVSET, Mount, assert_fsck_clean, needs_devset, needs_fuse, run_simfs

pytestmark = [needs_fuse, needs_devset]


@pytest.mark.timeout(600)
def test_compact_encodes_an_unmounted_store_and_refuses_a_mounted_one(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    src = DEVSET / "edit-ukbench"
    want = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.iterdir()}
    with Mount(store, mnt, options=["noencode"]) as m:
        shutil.copytree(src, m.mountpoint / "u")
        busy = run_simfs("compact", str(store))
        assert busy.returncode == 3 and "already mounted" in busy.stderr
    out = run_simfs("compact", str(store), "--json", timeout=500)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["objects_encoded"] >= 5 and result["stored_after"] < result["stored_before"]
    again = json.loads(run_simfs("compact", str(store), "--json").stdout)
    assert again["processed"] == 0  # nothing left to do
    assert_fsck_clean(store)
    with Mount(store, mnt) as m:
        got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (m.mountpoint / "u").iterdir()}
        assert got == want
    assert_fsck_clean(store)
