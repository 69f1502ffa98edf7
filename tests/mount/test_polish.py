"""Two-pass encoding on a real mount: a fast first encoding, then the polish pass re-codes the payload
at the final JPEG XL effort in the background; bytes unchanged, the file smaller, fsck clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import DEVSET, Mount, assert_fsck_clean, needs_devset, needs_fuse
from test_reference_chains import info, wait_ingest

import codec

pytestmark = [needs_fuse, needs_devset]

PHOTO = DEVSET / "edit-sacre-coeur" / "02928139_3448003521.png"


def _object_blob(store: Path) -> bytes:
    """The only object's current blob (its newest generation, after the envelope header)."""
    from simfs.store.envelope import HEADER_SIZE

    files = [p for p in (store / "objects").rglob("*.*") if p.is_file()]
    assert len({p.stem for p in files}) == 1, files  # one object (an old generation may await GC)
    newest = max(files, key=lambda p: int(p.suffix[1:]))
    return newest.read_bytes()[HEADER_SIZE:]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("first_effort", [1, 7])
def test_first_pass_is_polished_to_the_final_effort(tmp_path: Path, first_effort: int) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    data = PHOTO.read_bytes()
    with Mount(store, mnt, [f"first_effort={first_effort}", "effort=7"]) as m:
        (m.mountpoint / "a.png").write_bytes(data)
        wait_ingest(store)
        assert info(m.mountpoint / "a.png", "kind") == "intra"
        stored = int(info(m.mountpoint / "a.png", "stored_bytes"))
        blob = _object_blob(store)
        assert codec.blob_effort(blob) == 7
        # what a one-pass effort-7 encoding gives, measured side by side
        assert abs(stored - len(codec.encode(data, effort=7).blob)) < 0.01 * stored
        assert hashlib.sha256((m.mountpoint / "a.png").read_bytes()).digest() == hashlib.sha256(data).digest()
    log = (store / "simfs.log").read_text()
    assert ("polish INFO polished" in log) == (first_effort < 7), log[-2000:]
    with Mount(store, mnt) as m:  # cold read of the polished file
        assert (m.mountpoint / "a.png").read_bytes() == data
    assert_fsck_clean(store)
