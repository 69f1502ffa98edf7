"""Chunked files: large non-PNG files kept as 1 MiB chunk objects, so a small change commits one chunk.

A chunked inode (record v2) names no object; C keys name one object per chunk that holds data, and a
missing key is a hole. An open chunked file stages only the chunks it changes (chunk_state.py); the
commit hashes and flushes them without the lock and then switches the C keys in one synced batch.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import xxhash

from ..catalog import keys
from ..catalog.records import (
    FLAG_DESCRIBED,
    FLAG_ENCODE_TRIED,
    FLAG_NOT_IMAGE,
    FLAG_POLISHED,
    NO_OBJECT,
    ObjectRecord,
    pack_chunk,
    unpack_chunk,
)
from ..format import fsync_dir
from ..store.envelope import CODEC_VERBATIM, HEADER_SIZE, Header
from .base import VfsBase
from .chunk_state import CHUNK_SHIFT, CHUNK_THRESHOLD, OPEN_READERS, PNG_SIGNATURE, ChunkState
from .common import COPY_CHUNK, fail, log
from .files_state import OpenFile
from .seek import SEEK_DATA, SEEK_HOLE, copy_data, seek_in_file
from .txn import Txn

FEATURE_CHUNKED = "chunked-files"
# Chunk objects are data, not images: the background ingest has nothing to do with them.
CHUNK_FLAGS = FLAG_DESCRIBED | FLAG_NOT_IMAGE | FLAG_ENCODE_TRIED | FLAG_POLISHED
FLUSH_THREADS = 8  # staged chunks hashed and flushed at once by a commit
_ZERO_SHA: dict[int, bytes] = {}


@dataclass
class PreparedChunk:
    """A staged chunk hashed (and, unless it is all zeros, given its object header and flushed)."""

    version: int
    path: str
    oid: bytes
    xxh: int
    length: int
    zero: bool


def _zero_sha(length: int) -> bytes:
    if length not in _ZERO_SHA:
        _ZERO_SHA[length] = hashlib.sha256(bytes(length)).digest()
    return _ZERO_SHA[length]


def prepare_chunk(path: str, length: int, version: int, seq: tuple[object, object] | None,
                  fd: int = -1) -> PreparedChunk | None:
    """Hash a staged chunk, write its object header and flush it (no lock held); None if it vanished
    meanwhile. fd: a descriptor of the staged file (a dup, closed here), else it is opened by path."""
    if fd < 0:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
    try:
        zero = False
        if seq is not None:
            oid, xxh = seq[0].digest(), seq[1].intdigest()  # type: ignore[attr-defined]
            zero = oid == _zero_sha(length)
        else:
            sha, xx = hashlib.sha256(), xxhash.xxh3_64()
            zero = True
            offset = 0
            while offset < length:
                block = os.pread(fd, min(COPY_CHUNK, length - offset), HEADER_SIZE + offset)
                if not block:
                    return None  # shrunk by a truncate meanwhile: redone under the lock
                sha.update(block)
                xx.update(block)
                zero = zero and block.count(0) == len(block)
                offset += len(block)
            oid, xxh = sha.digest(), xx.intdigest()
        if not zero and length:
            os.pwrite(fd, Header(CODEC_VERBATIM, 0, length, length, xxh, oid).pack(), 0)
            os.fsync(fd)  # one flush per file, never syncfs(): that would also wait for every other
            # program's dirty data on the same disk (minutes on a busy machine, seen in a test run)
        return PreparedChunk(version, path, oid, xxh, length, zero or length == 0)
    finally:
        os.close(fd)


class ChunksMixin(VfsBase):
    # ------------------------------------------------------------------ when a file is chunked
    def _chunk_state_for(self, of: OpenFile) -> None:
        """Give an open file of a chunked inode its chunk state (called when it is first opened)."""
        node = self.load_inode(of.ino)
        if node.chunked and of.chunks is None and of.staging is None:
            of.chunks = ChunkState(shift=node.chunk_shift)

    def _should_chunk(self, of: OpenFile, new_size: int, head: bytes = b"") -> bool:
        """Is this whole-object file about to grow past the chunking threshold, and not a PNG image?"""
        if of.chunks is not None or new_size <= CHUNK_THRESHOLD:
            return False
        if len(head) >= 8:  # a write at offset 0 decides (a preallocated download writes its header now)
            return not head.startswith(PNG_SIGNATURE)
        node = self.load_inode(of.ino)
        size = of.size if of.staging is not None else node.size
        if of.staging is not None:
            first = of.staging.pread(8, 0) if size >= 8 else b""
        elif node.has_object:
            rec = self.object_record(node.object_id)
            if rec is None or rec.codec != CODEC_VERBATIM:
                return False  # encoded: a PNG image
            first = os.pread(self._reader(of), 8, HEADER_SIZE) if size >= 8 else b""
        else:
            first = b""
        return not first.startswith(PNG_SIGNATURE)

    def _convert_to_chunks(self, of: OpenFile) -> None:
        """Split a whole-object file's content (staged or committed) into staged chunks, holes skipped."""
        node = self.load_inode(of.ino)
        state = ChunkState(shift=CHUNK_SHIFT, converted=True, cut_from=0)
        cs = state.size
        if of.staging is not None:
            src, length = of.staging.fd, of.size
        else:
            src, length = (self._reader(of) if node.has_object else -1), node.size
        try:
            regions: list[tuple[int, int]] = []  # (chunk index, bytes to copy): chunks holding data
            for index in range((length + cs - 1) >> state.shift):
                start = index * cs
                region = min(cs, length - start)
                try:
                    data_at = os.lseek(src, HEADER_SIZE + start, os.SEEK_DATA) - HEADER_SIZE
                except OSError as exc:
                    if exc.errno != errno.ENXIO:
                        raise
                    break  # nothing but holes from here on
                if data_at < start + region:
                    regions.append((index, region))
            # the copies need room (the original stays until the commit)
            self._ensure_space(sum(region for _, region in regions))
            for index, region in regions:
                staging = self.objects.new_staging(f"i{of.ino}c{index}")
                state.add(index, staging, region, sequential=False)
                state.fd_of(index)
                copy_data(src, staging.fd, region, HEADER_SIZE + index * cs, HEADER_SIZE)
        except BaseException:
            state.discard_all()
            raise
        if of.staging is not None:
            of.staging.discard()
            of.staging = None
        of.drop_seq()
        of.chunks = state
        of.size = length
        of.dirty = True
        of.version += 1

    # ------------------------------------------------------------------ reading
    def _chunk_lookup(self, of: OpenFile, index: int) -> tuple[bytes, int] | None:
        """The committed chunk at index: (object id, length), or None for a hole."""
        state = of.chunks
        assert state is not None
        if state.cut(index) or state.converted:
            return None
        if index not in state.committed:
            raw = self.catalog.get(keys.chunk_key(of.ino, index))
            found: tuple[bytes, int] | None = None
            if raw is not None:
                oid = unpack_chunk(raw)
                rec = self.object_record(oid)
                if rec is None:
                    log.error("chunk %d of inode %d names object %s which has no record", index, of.ino, oid.hex())
                    fail(errno.EIO)
                found = (oid, rec.size)
            if len(state.committed) > 4096:
                state.committed.clear()
            state.committed[index] = found
        return state.committed[index]

    def _chunk_reader(self, state: ChunkState, oid: bytes) -> int:
        fd = state.readers.get(oid)
        if fd is None:
            fd = self._open_object(oid)
            state.readers[oid] = fd
            while len(state.readers) > OPEN_READERS:
                _, old = state.readers.popitem(last=False)
                os.close(old)
        state.readers.move_to_end(oid)
        return fd

    def _chunk_extent(self, of: OpenFile, index: int) -> int:
        """Bytes of data at the start of chunk index (the rest of it reads as zeros)."""
        state = of.chunks
        assert state is not None
        if index in state.staged:
            return state.staged[index].length
        found = self._chunk_lookup(of, index)
        return 0 if found is None else found[1]

    def _chunk_read(self, of: OpenFile, size: int, offset: int) -> bytes:
        state = of.chunks
        assert state is not None
        end = min(offset + size, of.size)
        parts: list[bytes] = []
        pos = offset
        while pos < end:
            index, within = pos >> state.shift, pos & (state.size - 1)
            n = min(state.size - within, end - pos)
            have = 0
            if index in state.staged:
                have = min(n, max(0, state.staged[index].length - within))
                if have:
                    parts.append(os.pread(state.fd_of(index), have, HEADER_SIZE + within))
            else:
                found = self._chunk_lookup(of, index)
                if found is not None:
                    have = min(n, max(0, found[1] - within))
                    if have:
                        parts.append(os.pread(self._chunk_reader(state, found[0]), have, HEADER_SIZE + within))
            if have < n:
                parts.append(bytes(n - have))
            pos += n
        return b"".join(parts)

    # ------------------------------------------------------------------ changing
    def _chunk_stage(self, of: OpenFile, index: int, keep: int | None = None) -> int:
        """Stage chunk index for change (its committed bytes copied, at most keep); returns its fd."""
        state = of.chunks
        assert state is not None
        if index not in state.staged:
            found = self._chunk_lookup(of, index)
            copy_len = 0 if found is None else (found[1] if keep is None else min(keep, found[1]))
            self._ensure_space(copy_len)
            staging = self.objects.new_staging(f"i{of.ino}c{index}")
            try:
                if copy_len:
                    assert found is not None
                    copy_data(self._chunk_reader(state, found[0]), staging.fd, copy_len, HEADER_SIZE, HEADER_SIZE)
            except BaseException:
                staging.discard()
                raise
            state.add(index, staging, copy_len, sequential=copy_len == 0)
        return state.fd_of(index)

    def _chunk_write(self, of: OpenFile, data: bytes, offset: int) -> int:
        state = of.chunks
        assert state is not None
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            at = offset + pos
            index, within = at >> state.shift, at & (state.size - 1)
            n = min(state.size - within, len(data) - pos)
            fd = self._with_space(functools.partial(self._chunk_stage, of, index))
            chunk = state.staged[index]
            written = self._with_space(functools.partial(os.pwrite, fd, view[pos:pos + n], HEADER_SIZE + within))
            if chunk.seq_sha is not None:
                if within == chunk.seq_len and within + written >= chunk.length:
                    chunk.seq_sha.update(view[pos:pos + written])
                    chunk.seq_xx.update(view[pos:pos + written])
                    chunk.seq_len += written
                else:
                    chunk.drop_seq()
            chunk.length = max(chunk.length, within + written)
            chunk.version += 1
            pos += written
            if written < n:
                break
        return pos

    def _chunk_truncate(self, of: OpenFile, length: int) -> None:
        state = of.chunks
        assert state is not None
        if length < of.size:
            last, within = length >> state.shift, length & (state.size - 1)
            first_gone = last + (1 if within else 0)
            if within and last not in state.staged:
                found = self._chunk_lookup(of, last)
                if found is not None and found[1] > within:
                    self._chunk_stage(of, last, keep=within)  # first: ENOSPC here changes nothing
            for index in [i for i in state.staged if i >= first_gone]:
                state.discard(index)
            if within:
                if last in state.staged:
                    chunk = state.staged[last]
                    if chunk.length > within:
                        os.ftruncate(state.fd_of(last), HEADER_SIZE + within)
                        chunk.length = within
                        chunk.version += 1
                        if chunk.seq_len > within:
                            chunk.drop_seq()
            state.cut_from = first_gone if state.cut_from is None else min(state.cut_from, first_gone)
        of.size = length
        of.dirty = True
        of.version += 1

    def _chunk_seek(self, of: OpenFile, offset: int, whence: int) -> int:
        """SEEK_DATA / SEEK_HOLE over staged and committed chunks; inside a chunk, its (sparse) host
        file says where its data is."""
        state = of.chunks
        assert state is not None
        if offset < 0 or offset >= of.size:
            fail(errno.ENXIO)
        cs = state.size
        if whence == SEEK_HOLE:
            pos = offset
            while pos < of.size:
                index, within = pos >> state.shift, pos & (cs - 1)
                extent = self._chunk_extent(of, index)
                if within >= extent:
                    return pos
                if extent == cs and index not in state.staged:
                    # a full committed chunk counts as data: looking inside would open (and verify)
                    # every chunk of a large file under the lock, for one lseek
                    pos = (index + 1) * cs
                    continue
                hole = seek_in_file(self._chunk_fd(of, index), within, SEEK_HOLE, extent)
                if hole < extent or extent < cs:
                    return min(index * cs + hole, of.size)
                pos = (index + 1) * cs
            return of.size
        index = offset >> state.shift
        while True:
            nxt = self._next_chunk_with_data(of, index)
            if nxt is None or nxt * cs >= of.size:
                fail(errno.ENXIO)
            within = max(0, offset - nxt * cs)
            extent = self._chunk_extent(of, nxt)
            if within < extent:
                try:
                    return nxt * cs + seek_in_file(self._chunk_fd(of, nxt), within, SEEK_DATA, extent)
                except OSError as exc:
                    if exc.errno != errno.ENXIO:
                        raise
            index = nxt + 1

    def _chunk_fd(self, of: OpenFile, index: int) -> int:
        """A descriptor on the host file of chunk index (staged, else committed), content after the header."""
        state = of.chunks
        assert state is not None
        if index in state.staged:
            return state.fd_of(index)
        found = self._chunk_lookup(of, index)
        assert found is not None
        return self._chunk_reader(state, found[0])

    def _next_chunk_with_data(self, of: OpenFile, index: int) -> int | None:
        state = of.chunks
        assert state is not None
        staged = [i for i, c in state.staged.items() if i >= index and c.length]
        best = min(staged) if staged else None
        if not state.converted and not state.cut(index):
            for key, _raw in self.catalog.scan(keys.chunk_prefix(of.ino), start=keys.chunk_key(of.ino, index)):
                found = keys.chunk_index(key)
                if not state.cut(found) and (best is None or found < best):
                    best = found
                break
        return best

    # ------------------------------------------------------------------ committing
    def _chunk_prepare_all(self, of: OpenFile) -> dict[int, PreparedChunk]:
        """Off-lock part of a chunked commit: hash, header and flush every staged chunk.

        Called without the lock: a snapshot of what to do is taken under it, and whatever changed
        meanwhile is detected by its version at commit and redone there.
        """
        with self.lock:
            state = of.chunks
            if state is None or self.open_files.get(of.ino) is not of:
                return {}
            jobs = [(i, str(c.staging.path), c.length, c.version,
                     (c.seq_sha.copy(), c.seq_xx.copy()) if c.seq_sha is not None and c.seq_len == c.length else None,
                     os.dup(c.staging.fd) if c.staging.fd >= 0 else -1)
                    for i, c in state.staged.items()]

        def run(job: tuple) -> tuple[int, PreparedChunk | None]:
            index, path, length, version, seq, fd = job
            try:
                return index, prepare_chunk(path, length, version, seq, fd)
            except OSError:
                return index, None

        # Several at once: hashing releases the GIL, and the journal commits concurrent flushes together.
        if len(jobs) <= 2:
            results = [run(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=FLUSH_THREADS) as pool:
                results = list(pool.map(run, jobs))
        return {index: done for index, done in results if done is not None}

    def _commit_chunks(self, of: OpenFile, prepared: dict[int, PreparedChunk] | None = None) -> None:
        """Under the lock: store the staged chunks (those prepared unchanged as they are; the rest now)
        and switch the file's C keys, size and data_bytes in one synced batch.

        prepared is given by a caller holding the file's commit lock (_commit_off_lock); without it the
        lock is taken here, and if another thread is committing this file, that commit (which sees
        everything staged when it takes the VFS lock) is left to do the work."""
        state = of.chunks
        assert state is not None
        if prepared is not None:
            self._commit_chunks_locked(of, state, dict(prepared))
            return
        if not state.committing.acquire(blocking=False):
            log.info("inode %d: a commit is already in progress; it commits the staged chunks", of.ino)
            return
        try:
            self._commit_chunks_locked(of, state, {})
        finally:
            state.committing.release()

    def _commit_chunks_locked(self, of: OpenFile, state: ChunkState, prepared: dict[int, PreparedChunk]) -> None:
        redo = [i for i, c in state.staged.items()
                if i not in prepared or prepared[i].version != c.version or prepared[i].path != str(c.staging.path)]
        for index in redo:
            chunk = state.staged[index]
            state.fds_open.pop(index, None)
            chunk.staging.close()  # reopened by path below, and later if still staged
            seq = (chunk.seq_sha, chunk.seq_xx) if chunk.seq_sha is not None and chunk.seq_len == chunk.length else None
            done = prepare_chunk(str(chunk.staging.path), chunk.length, chunk.version, seq)
            if done is None:
                raise OSError(errno.EIO, f"staged chunk {index} of inode {of.ino} vanished")
            prepared[index] = done
        self.store.require_feature(FEATURE_CHUNKED)  # before the first record that needs it (v2 inode)
        txn = Txn(self)
        node = txn.inode(of.ino)
        renamed: list[bytes] = []
        renamed_idx: set[int] = set()
        dirs: set[str] = set()
        if state.converted:
            txn.drop_chunks(node)  # was chunked, then emptied (O_TRUNC) and refilled: its old chunks go
        data_bytes = 0 if state.converted else node.data_bytes
        new_committed: dict[int, tuple[bytes, int] | None] = {}
        try:
            for index, chunk in sorted(state.staged.items()):
                p = prepared[index]
                key = keys.chunk_key(of.ino, index)
                raw_old = None if state.converted else txn.get(key)
                old = unpack_chunk(raw_old) if raw_old is not None else None
                new = None if p.zero else p.oid
                if new == old:
                    new_committed[index] = None if new is None else (new, p.length)
                    continue
                if new is not None:
                    if txn.object_record(new) is None:
                        chunk.staging.close()
                        final = self.objects.path_of(new, 0)
                        os.rename(chunk.staging.path, final)
                        renamed.append(new)
                        renamed_idx.add(index)
                        dirs.add(str(final.parent))
                        txn.put(keys.object_key(new), ObjectRecord(CODEC_VERBATIM, 1, p.length, HEADER_SIZE + p.length,
                                                                   flags=CHUNK_FLAGS).pack())
                        txn.stored_delta += HEADER_SIZE + p.length
                    else:
                        txn.incref(new)
                    txn.put(key, pack_chunk(new))
                    data_bytes += p.length
                else:
                    txn.delete(key)
                if old is not None:
                    old_rec = txn.object_record(old)
                    data_bytes -= old_rec.size if old_rec is not None else 0
                    txn.decref(old)
                new_committed[index] = None if new is None else (new, p.length)
            if state.cut_from is not None and not state.converted:
                start = keys.chunk_key(of.ino, state.cut_from)
                for key, raw in self.catalog.scan(keys.chunk_prefix(of.ino), start=start):
                    index = keys.chunk_index(key)
                    if index in state.staged:
                        continue
                    oid = unpack_chunk(raw)
                    rec = txn.object_record(oid)
                    data_bytes -= rec.size if rec is not None else 0
                    txn.delete(key)
                    txn.decref(oid)
            if len(dirs) <= 2:
                for d in dirs:
                    fsync_dir(d)
            else:  # at most the 256 fan-out directories, flushed at once (the journal groups them)
                with ThreadPoolExecutor(max_workers=FLUSH_THREADS) as pool:
                    list(pool.map(fsync_dir, dirs))
            if state.converted and node.has_object:
                txn.decref(node.object_id)
            node.object_id = NO_OBJECT
            node.chunk_shift = state.shift
            node.size = of.size
            node.data_bytes = max(0, data_bytes)
            txn.save(node)
            txn.commit(sync=True)
        except BaseException:
            # The catalog never named them: remove the renamed files so nothing leaks; what was staged
            # is gone with them, and the committed content stays what it was.
            for oid in renamed:
                self.objects.delete(oid, 0)
            self._forget_chunk_changes(of)
            raise
        for index in list(state.staged):
            chunk = state.staged.pop(index)
            if index in renamed_idx:
                chunk.staging.close()  # it is the object file now
            else:
                chunk.staging.discard()
        state.fds_open.clear()
        state.committed = new_committed
        state.cut_from = None
        state.converted = False
        of.dirty = False
        of.needs_sync = False
        of.new_name = None
        if of.reader_fd >= 0:
            os.close(of.reader_fd)  # the whole object it read is gone with the conversion
            of.reader_fd = -1
        if self.garbage_pending:
            self.collect_garbage()

    def _chunks_to_empty_whole(self, of: OpenFile) -> None:
        """Truncated to zero (O_TRUNC, cp over it): start again as one object, so that whatever is
        written now is chunked or kept whole (a PNG) by the usual rule; the chunks go at the commit."""
        state = of.chunks
        assert state is not None
        staging = self.objects.new_staging(f"i{of.ino}")
        state.discard_all()
        state.close_readers()
        of.chunks = None
        of.staging = staging
        of.size = 0
        of.seq_sha, of.seq_xx, of.seq_len = hashlib.sha256(), xxhash.xxh3_64(), 0
        of.dirty = True
        of.version += 1

    def _forget_chunk_changes(self, of: OpenFile) -> None:
        """After a failed commit (ENOSPC...): drop what was staged; the committed content stays."""
        state = of.chunks
        if state is None:
            return
        state.discard_all()
        state.committed.clear()
        if state.converted:
            state.close_readers()
            of.chunks = None  # it is still the whole object it was
        of.size = self.load_inode(of.ino).size
        of.dirty = of.nospace = False

    def _restore_chunk_state(self, of: OpenFile) -> None:
        """After a failed commit that dropped the staged content: a chunked inode gets its state back."""
        if of.staging is None and of.chunks is None:
            self._chunk_state_for(of)
            of.size = self.load_inode(of.ino).size

    def _unchunk_for_png(self, of: OpenFile) -> bool:
        """A chunked file rewritten as a PNG image goes back to one object, so the codec can take it."""
        state = of.chunks
        if state is None or 0 not in state.staged or state.staged[0].length < 8:
            return False
        if os.pread(state.fd_of(0), 8, HEADER_SIZE) != PNG_SIGNATURE:
            return False
        staging = self.objects.new_staging(f"i{of.ino}")
        try:
            self._ensure_space(of.size)
            for index in range((of.size + state.size - 1) >> state.shift):
                have = min(self._chunk_extent(of, index), of.size - index * state.size)
                if have <= 0:
                    continue
                if index in state.staged:
                    src = state.fd_of(index)
                else:
                    found = self._chunk_lookup(of, index)
                    assert found is not None
                    src = self._chunk_reader(state, found[0])
                copy_data(src, staging.fd, have, HEADER_SIZE, HEADER_SIZE + index * state.size)
            staging.truncate(of.size)
        except BaseException:
            staging.discard()
            raise
        state.discard_all()
        state.close_readers()
        of.chunks = None
        of.staging = staging
        of.drop_seq()
        return True
