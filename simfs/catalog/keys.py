"""Every catalog key: one-byte prefixes, big-endian fixed-width integers, so prefix scans come back in order.

All keys (catalog format version 1):

  b"F"                           -> STORE/FORMAT JSON (copy; the file is authoritative, the copy detects
                                    a catalog from another store)
  b"N"                           -> next inode number to hand out (u64 BE)
  b"I" ino(u64)                  -> inode record (records.Inode)
  b"D" parent(u64) name(bytes)   -> dentry: child ino (u64) + d_type (u8)
  b"X" ino(u64) name(bytes)      -> extended attribute value (raw bytes)
  b"C" ino(u64) index(u64)       -> chunk of a chunked file (inode record v2): version + object id of the
                                    bytes [index << shift, ...) (records.pack_chunk); no key: a hole. The
                                    object may be shorter than the chunk (the rest reads as zeros)
  b"O" object_id(32)             -> object record (records.ObjectRecord); object_id = sha256 of content
  b"G" object_id(32)             -> (empty) object whose refcount reached 0; its file is deleted only
                                    after the WAL holding that decrement is synced (garbage list)
  b"U" ino(u64)                  -> (empty) orphan: inode with nlink 0 that was still open; reclaimed
                                    at next mount if the daemon died before the last close
  b"V" object_id(32) gen(u32)    -> (empty) a superseded file generation of that object (replaced by its
                                    encoded form); deleted once the WAL holding the switch is synced
  b"R" object_id(32) base(32)    -> (empty) re-planning job: re-encode object against base (a better base
                                    stored after it); written with the base's ingest batch, deleted when
                                    the job is done or dropped
  b"S" object_id(32)             -> similarity record (simfs/similarity/index.py): copy hash, pixel hash,
                                    global code, flags; loaded into RAM at mount
  b"T" object_id(32)             -> local features of that image (read only to verify candidates)

Invariants (fsck checks every one):
  - every dentry names an existing inode; every inode except the root has nlink == number of dentries
    naming it (directories: 2 + number of child directories), unless it is an orphan (U key, nlink 0)
  - a directory has exactly one dentry; its parent field names the directory holding that dentry
  - an inode's object, when set, has an O record; O.refcount == number of inodes naming it
  - a C key belongs to a chunked inode, lies below its size and names an O record no longer than the
    chunk; O.refcount counts C keys too; the inode's data_bytes is the sum of its chunk objects' sizes
  - G exists exactly for O records with refcount 0
  - every O record has its file on disk, with the recorded physical size
  - S and T exist together, only for live objects whose record has flag DESCRIBED and not NOT_IMAGE
    (simfs/describe.py); a DESCRIBED image object has both
"""

from __future__ import annotations

import struct

FORMAT = b"F"
NEXT_INO = b"N"
INODE = b"I"
DENTRY = b"D"
XATTR = b"X"
OBJECT = b"O"
CHUNK = b"C"
GARBAGE = b"G"
ORPHAN = b"U"
STALE = b"V"
REPLAN = b"R"
SIMILARITY = b"S"  # layout owned by simfs/similarity/index.py
SIMILARITY_LOCAL = b"T"

ROOT_INO = 1

_U64 = struct.Struct(">Q")


def u64(value: int) -> bytes:
    return _U64.pack(value)


def read_u64(raw: bytes, offset: int = 0) -> int:
    return _U64.unpack_from(raw, offset)[0]


def inode_key(ino: int) -> bytes:
    return INODE + u64(ino)


def dentry_key(parent: int, name: bytes) -> bytes:
    return DENTRY + u64(parent) + name


def dentry_prefix(parent: int) -> bytes:
    return DENTRY + u64(parent)


def xattr_key(ino: int, name: bytes) -> bytes:
    return XATTR + u64(ino) + name


def xattr_prefix(ino: int) -> bytes:
    return XATTR + u64(ino)


def chunk_key(ino: int, index: int) -> bytes:
    return CHUNK + u64(ino) + u64(index)


def chunk_prefix(ino: int) -> bytes:
    return CHUNK + u64(ino)


def chunk_index(key: bytes) -> int:
    return read_u64(key, 9)


def object_key(object_id: bytes) -> bytes:
    return OBJECT + object_id


def garbage_key(object_id: bytes) -> bytes:
    return GARBAGE + object_id


def stale_key(object_id: bytes, gen: int) -> bytes:
    return STALE + object_id + gen.to_bytes(4, "big")


def replan_key(object_id: bytes, base: bytes) -> bytes:
    return REPLAN + object_id + base


def orphan_key(ino: int) -> bytes:
    return ORPHAN + u64(ino)
