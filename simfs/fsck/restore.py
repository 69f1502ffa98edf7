"""`simfs fsck --restore-catalog`: a metadata backup replaces the catalog; the old one is kept aside."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..backups import Backup, NoBackup, find_backup, make_backup, read_back, timestamp, verify
from ..catalog import keys
from ..format import fsync_dir, read_format
from ..storage import CATALOG_DIR, DAMAGED_CATALOG_PREFIX, DIRTY_FILE, OpenStore, StoreLock
from .checker import Fsck
from .findings import Finding
from .relink import RelinkResult, relink_objects

RESTORING_DIR = "catalog.restoring"  # the backup's copy before it takes the catalog's place


@dataclass
class Restored:
    backup: Backup
    keys: int
    aside: Path | None  # where the replaced catalog now is (None: there was none)
    relinked: RelinkResult
    repaired: list[Finding] = field(default_factory=list)  # counters the repair pass recomputed


def _copy_backup(backup: Backup, dest: Path) -> None:
    """Copy (never link) the backup's files: RocksDB appends to its MANIFEST and log, the backup stays as it was."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    for name in sorted(backup.files):
        shutil.copyfile(backup.catalog_dir / name, dest / name)
        fd = os.open(dest / name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(dest)


def restore_catalog(store: Path, name: str | None, *, say: Callable[[str], None] = print) -> Restored:
    """Restore backup `name` (newest if None) into a store that is not mounted. Raises NoBackup (exit 9)
    before changing anything when no usable backup exists, StoreInUse (exit 3) when it is mounted."""
    store = store.resolve()
    fmt = read_format(store)  # not a store / unknown version: BadStore (exit 4)
    lock = StoreLock(store)
    lock.acquire()  # held until the end: no mount can start on a half-restored store
    try:
        backup = find_backup(store, name)
        problems = verify(backup)
        if problems:
            raise NoBackup(f"backup {backup.name} is damaged: {'; '.join(problems[:5])}; name an older one "
                           f"(simfs fsck --restore-catalog NAME {store})")
        saved = backup.doc.get("store_format") or {}
        if saved and saved.get("version") != fmt.version:
            raise NoBackup(f"backup {backup.name} is of store format version {saved.get('version')}, the store "
                           f"is version {fmt.version}")
        staging = store / RESTORING_DIR
        _copy_backup(backup, staging)
        try:
            count = read_back(staging)
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise NoBackup(f"backup {backup.name} cannot be read ({exc}); name an older one") from None
        say(f"restoring the catalog from backup {backup.describe()}, {count} keys")
        # The dirty marker makes the next mount delete every object file the catalog does not name:
        # after a restore those are the photos written since the backup. It goes before the swap (the
        # restore writes no object file, and a crash in the middle must not arm that sweep).
        with contextlib.suppress(FileNotFoundError):
            (store / DIRTY_FILE).unlink()
            fsync_dir(store)
        current = store / CATALOG_DIR
        aside = None
        if current.exists():
            aside = store / (DAMAGED_CATALOG_PREFIX + timestamp())
            os.rename(current, aside)
            say(f"the previous catalog is kept as {aside}")
        os.rename(staging, current)
        fsync_dir(store)
        opened = OpenStore(store, lock=lock, mark_dirty=False)
        try:
            # FORMAT is authoritative: features added after the backup (e.g. encoded objects) stay on
            opened.catalog.put(keys.FORMAT, fmt.to_json(), sync=True)
            relinked = relink_objects(opened)
            repaired = [f for f in Fsck(opened, repair=True, progress=False).run() if f.repaired]
            make_backup(opened.catalog, store, reason="restore", keep=None, store_format=fmt.to_json())
        finally:
            opened.close()  # releases the lock
        return Restored(backup, count, aside, relinked, repaired)
    finally:
        lock.release()

