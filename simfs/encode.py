"""Ingest processor: re-encode verbatim PNG objects with the codec (lossless, byte-exact rebuild) when smaller.

Intra only for now (each PNG on its own, JPEG XL); coding against a similar stored image is the next
step (developer-notes/plan-encoded-objects.md). The encoded blob is verified twice before it can
replace the verbatim bytes: the codec decodes and compares it, and this processor checks that the
decoded bytes hash to the object id. The old file is deleted only after the switch is durable.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from .catalog import keys
from .catalog.records import ObjectRecord
from .store.envelope import CODEC_PNG, CODEC_VERBATIM, HEADER_SIZE, Header
from .store.local import LocalObjectStore, StagingFile

if TYPE_CHECKING:
    from .vfs import Txn

log = logging.getLogger("simfs.encode")

FLAG_ENCODE_TRIED = 1 << 2  # ObjectRecord.flags: the encoder has looked at this object
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Encoded:
    staging: StagingFile
    stored: int
    mode: str


class EncodeProcessor:
    name = "encode"
    flag = FLAG_ENCODE_TRIED

    def __init__(self, objects: LocalObjectStore, *, effort: int = 7):
        self.objects = objects
        self.effort = effort

    def compute(self, object_id: bytes, content: bytes) -> Encoded | None:
        if not content.startswith(PNG_SIGNATURE):
            return None
        try:
            import codec

            result = codec.encode(content, effort=self.effort)
            blob = result.blob
            if result.mode == "verbatim" or blob is None or HEADER_SIZE + len(blob) >= len(content):
                return None
            if hashlib.sha256(codec.decode(blob)).digest() != object_id:  # belt and braces
                log.error("encoded form of %s does not rebuild it; kept verbatim", object_id.hex())
                return None
        except Exception:
            log.exception("encoding object %s failed; kept verbatim", object_id.hex())
            return None
        staging = self.objects.new_staging("enc")
        try:
            os.pwrite(staging.fd, blob, HEADER_SIZE)
            header = Header(CODEC_PNG, 0, len(blob), len(content), xxhash.xxh3_64_intdigest(blob), object_id)
            os.pwrite(staging.fd, header.pack(), 0)
            os.fsync(staging.fd)  # durable before the catalog can name it
        except BaseException:
            staging.discard()
            raise
        return Encoded(staging, HEADER_SIZE + len(blob), result.mode)

    def stage(self, txn: Txn, object_id: bytes, result: Encoded | None, rec: ObjectRecord) -> int:
        if result is None or rec.codec != CODEC_VERBATIM:
            self.discard(result)
            return 0
        new_gen = rec.gen + 1
        final = self.objects.path_of(object_id, new_gen)
        result.staging.close()
        os.rename(result.staging.path, final)
        from .format import fsync_dir

        fsync_dir(final.parent)
        # the verbatim file goes once this batch is durable (garbage collection after a WAL sync)
        txn.put(keys.stale_key(object_id, rec.gen), b"")
        txn.vfs.garbage_pending = True
        txn.stored_delta += result.stored - rec.stored
        rec.codec, rec.gen, rec.stored = CODEC_PNG, new_gen, result.stored
        return 0

    def discard(self, result: Encoded | None) -> None:
        if result is not None:
            result.staging.discard()

    def applied(self, object_id: bytes, result: Encoded | None) -> None:
        pass

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        pass

    def freed(self, object_id: bytes) -> None:
        pass
