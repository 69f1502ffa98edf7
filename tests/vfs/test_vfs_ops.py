"""POSIX operations called directly on Vfs (no FUSE); the fixture requires a clean fsck afterwards."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from simfs.catalog import keys
from simfs.storage import OpenStore
from simfs.vfs import UTIME_NOW, UTIME_OMIT, XATTR_CREATE, XATTR_REPLACE, Context, Vfs


def write_file(vfs: Vfs, path: str, data: bytes, mode: int = 0o644) -> None:
    fh = vfs.create(path, mode, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    assert vfs.write(fh, data, 0) == len(data)
    vfs.flush(fh)
    vfs.release(fh)


def read_file(vfs: Vfs, path: str) -> bytes:
    fh = vfs.open(path, os.O_RDONLY)
    size = vfs.getattr(None, fh)["st_size"]
    data = vfs.read(fh, size + 10, 0)
    vfs.release(fh)
    return data


def errno_of(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def test_create_write_read_back(vfs: Vfs) -> None:
    write_file(vfs, "/a.bin", b"hello world")
    assert read_file(vfs, "/a.bin") == b"hello world"
    assert vfs.getattr("/a.bin")["st_size"] == 11


def test_write_at_offsets_and_holes_read_as_zeros(vfs: Vfs) -> None:
    fh = vfs.create("/h", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.write(fh, b"end", 1_000_000)
    vfs.write(fh, b"start", 0)
    assert vfs.read(fh, 10, 999_998) == b"\0\0end"
    vfs.flush(fh)
    vfs.release(fh)
    data = read_file(vfs, "/h")
    assert len(data) == 1_000_003 and data[:5] == b"start" and data[5:999_999] == bytes(999_994)


def test_truncate_down_and_up(vfs: Vfs) -> None:
    write_file(vfs, "/t", b"0123456789")
    vfs.truncate("/t", 4)
    assert read_file(vfs, "/t") == b"0123"
    vfs.truncate("/t", 8)
    assert read_file(vfs, "/t") == b"0123\0\0\0\0"
    vfs.truncate("/t", 0)
    assert read_file(vfs, "/t") == b""
    assert errno_of(vfs.truncate, "/t", -1) == errno.EINVAL


def test_ftruncate_on_open_handle(vfs: Vfs) -> None:
    write_file(vfs, "/t", b"abcdef")
    fh = vfs.open("/t", os.O_RDWR)
    vfs.truncate(None, 2, fh)
    assert vfs.read(fh, 100, 0) == b"ab"
    vfs.write(fh, b"Z", 5)
    vfs.release(fh)
    assert read_file(vfs, "/t") == b"ab\0\0\0Z"


def test_edit_in_place_keeps_rest(vfs: Vfs) -> None:
    write_file(vfs, "/e", b"A" * 100_000)
    fh = vfs.open("/e", os.O_RDWR)
    vfs.write(fh, b"BBB", 50_000)
    vfs.release(fh)
    data = read_file(vfs, "/e")
    assert data == b"A" * 50_000 + b"BBB" + b"A" * 49_997


def test_identical_content_is_stored_once_and_freed_with_last_name(vfs: Vfs) -> None:
    payload = os.urandom(50_000)
    write_file(vfs, "/x1", payload)
    write_file(vfs, "/x2", payload)
    objs = list(vfs.catalog.scan(keys.OBJECT))
    assert len(objs) == 1
    files = [f for f in vfs.objects.iter_files()]
    assert len(files) == 1
    vfs.unlink("/x1")
    assert read_file(vfs, "/x2") == payload
    vfs.unlink("/x2")
    vfs.collect_garbage(force_sync=True)
    assert list(vfs.objects.iter_files()) == []
    assert list(vfs.catalog.scan(keys.OBJECT)) == []


def test_overwrite_frees_old_content(vfs: Vfs) -> None:
    write_file(vfs, "/o", b"first version")
    write_file(vfs, "/o", b"second version")
    vfs.collect_garbage(force_sync=True)
    assert len(list(vfs.objects.iter_files())) == 1
    assert read_file(vfs, "/o") == b"second version"


def test_mkdir_rmdir_and_nlink(vfs: Vfs) -> None:
    vfs.mkdir("/d", 0o755)
    vfs.mkdir("/d/e", 0o755)
    assert vfs.getattr("/d")["st_nlink"] == 3
    assert vfs.getattr("/")["st_nlink"] == 3
    assert errno_of(vfs.mkdir, "/d", 0o755) == errno.EEXIST
    assert errno_of(vfs.rmdir, "/d") == errno.ENOTEMPTY
    write_file(vfs, "/d/e/f", b"x")
    assert errno_of(vfs.rmdir, "/d/e/f") == errno.ENOTDIR
    assert errno_of(vfs.unlink, "/d/e") == errno.EISDIR
    vfs.unlink("/d/e/f")
    vfs.rmdir("/d/e")
    assert vfs.getattr("/d")["st_nlink"] == 2
    vfs.rmdir("/d")
    assert errno_of(vfs.getattr, "/d") == errno.ENOENT
    assert errno_of(vfs.mkdir, "/missing/x", 0o755) == errno.ENOENT


def test_rename_over_file_across_dirs_and_over_empty_dir(vfs: Vfs) -> None:
    vfs.mkdir("/a", 0o755)
    vfs.mkdir("/b", 0o755)
    write_file(vfs, "/a/f", b"one")
    write_file(vfs, "/b/g", b"two")
    vfs.rename("/a/f", "/b/g")
    assert read_file(vfs, "/b/g") == b"one"
    assert errno_of(vfs.getattr, "/a/f") == errno.ENOENT
    vfs.mkdir("/a/sub", 0o755)
    vfs.mkdir("/b/empty", 0o755)
    vfs.rename("/a/sub", "/b/empty")
    assert vfs.getattr("/a")["st_nlink"] == 2 and vfs.getattr("/b")["st_nlink"] == 3
    vfs.mkdir("/b/full", 0o755)
    write_file(vfs, "/b/full/x", b"x")
    vfs.mkdir("/a/s2", 0o755)
    assert errno_of(vfs.rename, "/a/s2", "/b/full") == errno.ENOTEMPTY
    assert errno_of(vfs.rename, "/a/s2", "/b/g") == errno.ENOTDIR
    assert errno_of(vfs.rename, "/b/g", "/a/s2") == errno.EISDIR
    assert errno_of(vfs.rename, "/a", "/a/s2/inside") == errno.EINVAL
    assert errno_of(vfs.rename, "/nope", "/x") == errno.ENOENT


def test_rename_noreplace_and_exchange(vfs: Vfs) -> None:
    write_file(vfs, "/p", b"p")
    write_file(vfs, "/q", b"q")
    assert errno_of(vfs.rename, "/p", "/q", 1) == errno.EEXIST
    vfs.rename("/p", "/q", 2)
    assert read_file(vfs, "/p") == b"q" and read_file(vfs, "/q") == b"p"
    vfs.mkdir("/d1", 0o755)
    vfs.mkdir("/d2", 0o755)
    vfs.rename("/d1", "/p", 2)  # exchange a directory and a file across... the same parent
    assert stat.S_ISDIR(vfs.getattr("/p")["st_mode"]) and read_file(vfs, "/d1") == b"q"


def test_rename_hard_links_of_same_inode_is_noop(vfs: Vfs) -> None:
    write_file(vfs, "/l1", b"data")
    vfs.link("/l2", "/l1")
    vfs.rename("/l1", "/l2")
    assert read_file(vfs, "/l1") == b"data" and read_file(vfs, "/l2") == b"data"
    assert vfs.getattr("/l1")["st_nlink"] == 2


def test_unlinked_open_file_stays_readable_until_closed(vfs: Vfs) -> None:
    write_file(vfs, "/u", b"still here")
    fh = vfs.open("/u", os.O_RDWR)
    vfs.unlink("/u")
    assert errno_of(vfs.getattr, "/u") == errno.ENOENT
    assert vfs.read(fh, 100, 0) == b"still here"
    vfs.write(fh, b"S", 0)
    assert vfs.read(fh, 100, 0) == b"Still here"
    assert vfs.getattr(None, fh)["st_nlink"] == 0
    assert list(vfs.catalog.scan(keys.ORPHAN))
    vfs.flush(fh)
    vfs.release(fh)
    assert not list(vfs.catalog.scan(keys.ORPHAN))
    vfs.collect_garbage(force_sync=True)
    assert list(vfs.objects.iter_files()) == []


def test_hard_links_share_content_and_nlink(vfs: Vfs) -> None:
    write_file(vfs, "/h1", b"shared")
    vfs.link("/h2", "/h1")
    assert vfs.getattr("/h1")["st_nlink"] == 2
    assert vfs.getattr("/h1")["st_ino"] == vfs.getattr("/h2")["st_ino"]
    fh = vfs.open("/h2", os.O_WRONLY)
    vfs.write(fh, b"S", 0)
    vfs.release(fh)
    assert read_file(vfs, "/h1") == b"Shared"
    vfs.unlink("/h1")
    assert vfs.getattr("/h2")["st_nlink"] == 1
    vfs.mkdir("/dir", 0o755)
    assert errno_of(vfs.link, "/dir2", "/dir") == errno.EPERM
    assert errno_of(vfs.link, "/h2", "/h2") == errno.EEXIST


def test_symlink_and_readlink_with_non_utf8(vfs: Vfs) -> None:
    target = b"../some/\xff\xfetarget".decode("utf-8", "surrogateescape")
    vfs.symlink("/ln", target)
    assert vfs.readlink("/ln") == target
    st = vfs.getattr("/ln")
    assert stat.S_ISLNK(st["st_mode"]) and st["st_size"] == len(b"../some/\xff\xfetarget")
    assert errno_of(vfs.readlink, "/") == errno.EINVAL


def test_non_utf8_names_round_trip(vfs: Vfs) -> None:
    name = "/" + b"caf\xe9-\x80.png".decode("utf-8", "surrogateescape")
    write_file(vfs, name, b"png?")
    names = [n for n, _, _ in vfs.readdir("/")]
    assert name[1:] in names
    assert read_file(vfs, name) == b"png?"


def test_name_too_long(vfs: Vfs) -> None:
    assert errno_of(vfs.mkdir, "/" + "x" * 256, 0o755) == errno.ENAMETOOLONG
    vfs.mkdir("/" + "x" * 255, 0o755)


def test_chmod_chown_and_ownership_from_context(vfs: Vfs) -> None:
    fh = vfs.create("/own", 0o640, os.O_WRONLY | os.O_CREAT, Context(1234, 5678))
    vfs.release(fh)
    st = vfs.getattr("/own")
    assert (st["st_uid"], st["st_gid"], stat.S_IMODE(st["st_mode"])) == (1234, 5678, 0o640)
    vfs.chmod("/own", 0o4755)
    assert stat.S_IMODE(vfs.getattr("/own")["st_mode"]) == 0o4755
    vfs.chown("/own", 42, -1)
    st = vfs.getattr("/own")
    assert st["st_uid"] == 42 and st["st_gid"] == 5678
    assert not st["st_mode"] & stat.S_ISUID  # chown drops set-uid


def test_setgid_directory_passes_group(vfs: Vfs) -> None:
    vfs.mkdir("/g", 0o2775, Context(0, 77))
    vfs.mkdir("/g/sub", 0o755, Context(5, 9))
    st = vfs.getattr("/g/sub")
    assert st["st_gid"] == 77 and st["st_mode"] & stat.S_ISGID


def test_utimens_now_and_omit(vfs: Vfs) -> None:
    write_file(vfs, "/t", b"x")
    vfs.utimens("/t", ((100, 5), (200, 7)))
    st = vfs.getattr("/t")
    assert st["st_atime"] == 100_000_000_005 and st["st_mtime"] == 200_000_000_007
    vfs.utimens("/t", ((0, UTIME_OMIT), (0, UTIME_NOW)))
    st2 = vfs.getattr("/t")
    assert st2["st_atime"] == 100_000_000_005 and st2["st_mtime"] > 1_600_000_000 * 10**9
    vfs.utimens("/t", None)
    assert vfs.getattr("/t")["st_atime"] > 1_600_000_000 * 10**9


def test_xattrs(vfs: Vfs) -> None:
    write_file(vfs, "/x", b"x")
    vfs.setxattr("/x", "user.tag", b"holiday")
    assert vfs.getxattr("/x", "user.tag") == b"holiday"
    assert vfs.listxattr("/x") == ["user.tag"]
    assert errno_of(vfs.setxattr, "/x", "user.tag", b"v", XATTR_CREATE) == errno.EEXIST
    assert errno_of(vfs.setxattr, "/x", "user.new", b"v", XATTR_REPLACE) == errno.ENODATA
    assert errno_of(vfs.getxattr, "/x", "user.none") == errno.ENODATA
    assert errno_of(vfs.setxattr, "/x", "trusted.x", b"v") == errno.EOPNOTSUPP
    assert errno_of(vfs.setxattr, "/x", "user.big", b"v" * 70_000) == errno.E2BIG
    vfs.removexattr("/x", "user.tag")
    assert vfs.listxattr("/x") == []
    vfs.setxattr("/x", "user.gone", b"1")
    vfs.unlink("/x")  # xattrs go with the inode (fsck checks for dangling ones)


def test_mknod_fifo(vfs: Vfs) -> None:
    vfs.mknod("/fifo", stat.S_IFIFO | 0o644)
    assert stat.S_ISFIFO(vfs.getattr("/fifo")["st_mode"])
    vfs.unlink("/fifo")


def test_statfs_reports_store_usage(vfs: Vfs) -> None:
    before = vfs.statfs()
    write_file(vfs, "/big", os.urandom(3_000_000))
    after = vfs.statfs()
    used_before = before["f_blocks"] - before["f_bfree"]
    used_after = after["f_blocks"] - after["f_bfree"]
    # the store now physically holds the 3 MB object (catalog files may shrink a little meanwhile)
    assert used_after * after["f_frsize"] >= 3_000_000
    assert (used_after - used_before) * after["f_frsize"] >= 2_900_000
    assert after["f_namemax"] == 255


def test_data_survives_reopen(tmp_path) -> None:
    path = tmp_path / "s"
    store = OpenStore(path, create=True)
    v = Vfs(store)
    v.mkdir("/d", 0o755)
    write_file(v, "/d/f", b"persist me")
    v.setxattr("/d/f", "user.k", b"v")
    v.shutdown()
    store.close()
    store = OpenStore(path)
    v = Vfs(store)
    assert read_file(v, "/d/f") == b"persist me"
    assert v.getxattr("/d/f", "user.k") == b"v"
    fh = v.create("/d/g", 0o644, os.O_WRONLY | os.O_CREAT)
    assert v.getattr("/d/g")["st_ino"] > v.getattr("/d/f")["st_ino"]  # inode numbers never reused
    v.release(fh)
    v.shutdown()
    store.close()


def test_read_only_vfs_refuses_writes(tmp_path) -> None:
    path = tmp_path / "s"
    store = OpenStore(path, create=True)
    v = Vfs(store, read_only=True)
    assert errno_of(v.mkdir, "/d", 0o755) == errno.EROFS
    assert errno_of(v.create, "/f", 0o644, os.O_WRONLY | os.O_CREAT) == errno.EROFS
    v.shutdown()
    store.close()


def test_corrupt_object_reads_as_eio(vfs: Vfs) -> None:
    write_file(vfs, "/c", b"precious bytes" * 100)
    oid = vfs.load_inode(vfs.resolve("/c")).object_id
    path = vfs.objects.path_of(oid, 0)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    fh = vfs.open("/c", os.O_RDONLY)  # verification happens when content is first needed
    assert errno_of(vfs.read, fh, 100, 0) == errno.EIO
    vfs.release(fh)
    fh = vfs.open("/c", os.O_RDWR)  # editing in place must not copy damaged bytes either
    assert errno_of(vfs.write, fh, b"x", 3) == errno.EIO
    vfs.release(fh)
    # restore so the fixture's fsck is clean; the fsck tests cover detection
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert read_file(vfs, "/c") == b"precious bytes" * 100


def test_long_names_in_lookups_are_enametoolong(vfs: Vfs) -> None:
    long = "/" + "n" * 256
    for fn, args in [(vfs.getattr, (long,)), (vfs.unlink, (long,)), (vfs.rmdir, (long,)),
                     (vfs.chmod, (long, 0o644)), (vfs.rename, (long, "/x")), (vfs.link, ("/x", long)),
                     (vfs.mkdir, (long + "/sub", 0o755))]:
        assert errno_of(fn, *args) == errno.ENAMETOOLONG, fn.__name__


def test_huge_truncate_fails_fast_with_efbig(vfs: Vfs) -> None:
    import time

    fh = vfs.create("/big", 0o644, os.O_RDWR | os.O_CREAT)
    start = time.monotonic()
    assert errno_of(vfs.truncate, None, 999_999_999_999_999, fh) == errno.EFBIG
    assert errno_of(vfs.write, fh, b"x", (1 << 40) + 1) == errno.EFBIG
    assert time.monotonic() - start < 2
    vfs.truncate(None, 50_000_000, fh)  # a 50 MB hole: fine, and hashed without holding things up
    assert vfs.read(fh, 10, 49_999_995) == bytes(5)
    vfs.release(fh)
    assert vfs.getattr("/big")["st_size"] == 50_000_000
