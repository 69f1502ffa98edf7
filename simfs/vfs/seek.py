"""Host-file extents of content stored after the 128-byte object header: SEEK_DATA/SEEK_HOLE, sparse copies."""

from __future__ import annotations

import errno
import os

from ..store.envelope import HEADER_SIZE
from .common import COPY_CHUNK, fail

SEEK_DATA, SEEK_HOLE = 3, 4
BLOCK = 4096  # answers are aligned to this block size, as on a local file system


def seek_in_file(fd: int, offset: int, whence: int, size: int) -> int:
    """SEEK_DATA/SEEK_HOLE answered by the host file holding the content after its 128-byte header.

    The host's block edges sit 128 bytes off ours, so its answers are moved to our 4 KiB block
    edges (tools such as xfstests' seek_sanity expect that). A hole starts at our next edge (zeros
    reported as data, which is allowed). For data, the zeros of a host extent that fall into a
    block of ours (at most 64 blocks: reporting zeros as data is allowed) are skipped."""
    def host(pos: int, how: int) -> int:
        return os.lseek(fd, HEADER_SIZE + pos, how) - HEADER_SIZE

    def zeros(start: int, end: int) -> bool:
        return end <= start or not os.pread(fd, end - start, HEADER_SIZE + start).strip(b"\0")

    if whence == SEEK_HOLE:
        found = max(offset, host(offset, SEEK_HOLE))
        if found == offset:
            return offset
        if offset < BLOCK < size and zeros(offset, BLOCK):
            return offset  # our first block is zeros; the host counts it as data for the header's sake
        low = max(offset, found - found % BLOCK)
        if zeros(low, found):
            return low  # the zeros before the host's hole, in a block of ours, belong to the hole
        return min(size, -(-found // BLOCK) * BLOCK)
    pos = offset
    for _ in range(64):  # each turn moves past one partial block of zeros
        found = max(pos, host(pos, SEEK_DATA))  # ENXIO: no data from pos on
        if found >= size:
            fail(errno.ENXIO)
        extent_end = min(size, host(found, SEEK_HOLE))
        # the rest of our block: the host's blocks overlap two of ours, so one of ours can be all
        # zeros inside a host extent (and the first always is allocated, for the header)
        skip = min(extent_end, found - found % BLOCK + BLOCK)
        if extent_end % BLOCK and found >= extent_end - extent_end % BLOCK:
            skip = max(skip, extent_end)  # the extent's tail, in a block of ours it only partly covers
        if skip and zeros(found, skip):
            if skip >= size:
                fail(errno.ENXIO)
            pos = skip
            continue
        return max(offset, found - found % BLOCK)
    return pos


def copy_data(src: int, dst: int, length: int, src_off: int, dst_off: int) -> None:
    """Copy length bytes from src at src_off to dst at dst_off, data extents only: holes stay holes
    (copy_file_range would write them out). dst is extended to dst_off + length if shorter."""
    if os.fstat(dst).st_size < dst_off + length:
        os.ftruncate(dst, dst_off + length)
    pos = 0
    while pos < length:
        try:
            start = os.lseek(src, src_off + pos, os.SEEK_DATA) - src_off
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return
            raise
        if start >= length:
            return
        end = min(length, os.lseek(src, src_off + start, os.SEEK_HOLE) - src_off)
        copied = start
        while copied < end:
            n = os.copy_file_range(src, dst, min(COPY_CHUNK << 4, end - copied), src_off + copied, dst_off + copied)
            if n <= 0:
                raise OSError(errno.EIO, "short copy while staging")
            copied += n
        pos = end
