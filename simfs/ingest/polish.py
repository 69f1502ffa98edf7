"""The polish pass: payloads a fast first encoding coded at a low JPEG XL effort, re-coded at the final one.

The first pass (`EncodeOptions.first_effort`, default 1: libjxl's fast lossless path, ~100 MP/s)
makes every PNG small quickly; this processor then re-encodes each blob's payload at
`EncodeOptions.effort` in a codec worker process and switches the object's file when that is
smaller (the same crash-safe switch as the encoder's: new generation first, old file freed once the
batch is durable). The codec verifies the new payload decodes to the same pixels, so neither the
reference nor a PNG rebuild is needed. Objects already at the final effort, verbatim ones and
unreadable ones are only flagged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import codec

from ..catalog.records import FLAG_POLISHED, ObjectRecord
from ..errors import CorruptObject
from ..store.envelope import CODEC_PNG, HEADER_SIZE
from ..store.local import StagingFile
from .jobs import repack_blob
from .pool import CodecPool, JobFailed

if TYPE_CHECKING:
    from ..vfs.txn import Txn
    from .encode import EncodeProcessor

log = logging.getLogger("simfs.ingest.polish")


@dataclass
class Polished:
    staging: StagingFile
    stored: int
    before: int


class PolishProcessor:
    """Re-codes first-pass payloads at the final effort, one object at a time, after its encoding."""

    name = "polish"
    flag = FLAG_POLISHED
    slow = True
    needs_content = False  # works on the stored blob: the file is not rebuilt for it

    def __init__(self, encoder: EncodeProcessor, pool: CodecPool, effort: int):
        self.encoder = encoder
        self.pool = pool
        self.effort = effort
        self.log_stats = {"polished": 0, "unchanged": 0}

    def compute(self, object_id: bytes, content: bytes, rec: ObjectRecord, earlier: dict[str, Any]) -> Polished | None:
        if rec.codec != CODEC_PNG or rec.refcount == 0:
            return None
        try:
            blob = self.encoder.objects.read_payload(object_id, rec.gen)
            effort = codec.blob_effort(blob)
        except (CorruptObject, codec.CorruptBlob, OSError) as exc:
            log.info("polish: object %s not readable (%s); left as it is", object_id.hex()[:16], exc)
            return None
        if effort is None or effort >= self.effort:
            return None
        try:
            new = self.pool.run(repack_blob, blob, self.effort)
        except JobFailed as exc:
            log.info("polish of %s not finished (%s)", object_id.hex()[:16], exc)
            return None
        if new is None:
            self.log_stats["unchanged"] += 1
            return None
        staging = self.encoder._write_staging(object_id, new, rec.size)
        return Polished(staging, HEADER_SIZE + len(new), rec.stored)

    def stage(self, txn: Txn, object_id: bytes, result: Polished | None, rec: ObjectRecord) -> int:
        if result is None:
            return 0
        if rec.codec != CODEC_PNG or rec.stored != result.before:
            self.discard(result)  # re-coded meanwhile (re-planning): that coding is flagged as it is
            return 0
        self.encoder._switch_file(txn, object_id, result, rec)
        extra = self.encoder.stage_drop_local(txn, object_id, rec, result.stored)
        log.info("polished %s: %d -> %d bytes (JPEG XL effort %d)", object_id.hex()[:16], result.before,
                 result.stored, self.effort)
        self.log_stats["polished"] += 1
        return extra

    def discard(self, result: Polished | None) -> None:
        if result is not None:
            result.staging.discard()

    def applied(self, object_id: bytes, result: Polished | None) -> None:
        pass

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        pass

    def freed(self, object_id: bytes) -> None:
        pass
