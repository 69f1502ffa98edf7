"""RocksDB access through rocksdict (raw mode): open/lock handling, prefix scans, atomic batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rocksdict import AccessType, Checkpoint, Options, Rdict, WriteBatch, WriteOptions

from ..errors import BadStore, ExitCode, StoreInUse


class CatalogDamaged(BadStore):
    """RocksDB reported corruption while reading: the catalog cannot be trusted (never read as 'empty')."""

    exit_code = ExitCode.BAD_STORE


def _options() -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    # RocksDB's info LOG is rolled at every open (each `simfs stats` too): keep it from piling up
    opts.set_keep_log_file_num(2)
    opts.set_max_log_file_size(1 << 20)
    return opts


class Catalog:
    """The store's metadata database. One instance per process; callers serialise writes."""

    def __init__(self, path: Path, *, read_only: bool = False, create: bool = True):
        self.path = path
        self.read_only = read_only
        try:
            # An existing store without its catalog is damage, never a reason to start an empty one
            # (an empty catalog would make every object file look leaked).
            if (read_only or not create) and not (path / "CURRENT").exists():
                raise BadStore(f"{path}: catalog database is missing")
            if read_only:
                self.db = Rdict(str(path), _options(), access_type=AccessType.read_only())
            else:
                self.db = Rdict(str(path), _options())
        except BadStore:
            raise
        except Exception as exc:  # rocksdict raises bare Exception
            text = str(exc)
            # RocksDB's lock error says "While lock file: .../LOCK: Resource temporarily unavailable";
            # "block checksum mismatch" also contains "lock" and is damage, not a second mount.
            if "While lock file" in text or "Resource temporarily unavailable" in text:
                raise StoreInUse(f"{path.parent}: store is already mounted or in use ({text})") from None
            if "Corruption" in text or "checksum" in text.lower():
                raise CatalogDamaged(f"{path}: catalog database is damaged ({text})") from None
            raise BadStore(f"{path}: cannot open catalog: {text}") from None
        self._sync = WriteOptions()
        self._sync.sync = True
        self._nosync = WriteOptions()

    def get(self, key: bytes) -> bytes | None:
        try:
            return self.db.get(key)
        except Exception as exc:  # rocksdict raises bare Exception("Corruption: ...") for a damaged block
            if "Corruption" not in str(exc) and "checksum" not in str(exc).lower():
                raise
            raise CatalogDamaged(f"{self.path}: catalog damaged while reading key {key[:9].hex()}: {exc}") from None

    def scan(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Keys starting with prefix, in order (rocksdict's keys(from_key=) has no upper bound)."""
        it = self.db.iter()
        try:
            it.seek(start if start is not None else prefix)
            while it.valid():
                key = it.key()
                if not key.startswith(prefix):
                    return
                yield key, it.value()
                it.next()
            # The iterator also stops at a damaged block: an error then, never a short listing.
            try:
                it.status()
            except Exception as exc:
                raise CatalogDamaged(f"{self.path}: catalog damaged while reading keys {prefix[:9].hex() or 'all'}: "
                                     f"{exc}; simfs fsck --restore-catalog restores a metadata backup") from None
        finally:
            del it

    def new_batch(self) -> WriteBatch:
        return WriteBatch(raw_mode=True)

    def write(self, batch: WriteBatch, *, sync: bool) -> None:
        self.db.write(batch, self._sync if sync else self._nosync)

    def flush_wal(self) -> None:
        """Make every batch written so far durable (group commit point)."""
        self.db.flush_wal(True)

    def put(self, key: bytes, value: bytes, *, sync: bool = True) -> None:
        batch = self.new_batch()
        batch.put(key, value)
        self.write(batch, sync=sync)

    def checkpoint(self, path: Path) -> None:
        """A consistent copy of the database at path (RocksDB checkpoint: memtable flushed, SSTs hard-linked)."""
        Checkpoint(self.db).create_checkpoint(str(path))

    def flush(self) -> None:
        """Write the memtable to an SST file (data already durable through the WAL; this only moves it)."""
        self.db.flush(True)

    def sequence(self) -> int:
        """RocksDB's latest sequence number: grows with every write (a backup is skipped when unchanged)."""
        return int(self.db.latest_sequence_number())

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            if not self.read_only:
                self.db.flush_wal(True)
            self.db.close()
            self.db = None  # type: ignore[assignment]
