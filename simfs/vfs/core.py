"""Vfs: every file-system operation, by path (as FUSE gives them) or by open handle."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..catalog import keys
from ..catalog.records import Inode, ObjectRecord, unpack_dentry
from ..storage import OpenStore
from ..store.ballast import reserve_bytes
from ..store.chains import ChainDecoder, ReferencePixelCache, warm_up
from ..store.rebuilt import RebuiltCache
from .common import NAME_MAX, locked, log
from .files import FilesMixin
from .files_state import Handle, OpenFile
from .maintenance import MaintenanceMixin
from .namespace import NamespaceMixin
from .readahead import ReadAhead
from .xattrs import XattrMixin

if TYPE_CHECKING:
    from .base import FreeHook


class Vfs(MaintenanceMixin, NamespaceMixin, FilesMixin, XattrMixin):
    """POSIX semantics over the catalog and the object store; testable without FUSE."""

    def __init__(self, store: OpenStore, *, read_only: bool = False, processors: Iterable[FreeHook] = (),
                 refcache_bytes: int = 512 << 20, rebuilt_cache_bytes: int = 2 << 30):
        self.store = store
        self.catalog = store.catalog
        self.objects = store.objects
        self.read_only = read_only
        self.processors = list(processors)
        self.ingestor = None
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
        self.last_activity = 0.0
        self.allocated_cache: dict[tuple[bytes, int], int] = {}
        self.wal_unsynced = False
        self.rebuilt = RebuiltCache(store.path / "cache", rebuilt_cache_bytes)
        self.readahead = ReadAhead()
        self.chains = ChainDecoder(self.objects, self.object_record, ReferencePixelCache(refcache_bytes))
        # Two layers of room for catalog writes when data fills the disk: file data never uses the
        # last space_reserve bytes (2% of the disk, 1-64 MiB), and the ballast (as large, at most
        # 16 MiB) is given up when something else took them anyway.
        self.ballast = store.ballast
        self.space_reserve = reserve_bytes(store.path)
        if not read_only:
            self._recover()
            if not self.ballast.refill(self.space_reserve):
                log.warning("the disk is nearly full: no ballast (%d bytes) yet; it is written once deletes make "
                            "room, and file data may not grow before", self.ballast.size)
        self._count_usage()
        if self.encoded_at_mount:  # something to rebuild: warm the codec up before the first cold read
            threading.Thread(target=warm_up, name="simfs-warm-up", daemon=True).start()


    def open_for_writing(self, oid: bytes) -> bool:
        """Is a file whose content is oid open for writing right now? (call with the lock held)"""
        for h in self.handles.values():
            if not h.dir and h.flags & os.O_ACCMODE != os.O_RDONLY:
                node = self.inode_cache.get(h.ino)
                if node is not None and node.object_id == oid:
                    return True
        return False

    def object_record(self, oid: bytes) -> ObjectRecord | None:
        """The committed record of an object (thread-safe without the lock: a RocksDB point read)."""
        raw = self.catalog.get(keys.object_key(oid))
        return None if raw is None else ObjectRecord.unpack(raw)

    @locked
    def statfs(self) -> dict[str, int]:
        """Honest numbers: 'used' is what the store occupies on disk, 'free' what the disk has left."""
        if self.garbage_pending:
            try:
                self.collect_garbage()
            except OSError as exc:  # df must answer on a full disk; the space comes back later
                log.warning("garbage collection during statfs failed: %s", exc)
        st = os.statvfs(self.store.path)
        bsize = st.f_frsize or 4096
        used_blocks = (self.stored_bytes + self._catalog_bytes() + bsize - 1) // bsize
        return {
            "f_bsize": bsize,
            "f_frsize": bsize,
            "f_blocks": used_blocks + st.f_bavail,
            "f_bfree": st.f_bavail,
            # what files can still use: the reserve kept for metadata is not available to them
            "f_bavail": max(0, st.f_bavail - self.data_reserve() // bsize),
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
