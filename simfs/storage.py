"""Opening and creating a store directory: FORMAT check, exclusive lock, catalog and object store."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from .catalog import keys
from .catalog.db import Catalog, CatalogDamaged, CatalogNoSpace
from .catalog.records import Inode
from .errors import BadStore, StoreInUse
from .format import StoreFormat, fsync_dir, read_format, write_format
from .store.ballast import Ballast, free_bytes
from .store.local import LocalObjectStore

LOCK_FILE = "mount.lock"
DIRTY_FILE = "dirty"  # present while a read-write user has the store open; left behind by a crash
LOG_FILE = "simfs.log"
CATALOG_DIR = "catalog"
# Every name simfs keeps at the top of a store; fsck reports anything else.
KNOWN_TOP_LEVEL = {"FORMAT", CATALOG_DIR, "objects", "staging", "cache", LOCK_FILE, DIRTY_FILE, LOG_FILE,
                   "FORMAT.tmp", "quarantine", "backups", "catalog.restoring"}
# fsck --restore-catalog keeps the catalog it replaced as catalog.damaged-<UTC timestamp>
DAMAGED_CATALOG_PREFIX = "catalog.damaged-"


def known_top_level(name: str) -> bool:
    if name.startswith(LOG_FILE + ".") and name[len(LOG_FILE) + 1:].isdigit():
        return True  # rotated logs (simfs/log_setup.py)
    return name in KNOWN_TOP_LEVEL or name.startswith(DAMAGED_CATALOG_PREFIX)


def is_store(path: Path) -> bool:
    return (path / "FORMAT").is_file()


def create_store(path: Path, *, uid: int | None = None, gid: int | None = None, mode: int = 0o755) -> None:
    """Create an empty store at path (the directory may exist but must be empty)."""
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise BadStore(f"{path}: not a simfs store and not empty; refusing to create a store here")
    # The store holds everyone's file names and contents: only its owner may look inside; access
    # for other users goes through the mount (allow_other + permission checks).
    os.chmod(path, 0o700)
    LocalObjectStore.create_layout(path)
    cat = Catalog(path / CATALOG_DIR)
    try:
        now = time.time_ns()
        root = Inode(keys.ROOT_INO, 0o040000 | mode, os.getuid() if uid is None else uid,
                     os.getgid() if gid is None else gid, 2, 0, now, now, now, parent=keys.ROOT_INO)
        fmt = StoreFormat()
        batch = cat.new_batch()
        batch.put(keys.inode_key(keys.ROOT_INO), root.pack())
        batch.put(keys.NEXT_INO, keys.u64(keys.ROOT_INO + 1))
        batch.put(keys.FORMAT, fmt.to_json())
        cat.write(batch, sync=True)
    finally:
        cat.close()
    # FORMAT last: a store without FORMAT is "not a store", so a half-created one is never mounted.
    write_format(path, fmt)


class StoreLock:
    """Exclusive flock on STORE/mount.lock holding the owner's pid, so a second mount fails at once."""

    def __init__(self, store: Path):
        self.path = store / LOCK_FILE
        self.fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreInUse(f"{self.path.parent}: store is already mounted (pid {pid})") from None
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                os.close(fd)
                raise
            # a full disk: the lock is held all the same; only "already mounted (pid ?)" loses the pid
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1

    @staticmethod
    def holder(store: Path) -> int | None:
        """pid holding the lock, or None if nobody does."""
        path = store / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raw = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(raw) if raw.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


class OpenStore:
    """A store opened read-write (by the daemon, or offline tools) or read-only (fsck)."""

    def __init__(self, path: Path, *, read_only: bool = False, create: bool = False,
                 check_catalog_format: bool = True, lock: StoreLock | None = None, mark_dirty: bool = True):
        self.path = path.resolve()
        self.read_only = read_only
        if create and not is_store(self.path):
            create_store(self.path)
        self.format: StoreFormat = read_format(self.path)
        self.ballast = Ballast(self.path)
        if not read_only and free_bytes(self.path) < self.ballast.size:
            # Nearly full: the lock file, the dirty marker and RocksDB's open all need a little space.
            self.ballast.release()
        # a caller may hand over a lock it already holds (fsck --restore-catalog keeps it throughout)
        self.lock = lock if lock is not None else StoreLock(self.path)
        if not read_only and lock is None:
            self.lock.acquire()
        try:
            # the store exists (FORMAT is written last): its catalog must too, never created afresh
            self.catalog = Catalog(self.path / CATALOG_DIR, read_only=read_only, create=False,
                                   on_full=None if read_only else self.ballast.release)
        except (StoreInUse, CatalogNoSpace):
            self.lock.release()
            raise
        except BadStore as exc:
            self.lock.release()
            from .backups import hint

            raise type(exc)(f"{exc}; {hint(self.path)}") from None
        except BaseException:
            self.lock.release()
            raise
        try:
            copy = self.catalog.get(keys.FORMAT)
        except CatalogDamaged as exc:
            if check_catalog_format:
                self.close()
                from .backups import hint

                raise CatalogDamaged(f"{exc}; {hint(self.path)}") from None
            copy = None  # fsck reads on and reports the damage as S114
        # fsck opens without this check so that it can report the disagreement (S113) instead.
        if check_catalog_format and copy is not None:
            try:
                same = StoreFormat.from_json(copy, str(self.path)).version == self.format.version
            except BadStore:
                same = False
            if not same:
                self.close()
                raise BadStore(f"{self.path}: FORMAT and catalog disagree on the format version; run simfs fsck")
        self.objects = LocalObjectStore(self.path)
        self.crashed = (self.path / DIRTY_FILE).exists()
        if not read_only and mark_dirty:
            (self.path / DIRTY_FILE).write_bytes(b"")
            fsync_dir(self.path)

    def require_feature(self, feature: str) -> None:
        """Record a feature in FORMAT (file and catalog copy) before the first object that needs it.

        From then on a simfs that does not know the feature refuses the store instead of misreading it.
        """
        if feature in self.format.features:
            return
        self.format.features.append(feature)
        write_format(self.path, self.format)
        self.catalog.put(keys.FORMAT, self.format.to_json(), sync=True)

    def close(self) -> None:
        """Clean close: the dirty marker goes only after the catalog is flushed."""
        if getattr(self, "catalog", None) is not None:
            self.catalog.close()
            self.catalog = None  # type: ignore[assignment]
            if not self.read_only:
                with contextlib.suppress(FileNotFoundError):
                    (self.path / DIRTY_FILE).unlink()
                fsync_dir(self.path)
        self.lock.release()
