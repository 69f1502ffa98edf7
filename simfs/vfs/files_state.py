"""Per-inode open-file state and per-descriptor handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..catalog.records import NO_OBJECT
from ..store.local import StagingFile
from .chunk_state import ChunkState


@dataclass
class OpenFile:
    """State shared by every handle open on one regular-file inode."""

    ino: int
    refs: int = 0
    staging: StagingFile | None = None
    chunks: ChunkState | None = None  # a chunked file: its staged chunks (never together with staging)
    size: int = 0  # live size while staging exists
    dirty: bool = False  # staging content differs from the committed object
    needs_sync: bool = False  # an unsynced batch touched this inode while open (create, chmod...)
    reader_fd: int = -1
    reader_oid: bytes = NO_OBJECT
    # Running hashes while writes arrive strictly in order from 0 (cp, rsync): no re-read at commit.
    seq_sha: Any = None
    seq_xx: Any = None
    seq_len: int = 0
    version: int = 0  # bumped by every content change; an unlocked hash is valid only if unchanged
    # (parent ino, name) of a file created by this open whose content was never committed: a write
    # that fails for want of space removes that name again instead of leaving an empty file
    new_name: tuple[int, bytes] | None = None
    nospace: bool = False  # a write returned ENOSPC since the last commit: that content is not committed

    def drop_seq(self) -> None:
        self.seq_sha = self.seq_xx = None


@dataclass
class Handle:
    fh: int
    ino: int
    flags: int
    dir: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
