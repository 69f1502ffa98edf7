"""One VFS operation's catalog changes: a WriteBatch with a read-your-writes overlay and refcounting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import keys
from ..catalog.records import Inode, ObjectRecord, unpack_chunk
from ..store.envelope import CODEC_VERBATIM
from .common import log

if TYPE_CHECKING:
    from .base import VfsBase


class Txn:
    """One operation's changes: a WriteBatch plus a read-your-writes overlay; atomic on commit."""

    def __init__(self, vfs: VfsBase):
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
        self.drop_chunks(node)
        for key, _ in self.vfs.catalog.scan(keys.xattr_prefix(node.ino)):
            self.delete(key)

    def drop_chunks(self, node: Inode) -> None:
        """Release every chunk of a chunked file (deleted, or rewritten as one object)."""
        if not node.chunked:
            return
        for key, raw in self.vfs.catalog.scan(keys.chunk_prefix(node.ino)):
            self.delete(key)
            self.decref(unpack_chunk(raw))
        node.chunk_shift = node.data_bytes = 0

    def object_record(self, oid: bytes) -> ObjectRecord | None:
        raw = self.get(keys.object_key(oid))
        return None if raw is None else ObjectRecord.unpack(raw)

    def incref(self, oid: bytes) -> None:
        rec = self.object_record(oid)
        if rec is None:
            raise KeyError(oid.hex())
        if rec.refcount == 0 and rec.dependents == 0:
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
        if rec.collectable:
            # The file goes only after this batch is durable (GC after a WAL sync), so a power cut
            # can never leave a live record pointing at a deleted file. An object other objects are
            # coded against stays (pinned) until its last dependent is gone.
            self.put(keys.garbage_key(oid), b"")
            self.vfs.garbage_pending = True

    def add_dependent(self, base: bytes) -> ObjectRecord:
        """One more object is coded against base (which must exist); a pinned base stays pinned."""
        rec = self.object_record(base)
        if rec is None:
            raise KeyError(base.hex())
        if rec.collectable:
            self.delete(keys.garbage_key(base))  # listed as garbage, not yet freed: kept after all
        rec.dependents += 1
        self.put(keys.object_key(base), rec.pack())
        return rec

    def drop_dependent(self, base: bytes) -> bool:
        """One object less is coded against base; True if that made base garbage (freed by a later GC)."""
        rec = self.object_record(base)
        if rec is None:
            log.error("dependent of unknown base object %s (catalog inconsistent; run simfs fsck)", base.hex())
            return False
        rec.dependents = max(0, rec.dependents - 1)
        self.put(keys.object_key(base), rec.pack())
        if rec.collectable:
            self.put(keys.garbage_key(base), b"")
            self.vfs.garbage_pending = True
            return True
        return False

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
