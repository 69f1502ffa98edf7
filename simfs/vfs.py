"""POSIX file-system semantics over the catalog and the object store; testable without FUSE."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import xxhash

from .catalog import keys
from .catalog.records import NO_OBJECT, Inode, ObjectRecord, pack_dentry, unpack_dentry
from .errors import CorruptObject
from .storage import OpenStore
from .store.envelope import CODEC_VERBATIM, HEADER_SIZE
from .store.local import StagingFile

log = logging.getLogger("simfs.vfs")

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
XATTR_CREATE = 1
XATTR_REPLACE = 2
NAME_MAX = 255
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
COPY_CHUNK = 1 << 20

F = TypeVar("F", bound=Callable[..., Any])


def fail(code: int) -> NoReturn:
    raise OSError(code, os.strerror(code))


def locked(method: F) -> F:
    """Serialise every operation: the catalog has no transactions (read-modify-write under one lock)."""

    @functools.wraps(method)
    def wrapper(self: Vfs, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def encode_name(name: str) -> bytes:
    # FUSE hands us str decoded with surrogateescape: this gives back the exact bytes (non-UTF-8 too).
    return name.encode("utf-8", "surrogateescape")


def split_path(path: str) -> list[bytes]:
    return [encode_name(p) for p in path.split("/") if p]


@dataclass
class Context:
    """Caller identity (from fuse_get_context); owner of files it creates."""

    uid: int
    gid: int
    pid: int = 0


ROOT_CONTEXT = Context(0, 0)


class Txn:
    """One operation's changes: a WriteBatch plus a read-your-writes overlay; atomic on commit."""

    def __init__(self, vfs: Vfs):
        self.vfs = vfs
        self.batch = vfs.catalog.new_batch()
        self.overlay: dict[bytes, bytes | None] = {}
        self.inodes: dict[int, Inode] = {}
        self.freed_inodes: set[int] = set()
        self.stored_delta = 0
        self.touched: set[int] = set()

    def get(self, key: bytes) -> bytes | None:
        if key in self.overlay:
            return self.overlay[key]
        return self.vfs.catalog.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.overlay[key] = value
        self.batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self.overlay[key] = None
        self.batch.delete(key)

    def inode(self, ino: int) -> Inode:
        """A mutable copy of an inode; save() it to make the change part of this transaction."""
        if ino in self.inodes:
            return self.inodes[ino]
        node = self.vfs.load_inode(ino).copy()
        self.inodes[ino] = node
        return node

    def save(self, node: Inode) -> None:
        self.inodes[node.ino] = node
        self.touched.add(node.ino)
        self.put(keys.inode_key(node.ino), node.pack())

    def drop_inode(self, node: Inode) -> None:
        self.inodes.pop(node.ino, None)
        self.freed_inodes.add(node.ino)
        self.touched.discard(node.ino)
        self.delete(keys.inode_key(node.ino))
        if node.is_reg and node.has_object:
            self.decref(node.object_id)
        for key, _ in self.vfs.catalog.scan(keys.xattr_prefix(node.ino)):
            self.delete(key)

    def object_record(self, oid: bytes) -> ObjectRecord | None:
        raw = self.get(keys.object_key(oid))
        return None if raw is None else ObjectRecord.unpack(raw)

    def incref(self, oid: bytes) -> None:
        rec = self.object_record(oid)
        if rec is None:
            raise KeyError(oid.hex())
        if rec.refcount == 0:
            self.delete(keys.garbage_key(oid))
        rec.refcount += 1
        self.put(keys.object_key(oid), rec.pack())

    def decref(self, oid: bytes) -> None:
        rec = self.object_record(oid)
        if rec is None:
            log.error("decref of unknown object %s (catalog inconsistent; run simfs fsck)", oid.hex())
            return
        rec.refcount -= 1
        self.put(keys.object_key(oid), rec.pack())
        if rec.refcount == 0:
            # The file goes only after this batch is durable (GC after a WAL sync), so a power cut
            # can never leave a live record pointing at a deleted file.
            self.put(keys.garbage_key(oid), b"")
            self.vfs.garbage_pending = True

    def add_object(self, oid: bytes, size: int, stored: int) -> None:
        self.put(keys.object_key(oid), ObjectRecord(CODEC_VERBATIM, 1, size, stored).pack())
        self.stored_delta += stored

    def commit(self, *, sync: bool = False) -> None:
        self.vfs.catalog.write(self.batch, sync=sync)
        cache = self.vfs.inode_cache
        for ino, node in self.inodes.items():
            if ino in self.touched:
                cache[ino] = node
        for ino in self.freed_inodes:
            cache.pop(ino, None)
        self.vfs.stored_bytes += self.stored_delta
        if not sync:
            self.vfs.wal_unsynced = True
        else:
            self.vfs.wal_unsynced = False


@dataclass
class OpenFile:
    """State shared by every handle open on one regular-file inode."""

    ino: int
    refs: int = 0
    staging: StagingFile | None = None
    size: int = 0  # live size while staging exists
    dirty: bool = False  # staging content differs from the committed object
    needs_sync: bool = False  # an unsynced batch touched this inode while open (create, chmod...)
    reader_fd: int = -1
    reader_oid: bytes = NO_OBJECT
    # Running hashes while writes arrive strictly in order from 0 (cp, rsync): no re-read at commit.
    seq_sha: Any = None
    seq_xx: Any = None
    seq_len: int = 0

    def drop_seq(self) -> None:
        self.seq_sha = self.seq_xx = None


@dataclass
class Handle:
    fh: int
    ino: int
    flags: int
    dir: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Vfs:
    """All file-system operations, by path (as FUSE gives them) or by open handle."""

    def __init__(self, store: OpenStore, *, read_only: bool = False):
        self.store = store
        self.catalog = store.catalog
        self.objects = store.objects
        self.read_only = read_only
        self.lock = threading.RLock()
        self.inode_cache: dict[int, Inode] = {}
        self.open_files: dict[int, OpenFile] = {}
        self.handles: dict[int, Handle] = {}
        self.hidden: dict[tuple[int, bytes], int] = {}
        self._next_fh = 1
        raw = self.catalog.get(keys.NEXT_INO)
        self.next_ino = keys.read_u64(raw) if raw else keys.ROOT_INO + 1
        self.stored_bytes = 0
        self.inode_count = 0
        self.garbage_pending = False
        self.wal_unsynced = False
        if not read_only:
            self._recover()
        self._count_usage()

    # ------------------------------------------------------------------ start-up and shutdown
    def _recover(self) -> None:
        """Finish what a crash interrupted: staging leftovers, orphans, garbage, unrecorded objects."""
        removed = self.objects.clear_staging()
        if removed:
            log.info("removed %d staging files of uncommitted writes", removed)
        orphans = [keys.read_u64(k, 1) for k, _ in self.catalog.scan(keys.ORPHAN)]
        if orphans:
            txn = Txn(self)
            for ino in orphans:
                raw = txn.get(keys.inode_key(ino))
                if raw is not None:
                    txn.drop_inode(Inode.unpack(ino, raw))
                txn.delete(keys.orphan_key(ino))
            txn.commit(sync=True)
            log.info("reclaimed %d orphan inodes (unlinked while open at the last shutdown)", len(orphans))
        if self.store.crashed:
            self._remove_unrecorded_objects()
        self.collect_garbage(force_sync=True)

    def _remove_unrecorded_objects(self) -> None:
        """After a crash, object files written but never recorded (commit interrupted) are deleted."""
        removed = 0
        for oid, gen, _size in self.objects.iter_files():
            if not oid:
                continue
            raw = self.catalog.get(keys.object_key(oid))
            if raw is None or ObjectRecord.unpack(raw).gen != gen:
                self.objects.delete(oid, gen)
                removed += 1
        if removed:
            log.info("crash recovery: removed %d object files no catalog record names", removed)

    def _count_usage(self) -> None:
        total = 0
        for _, raw in self.catalog.scan(keys.OBJECT):
            total += ObjectRecord.unpack(raw).stored
        self.stored_bytes = total
        self.inode_count = sum(1 for _ in self.catalog.scan(keys.INODE))

    @locked
    def collect_garbage(self, *, force_sync: bool = False) -> int:
        """Delete object files whose refcount reached 0, once the batch that said so is durable."""
        if not self.garbage_pending and not force_sync:
            return 0
        if self.wal_unsynced or force_sync:
            self.catalog.flush_wal()
            self.wal_unsynced = False
        freed = 0
        txn = Txn(self)
        for key, _ in self.catalog.scan(keys.GARBAGE):
            oid = key[1:]
            rec = txn.object_record(oid)
            if rec is not None and rec.refcount == 0:
                freed += self.objects.delete(oid, rec.gen)
                txn.delete(keys.object_key(oid))
                txn.stored_delta -= rec.stored
            txn.delete(key)
        txn.commit(sync=False)
        self.garbage_pending = False
        return freed

    def _with_space(self, action: Callable[[], Any]) -> Any:
        """Run a disk write; on ENOSPC free pending garbage (deleted files) and try once more."""
        try:
            return action()
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.garbage_pending:
                raise
        self.collect_garbage(force_sync=True)
        return action()

    def start_background(self, interval: float = 1.0) -> None:
        """Free deleted files' space within about `interval` seconds (daemon only)."""
        self._stop = threading.Event()

        def loop() -> None:
            while not self._stop.wait(interval):
                if self.garbage_pending:
                    try:
                        self.collect_garbage()
                    except Exception:
                        log.exception("background garbage collection failed")

        self._gc_thread = threading.Thread(target=loop, name="simfs-gc", daemon=True)
        self._gc_thread.start()

    def stop_background(self) -> None:
        if getattr(self, "_stop", None) is not None:
            self._stop.set()
            self._gc_thread.join(timeout=30)

    def shutdown(self) -> None:
        """Unmount: commit anything still open, free garbage, flush."""
        self.stop_background()
        with self.lock:
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        for of in list(self.open_files.values()):
            with contextlib.suppress(OSError):
                self._commit(of, sync=True)
            self._close_open_file(of)
        self.open_files.clear()
        self.handles.clear()
        if not self.read_only:
            self.collect_garbage(force_sync=True)
            # Orphans still open at unmount are gone now that every handle is closed.
            orphans = [keys.read_u64(k, 1) for k, _ in self.catalog.scan(keys.ORPHAN)]
            if orphans:
                txn = Txn(self)
                for ino in orphans:
                    raw = txn.get(keys.inode_key(ino))
                    if raw is not None:
                        txn.drop_inode(Inode.unpack(ino, raw))
                    txn.delete(keys.orphan_key(ino))
                txn.commit(sync=True)
                self.collect_garbage(force_sync=True)
            self.catalog.flush_wal()

    # ------------------------------------------------------------------ lookups
    def load_inode(self, ino: int) -> Inode:
        node = self.inode_cache.get(ino)
        if node is None:
            raw = self.catalog.get(keys.inode_key(ino))
            if raw is None:
                fail(errno.ENOENT)
            node = Inode.unpack(ino, raw)
            if len(self.inode_cache) > 200_000:
                self.inode_cache.clear()
            self.inode_cache[ino] = node
        return node

    def _lookup(self, parent: int, name: bytes, txn: Txn | None = None) -> int | None:
        raw = (txn.get if txn else self.catalog.get)(keys.dentry_key(parent, name))
        if raw is None:
            return self.hidden.get((parent, name))
        return unpack_dentry(raw)[0]

    def resolve(self, path: str, txn: Txn | None = None) -> int:
        ino = keys.ROOT_INO
        for name in split_path(path):
            node = self.load_inode(ino) if txn is None else txn.inode(ino)
            if not node.is_dir:
                fail(errno.ENOTDIR)
            child = self._lookup(ino, name, txn)
            if child is None:
                fail(errno.ENOENT)
            ino = child
        return ino

    def _parent_and_name(self, path: str, txn: Txn) -> tuple[Inode, bytes]:
        parts = split_path(path)
        if not parts:
            fail(errno.EEXIST)
        name = parts[-1]
        if len(name) > NAME_MAX:
            fail(errno.ENAMETOOLONG)
        if name in (b".", b".."):
            fail(errno.EINVAL)
        parent_ino = keys.ROOT_INO
        for part in parts[:-1]:
            child = self._lookup(parent_ino, part, txn)
            if child is None:
                fail(errno.ENOENT)
            parent_ino = child
        parent = txn.inode(parent_ino)
        if not parent.is_dir:
            fail(errno.ENOTDIR)
        return parent, name

    def _ino_of(self, path: str | None, fh: int | None) -> int:
        if fh is not None and fh in self.handles:
            return self.handles[fh].ino
        if path is None:
            fail(errno.EBADF)
        return self.resolve(path)

    def _check_writable(self) -> None:
        if self.read_only:
            fail(errno.EROFS)

    # ------------------------------------------------------------------ attributes
    @locked
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        ino = self._ino_of(path, fh)
        node = self.load_inode(ino)
        size = node.size
        of = self.open_files.get(ino)
        if of is not None and of.staging is not None:
            size = of.size
        return {
            "st_ino": ino,
            "st_mode": node.mode,
            "st_nlink": node.nlink,
            "st_uid": node.uid,
            "st_gid": node.gid,
            "st_size": size,
            "st_blocks": (size + 511) // 512,
            "st_blksize": 1 << 17,
            "st_atime": node.atime,
            "st_mtime": node.mtime,
            "st_ctime": node.ctime,
            "st_rdev": node.rdev,
        }

    @locked
    def chmod(self, path: str | None, mode: int, fh: int | None = None) -> None:
        self._check_writable()
        txn = Txn(self)
        node = txn.inode(self._ino_of(path, fh))
        node.mode = stat.S_IFMT(node.mode) | (mode & 0o7777)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, node.ino)

    @locked
    def chown(self, path: str | None, uid: int, gid: int, fh: int | None = None) -> None:
        self._check_writable()
        txn = Txn(self)
        node = txn.inode(self._ino_of(path, fh))
        if uid != -1:
            node.uid = uid
        if gid != -1:
            node.gid = gid
        if (uid != -1 or gid != -1) and not node.is_dir:
            # As on local file systems: changing ownership drops set-id bits (set-gid only when it means
            # "set group id", i.e. group-exec is on).
            node.mode &= ~stat.S_ISUID
            if node.mode & stat.S_IXGRP:
                node.mode &= ~stat.S_ISGID
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, node.ino)

    @locked
    def utimens(self, path: str | None, times: tuple[tuple[int, int], tuple[int, int]] | None,
                fh: int | None = None) -> None:
        """times: ((atime_sec, atime_nsec), (mtime_sec, mtime_nsec)) with raw UTIME_NOW/UTIME_OMIT."""
        self._check_writable()
        txn = Txn(self)
        node = txn.inode(self._ino_of(path, fh))
        now = time.time_ns()
        if times is None:
            node.atime = node.mtime = now
        else:
            (asec, ansec), (msec, mnsec) = times
            if ansec == UTIME_NOW:
                node.atime = now
            elif ansec != UTIME_OMIT:
                node.atime = asec * 1_000_000_000 + ansec
            if mnsec == UTIME_NOW:
                node.mtime = now
            elif mnsec != UTIME_OMIT:
                node.mtime = msec * 1_000_000_000 + mnsec
        node.ctime = now
        txn.save(node)
        self._commit_meta(txn, node.ino)

    def _commit_meta(self, txn: Txn, ino: int) -> None:
        """Metadata changes are durable at the next fsync/close of the file, like a local file system."""
        txn.commit(sync=False)
        of = self.open_files.get(ino)
        if of is not None:
            of.needs_sync = True

    # ------------------------------------------------------------------ namespace
    def _new_inode(self, txn: Txn, parent_dir: Inode, mode: int, ctx: Context, **extra: Any) -> Inode:
        ino = self.next_ino
        self.next_ino += 1
        txn.put(keys.NEXT_INO, keys.u64(self.next_ino))
        now = time.time_ns()
        gid = ctx.gid
        if parent_dir.mode & stat.S_ISGID:
            # BSD group semantics on set-gid directories: new entries take the directory's group.
            gid = parent_dir.gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        node = Inode(ino, mode, ctx.uid, gid, 1, 0, now, now, now, **extra)
        txn.save(node)
        self.inode_count += 1
        return node

    def _link_into(self, txn: Txn, parent: Inode, name: bytes, node: Inode) -> None:
        txn.put(keys.dentry_key(parent.ino, name), pack_dentry(node.ino, node.mode))
        now = time.time_ns()
        parent.mtime = parent.ctime = now
        txn.save(parent)

    @locked
    def mknod(self, path: str, mode: int, rdev: int = 0, ctx: Context = ROOT_CONTEXT) -> int:
        self._check_writable()
        fmt = stat.S_IFMT(mode) or stat.S_IFREG
        if fmt not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
            fail(errno.EINVAL)
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        if self._lookup(parent.ino, name, txn) is not None:
            fail(errno.EEXIST)
        node = self._new_inode(txn, parent, fmt | (mode & 0o7777), ctx,
                               rdev=rdev if fmt in (stat.S_IFCHR, stat.S_IFBLK) else 0)
        self._link_into(txn, parent, name, node)
        txn.commit(sync=False)
        return node.ino

    @locked
    def mkdir(self, path: str, mode: int, ctx: Context = ROOT_CONTEXT) -> int:
        self._check_writable()
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        if self._lookup(parent.ino, name, txn) is not None:
            fail(errno.EEXIST)
        node = self._new_inode(txn, parent, stat.S_IFDIR | (mode & 0o7777), ctx, parent=parent.ino)
        node.nlink = 2
        txn.save(node)
        parent.nlink += 1
        self._link_into(txn, parent, name, node)
        txn.commit(sync=False)
        return node.ino

    @locked
    def symlink(self, path: str, target: str, ctx: Context = ROOT_CONTEXT) -> int:
        self._check_writable()
        raw_target = encode_name(target)
        if len(raw_target) >= 4096:
            fail(errno.ENAMETOOLONG)
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        if self._lookup(parent.ino, name, txn) is not None:
            fail(errno.EEXIST)
        node = self._new_inode(txn, parent, stat.S_IFLNK | 0o777, ctx, target=raw_target)
        node.size = len(raw_target)
        txn.save(node)
        self._link_into(txn, parent, name, node)
        txn.commit(sync=False)
        return node.ino

    @locked
    def readlink(self, path: str) -> str:
        node = self.load_inode(self.resolve(path))
        if not node.is_symlink:
            fail(errno.EINVAL)
        return node.target.decode("utf-8", "surrogateescape")

    @locked
    def link(self, path: str, existing: str) -> None:
        """Hard link: a second name for the same inode (not for directories)."""
        self._check_writable()
        txn = Txn(self)
        node = txn.inode(self.resolve(existing, txn))
        if node.is_dir:
            fail(errno.EPERM)
        parent, name = self._parent_and_name(path, txn)
        if self._lookup(parent.ino, name, txn) is not None:
            fail(errno.EEXIST)
        if node.nlink >= 65000:
            fail(errno.EMLINK)
        node.nlink += 1
        node.ctime = time.time_ns()
        txn.save(node)
        self._link_into(txn, parent, name, node)
        txn.commit(sync=False)

    def _unlink_inode(self, txn: Txn, node: Inode) -> None:
        """Drop one name of a non-directory; free it when no name and no handle remains."""
        node.nlink -= 1
        node.ctime = time.time_ns()
        if node.nlink > 0:
            txn.save(node)
            return
        if node.ino in self.open_files:
            # Still open: keep the inode (and its object) until the last close; an orphan key makes a
            # crash before that close reclaim it at the next mount.
            txn.save(node)
            txn.put(keys.orphan_key(node.ino), b"")
        else:
            txn.drop_inode(node)
            self.inode_count -= 1

    @locked
    def unlink(self, path: str) -> None:
        self._check_writable()
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        if (parent.ino, name) in self.hidden:
            # libfuse removing its hidden name at the last close: the inode was unlinked already.
            del self.hidden[(parent.ino, name)]
            return
        ino = self._lookup(parent.ino, name, txn)
        if ino is None:
            fail(errno.ENOENT)
        node = txn.inode(ino)
        if node.is_dir:
            fail(errno.EISDIR)
        txn.delete(keys.dentry_key(parent.ino, name))
        parent.mtime = parent.ctime = time.time_ns()
        txn.save(parent)
        self._unlink_inode(txn, node)
        txn.commit(sync=False)

    def _dir_is_empty(self, ino: int, txn: Txn) -> bool:
        prefix = keys.dentry_prefix(ino)
        for key, _ in self.catalog.scan(prefix):
            if txn.overlay.get(key, b"") is not None:
                return False
        return not any(k.startswith(prefix) and v is not None for k, v in txn.overlay.items())

    @locked
    def rmdir(self, path: str) -> None:
        self._check_writable()
        if not split_path(path):
            fail(errno.EBUSY)
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        ino = self._lookup(parent.ino, name, txn)
        if ino is None:
            fail(errno.ENOENT)
        node = txn.inode(ino)
        if not node.is_dir:
            fail(errno.ENOTDIR)
        if not self._dir_is_empty(ino, txn):
            fail(errno.ENOTEMPTY)
        txn.delete(keys.dentry_key(parent.ino, name))
        parent.nlink -= 1
        parent.mtime = parent.ctime = time.time_ns()
        txn.save(parent)
        txn.drop_inode(node)
        self.inode_count -= 1
        txn.commit(sync=False)

    def _is_ancestor(self, maybe_ancestor: int, ino: int, txn: Txn) -> bool:
        """True if maybe_ancestor is ino or one of its ancestor directories."""
        seen = 0
        while True:
            if ino == maybe_ancestor:
                return True
            if ino == keys.ROOT_INO:
                return False
            ino = txn.inode(ino).parent
            seen += 1
            if seen > 100_000:  # a cycle would be catalog damage; never loop forever
                fail(errno.EIO)

    @locked
    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self._check_writable()
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (RENAME_NOREPLACE | RENAME_EXCHANGE):
            fail(errno.EINVAL)
        txn = Txn(self)
        if not split_path(old) or not split_path(new):
            fail(errno.EBUSY)
        old_parent, old_name = self._parent_and_name(old, txn)
        new_parent, new_name = self._parent_and_name(new, txn)
        src_ino = self._lookup(old_parent.ino, old_name, txn)
        if src_ino is None:
            fail(errno.ENOENT)
        src = txn.inode(src_ino)
        dst_ino = self._lookup(new_parent.ino, new_name, txn)
        if flags & RENAME_NOREPLACE and dst_ino is not None:
            fail(errno.EEXIST)
        if flags & RENAME_EXCHANGE:
            if dst_ino is None:
                fail(errno.ENOENT)
            self._exchange(txn, old_parent, old_name, src, new_parent, new_name, txn.inode(dst_ino))
            txn.commit(sync=False)
            return
        if src.is_dir and self._is_ancestor(src.ino, new_parent.ino, txn):
            fail(errno.EINVAL)
        now = time.time_ns()
        if dst_ino is not None:
            if dst_ino == src_ino:
                return  # two names of one inode: POSIX says do nothing
            dst = txn.inode(dst_ino)
            if src.is_dir:
                if not dst.is_dir:
                    fail(errno.ENOTDIR)
                if not self._dir_is_empty(dst.ino, txn):
                    fail(errno.ENOTEMPTY)
                new_parent.nlink -= 1
                txn.drop_inode(dst)
                self.inode_count -= 1
            else:
                if dst.is_dir:
                    fail(errno.EISDIR)
                self._unlink_inode(txn, dst)
        txn.delete(keys.dentry_key(old_parent.ino, old_name))
        txn.put(keys.dentry_key(new_parent.ino, new_name), pack_dentry(src.ino, src.mode))
        if src.is_dir and old_parent.ino != new_parent.ino:
            old_parent.nlink -= 1
            new_parent = txn.inode(new_parent.ino)
            new_parent.nlink += 1
            src.parent = new_parent.ino
        src.ctime = now
        txn.save(src)
        for p in {old_parent.ino, new_parent.ino}:
            pnode = txn.inode(p)
            pnode.mtime = pnode.ctime = now
            txn.save(pnode)
        txn.commit(sync=False)

    @locked
    def hide(self, old: str, new: str) -> None:
        """Unlink old, but keep its inode reachable as `new` for this mount's lifetime only.

        The FUSE layer uses this for libfuse's "hide an open file instead of unlinking it": the name
        lives in memory, is never listed, never blocks rmdir, and unlink(new) just forgets it.
        """
        self._check_writable()
        txn = Txn(self)
        old_parent, old_name = self._parent_and_name(old, txn)
        new_parent, new_name = self._parent_and_name(new, txn)
        ino = self._lookup(old_parent.ino, old_name, txn)
        if ino is None:
            fail(errno.ENOENT)
        if self._lookup(new_parent.ino, new_name, txn) is not None:
            fail(errno.EEXIST)
        node = txn.inode(ino)
        if node.is_dir:
            fail(errno.EISDIR)
        if (old_parent.ino, old_name) in self.hidden:
            self.hidden[(new_parent.ino, new_name)] = self.hidden.pop((old_parent.ino, old_name))
            return
        txn.delete(keys.dentry_key(old_parent.ino, old_name))
        old_parent.mtime = old_parent.ctime = time.time_ns()
        txn.save(old_parent)
        self._unlink_inode(txn, node)
        txn.commit(sync=False)
        self.hidden[(new_parent.ino, new_name)] = node.ino

    def _exchange(self, txn: Txn, op: Inode, on: bytes, a: Inode, np_: Inode, nn: bytes, b: Inode) -> None:
        if a.is_dir and self._is_ancestor(a.ino, np_.ino, txn):
            fail(errno.EINVAL)
        if b.is_dir and self._is_ancestor(b.ino, op.ino, txn):
            fail(errno.EINVAL)
        now = time.time_ns()
        txn.put(keys.dentry_key(op.ino, on), pack_dentry(b.ino, b.mode))
        txn.put(keys.dentry_key(np_.ino, nn), pack_dentry(a.ino, a.mode))
        if op.ino != np_.ino:
            if a.is_dir:
                a.parent = np_.ino
                op.nlink -= 1
                txn.inode(np_.ino).nlink += 1
            if b.is_dir:
                b.parent = op.ino
                txn.inode(np_.ino).nlink -= 1
                op.nlink += 1
        a.ctime = b.ctime = now
        txn.save(a)
        txn.save(b)
        for p in {op.ino, np_.ino}:
            pnode = txn.inode(p)
            pnode.mtime = pnode.ctime = now
            txn.save(pnode)

    # ------------------------------------------------------------------ directories
    @locked
    def opendir(self, path: str) -> int:
        ino = self.resolve(path)
        if not self.load_inode(ino).is_dir:
            fail(errno.ENOTDIR)
        return self._new_handle(ino, os.O_RDONLY, is_dir=True)

    @locked
    def readdir(self, path: str | None, fh: int | None = None) -> list[tuple[str, int, int]]:
        """[(name, ino, mode type bits)] including '.' and '..'."""
        ino = self._ino_of(path, fh)
        try:
            node = self.load_inode(ino)
        except OSError:
            return [(".", ino, stat.S_IFDIR), ("..", keys.ROOT_INO, stat.S_IFDIR)]
        entries = [(".", ino, stat.S_IFDIR), ("..", node.parent or keys.ROOT_INO, stat.S_IFDIR)]
        prefix = keys.dentry_prefix(ino)
        for key, raw in self.catalog.scan(prefix):
            child, mode = unpack_dentry(raw)
            entries.append((key[len(prefix):].decode("utf-8", "surrogateescape"), child, mode))
        return entries

    @locked
    def releasedir(self, fh: int) -> None:
        self.handles.pop(fh, None)

    # ------------------------------------------------------------------ open files
    def _new_handle(self, ino: int, flags: int, *, is_dir: bool = False) -> int:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = Handle(fh, ino, flags, is_dir)
        return fh

    def _open_file(self, ino: int) -> OpenFile:
        of = self.open_files.get(ino)
        if of is None:
            node = self.load_inode(ino)
            of = OpenFile(ino, size=node.size)
            if node.has_object:
                of.reader_fd = self._open_object(node.object_id)
                of.reader_oid = node.object_id
            self.open_files[ino] = of
        of.refs += 1
        return of

    def _open_object(self, oid: bytes) -> int:
        raw = self.catalog.get(keys.object_key(oid))
        if raw is None:
            log.error("inode names object %s which has no record", oid.hex())
            fail(errno.EIO)
        rec = ObjectRecord.unpack(raw)
        try:
            fd, _header = self.objects.open_verified(oid, rec.gen)
        except CorruptObject as exc:
            log.error("%s; serving EIO", exc)
            fail(errno.EIO)
        return fd

    @locked
    def open(self, path: str | None, flags: int, fh_hint: int | None = None) -> int:
        ino = self._ino_of(path, fh_hint)
        node = self.load_inode(ino)
        if node.is_dir:
            fail(errno.EISDIR)
        if (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC:
            self._check_writable()
        if node.is_reg:
            of = self._open_file(ino)
            if flags & os.O_TRUNC and (of.size if of.staging else node.size) != 0:
                self._truncate_open(of, 0)
        return self._new_handle(ino, flags)

    @locked
    def create(self, path: str, mode: int, flags: int, ctx: Context = ROOT_CONTEXT) -> int:
        self._check_writable()
        txn = Txn(self)
        parent, name = self._parent_and_name(path, txn)
        existing = self._lookup(parent.ino, name, txn)
        if existing is not None:
            if flags & os.O_EXCL:
                fail(errno.EEXIST)
            return self.open(path, flags)
        node = self._new_inode(txn, parent, stat.S_IFREG | (mode & 0o7777), ctx)
        self._link_into(txn, parent, name, node)
        txn.commit(sync=False)
        of = self._open_file(node.ino)
        of.needs_sync = True  # the new name must survive a power cut once close() returns
        return self._new_handle(node.ino, flags)

    def _handle(self, fh: int) -> Handle:
        handle = self.handles.get(fh)
        if handle is None:
            fail(errno.EBADF)
        return handle

    @locked
    def read(self, fh: int, size: int, offset: int) -> bytes:
        handle = self._handle(fh)
        of = self.open_files.get(handle.ino)
        if of is None:
            fail(errno.EBADF)
        if of.staging is not None:
            end = min(offset + size, of.size)
            return of.staging.pread(end - offset, offset) if end > offset else b""
        node = self.load_inode(handle.ino)
        end = min(offset + size, node.size)
        if end <= offset or of.reader_fd < 0:
            return b""
        return os.pread(of.reader_fd, end - offset, HEADER_SIZE + offset)

    def _materialize(self, of: OpenFile, keep: int | None = None) -> StagingFile:
        """Copy the committed content (its first `keep` bytes) into a staging file to change it in place."""
        if of.staging is not None:
            return of.staging
        node = self.load_inode(of.ino)
        staging = self.objects.new_staging(f"i{of.ino}")
        copy_len = node.size if keep is None else min(keep, node.size)
        try:
            if copy_len and of.reader_fd >= 0:
                copied = 0
                while copied < copy_len:
                    n = os.copy_file_range(of.reader_fd, staging.fd, min(COPY_CHUNK << 4, copy_len - copied),
                                           HEADER_SIZE + copied, HEADER_SIZE + copied)
                    if n <= 0:
                        raise OSError(errno.EIO, "short copy while staging")
                    copied += n
        except BaseException:
            staging.discard()
            raise
        of.staging = staging
        of.size = copy_len
        if copy_len == 0:
            of.seq_sha, of.seq_xx, of.seq_len = hashlib.sha256(), xxhash.xxh3_64(), 0
        else:
            of.drop_seq()
        return staging

    @locked
    def write(self, fh: int, data: bytes, offset: int) -> int:
        self._check_writable()
        handle = self._handle(fh)
        if (handle.flags & os.O_ACCMODE) == os.O_RDONLY:
            fail(errno.EBADF)
        of = self.open_files[handle.ino]
        staging = self._with_space(lambda: self._materialize(of))
        if handle.flags & os.O_APPEND:
            offset = of.size
        written = self._with_space(lambda: staging.pwrite(data, offset))
        if of.seq_sha is not None:
            if offset == of.seq_len and offset + written >= of.size:
                of.seq_sha.update(data[:written])
                of.seq_xx.update(data[:written])
                of.seq_len += written
            else:
                of.drop_seq()
        of.size = max(of.size, offset + written)
        of.dirty = True
        node = self.load_inode(handle.ino)
        node.mtime = node.ctime = time.time_ns()  # in memory; persisted by the commit at close/fsync
        if node.mode & (stat.S_ISUID | stat.S_ISGID):
            node.mode &= ~stat.S_ISUID
            if node.mode & stat.S_IXGRP:
                node.mode &= ~stat.S_ISGID
        return written

    def _truncate_open(self, of: OpenFile, length: int) -> None:
        staging = self._materialize(of, keep=length)
        if length < of.size:
            if of.seq_sha is not None and length < of.seq_len:
                of.drop_seq()
        elif length > of.size and of.seq_sha is not None and of.seq_len == of.size:
            # extension writes zeros: feed them to the running hash so it stays valid
            pad = length - of.size
            while pad:
                n = min(pad, COPY_CHUNK)
                zeros = bytes(n)
                of.seq_sha.update(zeros)
                of.seq_xx.update(zeros)
                of.seq_len += n
                pad -= n
        staging.truncate(length)
        of.size = length
        of.dirty = True
        node = self.load_inode(of.ino)
        node.mtime = node.ctime = time.time_ns()
        self._commit(of, sync=True)

    @locked
    def fallocate(self, fh: int, mode: int, offset: int, length: int) -> None:
        """Mode 0 extends the file like a truncate up; KEEP_SIZE is accepted (nothing to reserve)."""
        self._check_writable()
        if offset < 0 or length <= 0:
            fail(errno.EINVAL)
        if mode & ~FALLOC_FL_KEEP_SIZE:
            fail(errno.EOPNOTSUPP)  # punch hole, zero range, collapse...: not supported
        handle = self._handle(fh)
        if (handle.flags & os.O_ACCMODE) == os.O_RDONLY:
            fail(errno.EBADF)
        of = self.open_files[handle.ino]
        end = offset + length
        if mode & FALLOC_FL_KEEP_SIZE or end <= (of.size if of.staging else self.load_inode(of.ino).size):
            return
        staging = self._materialize(of)
        if of.seq_sha is not None:
            of.drop_seq()
        staging.truncate(end)
        of.size = end
        of.dirty = True
        node = self.load_inode(of.ino)
        node.mtime = node.ctime = time.time_ns()

    @locked
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        self._check_writable()
        if length < 0:
            fail(errno.EINVAL)
        ino = self._ino_of(path, fh)
        node = self.load_inode(ino)
        if node.is_dir:
            fail(errno.EISDIR)
        if not node.is_reg:
            fail(errno.EINVAL)
        of = self._open_file(ino)
        try:
            self._truncate_open(of, length)
        finally:
            of.refs -= 1
            if of.refs == 0:
                self._close_open_file(of)

    def _commit(self, of: OpenFile, *, sync: bool) -> None:
        """Make an open file's staged content the committed object (dedup by content hash)."""
        if not of.dirty or of.staging is None:
            if of.needs_sync and sync:
                self.catalog.flush_wal()
                self.wal_unsynced = False
                of.needs_sync = False
            return
        staging, length = of.staging, of.size
        if of.seq_sha is not None and of.seq_len == length:
            oid, xxh = of.seq_sha.digest(), of.seq_xx.intdigest()
        else:
            oid, xxh = self.objects.hash_staging(staging, length)
        txn = Txn(self)
        node = txn.inode(of.ino)
        old_oid = node.object_id
        stored_new = False
        if length == 0:
            new_oid = NO_OBJECT
        else:
            new_oid = oid
            if txn.object_record(oid) is None:
                stored = self.objects.commit_staging(staging, oid, xxh, length)
                stored_new = True
                txn.add_object(oid, length, stored)
            elif new_oid != old_oid:
                txn.incref(oid)
        if new_oid != old_oid and old_oid != NO_OBJECT:
            txn.decref(old_oid)
        node.object_id = new_oid
        node.size = length
        txn.save(node)
        try:
            txn.commit(sync=True)
        except BaseException:
            if stored_new:
                # The catalog never named it: remove the file so a failed commit (disk full) leaks
                # nothing; the staging data is gone with it, the old content stays committed.
                self.objects.delete(oid, 0)
                of.staging = None
                of.dirty = False
            raise
        of.needs_sync = False
        # The staging file either became the object (renamed) or is a duplicate of a stored one.
        if stored_new:
            staging.close()
        else:
            staging.discard()
        of.staging = None
        of.dirty = False
        of.drop_seq()
        if of.reader_fd >= 0:
            os.close(of.reader_fd)
            of.reader_fd = -1
        if new_oid != NO_OBJECT:
            of.reader_fd = self._open_object(new_oid)
        of.reader_oid = new_oid
        if self.garbage_pending:
            self.collect_garbage()

    @locked
    def flush(self, fh: int) -> None:
        """close() of one descriptor: commit so the data survives kill -9 and power loss once it returns."""
        handle = self.handles.get(fh)
        if handle is None or handle.dir:
            return
        of = self.open_files.get(handle.ino)
        if of is not None:
            self._commit(of, sync=True)

    @locked
    def fsync(self, fh: int, datasync: bool = False) -> None:
        handle = self._handle(fh)
        of = self.open_files.get(handle.ino)
        if of is not None:
            of.needs_sync = True
            self._commit(of, sync=True)
        else:
            self.catalog.flush_wal()
            self.wal_unsynced = False

    @locked
    def fsyncdir(self, fh: int | None = None) -> None:
        self.catalog.flush_wal()
        self.wal_unsynced = False

    @locked
    def release(self, fh: int) -> None:
        handle = self.handles.pop(fh, None)
        if handle is None:
            return
        of = self.open_files.get(handle.ino)
        if of is None:
            return
        of.refs -= 1
        if of.refs > 0:
            return
        try:
            self._commit(of, sync=True)
        finally:
            self._close_open_file(of)

    def _close_open_file(self, of: OpenFile) -> None:
        self.open_files.pop(of.ino, None)
        if of.reader_fd >= 0:
            os.close(of.reader_fd)
            of.reader_fd = -1
        if of.staging is not None:
            # Only reached when a commit failed (e.g. ENOSPC): the old content stays committed.
            of.staging.discard()
            of.staging = None
        try:
            node = self.load_inode(of.ino)
        except OSError:
            return
        if node.nlink == 0 and not self.read_only:
            txn = Txn(self)
            txn.drop_inode(txn.inode(of.ino))
            txn.delete(keys.orphan_key(of.ino))
            txn.commit(sync=False)
            self.inode_count -= 1
            if self.garbage_pending:
                self.collect_garbage()

    # ------------------------------------------------------------------ extended attributes
    @staticmethod
    def _xattr_name(name: str) -> bytes:
        raw = encode_name(name)
        if not raw or len(raw) > XATTR_NAME_MAX:
            fail(errno.ERANGE)
        return raw

    @locked
    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0) -> None:
        self._check_writable()
        raw_name = self._xattr_name(name)
        if not raw_name.startswith(b"user."):
            fail(errno.EOPNOTSUPP)  # only the user namespace is stored
        if len(value) > XATTR_SIZE_MAX:
            fail(errno.E2BIG)
        ino = self.resolve(path)
        node = self.load_inode(ino)
        if not (node.is_reg or node.is_dir):
            fail(errno.EPERM)  # Linux: user xattrs only on regular files and directories
        txn = Txn(self)
        key = keys.xattr_key(ino, raw_name)
        exists = txn.get(key) is not None
        if flags & XATTR_CREATE and exists:
            fail(errno.EEXIST)
        if flags & XATTR_REPLACE and not exists:
            fail(errno.ENODATA)
        txn.put(key, value)
        node = txn.inode(ino)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, ino)

    @locked
    def getxattr(self, path: str, name: str) -> bytes:
        ino = self.resolve(path)
        value = self.catalog.get(keys.xattr_key(ino, self._xattr_name(name)))
        if value is None:
            fail(errno.ENODATA)
        return value

    @locked
    def listxattr(self, path: str) -> list[str]:
        ino = self.resolve(path)
        prefix = keys.xattr_prefix(ino)
        return [k[len(prefix):].decode("utf-8", "surrogateescape") for k, _ in self.catalog.scan(prefix)]

    @locked
    def removexattr(self, path: str, name: str) -> None:
        self._check_writable()
        ino = self.resolve(path)
        key = keys.xattr_key(ino, self._xattr_name(name))
        txn = Txn(self)
        if txn.get(key) is None:
            fail(errno.ENODATA)
        txn.delete(key)
        node = txn.inode(ino)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, ino)

    # ------------------------------------------------------------------ file system
    @locked
    def statfs(self) -> dict[str, int]:
        """Honest numbers: 'used' is what the store occupies on disk, 'free' what the disk has left."""
        if self.garbage_pending:
            self.collect_garbage()
        st = os.statvfs(self.store.path)
        bsize = st.f_frsize or 4096
        used_blocks = (self.stored_bytes + self._catalog_bytes() + bsize - 1) // bsize
        return {
            "f_bsize": bsize,
            "f_frsize": bsize,
            "f_blocks": used_blocks + st.f_bavail,
            "f_bfree": st.f_bavail,
            "f_bavail": st.f_bavail,
            "f_files": self.inode_count + 1_000_000_000,
            "f_ffree": 1_000_000_000,
            "f_favail": 1_000_000_000,
            "f_namemax": NAME_MAX,
        }

    def _catalog_bytes(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.catalog.path):
                with contextlib.suppress(OSError):
                    total += entry.stat().st_size
        return total

    def iter_paths(self) -> Iterator[tuple[bytes, int]]:
        """Every (path, ino) reachable from the root (used by tools and tests)."""
        stack: list[tuple[bytes, int]] = [(b"", keys.ROOT_INO)]
        while stack:
            prefix, ino = stack.pop()
            dprefix = keys.dentry_prefix(ino)
            for key, raw in self.catalog.scan(dprefix):
                child, mode = unpack_dentry(raw)
                path = prefix + b"/" + key[len(dprefix):]
                yield path, child
                if stat.S_ISDIR(mode):
                    stack.append((path, child))
