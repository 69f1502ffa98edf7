"""Large files through a real mount: holes stay holes (SEEK_DATA/SEEK_HOLE, st_blocks, cp --sparse), a small
edit commits one chunk, and kill -9 after fsync loses nothing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import time
from pathlib import Path

from conftest import Mount, assert_fsck_clean, needs_fuse

pytestmark = needs_fuse
MiB = 1 << 20


def objects_on_disk(store: Path) -> set[str]:
    return {p.name for p in (store / "objects").rglob("*.*") if p.is_file()}


def test_sparse_file_keeps_holes_through_the_mount(mount: Mount, tmp_path: Path) -> None:
    p = mount.mountpoint / "disk.img"
    with open(p, "wb") as fh:
        fh.truncate(4 << 30)  # a 4 GiB image, nothing written
        fh.seek(1 << 30)
        fh.write(b"boot" * 1024)
        fh.seek((3 << 30) + 12345)
        fh.write(b"data")
    st = os.stat(p)
    assert st.st_size == 4 << 30 and st.st_blocks * 512 <= 3 * MiB
    fd = os.open(p, os.O_RDONLY)
    try:
        assert os.lseek(fd, 0, os.SEEK_DATA) == 1 << 30
        assert os.lseek(fd, 1 << 30, os.SEEK_HOLE) == (1 << 30) + 4096
        assert os.lseek(fd, (1 << 30) + 4096, os.SEEK_DATA) == (3 << 30) + 12288  # the 4 KiB block of the write
        assert os.pread(fd, 4, (3 << 30) + 12345) == b"data"
    finally:
        os.close(fd)
    out = tmp_path / "copy.img"
    subprocess.run(["cp", "--sparse=always", str(p), str(out)], check=True, timeout=300)
    assert out.stat().st_size == 4 << 30 and out.stat().st_blocks * 512 < 64 * MiB
    with open(out, "rb") as fh:
        fh.seek(1 << 30)
        assert fh.read(8) == b"bootboot"
        fh.seek((3 << 30) + 12345)
        assert fh.read(4) == b"data"
    out.unlink()
    assert os.getxattr(p, "user.simfs.kind") == b"chunked"


def test_small_edit_of_a_large_file_writes_one_chunk(mount: Mount) -> None:
    p = mount.mountpoint / "video.bin"
    data = bytearray(os.urandom(48 * MiB))
    p.write_bytes(data)
    before = objects_on_disk(mount.store)
    t0 = time.monotonic()
    with open(p, "r+b") as fh:
        fh.seek(30 * MiB + 100)
        fh.write(b"E" * 4096)
        fh.flush()
        os.fsync(fh.fileno())
    elapsed = time.monotonic() - t0
    data[30 * MiB + 100:30 * MiB + 100 + 4096] = b"E" * 4096
    time.sleep(1.5)  # the replaced chunk is freed by the background garbage collection
    after = objects_on_disk(mount.store)
    assert len(after - before) == 1 and len(before - after) == 1, (len(after - before), len(before - after))
    assert hashlib.sha256(p.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert elapsed < 30  # generous: a whole-file rewrite of 48 MiB would be far slower only on a slow disk


def test_kill_after_fsync_of_a_chunk_edit_loses_nothing(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    data = bytearray(os.urandom(20 * MiB))
    with Mount(store, mnt) as m:
        (mnt / "f").write_bytes(data)
        fd = os.open(mnt / "f", os.O_RDWR)
        os.pwrite(fd, b"new!", 10 * MiB)
        os.ftruncate(fd, 25 * MiB)  # grows by a hole
        os.fsync(fd)
        data[10 * MiB:10 * MiB + 4] = b"new!"
        data.extend(bytes(5 * MiB))
        os.pwrite(fd, b"never synced", 1000)  # may or may not survive; the rest must
        m.kill()
        with contextlib.suppress(OSError):
            os.close(fd)  # the daemon is gone: nothing more reaches the store
    with Mount(store, mnt):
        got = (mnt / "f").read_bytes()
        assert len(got) == len(data)
        assert got[1012:] == data[1012:] and got[:1000] == data[:1000]
        assert got[1000:1012] in (data[1000:1012], b"never synced")
    assert_fsck_clean(store)
