"""Hypothesis state machine: the same random operations on a simfs mount and on a plain directory agree."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from conftest import Mount, assert_fsck_clean, fuse_available
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

EXAMPLES = int(os.environ.get("SIMFS_STATEFUL_EXAMPLES", "25"))
pytestmark = [
    pytest.mark.skipif(fuse_available() is not None, reason=str(fuse_available())),
    pytest.mark.timeout(120 + 5 * EXAMPLES),  # each example mounts, runs ~30 steps, unmounts, fscks
]

NAMES = st.sampled_from(["a", "b", "c", "d.png", "é", "dir1", "dir2"])
DIRS = st.sampled_from(["", "dir1", "dir2", "dir1/dir2"])


def outcome(fn, *args):
    """Result or errno, so both trees can be compared call by call."""
    try:
        return ("ok", fn(*args))
    except OSError as exc:
        return ("err", exc.errno)


def snapshot(root: Path) -> dict[str, object]:
    """Names, types, contents, permission bits, link counts, symlink targets, user xattrs, mtimes set by utime."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                entry: tuple = ("link", os.readlink(p))
            elif name in dirnames:
                entry = ("dir", stat.S_IMODE(st.st_mode), st.st_nlink, sorted(os.listxattr(p)))
            else:
                entry = ("file", Path(p).read_bytes(), stat.S_IMODE(st.st_mode), st.st_nlink,
                         {x: os.getxattr(p, x) for x in os.listxattr(p)})
            if st.st_mtime_ns % 10**9 == 123:  # a time set explicitly by the utime rule
                entry += (st.st_mtime_ns,)
            out[os.path.normpath(os.path.join(rel, name))] = entry
    return out


class MountVsDir(RuleBasedStateMachine):
    """Drives a real mount and a tmpfs/ext4 directory in lockstep."""

    @initialize()
    def setup(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="simfs-sm-"))
        self.plain = self.tmp / "plain"
        self.plain.mkdir()
        self.mount = Mount(self.tmp / "store", self.tmp / "mnt").start()
        self.roots = (self.mount.mountpoint, self.plain)
        self.fds: list[tuple[int, int]] = []  # (fd on mount, fd on plain) pairs kept open across steps

    def teardown(self) -> None:
        for a, b in getattr(self, "fds", []):
            os.close(a)
            os.close(b)
        if hasattr(self, "mount"):
            self.mount.stop()
            assert_fsck_clean(self.mount.store)
            shutil.rmtree(self.tmp, ignore_errors=True)

    def both(self, fn, *rel_paths_and_args):
        """Apply fn(paths..., args...) to both trees; the outcomes must match."""
        results = []
        for root in self.roots:
            # PathArg is relative: never let "/x" escape the tree (Path / "/x" would be absolute)
            args = [root / a.lstrip("/") if isinstance(a, PathArg) else a for a in rel_paths_and_args]
            assert all(str(a).startswith(str(root)) for a in args if isinstance(a, Path))
            results.append(outcome(fn, *args))
        assert results[0] == results[1], results
        return results[0]

    @rule(d=DIRS, n=NAMES, data=st.binary(max_size=3000), big=st.booleans())
    def write_file(self, d: str, n: str, data: bytes, big: bool) -> None:
        payload = data * 100 if big else data
        self.both(lambda p: p.write_bytes(payload), PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES, offset=st.integers(0, 400_000), data=st.binary(min_size=1, max_size=500))
    def write_at(self, d: str, n: str, offset: int, data: bytes) -> None:
        def op(p: Path) -> None:
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                os.pwrite(fd, data, offset)
            finally:
                os.close(fd)
        self.both(op, PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES, size=st.integers(0, 300_000))
    def truncate(self, d: str, n: str, size: int) -> None:
        self.both(os.truncate, PathArg(f"{d}/{n}"), size)

    @rule(d1=DIRS, n1=NAMES, d2=DIRS, n2=NAMES)
    def rename(self, d1: str, n1: str, d2: str, n2: str) -> None:
        self.both(os.rename, PathArg(f"{d1}/{n1}"), PathArg(f"{d2}/{n2}"))

    @rule(d=DIRS, n=NAMES)
    def unlink(self, d: str, n: str) -> None:
        self.both(os.unlink, PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES)
    def mkdir(self, d: str, n: str) -> None:
        self.both(os.mkdir, PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES)
    def rmdir(self, d: str, n: str) -> None:
        self.both(os.rmdir, PathArg(f"{d}/{n}"))

    @rule(d1=DIRS, n1=NAMES, d2=DIRS, n2=NAMES)
    def link(self, d1: str, n1: str, d2: str, n2: str) -> None:
        self.both(os.link, PathArg(f"{d1}/{n1}"), PathArg(f"{d2}/{n2}"))

    @rule(d=DIRS, n=NAMES, link_to=st.sampled_from(["a", "../b", "dir1/c", "nowhere"]))
    def symlink(self, d: str, n: str, link_to: str) -> None:
        self.both(lambda p: os.symlink(link_to, p), PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES, mode=st.sampled_from([0o600, 0o644, 0o755, 0o700, 0o4755, 0o1777]))
    def chmod(self, d: str, n: str, mode: int) -> None:
        self.both(lambda p: os.chmod(p, mode, follow_symlinks=False) if not os.path.islink(p) else None,
                  PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES, key=st.sampled_from(["user.a", "user.album"]), value=st.binary(max_size=50),
          remove=st.booleans())
    def xattr(self, d: str, n: str, key: str, value: bytes, remove: bool) -> None:
        def op(p: Path) -> None:
            if os.path.islink(p):
                return  # user xattrs on symlinks: EPERM on Linux file systems, not compared
            if remove:
                os.removexattr(p, key)
            else:
                os.setxattr(p, key, value)
        self.both(op, PathArg(f"{d}/{n}"))

    @rule(d=DIRS, n=NAMES, sec=st.integers(0, 2_000_000_000))
    def utime(self, d: str, n: str, sec: int) -> None:
        ns = sec * 10**9 + 123
        self.both(lambda p: os.utime(p, ns=(ns, ns), follow_symlinks=False), PathArg(f"{d}/{n}"))

    @precondition(lambda self: len(self.fds) < 4)
    @rule(d=DIRS, n=NAMES)
    def open_keep(self, d: str, n: str) -> None:
        res = []
        for root in self.roots:
            res.append(outcome(os.open, root / f"{d}/{n}".lstrip("/"), os.O_RDWR))
        assert [r[0] for r in res] == [res[0][0]] * 2, res
        if res[0][0] == "ok":
            self.fds.append((res[0][1], res[1][1]))
        else:
            assert res[0] == res[1]

    @precondition(lambda self: self.fds)
    @rule(i=st.integers(0, 3), offset=st.integers(0, 100_000), data=st.binary(min_size=1, max_size=200))
    def write_open(self, i: int, offset: int, data: bytes) -> None:
        a, b = self.fds[i % len(self.fds)]
        assert outcome(os.pwrite, a, data, offset) == outcome(os.pwrite, b, data, offset)

    @precondition(lambda self: self.fds)
    @rule(i=st.integers(0, 3))
    def read_and_close_open(self, i: int) -> None:
        a, b = self.fds.pop(i % len(self.fds))
        assert os.fstat(a).st_size == os.fstat(b).st_size
        assert os.fstat(a).st_nlink == os.fstat(b).st_nlink
        assert os.pread(a, 1 << 20, 0) == os.pread(b, 1 << 20, 0)
        os.close(a)
        os.close(b)

    @invariant()
    def trees_agree(self) -> None:
        if hasattr(self, "roots"):
            assert snapshot(self.roots[0]) == snapshot(self.roots[1])


class PathArg(str):
    """Marks an argument as a path relative to each tree's root."""


MountVsDir.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_mount_matches_plain_directory = MountVsDir.TestCase
