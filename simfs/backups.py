"""STORE/backups/: consistent catalog copies (RocksDB checkpoints), made, listed, verified and pruned."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xxhash

from .catalog.db import Catalog
from .errors import ExitCode, SimfsError
from .format import fsync_dir

log = logging.getLogger("simfs.backups")

BACKUPS_DIR = "backups"
MANIFEST = "BACKUP.json"
BACKUP_FORMAT = "simfs-catalog-backup"
BACKUP_VERSION = 1  # of this layout (developer-notes/store-format.md); a restore refuses other versions
CATALOG_KEYS_VERSION = 1  # developer-notes/catalog-keys.md
PARTIAL_PREFIX = ".tmp-"  # a backup being written; an interrupted one is removed by the next backup
CHUNK = 1 << 20


class NoBackup(SimfsError):
    """No usable metadata backup: none kept, the named one does not exist, or it is damaged."""

    exit_code = ExitCode.NO_BACKUP


@dataclass
class Backup:
    name: str  # the UTC timestamp, also the directory name
    path: Path
    created: str
    reason: str  # unmount, periodic, compact, restore
    sequence: int  # RocksDB sequence number the copy was taken at
    files: dict[str, tuple[int, str]]  # file name -> (size, xxh3-64 hex)
    doc: dict[str, Any]

    @property
    def catalog_dir(self) -> Path:
        return self.path / "catalog"

    def describe(self) -> str:
        return f"{self.name} (made at {self.reason})"


def backups_dir(store: Path) -> Path:
    return store / BACKUPS_DIR


def timestamp(now: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")  # sorts like the time it names


def read_backup(path: Path) -> Backup:
    """The backup in directory path; NoBackup when it is incomplete or its manifest is unknown/damaged."""
    try:
        doc = json.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise NoBackup(f"{path}: not a complete metadata backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise NoBackup(f"{path}/{MANIFEST} cannot be read ({exc}); the backup is damaged") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise NoBackup(f"{path}/{MANIFEST}: not a simfs catalog backup")
    if doc.get("version") != BACKUP_VERSION:
        raise NoBackup(f"{path}: backup layout version {doc.get('version')!r} is not known to this simfs "
                       f"(knows {BACKUP_VERSION}); upgrade simfs")
    try:
        files = {str(k): (int(v["size"]), str(v["xxh3"])) for k, v in doc["files"].items()}
        return Backup(path.name, path, str(doc["created"]), str(doc.get("reason", "?")), int(doc["sequence"]),
                      files, doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NoBackup(f"{path}/{MANIFEST} is malformed ({exc}); the backup is damaged") from None


def list_backups(store: Path) -> list[Backup]:
    """Complete backups, oldest first (damaged or partial ones are left out)."""
    root = backups_dir(store)
    out = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                out.append(read_backup(Path(entry.path)))
            except NoBackup as exc:
                log.warning("%s", exc)
    return out


def find_backup(store: Path, name: str | None) -> Backup:
    """The named backup (a name under STORE/backups/ or a path), or the newest one."""
    if name is None:
        found = list_backups(store)
        if not found:
            raise NoBackup(f"{store}: no metadata backup in {backups_dir(store)} (none was made yet, or "
                           "-o metadata_backups=0); the catalog cannot be restored")
        return found[-1]
    candidate = backups_dir(store) / name
    path = candidate if os.sep not in name and candidate.is_dir() else Path(name)
    if not path.is_dir():
        names = ", ".join(b.name for b in list_backups(store)) or "none"
        raise NoBackup(f"{name}: no such backup (available: {names})")
    return read_backup(path)


def _digest(path: Path) -> str:
    xx = xxhash.xxh3_64()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            xx.update(chunk)
    return xx.hexdigest()


def verify(backup: Backup) -> list[str]:
    """Every file the manifest lists is there with its size and checksum; problems as sentences."""
    problems = []
    for name, (size, digest) in sorted(backup.files.items()):
        path = backup.catalog_dir / name
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        if actual != size:
            problems.append(f"{name} is {actual} bytes, the manifest says {size}")
        elif _digest(path) != digest:
            problems.append(f"{name} fails its checksum")
    if "CURRENT" not in backup.files:
        problems.append("the manifest lists no CURRENT file")
    return problems


def hint(store: Path) -> str:
    """One sentence for a damaged or missing catalog: which backups exist and how to restore one."""
    found = list_backups(store)
    if not found:
        return "no metadata backup exists to restore it from"
    return (f"{len(found)} metadata backup(s) available, newest {found[-1].describe()}; restore with: "
            f"simfs fsck --restore-catalog {store}")


def _private_copy(path: Path, previous: Backup | None) -> tuple[int, str]:
    """Make path a file the live catalog does not share; returns (size, xxh3).

    A checkpoint hard-links the live catalog's SST files: a byte flipped in place in one would damage
    the backup too. So each file becomes the backup's own, shared only with the previous backup when
    it is byte-identical there (SSTs are immutable; unchanged ones are not copied twice).
    """
    size, digest = path.stat().st_size, _digest(path)
    if previous is not None and previous.files.get(path.name) == (size, digest):
        older = previous.catalog_dir / path.name
        tmp = path.with_name(path.name + ".link")
        try:
            os.link(older, tmp)
            os.replace(tmp, path)
            return size, digest
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    if path.stat().st_nlink > 1:
        tmp = path.with_name(path.name + ".copy")
        shutil.copyfile(path, tmp)
        os.replace(tmp, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return size, digest


def read_back(path: Path) -> int:
    """Open a catalog copy read-only and read every key (RocksDB checks each block's checksum).

    Raises CatalogDamaged; returns the number of keys.
    """
    copy = Catalog(path, read_only=True)
    try:
        return sum(1 for _ in copy.scan(b""))
    finally:
        copy.close()


def _clear_partial(root: Path) -> None:
    for entry in os.scandir(root):
        if entry.name.startswith(PARTIAL_PREFIX):
            shutil.rmtree(entry.path, ignore_errors=True)


def make_backup(catalog: Catalog, store: Path, *, reason: str, keep: int | None,
                lock: contextlib.AbstractContextManager[Any] | None = None, store_format: bytes = b"") -> Backup | None:
    """Copy the catalog into STORE/backups/<UTC timestamp>/; None when nothing changed since the newest.

    Only the checkpoint itself runs under `lock` (it flushes the memtable and hard-links files: a few ms);
    making the files private and writing the manifest run outside it. keep=None prunes nothing.
    """
    root = backups_dir(store)
    root.mkdir(exist_ok=True)
    _clear_partial(root)
    existing = list_backups(store)
    previous = existing[-1] if existing else None
    catalog.flush()  # the memtable goes to an SST outside the lock: the checkpoint's own flush is then tiny
    with lock if lock is not None else contextlib.nullcontext():
        sequence = catalog.sequence()
        if previous is not None and previous.sequence == sequence and reason != "restore":
            return None
        name = timestamp()
        while (root / name).exists():
            time.sleep(0.001)
            name = timestamp()
        tmp = root / (PARTIAL_PREFIX + name)
        tmp.mkdir()
        catalog.checkpoint(tmp / "catalog")
    try:
        files = {}
        for entry in sorted(os.scandir(tmp / "catalog"), key=lambda e: e.name):
            size, digest = _private_copy(Path(entry.path), previous)
            files[entry.name] = {"size": size, "xxh3": digest}
        fsync_dir(tmp / "catalog")
        # A checkpoint copies damage too: read every key back before this copy may push a good one out.
        keys = read_back(tmp / "catalog")
        from . import __version__

        doc = {
            "format": BACKUP_FORMAT, "version": BACKUP_VERSION, "catalog_keys_version": CATALOG_KEYS_VERSION,
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason,
            "sequence": sequence, "keys": keys, "simfs": __version__,
            "store_format": json.loads(store_format) if store_format else None, "files": files,
        }
        with open(tmp / MANIFEST, "wb") as fh:
            fh.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        os.rename(tmp, root / name)  # complete only now: a crash before leaves a partial directory
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        prune(store, keep)
    log.info("catalog backup %s made (%s, %d files)", name, reason, len(files))
    return read_backup(root / name)


def prune(store: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` complete backups; returns the names deleted."""
    found = list_backups(store)
    doomed = found[:-keep] if keep > 0 else []
    for backup in doomed:
        shutil.rmtree(backup.path, ignore_errors=True)
    if doomed:
        fsync_dir(backups_dir(store))
    return [b.name for b in doomed]
