"""Ingest processor: similarity descriptors for every stored image, kept in the catalog's index (S/T keys)."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..catalog.records import FLAG_DESCRIBED, FLAG_NOT_IMAGE
from ..similarity import SimilarityIndex
from ..store.envelope import CODEC_VERBATIM

if TYPE_CHECKING:
    from codec.similarity import Descriptors

    from ..vfs.txn import Txn

log = logging.getLogger("simfs.describe")

MAX_PIXELS = 100_000_000  # larger images are not described (bounded memory in the daemon)
# Signatures of the formats Pillow decodes for us; anything else is skipped without trying.
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def decode_image(content: bytes) -> np.ndarray | None:
    """Pixels of an image file (HxW or HxWxC, uint8/uint16), or None if it is not a decodable image."""
    if not content.startswith(_IMAGE_MAGIC):
        return None
    from PIL import Image

    import codec

    if codec.side_bytes(content) > codec.MAX_SIDE_BYTES:
        content = codec.pixel_chunks_only(content)  # huge ancillary chunks: Pillow would read them whole

    try:
        with Image.open(io.BytesIO(content)) as img:
            w, h = img.size
            if w * h > MAX_PIXELS or w * h == 0:
                return None  # checked before decoding: a decompression bomb never expands
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img.convert("I")).clip(0, 65535).astype(np.uint16)
            elif img.mode in ("L", "RGB", "RGBA", "LA"):
                arr = np.asarray(img)
            else:  # palette, CMYK, 1-bit, ...
                arr = np.asarray(img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB"))
    except Exception:  # any decoder failure means "not an image we can describe"
        return None
    return arr


def stored_pixels(objects, chains, record_of) -> Callable[[bytes], np.ndarray | None]:
    """The index's pixel source: decoded pixels of a stored image, to re-derive the local features its
    compact T record left out. A verbatim object is decoded as the descriptor processor decoded it; an
    encoded one through the chain decoder (its LRU of reference pixels: an encoder about to code against
    that candidate finds its pixels there)."""

    def pixels(object_id: bytes) -> np.ndarray | None:
        rec = record_of(object_id)
        if rec is None:
            return None
        if rec.codec == CODEC_VERBATIM:
            return decode_image(objects.read_payload(object_id, rec.gen))
        return chains.pixels(object_id) if chains is not None else None

    return pixels


def describe_content(content: bytes, object_id: bytes = b"") -> Descriptors | None:
    """Descriptors of an image file (mirror image included), or None if it is not a decodable image."""
    pixels = decode_image(content)
    if pixels is None:
        return None
    try:
        from codec.similarity import extract

        return extract(pixels)
    except Exception:
        log.exception("descriptor extraction failed for object %s", object_id.hex())
        return None


class DescriptorProcessor:
    """Extracts codec.similarity descriptors and stages them in the object's ingest batch."""

    name = "descriptors"
    flag = FLAG_DESCRIBED

    def __init__(self, index: SimilarityIndex):
        self.index = index
        self._staged: dict[bytes, object] = {}
        self._lock = threading.Lock()

    def compute(self, object_id: bytes, content: bytes, rec: object = None,
                earlier: dict | None = None) -> Descriptors | None:
        return describe_content(content, object_id)

    def stage(self, txn: Txn, object_id: bytes, result: Descriptors | None, rec: object = None) -> int:
        if result is None:
            return FLAG_NOT_IMAGE
        pending = self.index.stage_put(txn.batch, object_id, result)
        with self._lock:
            self._staged[object_id] = pending
        return 0

    def discard(self, result: Descriptors | None) -> None:
        pass

    def applied(self, object_id: bytes, result: Descriptors | None) -> None:
        with self._lock:
            pending = self._staged.pop(object_id, None)
        if pending is not None:
            self.index.applied(pending)  # type: ignore[arg-type]

    def stage_free(self, txn: Txn, object_id: bytes) -> None:
        pending = self.index.stage_delete(txn.batch, object_id)
        with self._lock:
            self._staged[object_id] = pending

    def freed(self, object_id: bytes) -> None:
        self.applied(object_id, None)
