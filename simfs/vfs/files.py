"""File contents: open/create, read/write at any offset, truncate, and the durable commit at close/fsync."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable

import xxhash

from ..catalog import keys
from ..catalog.records import NO_OBJECT, ObjectRecord, unpack_dentry
from ..errors import CorruptObject
from ..store.envelope import CODEC_VERBATIM, HEADER_SIZE
from ..store.local import StagingFile
from .chunk_state import CHUNK_THRESHOLD
from .chunks import ChunksMixin, PreparedChunk
from .common import FALLOC_FL_KEEP_SIZE, MAX_FILE_SIZE, ROOT_CONTEXT, Context, fail, locked, log
from .files_state import Handle, OpenFile
from .readahead import DEPTH as READ_AHEAD
from .readahead import SCAN_LIMIT
from .seek import SEEK_DATA, SEEK_HOLE, copy_data, seek_in_file
from .txn import Txn


class FilesMixin(ChunksMixin):
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
            self.open_files[ino] = of
            self._chunk_state_for(of)
        of.refs += 1
        return of

    def _reader(self, of: OpenFile) -> int:
        """The committed object's fd, opened and verified on first need (not for truncate/overwrite)."""
        if of.reader_fd < 0:
            node = self.load_inode(of.ino)
            if node.has_object:
                of.reader_fd = self._open_object(node.object_id)
                of.reader_oid = node.object_id
        return of.reader_fd

    def _open_object(self, oid: bytes) -> int:
        raw = self.catalog.get(keys.object_key(oid))
        if raw is None:
            log.error("inode names object %s which has no record", oid.hex())
            fail(errno.EIO)
        rec = ObjectRecord.unpack(raw)
        try:
            if rec.codec == CODEC_VERBATIM:
                fd, _header = self.objects.open_verified(oid, rec.gen)
                return fd
            cached = self.rebuilt.open(oid, rec.gen)
            if cached is None:  # normally decoded by open() outside the lock; evicted meanwhile
                self.rebuilt.ensure(oid, rec.gen, lambda: self.rebuild(oid, rec.gen))
                cached = self.rebuilt.open(oid, rec.gen)
            if cached is None:
                raise CorruptObject(oid, "rebuilt file vanished")
            return cached
        except CorruptObject as exc:
            log.error("%s; serving EIO", exc)
            fail(errno.EIO)
        except Exception:
            log.exception("rebuilding object %s failed; serving EIO", oid.hex())
            fail(errno.EIO)

    def rebuild(self, oid: bytes, gen: int) -> bytes:
        """The original bytes of an encoded object (its chain decoded; checked by the cache)."""
        return self.chains.rebuild(oid, gen)

    def object_content(self, oid: bytes, rec: ObjectRecord) -> bytes:
        """Content of any object, decoded if it is stored encoded (background work, no lock held)."""
        if rec.codec == CODEC_VERBATIM:
            return self.objects.read_payload(oid, rec.gen)
        self.rebuilt.ensure(oid, rec.gen, lambda: self.rebuild(oid, rec.gen))
        fd = self.rebuilt.open(oid, rec.gen)
        if fd is None:
            return self.rebuild(oid, rec.gen)
        try:
            return os.pread(fd, rec.size, HEADER_SIZE)
        finally:
            os.close(fd)

    def open(self, path: str | None, flags: int, fh_hint: int | None = None) -> int:
        if (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC:
            self.last_activity = time.monotonic()  # a writer: the background ingest yields meanwhile
        # An encoded file is decoded before taking the lock: other programs are not held up meanwhile.
        if not flags & os.O_TRUNC:
            with self.lock:
                ino = self._ino_of(path, fh_hint)
                node = self.load_inode(ino)
                of = self.open_files.get(ino)
                raw = (self.catalog.get(keys.object_key(node.object_id))
                       if node.is_reg and node.has_object and (of is None or of.reader_fd < 0) else None)
            rec = ObjectRecord.unpack(raw) if raw is not None else None
            if rec is not None and rec.codec != CODEC_VERBATIM:
                # Queued for read-ahead but not started: built here instead, so the reader's core and
                # the read-ahead's each rebuild a file (waiting on the queue would leave one idle).
                key = (node.object_id, rec.gen)
                self.readahead.claim(key)
                # A cold open, or one that reaches a file the read-ahead built: the next files are due
                # (so the builders stay ahead). Re-opening a cached file scans nothing.
                if path is not None and (not self.rebuilt.cached(*key) or self.readahead.consumed(key)):
                    self._read_ahead_after(path)
                try:
                    self.rebuilt.ensure(node.object_id, rec.gen, lambda: self.rebuild(node.object_id, rec.gen))
                except Exception:
                    pass  # reported (EIO + log) when the content is read
        with self.lock:
            return self._open_locked(path, flags, fh_hint)

    def _read_ahead_after(self, path: str) -> None:
        """A cold encoded file is being opened: if the previous one was in the same directory, rebuild
        the next encoded files of that directory (name order) in the background, within the cache."""
        parent, _, name = path.rstrip("/").rpartition("/")
        if not self.readahead.sequential(parent):
            return
        targets: list[tuple[bytes, int]] = []
        with self.lock:
            try:
                pino = self.resolve(parent or "/")
            except OSError:
                return
            prefix = keys.dentry_prefix(pino)
            start = keys.dentry_key(pino, name.encode("utf-8", "surrogateescape"))
            for i, (key, raw) in enumerate(self.catalog.scan(prefix, start=start)):
                if i > SCAN_LIMIT or len(targets) >= READ_AHEAD:
                    break
                child, mode = unpack_dentry(raw)
                if key == start or not stat.S_ISREG(mode):
                    continue
                node = self.load_inode(child)
                raw_rec = self.catalog.get(keys.object_key(node.object_id)) if node.has_object else None
                if raw_rec is None:
                    continue
                rec = ObjectRecord.unpack(raw_rec)
                if rec.codec != CODEC_VERBATIM and rec.size <= self.rebuilt.max_bytes // 8:
                    targets.append((node.object_id, rec.gen))
        for oid, gen in targets:
            if not self.rebuilt.cached(oid, gen):
                self.readahead.submit((oid, gen), self._prefetch_job(oid, gen))

    def _prefetch_job(self, oid: bytes, gen: int) -> Callable[[], None]:
        return lambda: self.rebuilt.ensure(oid, gen, lambda: self.rebuild(oid, gen))

    def _open_locked(self, path: str | None, flags: int, fh_hint: int | None = None) -> int:
        ino = self._ino_of(path, fh_hint)
        node = self.load_inode(ino)
        if node.is_dir:
            fail(errno.EISDIR)
        if (flags & os.O_ACCMODE) != os.O_RDONLY or flags & os.O_TRUNC:
            self._check_writable()
        if node.is_reg:
            of = self._open_file(ino)
            if flags & os.O_TRUNC and self._live_size(of) != 0:
                # staged, committed with what is written at close: if that fails (ENOSPC) the old
                # content is still the committed one
                self._truncate_open(of, 0, commit=False)
        return self._new_handle(ino, flags)

    @locked
    def create(self, path: str, mode: int, flags: int, ctx: Context = ROOT_CONTEXT) -> int:
        self.last_activity = time.monotonic()
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
        of.new_name = (parent.ino, name)
        return self._new_handle(node.ino, flags)

    def _chunk_before_commit(self, of: OpenFile) -> None:
        """A file stored whole that only grew past the threshold by truncate/fallocate (no write at 0
        decided it) and is not a PNG: chunked now, so its holes stay holes."""
        if of.staging is not None and of.dirty and not of.nospace and self._should_chunk(of, of.size):
            self._with_space(lambda: self._convert_to_chunks(of))

    def _live_size(self, of: OpenFile) -> int:
        """The size programs see: staged changes included."""
        return of.size if of.staging is not None or of.chunks is not None else self.load_inode(of.ino).size

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
        if of.chunks is not None:
            return self._chunk_read(of, size, offset)
        if of.staging is not None:
            end = min(offset + size, of.size)
            return of.staging.pread(end - offset, offset) if end > offset else b""
        node = self.load_inode(handle.ino)
        end = min(offset + size, node.size)
        if end <= offset:
            return b""
        return os.pread(self._reader(of), end - offset, HEADER_SIZE + offset)

    def _materialize(self, of: OpenFile, keep: int | None = None) -> StagingFile:
        """Copy the committed content (its first `keep` bytes) into a staging file to change it in place."""
        if of.staging is not None:
            return of.staging
        node = self.load_inode(of.ino)
        staging = self.objects.new_staging(f"i{of.ino}")
        copy_len = node.size if keep is None else min(keep, node.size)
        try:
            self._ensure_space(copy_len)  # an in-place edit needs room for a copy
            if copy_len:
                copy_data(self._reader(of), staging.fd, copy_len, HEADER_SIZE, HEADER_SIZE)
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
        self.last_activity = time.monotonic()
        self._check_writable()
        handle = self._handle(fh)
        if (handle.flags & os.O_ACCMODE) == os.O_RDONLY:
            fail(errno.EBADF)
        of = self.open_files[handle.ino]
        if of.chunks is None and self._should_chunk(of, max(self._live_size(of), offset + len(data)),
                                                    head=bytes(data[:8]) if offset == 0 else b""):
            self._with_space(lambda: self._convert_to_chunks(of))
        if of.chunks is not None:
            return self._write_chunked(of, handle, data, offset)
        staging = self._with_space(lambda: self._materialize(of))
        if handle.flags & os.O_APPEND:
            offset = of.size
        if offset + len(data) > MAX_FILE_SIZE:
            fail(errno.EFBIG)
        try:
            self._ensure_space(offset + len(data) - of.size)
            written = self._with_space(lambda: staging.pwrite(data, offset))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                of.nospace = True  # all or nothing: close() fails too and commits none of it
            raise
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
        # Set-id bits: the kernel clears them itself (a SETATTR before the write) unless the writer
        # has CAP_FSETID, so nothing to do here.
        of.version += 1
        return written

    def _write_chunked(self, of: OpenFile, handle: Handle, data: bytes, offset: int) -> int:
        if handle.flags & os.O_APPEND:
            offset = of.size
        if offset + len(data) > MAX_FILE_SIZE:
            fail(errno.EFBIG)
        try:
            self._ensure_space(len(data))
            written = self._chunk_write(of, data, offset)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                of.nospace = True  # all or nothing: close() fails too and commits none of it
            raise
        of.size = max(of.size, offset + written)
        of.dirty = True
        of.version += 1
        node = self.load_inode(handle.ino)
        node.mtime = node.ctime = time.time_ns()
        return written

    def _truncate_open(self, of: OpenFile, length: int, *, commit: bool = True) -> None:
        if length > MAX_FILE_SIZE:
            fail(errno.EFBIG)
        # Growing a file stored whole makes a sparse staging file; whether it is chunked is decided by
        # its first write at offset 0, or at its commit (a PNG downloaded into a preallocated file stays whole).
        if of.chunks is not None and length == 0:
            self._chunks_to_empty_whole(of)
        if of.chunks is not None:
            self._chunk_truncate(of, length)  # holes: no space needed, nothing written
            node = self.load_inode(of.ino)
            node.mtime = node.ctime = time.time_ns()
            if commit:
                self._commit(of, sync=True)
            return
        self._ensure_space(min(length - of.size, CHUNK_THRESHOLD))  # the rest is a hole until written
        staging = self._materialize(of, keep=length)
        staging.truncate(length)  # first: the host's own limits (EFBIG, ENOSPC) come back right here
        if length != of.seq_len:
            of.drop_seq()  # the commit hashes the file (holes included) outside the lock
        of.size = length
        of.dirty = True
        of.version += 1
        node = self.load_inode(of.ino)
        node.mtime = node.ctime = time.time_ns()
        if commit:
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
        if mode & FALLOC_FL_KEEP_SIZE or end <= self._live_size(of):
            return
        if end > MAX_FILE_SIZE:
            fail(errno.EFBIG)
        if of.chunks is not None:
            self._chunk_truncate(of, end)  # no reservation: chunks are written when data arrives
            node = self.load_inode(of.ino)
            node.mtime = node.ctime = time.time_ns()
            return
        staging = self._materialize(of)
        staging.truncate(end)
        of.drop_seq()
        of.size = end
        of.dirty = True
        of.version += 1
        node = self.load_inode(of.ino)
        node.mtime = node.ctime = time.time_ns()

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        """Durable when it returns, like a close; a big file is hashed without the lock (no stall)."""
        with self.lock:
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
            with self.lock:
                self._truncate_open(of, length, commit=False)
            self._commit_off_lock(of)
        finally:
            with self.lock:
                of.refs -= 1
                if of.refs == 0:
                    self._close_open_file(of)

    def _commit(self, of: OpenFile, *, sync: bool, known: tuple[bytes, int] | None = None,
                prepared: dict[int, PreparedChunk] | None = None, sealed: bool = False) -> None:
        """Make an open file's staged content the committed object (dedup by content hash)."""
        if of.nospace:
            self._drop_failed(of)
            fail(errno.ENOSPC)
        self._chunk_before_commit(of)
        if of.chunks is not None and of.dirty and not self._unchunk_for_png(of):
            try:
                self._commit_chunks(of, prepared)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    self._drop_failed(of)
                raise
            return
        if not of.dirty or of.staging is None:
            if of.needs_sync and sync:
                self.catalog.flush_wal()
                self.wal_unsynced = False
                of.needs_sync = False
            return
        staging, length = of.staging, of.size
        if known is not None:
            oid, xxh = known
        elif of.seq_sha is not None and of.seq_len == length:
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
                stored = self.objects.commit_staging(staging, oid, xxh, length, sealed=sealed and known is not None)
                stored_new = True
                txn.add_object(oid, length, stored)
            elif new_oid != old_oid:
                txn.incref(oid)
        if new_oid != old_oid and old_oid != NO_OBJECT:
            txn.decref(old_oid)
        txn.drop_chunks(node)  # a chunked file rewritten as a PNG image: one object again
        node.object_id = new_oid
        node.size = length
        txn.save(node)
        try:
            txn.commit(sync=True)
        except BaseException as exc:
            if stored_new:
                # The catalog never named it: remove the file so a failed commit (disk full) leaks
                # nothing; the staging data is gone with it, the old content stays committed.
                self.objects.delete(oid, 0)
                of.staging = None
                of.dirty = False
                self._restore_chunk_state(of)
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                self._drop_failed(of)
            raise
        of.needs_sync = False
        of.new_name = None  # it has content now: a later failure keeps it
        # The staging file either became the object (renamed) or is a duplicate of a stored one.
        if stored_new:
            staging.close()
            if self.ingestor is not None:
                self.ingestor.enqueue(oid)
        else:
            staging.discard()
        of.staging = None
        of.dirty = False
        of.drop_seq()
        if of.reader_fd >= 0 and of.reader_oid != new_oid:
            os.close(of.reader_fd)  # reopened (and verified) lazily if this handle reads again
            of.reader_fd = -1
        if self.garbage_pending:
            self.collect_garbage()

    def _drop_failed(self, of: OpenFile) -> None:
        """After ENOSPC: forget the uncommitted content; a file this open created loses its name again."""
        self._forget_chunk_changes(of)
        if of.staging is not None:
            of.staging.discard()
            of.staging = None
        of.dirty = of.nospace = False
        of.drop_seq()
        self._restore_chunk_state(of)
        if of.new_name is None:
            return
        parent_ino, name = of.new_name
        of.new_name = None
        txn = Txn(self)
        if self._lookup(parent_ino, name, txn) != of.ino:
            return  # renamed or replaced meanwhile: that name is not ours to remove
        parent = txn.inode(parent_ino)
        txn.delete(keys.dentry_key(parent_ino, name))
        parent.mtime = parent.ctime = time.time_ns()
        txn.save(parent)
        self._unlink_inode(txn, txn.inode(of.ino))
        try:
            txn.commit(sync=False)
        except OSError as exc:
            log.warning("could not remove the name of a file whose write failed for want of space: %s", exc)

    def flush(self, fh: int) -> None:
        """close() of one descriptor: commit so the data survives kill -9 and power loss once it returns."""
        self._durable_commit(fh, fsync=False)

    def fsync(self, fh: int, datasync: bool = False) -> None:
        self._durable_commit(fh, fsync=True)

    def _durable_commit(self, fh: int, *, fsync: bool) -> None:
        """Commit an open file (close/fsync); the slow part runs without the lock (_commit_off_lock)."""
        with self.lock:
            handle = self.handles.get(fh) if not fsync else self._handle(fh)
            if handle is None or handle.dir:
                return
            of = self.open_files.get(handle.ino)
            if of is None:
                if fsync:
                    self.catalog.flush_wal()
                    self.wal_unsynced = False
                return
            if fsync:
                of.needs_sync = True
        self._commit_off_lock(of)

    def _commit_off_lock(self, of: OpenFile) -> None:
        """Commit ``of``; hashing and flushing its data run without the lock.

        Under the lock we take a private descriptor on the staging file and note the content version;
        outside it we hash and fsync; back under the lock the commit goes through only if nothing
        changed meanwhile (else try again; the last attempt does everything under the lock).
        """
        with self.lock:
            if self.open_files.get(of.ino) is not of:
                return
            self._chunk_before_commit(of)
            if of.chunks is not None and of.dirty and not of.nospace:
                self._unchunk_for_png(of)
            chunked = of.chunks is not None
        if chunked:
            state = of.chunks
            assert state is not None
            with state.committing:  # one commit of this file at a time (see ChunkState.committing)
                prepared = self._chunk_prepare_all(of)
                with self.lock:
                    if self.open_files.get(of.ino) is of:
                        # prepared (maybe empty) says this thread holds the commit lock
                        self._commit(of, sync=True, prepared=prepared if of.chunks is state else None)
            return
        for attempt in range(3):
            with self.lock:
                if self.open_files.get(of.ino) is not of:
                    return  # closed (and so committed) meanwhile
                if of.chunks is not None or not of.dirty or of.staging is None or attempt == 2:
                    self._commit(of, sync=True)
                    return
                staging, version, length = of.staging, of.version, of.size
                seq = (of.seq_sha.copy(), of.seq_xx.copy()) if of.seq_sha is not None and of.seq_len == length else None
                fd = os.dup(staging.fd)
            known: tuple[bytes, int] | None = None
            sealed = False
            try:
                if seq is not None:
                    known = (seq[0].digest(), seq[1].intdigest())
                else:
                    known = self.objects.hash_staging(StagingFile(staging.path, fd), length)
                if self.catalog.get(keys.object_key(known[0])) is None:
                    # new content: header and data flushed here, so the commit only renames. (Content
                    # already stored needs no flush at all: the commit only counts one more reference.)
                    self.objects.seal_staging(fd, known[0], known[1], length)
                    sealed = True
            except OSError:
                known = None  # changed under us (shrunk by a truncate...): the next attempt sees why
            finally:
                os.close(fd)
            with self.lock:
                if known is not None and of.staging is staging and of.version == version and of.dirty and self.open_files.get(of.ino) is of:
                    self._commit(of, sync=True, known=known, sealed=sealed)
                    return
                if not of.dirty:
                    return  # someone else committed it meanwhile

    @locked
    def lseek(self, fh: int, offset: int, whence: int) -> int:
        """SEEK_DATA / SEEK_HOLE (the kernel answers the other kinds itself)."""
        if whence not in (SEEK_DATA, SEEK_HOLE):
            fail(errno.EINVAL)
        of = self.open_files.get(self._handle(fh).ino)
        if of is None:
            fail(errno.EBADF)
        if of.chunks is not None:
            return self._chunk_seek(of, offset, whence)
        size = self._live_size(of)
        if offset < 0 or offset >= size:
            fail(errno.ENXIO)  # as Linux answers a negative offset
        if of.staging is None:
            node = self.load_inode(of.ino)
            rec = self.object_record(node.object_id) if node.has_object else None
            if rec is None or rec.codec != CODEC_VERBATIM:
                # an encoded file rebuilds dense: all data, and no rebuild under the lock to say so
                return offset if whence == SEEK_DATA else size
        fd = of.staging.fd if of.staging is not None else self._reader(of)
        return seek_in_file(fd, offset, whence, size) if fd >= 0 else offset

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
        if of.chunks is not None:
            of.chunks.discard_all()  # only left after a failed commit: the committed chunks stay
            of.chunks.close_readers()
            of.chunks = None
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
