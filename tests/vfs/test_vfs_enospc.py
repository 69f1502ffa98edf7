"""Writes refused with ENOSPC on Vfs (free space faked): all or nothing, no name left, old content kept."""

from __future__ import annotations

import errno
import os

import pytest

from simfs.vfs import Vfs


def disk_full(vfs: Vfs, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the disk has no room for file data (the catalog itself is not affected)."""
    monkeypatch.setattr(vfs, "free_bytes", lambda: 0)


def write_all(vfs: Vfs, fh: int, data: bytes) -> None:
    for off in range(0, len(data), 4096):
        vfs.write(fh, data[off:off + 4096], off)


def test_new_file_whose_write_failed_leaves_no_name(vfs: Vfs, monkeypatch: pytest.MonkeyPatch) -> None:
    fh = vfs.create("/new.bin", 0o644, os.O_WRONLY | os.O_CREAT)
    disk_full(vfs, monkeypatch)
    with pytest.raises(OSError) as info:
        write_all(vfs, fh, os.urandom(10_000))
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as info:
        vfs.flush(fh)
    assert info.value.errno == errno.ENOSPC
    vfs.release(fh)
    with pytest.raises(OSError) as info:
        vfs.getattr("/new.bin")
    assert info.value.errno == errno.ENOENT
    assert [name for name, *_ in vfs.readdir("/") if name not in (".", "..")] == []


def test_partial_write_after_enospc_is_not_committed(vfs: Vfs, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.urandom(5000)
    fh = vfs.create("/keep.bin", 0o644, os.O_WRONLY | os.O_CREAT)
    write_all(vfs, fh, old)
    vfs.flush(fh)
    vfs.release(fh)
    for flags in (os.O_WRONLY | os.O_APPEND, os.O_WRONLY | os.O_TRUNC):
        fh = vfs.open("/keep.bin", flags)
        vfs.write(fh, b"x" * 100, 0)  # fits
        disk_full(vfs, monkeypatch)
        with pytest.raises(OSError):
            vfs.write(fh, b"y" * 100_000, 100)
        with pytest.raises(OSError) as info:
            vfs.flush(fh)
        assert info.value.errno == errno.ENOSPC
        vfs.release(fh)
        monkeypatch.undo()
        rfh = vfs.open("/keep.bin", os.O_RDONLY)
        assert vfs.read(rfh, 10_000, 0) == old, flags  # neither appended to nor truncated
        vfs.release(rfh)


def test_chunked_file_keeps_its_committed_chunks_after_enospc(vfs: Vfs, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.urandom(10 << 20)  # chunked (past 8 MiB)
    fh = vfs.create("/big.bin", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, old, 0)
    vfs.release(fh)
    assert vfs.load_inode(vfs.resolve("/big.bin")).chunked
    fh = vfs.open("/big.bin", os.O_RDWR)
    vfs.write(fh, b"x" * 100, 5 << 20)  # fits: one chunk staged
    disk_full(vfs, monkeypatch)
    with pytest.raises(OSError) as info:
        vfs.write(fh, b"y" * 100_000, 8 << 20)  # another chunk: no room for it
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as info:
        vfs.fsync(fh)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert vfs.read(fh, len(old) + 10, 0) == old  # all or nothing: the fitting write is not committed either
    vfs.release(fh)
    rfh = vfs.open("/big.bin", os.O_RDONLY)
    assert vfs.read(rfh, len(old) + 10, 0) == old
    vfs.release(rfh)
    assert not list((vfs.store.path / "staging").iterdir())
