"""Chunked files on Vfs (no FUSE): contents against a model, holes, commits proportional to change, PNGs kept whole."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from conftest import fsck_findings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simfs.catalog import keys
from simfs.catalog.records import ObjectRecord, unpack_chunk
from simfs.fsck.checker import unclean
from simfs.storage import OpenStore
from simfs.vfs import Vfs
from simfs.vfs import chunks as chunks_mod
from simfs.vfs.seek import SEEK_DATA, SEEK_HOLE

MiB = 1 << 20
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


def objects_in(vfs: Vfs) -> dict[bytes, ObjectRecord]:
    return {bytes(k[1:]): ObjectRecord.unpack(v) for k, v in vfs.catalog.scan(keys.OBJECT)}


def chunk_keys(vfs: Vfs, path: str) -> dict[int, bytes]:
    ino = vfs.resolve(path)
    return {keys.chunk_index(k): unpack_chunk(v) for k, v in vfs.catalog.scan(keys.chunk_prefix(ino))}


def read_all(vfs: Vfs, path: str) -> bytes:
    fh = vfs.open(path, os.O_RDONLY)
    try:
        size = vfs.getattr(None, fh)["st_size"]
        return vfs.read(fh, size + 100, 0)
    finally:
        vfs.release(fh)


def test_large_file_is_chunked_and_reads_back(vfs: Vfs) -> None:
    data = os.urandom(20 * MiB + 123)
    fh = vfs.create("/big", 0o644, os.O_WRONLY | os.O_CREAT)
    for off in range(0, len(data), 128 << 10):
        vfs.write(fh, data[off:off + (128 << 10)], off)
    vfs.release(fh)
    node = vfs.load_inode(vfs.resolve("/big"))
    assert node.chunked and node.size == len(data) and node.data_bytes == len(data)
    assert sorted(chunk_keys(vfs, "/big")) == list(range(21))
    assert read_all(vfs, "/big") == data
    assert vfs.getxattr("/big", "user.simfs.kind") == b"chunked"
    assert vfs.getattr("/big")["st_blocks"] == (len(data) + 511) // 512


def test_sparse_file_keeps_its_holes(vfs: Vfs) -> None:
    fh = vfs.create("/sparse", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.truncate(None, 2 << 30, fh)  # 2 GiB of nothing
    assert vfs.getattr(None, fh)["st_blocks"] == 0
    with pytest.raises(OSError) as info:
        vfs.lseek(fh, 0, SEEK_DATA)
    assert info.value.errno == errno.ENXIO
    assert vfs.lseek(fh, 0, SEEK_HOLE) == 0
    before = vfs.stored_bytes
    vfs.write(fh, b"x" * 4096, 1 << 30)
    vfs.fsync(fh)
    assert vfs.stored_bytes - before <= MiB + 4096  # one chunk, not the gigabyte before it
    assert vfs.lseek(fh, 0, SEEK_DATA) == 1 << 30
    assert vfs.lseek(fh, 1 << 30, SEEK_HOLE) == (1 << 30) + 4096
    assert vfs.lseek(fh, (1 << 30) + 5000, SEEK_HOLE) == (1 << 30) + 5000
    with pytest.raises(OSError) as info:
        vfs.lseek(fh, (1 << 30) + 4096, SEEK_DATA)
    assert info.value.errno == errno.ENXIO
    assert vfs.read(fh, 8192, (1 << 30) - 4096) == bytes(4096) + b"x" * 4096
    vfs.release(fh)
    st = vfs.getattr("/sparse")
    assert st["st_size"] == 2 << 30 and st["st_blocks"] == 8
    assert list(chunk_keys(vfs, "/sparse")) == [1024]


def test_small_write_into_a_large_file_commits_one_chunk(vfs: Vfs) -> None:
    data = os.urandom(64 * MiB)
    fh = vfs.create("/big", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, data, 0)
    vfs.release(fh)
    before = set(objects_in(vfs))
    fh = vfs.open("/big", os.O_RDWR)
    vfs.write(fh, b"Z" * 4096, 40 * MiB + 10)
    vfs.fsync(fh)
    vfs.release(fh)
    vfs.collect_all_garbage()
    after = set(objects_in(vfs))
    assert len(after - before) == 1 and len(before - after) == 1  # one chunk replaced, nothing else
    expected = bytearray(data)
    expected[40 * MiB + 10:40 * MiB + 10 + 4096] = b"Z" * 4096
    assert read_all(vfs, "/big") == expected


def test_truncate_down_mid_chunk_and_up_again_reads_zeros(vfs: Vfs) -> None:
    data = os.urandom(10 * MiB)
    fh = vfs.create("/t", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, data, 0)
    vfs.release(fh)
    vfs.truncate("/t", 3 * MiB + 7)
    assert read_all(vfs, "/t") == data[:3 * MiB + 7]
    assert sorted(chunk_keys(vfs, "/t")) == [0, 1, 2, 3]
    fh = vfs.open("/t", os.O_RDWR)
    vfs.truncate(None, 9 * MiB, fh)
    vfs.write(fh, b"end", 9 * MiB - 3)
    vfs.release(fh)
    assert read_all(vfs, "/t") == data[:3 * MiB + 7] + bytes(6 * MiB - 10) + b"end"
    assert vfs.load_inode(vfs.resolve("/t")).data_bytes == 3 * MiB + 7 + MiB


def test_identical_chunks_are_stored_once_and_freed_with_the_last_file(vfs: Vfs, tmp_path: Path) -> None:
    data = os.urandom(9 * MiB)
    for name in ("/a", "/b"):
        fh = vfs.create(name, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
    assert chunk_keys(vfs, "/a") == chunk_keys(vfs, "/b")
    recs = objects_in(vfs)
    assert len(recs) == 9 and all(r.refcount == 2 for r in recs.values())
    vfs.unlink("/a")
    vfs.unlink("/b")
    vfs.collect_all_garbage()
    assert objects_in(vfs) == {}
    assert not any(p.is_file() for p in (tmp_path / "store" / "objects").rglob("*"))


def test_png_images_stay_whole_and_a_chunked_file_rewritten_as_png_is_whole_again(vfs: Vfs) -> None:
    png = PNG_HEAD + os.urandom(9 * MiB)  # not a valid image, but the codec must be given the chance
    fh = vfs.create("/p.png", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, png, 0)
    vfs.release(fh)
    assert not vfs.load_inode(vfs.resolve("/p.png")).chunked
    other = os.urandom(9 * MiB)
    fh = vfs.create("/x", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, other, 0)
    vfs.release(fh)
    assert vfs.load_inode(vfs.resolve("/x")).chunked
    fh = vfs.open("/x", os.O_WRONLY | os.O_TRUNC)
    vfs.write(fh, png, 0)
    vfs.release(fh)
    node = vfs.load_inode(vfs.resolve("/x"))
    assert not node.chunked and node.has_object and chunk_keys(vfs, "/x") == {}
    assert read_all(vfs, "/x") == png
    # preallocated first (as downloaders do), then written: whole as well
    fh = vfs.create("/pre.png", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.fallocate(fh, 0, 0, len(png))
    vfs.write(fh, png, 0)
    vfs.release(fh)
    assert not vfs.load_inode(vfs.resolve("/pre.png")).chunked
    assert read_all(vfs, "/pre.png") == png


def test_chunks_survive_a_remount(tmp_path: Path) -> None:
    store = OpenStore(tmp_path / "store", create=True)
    vfs = Vfs(store)
    data = os.urandom(12 * MiB)
    fh = vfs.create("/f", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, data, 0)
    vfs.truncate(None, 30 * MiB, fh)
    vfs.release(fh)
    vfs.shutdown()
    store.close()
    store = OpenStore(tmp_path / "store")
    vfs = Vfs(store)
    try:
        assert read_all(vfs, "/f") == data + bytes(18 * MiB)
        assert "chunked-files" in store.format.features
    finally:
        vfs.shutdown()
        store.close()
    assert not unclean(fsck_findings(tmp_path / "store"))
    from simfs.stats import store_stats

    stats = store_stats(tmp_path / "store")
    assert stats["chunked_files"] == 1 and stats["chunked_data_bytes"] == 12 * MiB


# A model check with small chunks (16 KiB, chunked past 64 KiB), so many chunk boundaries are crossed.
OPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, 300_000), st.integers(1, 40_000)),
    st.tuples(st.just("truncate"), st.integers(0, 300_000), st.just(0)),
    st.tuples(st.just("fsync"), st.just(0), st.just(0)),
    st.tuples(st.just("reopen"), st.just(0), st.just(0)),
    st.tuples(st.just("zeros"), st.integers(0, 300_000), st.integers(1, 40_000)),
), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_chunked_file_matches_a_model(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                                      ops: list[tuple[str, int, int]]) -> None:
    monkeypatch.setattr(chunks_mod, "CHUNK_SHIFT", 14)
    monkeypatch.setattr(chunks_mod, "CHUNK_THRESHOLD", 64 << 10)
    path = tmp_path_factory.mktemp("model") / "store"
    store = OpenStore(path, create=True)
    vfs = Vfs(store)
    model = bytearray()
    fh = vfs.create("/m", 0o644, os.O_RDWR | os.O_CREAT)
    try:
        for i, (op, a, b) in enumerate(ops):
            if op in ("write", "zeros"):
                data = bytes(b) if op == "zeros" else bytes([(i * 37 + j) % 251 + 1 for j in range(b)])
                vfs.write(fh, data, a)
                if len(model) < a:
                    model.extend(bytes(a - len(model)))
                model[a:a + b] = data
            elif op == "truncate":
                vfs.truncate(None, a, fh)
                del model[a:]
                model.extend(bytes(a - len(model)))
            elif op == "fsync":
                vfs.fsync(fh)
            else:
                vfs.release(fh)
                fh = vfs.open("/m", os.O_RDWR)
            assert vfs.getattr(None, fh)["st_size"] == len(model)
            assert vfs.read(fh, len(model) + 10, 0) == model
            if model:  # SEEK_HOLE/SEEK_DATA only ever skip zeros
                for start in (0, len(model) // 2):
                    hole = vfs.lseek(fh, start, SEEK_HOLE)
                    assert start <= hole <= len(model) and not any(model[hole:hole + 1])
                    try:
                        data_at = vfs.lseek(fh, start, SEEK_DATA)
                    except OSError as exc:
                        assert exc.errno == errno.ENXIO and not any(model[start:])
                    else:
                        assert not any(model[start:data_at])
        vfs.release(fh)
        assert read_all(vfs, "/m") == model
    finally:
        vfs.shutdown()
        store.close()
    left = unclean(fsck_findings(path))
    assert not left, [f.line() for f in left]


def test_concurrent_commits_of_one_file_keep_every_byte(vfs: Vfs) -> None:
    import threading

    data = bytearray(os.urandom(12 * MiB))
    fh = vfs.create("/c", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, bytes(data), 0)
    vfs.release(fh)
    fds = [vfs.open("/c", os.O_RDWR) for _ in range(2)]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(25):
                off = (k * 6 + i % 6) * MiB + i * 1000  # both threads hit the same chunks at times
                patch = bytes([k * 100 + i]) * 5000
                with lock:
                    vfs.write(fds[k], patch, off)
                    data[off:off + len(patch)] = patch
                vfs.fsync(fds[k])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "commits of one file deadlocked or stalled"
    assert not errors, errors
    for f in fds:
        vfs.release(f)
    assert read_all(vfs, "/c") == data


def test_a_chunked_file_of_holes_only_records_the_feature(vfs: Vfs) -> None:
    fh = vfs.create("/holes", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.truncate(None, 16 * MiB, fh)
    vfs.release(fh)
    assert vfs.load_inode(vfs.resolve("/holes")).chunked
    assert "chunked-files" in vfs.store.format.features
    assert read_all(vfs, "/holes") == bytes(16 * MiB)


def test_truncate_that_fails_for_want_of_space_changes_nothing(vfs: Vfs, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(10 * MiB)
    fh = vfs.create("/t", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, data, 0)
    vfs.release(fh)
    fh = vfs.open("/t", os.O_RDWR)
    vfs.write(fh, b"W" * 4, 8 * MiB + 10)  # staged, not committed
    monkeypatch.setattr(vfs, "free_bytes", lambda: 0)
    with pytest.raises(OSError) as info:
        vfs.truncate(None, 5 * MiB + 3, fh)  # needs a copy of the chunk it cuts
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    vfs.release(fh)
    assert read_all(vfs, "/t") == data[:8 * MiB + 10] + b"W" * 4 + data[8 * MiB + 14:]


def test_o_trunc_of_a_chunked_file_starts_it_again_as_one_object(vfs: Vfs) -> None:
    fh = vfs.create("/o", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, os.urandom(10 * MiB), 0)
    vfs.release(fh)
    assert vfs.load_inode(vfs.resolve("/o")).chunked
    fh = vfs.open("/o", os.O_WRONLY | os.O_TRUNC)
    vfs.write(fh, b"small now", 0)
    vfs.release(fh)
    node = vfs.load_inode(vfs.resolve("/o"))
    assert not node.chunked and node.has_object and chunk_keys(vfs, "/o") == {}
    assert read_all(vfs, "/o") == b"small now"
    vfs.collect_all_garbage()
    assert len(objects_in(vfs)) == 1


def test_seek_in_a_small_sparse_file_is_block_aligned(vfs: Vfs) -> None:
    fh = vfs.create("/s", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.write(fh, b"x", 4096)
    vfs.write(fh, b"y", 1 << 20)
    for _ in range(2):  # open (staging) and committed (object file)
        assert vfs.lseek(fh, 0, SEEK_DATA) == 4096
        assert vfs.lseek(fh, 4096, SEEK_HOLE) == 8192
        assert vfs.lseek(fh, 8192, SEEK_DATA) == 1 << 20
        assert vfs.lseek(fh, 0, SEEK_HOLE) == 0
        vfs.fsync(fh)
    vfs.release(fh)
    st = vfs.getattr("/s")
    assert st["st_size"] == (1 << 20) + 1 and st["st_blocks"] * 512 <= 64 << 10  # du sees the holes
