"""Every golden store (one per released format version) still mounts, reads back exactly, and fscks clean."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from conftest import Mount, assert_fsck_clean, needs_fuse

GOLDEN = sorted((Path(__file__).parent).glob("v*/store.tar.gz"))


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / "store"


def check_tree(root: Path, manifest: dict) -> None:
    seen = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            seen[b"/" + os.path.relpath(full, os.fsencode(root))] = full
    assert sorted(k.hex() for k in seen) == sorted(manifest), "names differ"
    for key, want in manifest.items():
        full = seen[bytes.fromhex(key)]
        st = os.lstat(full)
        assert (st.st_mode, st.st_nlink, st.st_size) == (want["mode"], want["nlink"], want["size"]), key
        if "sha256" in want:
            with open(full, "rb") as fh:
                assert hashlib.sha256(fh.read()).hexdigest() == want["sha256"]
            assert {n: os.getxattr(full, n).decode() for n in os.listxattr(full)} == want["xattrs"]
        if "target" in want:
            assert os.readlink(full) == os.fsencode(want["target"])
        if "mtime_ns" in want:
            assert st.st_mtime_ns == want["mtime_ns"]


def test_there_is_a_golden_store_for_the_current_format() -> None:
    from simfs.format import FORMAT_VERSION_WRITTEN

    assert any(p.parent.name == f"v{FORMAT_VERSION_WRITTEN}" for p in GOLDEN)


@needs_fuse
@pytest.mark.parametrize("archive", GOLDEN, ids=[p.parent.name for p in GOLDEN])
def test_golden_store_mounts_reads_and_fscks(archive: Path, tmp_path: Path) -> None:
    store = extract(archive, tmp_path)
    manifest = json.loads((archive.parent / "manifest.json").read_text())
    if archive.parent.name.endswith("-encoded"):  # really holds encoded objects for today's code to read
        assert "encoded-objects" in json.loads((store / "FORMAT").read_text())["features"]
        assert any(p.name.endswith(".1") for p in (store / "objects").rglob("*.1"))
    if archive.parent.name.endswith("-chains"):  # a depth-2 chain and a pinned base, decoded by today's code
        assert "reference-chains" in json.loads((store / "FORMAT").read_text())["features"]
    if archive.parent.name.endswith("-chunked"):
        assert "chunked-files" in json.loads((store / "FORMAT").read_text())["features"]
    if archive.parent.name.endswith("-jpeg"):
        assert "jpeg-coefficients" in json.loads((store / "FORMAT").read_text())["features"]
    if archive.parent.name.endswith("-jpeg-decoders"):  # pictures from libjpeg's fast IDCT, plain up-sampling
        assert {"jpeg-coefficients", "jpeg-decoders"} <= set(json.loads((store / "FORMAT").read_text())["features"])
    if archive.parent.name.endswith("-palette"):  # a palette copy coded against its photo in colours
        assert "palette-colours" in json.loads((store / "FORMAT").read_text())["features"]
    if archive.parent.name.endswith("-palette-ranks"):  # a dithered palette copy coded as ranks of its indices
        assert {"palette-colours", "palette-ranks"} <= set(json.loads((store / "FORMAT").read_text())["features"])
    if archive.parent.name.endswith("-subpixel"):  # a fractional-box crop coded as a 1/64 px fitted resampling
        assert {"fitted-predictions", "subpixel-resampling"} <= set(json.loads((store / "FORMAT").read_text())["features"])
    assert_fsck_clean(store)
    with Mount(store, tmp_path / "mnt") as m:
        check_tree(m.mountpoint, manifest)
        if archive.parent.name.endswith("-chains"):
            p = m.mountpoint / "photos" / "2026"
            assert os.getxattr(p / "gradient-flip-resaved.png", "user.simfs.depth") == b"2"
            assert os.getxattr(p / "gradient-flip.png", "user.simfs.reference") == b"/photos/2026/gradient.png"
            dep = m.mountpoint / "photos" / "pinned-dependent.png"
            assert os.getxattr(dep, "user.simfs.kind") == b"inter"
            assert len(os.getxattr(dep, "user.simfs.reference")) == 64  # its base has no file: the object id
        if archive.parent.name.endswith(("-jpeg", "-jpeg-decoders")):  # intra and inter JPEG-coefficient blobs
            copy = m.mountpoint / "photos" / "jpeg-copy.png"
            assert os.getxattr(copy, "user.simfs.kind") == b"inter"
            assert os.getxattr(copy, "user.simfs.reference") == b"/photos/jpeg-photo.png"
            assert os.getxattr(m.mountpoint / "photos" / "jpeg-photo.png", "user.simfs.kind") == b"intra"
        if archive.parent.name.endswith(("-palette", "-palette-ranks")):
            copy = m.mountpoint / "photos" / "palette-copy.png"
            assert os.getxattr(copy, "user.simfs.kind") == b"inter"
            assert os.getxattr(copy, "user.simfs.reference") == b"/photos/palette-photo.png"
        if archive.parent.name.endswith("-subpixel"):
            copy = m.mountpoint / "photos" / "subpixel-crop.png"
            assert os.getxattr(copy, "user.simfs.kind") == b"inter"
            assert os.getxattr(copy, "user.simfs.reference") == b"/photos/subpixel-photo.png"
        if archive.parent.name.endswith("-chunked"):  # holes and shared chunks, read by today's code
            disk = m.mountpoint / "vm" / "disk.img"
            assert os.getxattr(disk, "user.simfs.kind") == b"chunked"
            assert os.stat(disk).st_blocks * 512 < 4 << 20
            fd = os.open(disk, os.O_RDWR)
            try:
                assert os.lseek(fd, 1 << 20, os.SEEK_DATA) == 20 << 20
                assert os.pread(fd, 6, (20 << 20) + 100) == b"EDITED"
                os.pwrite(fd, b"today", 40 << 20)  # and edited in place by today's code
            finally:
                os.close(fd)
        # still writable by today's code
        (m.mountpoint / "new.txt").write_bytes(b"written by today's simfs")
        assert stat.S_ISREG(os.stat(m.mountpoint / "new.txt").st_mode)
    assert_fsck_clean(store)
