"""POSIX behaviour through a real FUSE mount: what cp, rsync, mv, editors and python do to files."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Mount, assert_fsck_clean, needs_fuse

pytestmark = needs_fuse


def test_read_write_offsets_truncate_and_inplace_edits(mount: Mount) -> None:
    mnt = mount.mountpoint
    p = mnt / "f.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    p.write_bytes(data)
    assert p.read_bytes() == data
    with open(p, "r+b") as fh:  # python in-place edit
        fh.seek(1_000_000)
        fh.write(b"EDIT")
        fh.seek(0, os.SEEK_END)
        fh.write(b"TAIL")
    expected = data[:1_000_000] + b"EDIT" + data[1_000_004:] + b"TAIL"
    assert p.read_bytes() == expected
    os.truncate(p, 10)
    assert p.read_bytes() == expected[:10]
    os.truncate(p, 5000)
    assert p.read_bytes() == expected[:10] + bytes(4990)
    fd = os.open(p, os.O_RDWR)
    os.ftruncate(fd, 3)
    os.pwrite(fd, b"Z", 9000)  # hole from 3 to 9000
    os.close(fd)
    assert p.read_bytes() == expected[:3] + bytes(8997) + b"Z"
    subprocess.run(["truncate", "-s", "1", str(p)], check=True)
    assert p.read_bytes() == expected[:1]
    with open(p, "ab") as fh:  # O_APPEND
        fh.write(b"++")
    assert p.read_bytes() == expected[:1] + b"++"
    with open(p, "wb") as fh:  # O_TRUNC of existing content
        fh.write(b"new")
    assert p.read_bytes() == b"new"
    assert os.stat(p).st_size == 3


def test_open_flags(mount: Mount) -> None:
    mnt = mount.mountpoint
    fd = os.open(mnt / "rw", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"abc")
    os.lseek(fd, 0, os.SEEK_SET)
    assert os.read(fd, 10) == b"abc"
    os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(mnt / "rw", os.O_RDWR | os.O_CREAT | os.O_EXCL)
    with pytest.raises(IsADirectoryError):
        open(mnt, "rb+")
    fd = os.open(mnt / "rw", os.O_RDONLY)
    with pytest.raises(OSError) as info:
        os.write(fd, b"x")
    assert info.value.errno == errno.EBADF
    os.close(fd)


def test_unlink_of_open_file_and_rename_over_open_file(mount: Mount) -> None:
    mnt = mount.mountpoint
    (mnt / "open.txt").write_bytes(b"keep reading me")
    fh = open(mnt / "open.txt", "rb")
    os.unlink(mnt / "open.txt")
    assert not (mnt / "open.txt").exists()
    assert fh.read() == b"keep reading me"
    assert os.fstat(fh.fileno()).st_nlink == 0
    assert not [n for n in os.listdir(mnt) if n.startswith(".fuse_hidden")], "the unlinked file is hidden"
    fh.close()
    (mnt / "dir").mkdir()  # a directory whose only file is open and unlinked is empty: rmdir works
    (mnt / "dir" / "f").write_bytes(b"in dir")
    fd = os.open(mnt / "dir" / "f", os.O_RDONLY)
    os.unlink(mnt / "dir" / "f")
    os.rmdir(mnt / "dir")
    assert os.pread(fd, 100, 0) == b"in dir"
    os.close(fd)
    (mnt / "a").write_bytes(b"AAAA")
    (mnt / "b").write_bytes(b"BBBB")
    fb = open(mnt / "b", "rb")
    os.rename(mnt / "a", mnt / "b")  # replaces an open file
    assert sorted(n for n in os.listdir(mnt) if n in ("a", "b") or n.startswith(".fuse_hidden")) == ["b"]
    assert fb.read() == b"BBBB"
    fb.close()
    assert (mnt / "b").read_bytes() == b"AAAA"
    # writing to an unlinked file through its descriptor, then closing, must not leak anything
    fd = os.open(mnt / "gone", os.O_RDWR | os.O_CREAT, 0o644)
    os.unlink(mnt / "gone")
    os.write(fd, b"into the void")
    os.ftruncate(fd, 4)
    os.fchmod(fd, 0o600)
    assert os.pread(fd, 100, 0) == b"into"
    os.close(fd)


def test_namespace_ops(mount: Mount) -> None:
    mnt = mount.mountpoint
    (mnt / "d1" / "d2").mkdir(parents=True)
    (mnt / "d1" / "d2" / "f").write_bytes(b"x")
    os.rename(mnt / "d1" / "d2", mnt / "moved")
    assert (mnt / "moved" / "f").read_bytes() == b"x"
    (mnt / "emptydir").mkdir()
    os.rename(mnt / "moved", mnt / "emptydir")  # over an empty directory
    assert (mnt / "emptydir" / "f").exists() and not (mnt / "moved").exists()
    with pytest.raises(OSError) as info:
        os.rmdir(mnt / "emptydir")
    assert info.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as info:
        os.rename(mnt / "d1", mnt / "d1" / "inside")
    assert info.value.errno == errno.EINVAL
    subprocess.run(["mv", str(mnt / "emptydir"), str(mnt / "d1" / "deep")], check=True)
    assert sorted(os.listdir(mnt)) == ["d1"]
    assert os.stat(mnt / "d1").st_nlink == 3
    subprocess.run(["rm", "-r", str(mnt / "d1")], check=True)
    assert os.listdir(mnt) == []


def test_symlinks_hardlinks_and_non_utf8_names(mount: Mount) -> None:
    mnt = mount.mountpoint
    (mnt / "target.png").write_bytes(b"\x89PNG fake")
    os.symlink("target.png", mnt / "link")
    assert os.readlink(mnt / "link") == "target.png"
    assert (mnt / "link").read_bytes() == b"\x89PNG fake"
    assert stat.S_ISLNK(os.lstat(mnt / "link").st_mode)
    os.link(mnt / "target.png", mnt / "hard.png")
    assert os.stat(mnt / "target.png").st_nlink == 2
    assert os.stat(mnt / "hard.png").st_ino == os.stat(mnt / "target.png").st_ino
    # writes through one name are seen through the other, even with its pages cached
    assert (mnt / "hard.png").read_bytes() == b"\x89PNG fake"
    (mnt / "target.png").write_bytes(b"two!" * 2000)
    assert os.stat(mnt / "hard.png").st_size == 8000
    assert (mnt / "hard.png").read_bytes() == b"two!" * 2000
    with open(mnt / "target.png", "r+b") as fh:  # same size, new content
        fh.write(b"XXXX")
    assert (mnt / "hard.png").read_bytes() == b"XXXX" + b"two!" * 1999
    raw = os.fsencode(str(mnt)) + b"/\xff\xfe-photo-\xe9.png"
    with open(raw, "wb") as fh:
        fh.write(b"latin1 name")
    assert b"\xff\xfe-photo-\xe9.png" in os.listdir(os.fsencode(str(mnt)))
    with open(raw, "rb") as fh:
        assert fh.read() == b"latin1 name"
    long_name = mnt / ("n" * 255)
    long_name.write_bytes(b"ok")
    with pytest.raises(OSError) as info:
        (mnt / ("n" * 256)).write_bytes(b"no")
    assert info.value.errno == errno.ENAMETOOLONG


def test_attributes_times_xattrs_statfs(mount: Mount) -> None:
    mnt = mount.mountpoint
    p = mnt / "t.txt"
    p.write_bytes(b"x")
    os.chmod(p, 0o751)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o751
    os.chown(p, 1234, 4321)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    os.utime(p, ns=(1_000_000_001, 2_000_000_002))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_001, 2_000_000_002)
    subprocess.run(["touch", "-m", "-d", "2001-02-03 04:05:06 UTC", str(p)], check=True)
    st2 = os.stat(p)
    assert st2.st_mtime_ns == 981173106 * 10**9 and st2.st_atime_ns == 1_000_000_001  # atime omitted
    before = time.time_ns()
    subprocess.run(["touch", "-a", str(p)], check=True)  # UTIME_NOW for atime, UTIME_OMIT for mtime
    st3 = os.stat(p)
    assert st3.st_atime_ns >= before - 10**9 and st3.st_mtime_ns == 981173106 * 10**9
    os.setxattr(p, "user.album", b"holiday 2026")
    assert os.getxattr(p, "user.album") == b"holiday 2026"
    assert "user.album" in os.listxattr(p)
    with pytest.raises(OSError) as info:
        os.getxattr(p, "user.missing")
    assert info.value.errno == errno.ENODATA
    os.removexattr(p, "user.album")
    assert "user.album" not in os.listxattr(p)
    big = mnt / "big.bin"
    big.write_bytes(os.urandom(4 << 20))
    sv = os.statvfs(mnt)
    used = (sv.f_blocks - sv.f_bfree) * sv.f_frsize
    assert used >= 4 << 20  # df shows what the store holds
    host = os.statvfs(mount.store)
    assert abs(sv.f_bavail * sv.f_frsize - host.f_bavail * host.f_frsize) < 256 << 20
    fd = os.open(big, os.O_RDWR)
    os.write(fd, b"sync me")
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)


def test_set_id_bits_survive_root_writes_and_drop_for_others(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["allow_other"]) as m:
        p = m.mountpoint / "suid"
        p.write_bytes(b"x")
        os.chmod(p, 0o4777)
        with open(p, "ab") as fh:  # root (CAP_FSETID) keeps the bits, as on ext4
            fh.write(b"y")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o4777
        # cwd first: the uid-1000 process cannot traverse pytest's private tmp directories
        subprocess.run(["sh", "-c", "printf z >> suid"], check=True, cwd=m.mountpoint, user=1000, group=1000,
                       extra_groups=[])
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o777  # an ordinary writer drops set-uid
        assert p.read_bytes() == b"xyz"
    assert_fsck_clean(tmp_path / "store")


def test_new_files_are_owned_by_the_caller(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["allow_other"]) as m:
        shared = m.mountpoint / "shared"
        shared.mkdir(mode=0o777)
        os.chmod(shared, 0o777)
        script = "import os; open('f','wb').write(b'mine'); os.mkdir('d')"
        subprocess.run(["python3", "-c", script], cwd=shared, check=True,
                       user=1000, group=1000, extra_groups=[])
        for name in ("f", "d"):
            st = os.stat(shared / name)
            assert (st.st_uid, st.st_gid) == (1000, 1000), name
        os.chmod(shared / "f", 0o600)
        os.chown(shared / "f", 0, 0)
        denied = subprocess.run(["cat", str(shared / "f")], user=1000, group=1000, extra_groups=[],
                                capture_output=True)
        assert denied.returncode != 0 and b"Permission denied" in denied.stderr
    assert_fsck_clean(tmp_path / "store")


def test_read_only_mount(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Mount(store, tmp_path / "mnt") as m:
        (m.mountpoint / "keep").write_bytes(b"kept")
    with Mount(store, tmp_path / "mnt", options=["ro"]) as m:
        assert (m.mountpoint / "keep").read_bytes() == b"kept"
        with pytest.raises(OSError) as info:
            (m.mountpoint / "new").write_bytes(b"x")
        assert info.value.errno == errno.EROFS
        with pytest.raises(OSError):
            os.unlink(m.mountpoint / "keep")
    assert_fsck_clean(store)


def test_rsync_archive_preserves_everything(mount: Mount, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(os.urandom(200_000))
    (src / "sub" / "b.txt").write_bytes(b"text")
    os.symlink("a.png", src / "ln")
    os.chmod(src / "sub" / "b.txt", 0o640)
    os.utime(src / "a.png", ns=(1_500_000_000_000_000_000, 1_500_000_000_123_456_789))
    subprocess.run(["rsync", "-aX", f"{src}/", f"{mount.mountpoint}/"], check=True)
    diff = subprocess.run(["rsync", "-acn", "--itemize-changes", f"{src}/", f"{mount.mountpoint}/"],
                          capture_output=True, text=True, check=True)
    assert diff.stdout.strip() == "", diff.stdout
    assert os.stat(mount.mountpoint / "a.png").st_mtime_ns == 1_500_000_000_123_456_789


def test_mmap_shared_write_and_fallocate(mount: Mount) -> None:
    import mmap

    p = mount.mountpoint / "mapped.bin"
    p.write_bytes(bytes(100_000))
    with open(p, "r+b") as fh:
        with mmap.mmap(fh.fileno(), 0) as mm:
            mm[10:15] = b"hello"
            mm[99_995:] = b"world"
            mm.flush()
    data = p.read_bytes()
    assert data[10:15] == b"hello" and data[99_995:] == b"world" and len(data) == 100_000
    fd = os.open(p, os.O_RDWR)
    os.posix_fallocate(fd, 0, 200_000)  # extends
    assert os.fstat(fd).st_size == 200_000
    os.close(fd)
    assert p.read_bytes() == data + bytes(100_000)


def test_out_of_space_fails_cleanly_and_keeps_old_data(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount tmpfs here")
    try:
        store = small / "store"
        with Mount(store, tmp_path / "mnt") as m:
            keep = os.urandom(4 << 20)
            (m.mountpoint / "keep.bin").write_bytes(keep)
            # an editor-style save (temp file, then rename) that does not fit: the original stays
            with pytest.raises(OSError) as info:
                (m.mountpoint / "huge.bin").write_bytes(os.urandom(30 << 20))
            assert info.value.errno == errno.ENOSPC
            assert (m.mountpoint / "keep.bin").read_bytes() == keep
            # a new file whose write failed for want of space leaves no name behind
            assert not (m.mountpoint / "huge.bin").exists()
            # growing a file in place past the free space: all or nothing, the old content stays
            with pytest.raises(OSError) as info:
                with open(m.mountpoint / "keep.bin", "ab", buffering=0) as fh:
                    for _ in range(40):
                        fh.write(b"\xaa" * (1 << 20))
            assert info.value.errno == errno.ENOSPC
            assert (m.mountpoint / "keep.bin").read_bytes() == keep
            (m.mountpoint / "after.bin").write_bytes(b"space again")  # still usable
        assert_fsck_clean(store)
    finally:
        subprocess.run(["umount", "-l", str(small)])
