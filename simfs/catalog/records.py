"""Catalog values: struct-packed records, each starting with a version byte (never pickle)."""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass, replace

NO_OBJECT = bytes(32)

# version, mode, uid, gid, nlink, size, atime, mtime, ctime (ns), rdev, parent, object id; then a
# variable tail (symlink target).
_INODE_V1 = struct.Struct(">BIIIIQqqqQQ32s")
# v2 (FORMAT feature "chunked-files"), written only for a chunked file: v1 fields, then log2 of its chunk
# size and the bytes its chunks hold (holes excluded: st_blocks); its content is in C keys, object id zero
_INODE_V2 = struct.Struct(">BIIIIQqqqQQ32sBQ")
# C value: version, chunk object id
_CHUNK_V1 = struct.Struct(">B32s")
CHUNK_SHIFT_MIN, CHUNK_SHIFT_MAX = 12, 30
# version, codec, flags, refcount, logical size, physical size, gen
_OBJECT_V1 = struct.Struct(">BHHIQQI")
# v2 (FORMAT feature "reference-chains"): v1 fields, then base object id (zero: none), depth, dependents,
# and the bytes the object would take coded on its own (0: not measured)
_OBJECT_V2 = struct.Struct(">BHHIQQI32sBIQ")

# ObjectRecord.flags: what the background ingest has done with the object (simfs/ingest/)
FLAG_DESCRIBED = 1 << 0  # descriptors extracted (or the object is not an image)
FLAG_NOT_IMAGE = 1 << 1  # ...and it turned out not to be a decodable image: no S/T records expected
FLAG_ENCODE_TRIED = 1 << 2  # the encoder has looked at this object
FLAG_PIXEL_DUPLICATE = 1 << 3  # coded against an object with the same pixels (other PNG bytes)
FLAG_LOCAL_DROPPED = 1 << 4  # near-free copy of its base: its local features (T) were dropped to save space
FLAG_POLISHED = 1 << 5  # the polish pass has looked at it: payload at the final JPEG XL effort (or nothing to do)
_DENTRY = struct.Struct(">QB")


class RecordError(ValueError):
    """A catalog value that cannot be decoded (unknown version, wrong length)."""


@dataclass
class Inode:
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    atime: int
    mtime: int
    ctime: int
    rdev: int = 0
    parent: int = 0  # directories only: the directory that holds the single dentry naming this one
    object_id: bytes = NO_OBJECT
    target: bytes = b""  # symlinks only
    chunk_shift: int = 0  # chunked regular files: log2 of the chunk size (0: content is one object)
    data_bytes: int = 0  # chunked files: content bytes held by chunks (holes are not counted)

    def pack(self) -> bytes:
        fields = (self.mode, self.uid, self.gid, self.nlink, self.size, self.atime, self.mtime,
                  self.ctime, self.rdev, self.parent, self.object_id)
        if self.chunk_shift:
            return _INODE_V2.pack(2, *fields, self.chunk_shift, self.data_bytes) + self.target
        return _INODE_V1.pack(1, *fields) + self.target

    @classmethod
    def unpack(cls, ino: int, raw: bytes) -> Inode:
        if raw and raw[0] == 1 and len(raw) >= _INODE_V1.size:
            (_, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid) = _INODE_V1.unpack_from(raw)
            return cls(ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid,
                       bytes(raw[_INODE_V1.size:]))
        if raw and raw[0] == 2 and len(raw) >= _INODE_V2.size:
            (_, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid, shift,
             data) = _INODE_V2.unpack_from(raw)
            if not CHUNK_SHIFT_MIN <= shift <= CHUNK_SHIFT_MAX or not stat.S_ISREG(mode) or oid != NO_OBJECT:
                raise RecordError(f"inode {ino}: chunked record with chunk shift {shift}, mode {mode:o}")
            return cls(ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid,
                       bytes(raw[_INODE_V2.size:]), shift, data)
        raise RecordError(f"inode {ino}: unknown record version or short record")

    def copy(self) -> Inode:
        return replace(self)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def has_object(self) -> bool:
        return self.object_id != NO_OBJECT

    @property
    def chunked(self) -> bool:
        """Content stored as fixed-size chunks (C keys) rather than one object."""
        return self.chunk_shift != 0


@dataclass
class ObjectRecord:
    codec: int
    refcount: int
    size: int  # logical (content) size
    stored: int  # physical bytes of the object file
    gen: int = 0  # object file generation: objects/<aa>/<id>.<gen>
    flags: int = 0
    base: bytes = NO_OBJECT  # the object whose pixels this one is coded against (inter); zero: none
    depth: int = 0  # length of the reference chain below this object (0: decodes on its own)
    dependents: int = 0  # objects coded against this one; while > 0 the object is kept (pinned)
    intra_bytes: int = 0  # inter objects: bytes of its intra coding when the encoder measured it (stats)

    @property
    def has_base(self) -> bool:
        return self.base != NO_OBJECT

    @property
    def pinned(self) -> bool:
        """No file names it any more, but other objects are coded against it."""
        return self.refcount == 0 and self.dependents > 0

    @property
    def collectable(self) -> bool:
        return self.refcount == 0 and self.dependents == 0

    def pack(self) -> bytes:
        # v1 while nothing needs v2, so stores without reference chains stay readable by older code
        if self.base == NO_OBJECT and self.depth == 0 and self.dependents == 0:
            return _OBJECT_V1.pack(1, self.codec, self.flags, self.refcount, self.size, self.stored, self.gen)
        return _OBJECT_V2.pack(2, self.codec, self.flags, self.refcount, self.size, self.stored, self.gen,
                               self.base, self.depth, self.dependents, self.intra_bytes)

    @classmethod
    def unpack(cls, raw: bytes) -> ObjectRecord:
        if raw and raw[0] == 1 and len(raw) == _OBJECT_V1.size:
            _, codec, flags, refcount, size, stored, gen = _OBJECT_V1.unpack(raw)
            return cls(codec, refcount, size, stored, gen, flags)
        if raw and raw[0] == 2 and len(raw) == _OBJECT_V2.size:
            _, codec, flags, refcount, size, stored, gen, base, depth, deps, intra = _OBJECT_V2.unpack(raw)
            return cls(codec, refcount, size, stored, gen, flags, bytes(base), depth, deps, intra)
        raise RecordError("object record: unknown version or wrong length")


def pack_chunk(object_id: bytes) -> bytes:
    return _CHUNK_V1.pack(1, object_id)


def unpack_chunk(raw: bytes) -> bytes:
    """The object id a C key names."""
    if len(raw) != _CHUNK_V1.size or raw[0] != 1:
        raise RecordError("chunk record: unknown version or wrong length")
    return bytes(raw[1:])


def pack_dentry(ino: int, mode: int) -> bytes:
    return _DENTRY.pack(ino, stat.S_IFMT(mode) >> 12)


def unpack_dentry(raw: bytes) -> tuple[int, int]:
    """(child ino, file type bits as S_IFMT)."""
    if len(raw) != _DENTRY.size:
        raise RecordError("dentry: wrong length")
    ino, dtype = _DENTRY.unpack(raw)
    return ino, dtype << 12
