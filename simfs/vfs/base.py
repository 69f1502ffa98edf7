"""VfsBase: the state every VFS part shares, and path/inode lookups."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ..catalog import keys
from ..catalog.db import Catalog
from ..catalog.records import Inode, ObjectRecord, unpack_dentry
from ..storage import OpenStore
from ..store.ballast import Ballast
from ..store.local import LocalObjectStore
from ..store.rebuilt import RebuiltCache
from .common import NAME_MAX, Context, fail, split_path
from .files_state import Handle, OpenFile
from .readahead import ReadAhead
from .txn import Txn

if TYPE_CHECKING:
    from ..store.chains import ChainDecoder


class FreeHook(Protocol):
    """Derived data kept next to an object (an ingest processor): removed in the batch that frees it."""

    def stage_free(self, txn: Txn, object_id: bytes) -> None: ...

    def freed(self, object_id: bytes) -> None: ...


class Background(Protocol):
    """The background ingest attached to a mounted Vfs (simfs/ingest/), seen from the VFS side."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 60.0) -> None: ...

    def pending(self) -> int: ...

    def enqueue(self, object_id: bytes) -> None: ...


class VfsBase:
    """Attributes shared by the mixins; Vfs.__init__ sets them."""

    store: OpenStore
    catalog: Catalog
    objects: LocalObjectStore
    read_only: bool
    lock: threading.RLock
    inode_cache: dict[int, Inode]
    open_files: dict[int, OpenFile]
    handles: dict[int, Handle]
    hidden: dict[tuple[int, bytes], int]
    next_ino: int
    stored_bytes: int
    encoded_at_mount: int  # encoded objects when the store was opened (the codec warm-up runs if any)
    inode_count: int
    garbage_pending: bool
    allocated_cache: dict[tuple[bytes, int], int]  # verbatim object file -> bytes allocated on the host
    last_activity: float  # time.monotonic() of the last open/create/write by a program (ingest yields)
    wal_unsynced: bool
    _next_fh: int
    space_reserve: int
    ballast: Ballast
    rebuilt: RebuiltCache
    readahead: ReadAhead
    chains: ChainDecoder
    processors: list[FreeHook]
    ingestor: Background | None

    # Implemented by one part, called by another (declared here so each part type-checks alone).
    def _commit(self, of: OpenFile, *, sync: bool, known: tuple[bytes, int] | None = None,
                prepared: dict[int, Any] | None = None, sealed: bool = False) -> None:
        raise NotImplementedError

    def _close_open_file(self, of: OpenFile) -> None:
        raise NotImplementedError

    def _new_handle(self, ino: int, flags: int, *, is_dir: bool = False) -> int:
        raise NotImplementedError

    def _new_inode(self, txn: Txn, parent_dir: Inode, mode: int, ctx: Context, **extra: Any) -> Inode:
        raise NotImplementedError

    def _link_into(self, txn: Txn, parent: Inode, name: bytes, node: Inode) -> None:
        raise NotImplementedError

    def _commit_meta(self, txn: Txn, ino: int) -> None:
        raise NotImplementedError

    def _unlink_inode(self, txn: Txn, node: Inode) -> None:
        raise NotImplementedError

    def _with_space(self, action: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def _ensure_space(self, growth: int) -> None:
        raise NotImplementedError

    def _reader(self, of: OpenFile) -> int:
        raise NotImplementedError

    def _open_object(self, oid: bytes) -> int:
        raise NotImplementedError

    def collect_garbage(self, *, force_sync: bool = False) -> int:
        raise NotImplementedError

    def object_record(self, oid: bytes) -> ObjectRecord | None:
        raise NotImplementedError

    def iter_paths(self) -> Iterator[tuple[bytes, int]]:
        raise NotImplementedError

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
            if len(name) > NAME_MAX:
                fail(errno.ENAMETOOLONG)
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
            if len(part) > NAME_MAX:
                fail(errno.ENAMETOOLONG)
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
