"""PNGs get stored encoded in the background; every read (after remount: rebuilt) is byte-identical,
deletes free both generations, a damaged blob is EIO and found by fsck, -o noencode keeps verbatim."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import DEVSET, Mount, assert_fsck_clean, fsck_json, needs_devset, needs_fuse, run_simfs

from simfs.catalog import keys
from simfs.catalog.records import ObjectRecord
from simfs.storage import OpenStore

pytestmark = [needs_fuse, needs_devset]


def stats(store: Path) -> dict:
    out = run_simfs("stats", str(store), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def wait_ingest(store: Path, timeout: float = 400) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = stats(store)
        if st["ingest_pending"] == 0:
            return st
        if time.monotonic() > deadline:
            pytest.fail(f"ingest did not finish: {st}")
        time.sleep(1)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.timeout(900)
def test_pngs_are_stored_encoded_and_read_back_exactly(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    src = tmp_path / "src"
    shutil.copytree(DEVSET / "edit-ukbench", src / "ukb")
    shutil.copytree(DEVSET / "fmt-bad", src / "bad")  # malformed files: must stay verbatim, intact
    (src / "notes.txt").write_bytes(b"plain text")
    expected = digests(src)
    with Mount(store, mnt) as m:
        shutil.copytree(src, m.mountpoint / "c")
        st = wait_ingest(store)
        assert st["objects_encoded"] >= 5
        assert st["stored_bytes"] < 0.9 * st["logical_bytes"], st  # the photos shrank
        assert digests(m.mountpoint / "c") == expected
        # the verbatim generations are gone once the switch is durable
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            files = [p for p in (store / "objects").rglob("*.*") if p.is_file()]
            if len(files) == st["objects"]:
                break
            time.sleep(0.5)
        assert len(files) == st["objects"]
    assert_fsck_clean(store)  # --verify-data decodes every encoded object
    with Mount(store, mnt) as m:  # fresh page cache: reads go through the rebuild
        assert digests(m.mountpoint / "c") == expected
        # edit an encoded file in place: the rest of its bytes come from the rebuilt original
        victim = sorted((m.mountpoint / "c" / "ukb").iterdir())[0]
        data = bytearray(victim.read_bytes())
        with open(victim, "r+b") as fh:
            fh.seek(len(data) - 3)
            fh.write(b"END")
        data[-3:] = b"END"
        assert victim.read_bytes() == bytes(data)
        (m.mountpoint / "c" / "ukb" / "copy.png").write_bytes(bytes(data))  # dedups onto the new object
        for p in sorted((m.mountpoint / "c" / "ukb").iterdir())[1::2]:
            p.unlink()
    assert_fsck_clean(store)


@pytest.mark.timeout(600)
def test_damaged_blob_is_eio_and_fsck_names_the_file(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    photo = sorted((DEVSET / "edit-ukbench").glob("*.png"))[0]
    with Mount(store, mnt) as m:
        (m.mountpoint / "p.png").write_bytes(photo.read_bytes())
        wait_ingest(store)
    opened = OpenStore(store, read_only=True)
    try:
        encoded = [(k[1:], ObjectRecord.unpack(v)) for k, v in opened.catalog.scan(keys.OBJECT)]
    finally:
        opened.close()
    oid, rec = encoded[0]
    assert rec.codec == 1
    path = opened.objects.path_of(bytes(oid), rec.gen)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0x10
    path.write_bytes(bytes(raw))
    report = fsck_json(store, "--verify-data")
    assert report["returncode"] == 7
    assert any(f["code"] == "D301" and f["affected"] == ["/p.png"] for f in report["findings"])
    with Mount(store, mnt) as m:
        with pytest.raises(OSError) as info:
            (m.mountpoint / "p.png").read_bytes()
        assert info.value.errno == 5  # EIO, never wrong bytes
        (m.mountpoint / "p.png").unlink()
    assert_fsck_clean(store)


def test_noencode_keeps_files_verbatim(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    photo = sorted((DEVSET / "edit-ukbench").glob("*.png"))[0]
    with Mount(store, mnt, options=["noencode"]) as m:
        (m.mountpoint / "p.png").write_bytes(photo.read_bytes())
        st = wait_ingest(store)
        assert st["objects_encoded"] == 0
    assert "encoded-objects" not in json.loads((store / "FORMAT").read_text())["features"]
    assert_fsck_clean(store)
