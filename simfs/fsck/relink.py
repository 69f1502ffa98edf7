"""After a catalog restore: every object file no restored file names gets a name in /lost+found/."""

from __future__ import annotations

import logging
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog import keys
from ..catalog.records import (
    FLAG_ENCODE_TRIED,
    NO_OBJECT,
    Inode,
    ObjectRecord,
    pack_dentry,
    unpack_chunk,
    unpack_dentry,
)
from ..errors import CorruptObject
from ..storage import OpenStore
from ..store.envelope import CODEC_PNG, CODEC_VERBATIM, HEADER_SIZE, Header

if TYPE_CHECKING:
    from ..catalog.db import Batch

log = logging.getLogger("simfs.fsck")

LOST_FOUND = b"lost+found"
# first bytes of the content -> file name extension (a guess for the user; the name is the content hash)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF8", ".gif"), (b"II*\x00", ".tif"),
          (b"MM\x00*", ".tif"), (b"BM", ".bmp"))


@dataclass
class RelinkResult:
    named: list[str] = field(default_factory=list)  # /lost+found/<hash>.<ext> paths created
    regenerated: list[str] = field(default_factory=list)  # objects whose record now names another file generation
    unreadable: list[str] = field(default_factory=list)  # object files whose header is damaged (left for fsck)


def extension(head: bytes) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    for magic, ext in _MAGIC:
        if head.startswith(magic):
            return ext
    return ".bin"


def _header(opened: OpenStore, oid: bytes, gen: int) -> Header | None:
    try:
        fd = os.open(opened.objects.path_of(oid, gen), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return opened.objects.read_header(fd, oid)
    except CorruptObject:
        return None
    finally:
        os.close(fd)


def _record_from_file(opened: OpenStore, oid: bytes, gen: int, header: Header, old: ObjectRecord | None
                      ) -> ObjectRecord:
    """A record describing the file objects/<oid>.<gen>; counts (refs, dependents, depth) are fsck's to fix.

    An inter blob names its base in its own header (codec.blob_reference), so a file coded against an
    object the restored catalog knows keeps decoding: the record gets that base and fsck's repair pass
    then counts the dependent on the base (which keeps it pinned).
    """
    base = NO_OBJECT
    flags = old.flags if old is not None else 0
    if header.codec == CODEC_PNG:
        import codec

        flags |= FLAG_ENCODE_TRIED  # already coded: the encoder must not take it for a new verbatim file
        try:
            base = codec.blob_reference(opened.objects.read_payload(oid, gen)) or NO_OBJECT
        except Exception:  # damaged blob: recorded anyway, fsck --verify-data reports it (D301)
            log.warning("object %s.%d: blob header unreadable", oid.hex(), gen)
    return ObjectRecord(header.codec, old.refcount if old is not None else 0, header.content_len,
                        HEADER_SIZE + header.payload_len, gen, flags, base)


def _head(opened: OpenStore, oid: bytes, gen: int, header: Header) -> bytes:
    if header.codec != CODEC_VERBATIM:
        return b"\x89PNG\r\n\x1a\n"  # codec blobs rebuild PNG files
    with open(opened.objects.path_of(oid, gen), "rb") as fh:
        fh.seek(HEADER_SIZE)
        return fh.read(16)


def relink_objects(opened: OpenStore) -> RelinkResult:
    """Record and name every object file the (restored) catalog does not account for. One synced batch."""
    cat = opened.catalog
    result = RelinkResult()
    records = {bytes(k[1:]): ObjectRecord.unpack(v) for k, v in cat.scan(keys.OBJECT)}
    named_by_files: set[bytes] = set()
    for k, v in cat.scan(keys.INODE):
        node = Inode.unpack(keys.read_u64(k, 1), v)
        if node.is_reg and node.has_object:
            named_by_files.add(node.object_id)
    for _k, v in cat.scan(keys.CHUNK):
        named_by_files.add(unpack_chunk(v))  # chunks of chunked files
    on_disk: dict[bytes, list[int]] = defaultdict(list)
    for oid, gen, _size in opened.objects.iter_files():
        if oid:
            on_disk[oid].append(gen)
    batch = cat.new_batch()
    to_name: list[tuple[bytes, int, Header]] = []
    for oid, gens in sorted(on_disk.items()):
        rec = records.get(oid)
        headers = {g: h for g in gens if (h := _header(opened, oid, g)) is not None}
        for g in gens:
            if g not in headers:
                result.unreadable.append(opened.objects.path_of(oid, g).name)
        if rec is not None and rec.gen in headers:
            keep = rec.gen
        elif headers:
            # The restored record names a generation deleted since (e.g. the verbatim file a later
            # encoding replaced), or there is no record: the newest readable file takes its place.
            keep = max(headers)
            rec = _record_from_file(opened, oid, keep, headers[keep], rec)
            batch.put(keys.object_key(oid), rec.pack())
            if oid in records:
                result.regenerated.append(f"{oid.hex()}.{keep}")
            records[oid] = rec
        else:
            continue
        for g in headers:
            if g != keep:  # same content in another generation: garbage collection frees it
                batch.put(keys.stale_key(oid, g), b"")
        if oid not in named_by_files:
            to_name.append((oid, keep, headers[keep]))
    if to_name:
        _name_in_lost_found(opened, batch, to_name, records, result)
    cat.write(batch, sync=True)
    return result


def _name_in_lost_found(opened: OpenStore, batch: Batch, to_name: list[tuple[bytes, int, Header]],
                        records: dict[bytes, ObjectRecord], result: RelinkResult) -> None:
    cat = opened.catalog
    root = Inode.unpack(keys.ROOT_INO, cat.get(keys.inode_key(keys.ROOT_INO)) or b"")
    raw_next = cat.get(keys.NEXT_INO)
    next_ino = keys.read_u64(raw_next) if raw_next else keys.ROOT_INO + 1
    existing = cat.get(keys.dentry_key(keys.ROOT_INO, LOST_FOUND))
    if existing is not None:
        lf_ino, lf_type = unpack_dentry(existing)
        if lf_type != stat.S_IFDIR:
            from ..errors import BadStore

            raise BadStore(f"{opened.path}: /lost+found exists and is not a directory; rename it and run the "
                           "restore again")
    else:
        # owned like the root directory, so the user who owns the file system can open it
        lf_ino = next_ino
        next_ino += 1
        lf = Inode(lf_ino, stat.S_IFDIR | 0o700, root.uid, root.gid, 2, 0, root.mtime, root.mtime, root.mtime,
                   parent=keys.ROOT_INO)
        root.nlink += 1
        batch.put(keys.inode_key(lf_ino), lf.pack())
        batch.put(keys.inode_key(keys.ROOT_INO), root.pack())
        batch.put(keys.dentry_key(keys.ROOT_INO, LOST_FOUND), pack_dentry(lf_ino, lf.mode))
    for oid, gen, header in to_name:
        name = (oid.hex() + extension(_head(opened, oid, gen, header))).encode()
        if cat.get(keys.dentry_key(lf_ino, name)) is not None:
            continue
        mtime = opened.objects.path_of(oid, gen).stat().st_mtime_ns  # when the object was written
        node = Inode(next_ino, stat.S_IFREG | 0o644, root.uid, root.gid, 1, header.content_len, mtime, mtime,
                     mtime, object_id=oid)
        next_ino += 1
        batch.put(keys.inode_key(node.ino), node.pack())
        batch.put(keys.dentry_key(lf_ino, name), pack_dentry(node.ino, node.mode))
        # The new name counts in the same batch: were the restore to stop before its repair pass, a
        # named object could otherwise look collectable (refcount 0) and be freed by the next mount.
        rec = records[oid]
        rec.refcount += 1
        batch.put(keys.object_key(oid), rec.pack())
        batch.delete(keys.garbage_key(oid))
        result.named.append("/" + LOST_FOUND.decode() + "/" + name.decode())
    batch.put(keys.NEXT_INO, keys.u64(next_ino))
