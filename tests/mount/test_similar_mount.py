"""Ingest on a real mount: images get described in the background, `simfs similar` finds their edits,
deleting and remounting keeps the index consistent with the catalog (fsck checks it)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import DEVSET, Mount, assert_fsck_clean, needs_devset, needs_fuse, run_simfs

from simfs.catalog import keys
from simfs.catalog.records import FLAG_DESCRIBED, ObjectRecord
from simfs.storage import OpenStore

pytestmark = [needs_fuse, needs_devset]


def index_state(store: Path) -> tuple[int, int, int]:
    """(stored objects, objects described, S records), read beside the running daemon.

    Stored = named by a file or pinned as the base of another object (it keeps its descriptors)."""
    opened = OpenStore(store, read_only=True)
    try:
        live = described = 0
        for _, raw in opened.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if not rec.collectable:
                live += 1
                described += bool(rec.flags & FLAG_DESCRIBED)
        records = sum(1 for _ in opened.catalog.scan(keys.SIMILARITY))
        return live, described, records
    finally:
        opened.close()


def wait_described(store: Path, timeout: float = 240) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    while True:
        state = index_state(store)
        if state[0] == state[1]:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"ingest did not finish: {state}")
        time.sleep(0.5)


@pytest.mark.timeout(600)
def test_similar_finds_edits_and_index_follows_deletes_and_remounts(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    group = DEVSET / "edit-ukbench"
    with Mount(store, mnt) as m:
        shutil.copytree(group, m.mountpoint / "ukb")
        shutil.copytree(DEVSET / "burst-dinosaur", m.mountpoint / "dino")  # distractors
        (m.mountpoint / "notes.txt").write_bytes(b"not an image")
        live, described, records = wait_described(store)
        assert records == live - 1  # every image described; the text file is marked "not an image"
        original = sorted(p.name for p in group.iterdir() if "_" not in p.stem)[0]
        out = run_simfs("similar", str(m.mountpoint / "ukb" / original), "-k", "5", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["described"] == "indexed" and report["worth_trying_inter"]
        top = [f["paths"][0] for f in report["similar"][:3]]
        assert all("/ukb/" in p and Path(p).is_absolute() for p in top), top  # its own edits, not the burst
        assert report["similar"][0]["relation"] in ("copy", "edited")
        text = run_simfs("similar", str(m.mountpoint / "ukb" / original), "-k", "3")
        assert text.returncode == 0 and "/ukb/" in text.stdout
        # delete half the group: their records go with their objects
        for p in sorted((m.mountpoint / "ukb").iterdir())[::2]:
            p.unlink()
        deadline = time.monotonic() + 30
        while index_state(store)[2] != index_state(store)[0] - 1 and time.monotonic() < deadline:
            time.sleep(0.3)  # garbage collection runs within a second or two
        live, described, records = index_state(store)
        assert records == live - 1
    assert_fsck_clean(store)
    with Mount(store, mnt) as m:  # the index reloads from RocksDB and still answers
        remaining = sorted((m.mountpoint / "ukb").iterdir())
        out = run_simfs("similar", str(remaining[0]), "-k", "3", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["described"] == "indexed"
    assert_fsck_clean(store)


def test_similar_errors(tmp_path: Path, mount: Mount) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes((DEVSET / "fmt-pngsuite" / "basn2c08.png").read_bytes())
    result = run_simfs("similar", str(outside))
    assert result.returncode == 8 and "not on a mounted simfs" in result.stderr
    (mount.mountpoint / "t.txt").write_bytes(b"text")
    result = run_simfs("similar", str(mount.mountpoint / "t.txt"))
    assert result.returncode == 2 and "not an image" in result.stderr




@pytest.mark.timeout(600)
def test_flipped_copy_finds_its_original_once_indexed(tmp_path: Path) -> None:
    """The index stores no mirror-image features; a query of a stored flipped copy must still list
    the original (issue: "original third at 0 inliers")."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    group = DEVSET / "edit-ukbench"
    with Mount(store, mnt) as m:
        shutil.copy(group / "ukbench00120.png", m.mountpoint / "orig.png")
        shutil.copy(group / "ukbench00120_hflip.png", m.mountpoint / "flip.png")
        shutil.copytree(DEVSET / "burst-dinosaur", m.mountpoint / "dino")  # distractors
        wait_described(store)
        out = run_simfs("similar", str(m.mountpoint / "flip.png"), "-k", "3", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["described"] == "indexed"
        first = report["similar"][0]
        assert first["paths"] == [str(m.mountpoint / "orig.png")] and first["inliers"] >= 20, report
    assert_fsck_clean(store)
