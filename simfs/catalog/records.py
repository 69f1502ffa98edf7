"""Catalog values: struct-packed records, each starting with a version byte (never pickle)."""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass, replace

NO_OBJECT = bytes(32)

# version, mode, uid, gid, nlink, size, atime, mtime, ctime (ns), rdev, parent, object id; then a
# variable tail (symlink target).
_INODE_V1 = struct.Struct(">BIIIIQqqqQQ32s")
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

    def pack(self) -> bytes:
        return _INODE_V1.pack(
            1, self.mode, self.uid, self.gid, self.nlink, self.size, self.atime, self.mtime,
            self.ctime, self.rdev, self.parent, self.object_id,
        ) + self.target

    @classmethod
    def unpack(cls, ino: int, raw: bytes) -> Inode:
        if not raw or raw[0] != 1 or len(raw) < _INODE_V1.size:
            raise RecordError(f"inode {ino}: unknown record version or short record")
        (_, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid) = _INODE_V1.unpack_from(raw)
        return cls(ino, mode, uid, gid, nlink, size, atime, mtime, ctime, rdev, parent, oid,
                   bytes(raw[_INODE_V1.size:]))

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


def pack_dentry(ino: int, mode: int) -> bytes:
    return _DENTRY.pack(ino, stat.S_IFMT(mode) >> 12)


def unpack_dentry(raw: bytes) -> tuple[int, int]:
    """(child ino, file type bits as S_IFMT)."""
    if len(raw) != _DENTRY.size:
        raise RecordError("dentry: wrong length")
    ino, dtype = _DENTRY.unpack(raw)
    return ino, dtype << 12
