"""Names and attributes: lookups, getattr/chmod/chown/utimens, create/link/unlink/rename, directories."""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Any

from ..catalog import keys
from ..catalog.records import Inode, pack_dentry, unpack_dentry
from .base import VfsBase
from .common import (
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    ROOT_CONTEXT,
    UTIME_NOW,
    UTIME_OMIT,
    Context,
    encode_name,
    fail,
    locked,
    split_path,
)
from .txn import Txn


class NamespaceMixin(VfsBase):
    @locked
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, int]:
        ino = self._ino_of(path, fh)
        node = self.load_inode(ino)
        size = node.size
        blocks = (size + 511) // 512
        of = self.open_files.get(ino)
        if of is not None and of.chunks is not None:
            size = of.size  # holes take no blocks; staged chunks count in full until committed
            blocks = (min(size, node.data_bytes + of.chunks.staged_bytes()) + 511) // 512
        elif of is not None and of.staging is not None:
            size = of.size  # what the sparse staging file really holds on the host
            blocks = min((size + 511) // 512, os.fstat(of.staging.fd).st_blocks)
        elif node.chunked:
            blocks = (min(size, node.data_bytes) + 511) // 512
        elif node.is_reg and node.has_object:
            rec = self.object_record(node.object_id)
            if rec is not None and rec.refcount > 0:
                # the file's share of the physical bytes (as ZFS reports compressed files), so du tells
                # the truth; never 0 for a non-empty file (tar would take it for one big hole)
                physical = rec.stored if rec.codec else self._allocated(node.object_id, rec.gen, rec.stored)
                blocks = max(1, (physical // rec.refcount + 511) // 512) if size else 0
        return {
            "st_ino": ino,
            "st_mode": node.mode,
            "st_nlink": node.nlink,
            "st_uid": node.uid,
            "st_gid": node.gid,
            "st_size": size,
            "st_blocks": blocks,
            "st_blksize": 1 << 17,
            "st_atime": node.atime,
            "st_mtime": node.mtime,
            "st_ctime": node.ctime,
            "st_rdev": node.rdev,
        }

    def _allocated(self, oid: bytes, gen: int, stored: int) -> int:
        """Bytes the backing disk really holds for a (possibly sparse) verbatim object file; cached, as
        object files never change."""
        key = (oid, gen)
        hit = self.allocated_cache.get(key)
        if hit is None:
            try:
                hit = min(stored, os.stat(self.objects.path_of(oid, gen)).st_blocks * 512)
            except OSError:
                hit = stored
            if len(self.allocated_cache) > 100_000:
                self.allocated_cache.clear()
            self.allocated_cache[key] = hit
        return hit

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
