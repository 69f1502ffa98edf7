"""Open-file state of a chunked file: staged chunks, what a truncate cut, cached chunk lookups and readers."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import xxhash

from ..store.local import StagingFile

# Files are chunked once they grow past CHUNK_THRESHOLD (PNG images never: the codec wants them whole).
CHUNK_SHIFT = 20
CHUNK_THRESHOLD = 8 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Staged chunks keep their file; only this many keep a descriptor open (a 1 GiB copy stages 1024).
OPEN_STAGING_FDS = 32
OPEN_READERS = 8


@dataclass
class StagedChunk:
    """One chunk being changed: its full new content (bytes [0, length) of the chunk) in a staging file."""

    staging: StagingFile
    length: int
    version: int = 0
    # running hashes while this chunk is written strictly in order from 0 (a sequential copy)
    seq_sha: Any = None
    seq_xx: Any = None
    seq_len: int = 0

    def drop_seq(self) -> None:
        self.seq_sha = self.seq_xx = None


@dataclass
class ChunkState:
    """Everything about a chunked file that is not committed yet, plus caches of what is."""

    shift: int = CHUNK_SHIFT
    staged: dict[int, StagedChunk] = field(default_factory=dict)
    # committed chunks at or past this index read as holes and are dropped at the next commit: a
    # truncate cut them (None: nothing cut since the last commit)
    cut_from: int | None = None
    # the file was one object until now: that object goes at the commit that writes the chunks
    converted: bool = False
    committed: dict[int, tuple[bytes, int] | None] = field(default_factory=dict)  # index -> (oid, len)
    readers: OrderedDict[bytes, int] = field(default_factory=OrderedDict)
    fds_open: OrderedDict[int, None] = field(default_factory=OrderedDict)  # staged chunks with an open fd
    # one commit at a time: a commit writes object headers into staged files without the VFS lock, so
    # a second one must not rename those files into objects/ meanwhile
    committing: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int:
        return 1 << self.shift

    def cut(self, index: int) -> bool:
        """Was the committed chunk at index removed by a truncate since the last commit?"""
        return self.cut_from is not None and index >= self.cut_from

    def fd_of(self, index: int) -> int:
        """The staged chunk's descriptor, reopened if it was closed to bound open files."""
        chunk = self.staged[index]
        if chunk.staging.fd < 0:
            chunk.staging.fd = os.open(chunk.staging.path, os.O_RDWR | os.O_CLOEXEC)
        self.fds_open[index] = None
        self.fds_open.move_to_end(index)
        while len(self.fds_open) > OPEN_STAGING_FDS:
            old, _ = self.fds_open.popitem(last=False)
            if old in self.staged:
                self.staged[old].staging.close()
        return chunk.staging.fd

    def add(self, index: int, staging: StagingFile, length: int, *, sequential: bool) -> StagedChunk:
        chunk = StagedChunk(staging, length)
        if sequential:
            chunk.seq_sha, chunk.seq_xx = hashlib.sha256(), xxhash.xxh3_64()
        self.staged[index] = chunk
        self.fds_open[index] = None
        self.fds_open.move_to_end(index)
        return chunk

    def discard(self, index: int) -> None:
        chunk = self.staged.pop(index, None)
        self.fds_open.pop(index, None)
        if chunk is not None:
            chunk.staging.discard()

    def discard_all(self) -> None:
        for index in list(self.staged):
            self.discard(index)
        self.cut_from = None

    def close_readers(self) -> None:
        for fd in self.readers.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.readers.clear()

    def staged_bytes(self) -> int:
        return sum(c.length for c in self.staged.values())

