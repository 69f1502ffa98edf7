"""Reference chains: decode an object coded against another one, with a bounded LRU of decoded reference pixels.

An inter-coded object's blob names its base (the blob's reference id is the base's object id). The
base's pixels come from this cache, or are decoded from the base's own object (verbatim PNG pixels,
or its blob, recursively). Pixels of an object never change (objects are content-addressed; a new
generation of the same object decodes to the same pixels), so the cache is keyed by object id alone.
Nothing decoded here is trusted blindly: every reference's pixels are checked against the pixel hash
the dependent's blob recorded, and every rebuilt file against its object id by the caller.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import CorruptObject
from .envelope import CODEC_VERBATIM
from .local import LocalObjectStore

MAX_CHAIN = 64  # far above any depth limit: a longer walk means a damaged (cyclic) catalog


class RecordLike(Protocol):
    codec: int
    gen: int
    base: bytes

    @property
    def has_base(self) -> bool: ...


class ReferencePixelCache:
    """Decoded pixels by object id, least recently used evicted first, bounded in bytes."""

    def __init__(self, max_bytes: int = 512 << 20):
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._building: dict[bytes, threading.Event] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get_or_build(self, oid: bytes, build: Callable[[], np.ndarray]) -> np.ndarray:
        """Cached pixels, or build() them once even with concurrent callers."""
        while True:
            with self._lock:
                px = self._items.get(oid)
                if px is not None:
                    self._items.move_to_end(oid)
                    self.hits += 1
                    return px
                event = self._building.get(oid)
                if event is None:
                    event = self._building[oid] = threading.Event()
                    self.misses += 1
                    break
            event.wait()
        try:
            px = build()
            px.setflags(write=False)  # shared between readers: never modified in place
            with self._lock:
                if px.nbytes <= self.max_bytes:
                    self._items[oid] = px
                    self._bytes += px.nbytes
                    while self._bytes > self.max_bytes and self._items:
                        _, old = self._items.popitem(last=False)
                        self._bytes -= old.nbytes
            return px
        finally:
            with self._lock:
                self._building.pop(oid, None)
            event.set()

    def drop(self, oid: bytes) -> None:
        with self._lock:
            px = self._items.pop(oid, None)
            if px is not None:
                self._bytes -= px.nbytes

    @property
    def size_bytes(self) -> int:
        return self._bytes


class ChainDecoder:
    """Rebuilds encoded objects and decodes reference pixels, resolving bases through record_of()."""

    def __init__(self, objects: LocalObjectStore, record_of: Callable[[bytes], RecordLike | None],
                 cache: ReferencePixelCache | None = None):
        self.objects = objects
        self.record_of = record_of
        self.cache = cache if cache is not None else ReferencePixelCache()

    def _read(self, oid: bytes) -> tuple[RecordLike, bytes]:
        """(record, payload) of the live generation; retried once if the object switched meanwhile."""
        for _attempt in range(3):
            rec = self.record_of(oid)
            if rec is None:
                raise CorruptObject(oid, "reference object has no catalog record")
            try:
                return rec, self.objects.read_payload(oid, rec.gen)
            except FileNotFoundError:
                continue  # re-encoded between the record read and the file read: read the record again
        raise CorruptObject(oid, "object file missing")

    def pixels(self, oid: bytes, _depth: int = 0) -> np.ndarray:
        """The decoded pixels of any stored PNG object (a verbatim one is parsed, an encoded one decoded)."""
        if _depth > MAX_CHAIN:
            raise CorruptObject(oid, "reference chain too long (cycle in the catalog?)")
        return self.cache.get_or_build(oid, lambda: self._decode_pixels(oid, _depth))

    def _decode_pixels(self, oid: bytes, depth: int) -> np.ndarray:
        import codec

        rec, payload = self._read(oid)
        if rec.codec == CODEC_VERBATIM:
            px = codec.png_pixels(payload)
            if px is None:
                raise CorruptObject(oid, "reference is not a readable PNG")
            return px
        try:
            base = codec.blob_reference(payload)
            ref = codec.Reference(self.pixels(base, depth + 1), base) if base else None
            return codec.decode_pixels(payload, ref)
        except CorruptObject:
            raise
        except Exception as exc:
            raise CorruptObject(oid, f"blob does not decode: {exc}") from exc

    def rebuild(self, oid: bytes, gen: int) -> bytes:
        """The original bytes of an encoded object generation (the caller checks them against oid)."""
        import codec

        blob = self.objects.read_payload(oid, gen)
        try:
            base = codec.blob_reference(blob)
            if not base:
                return codec.decode(blob)
            try:
                ref_px = self.pixels(base, 1)
            except CorruptObject as exc:
                raise CorruptObject(oid, f"its reference {base.hex()[:16]} is damaged: {exc.why}") from exc
            return codec.decode(blob, codec.Reference(ref_px, base))
        except CorruptObject:
            raise
        except Exception as exc:
            raise CorruptObject(oid, f"blob does not decode: {exc}") from exc


def warm_up() -> None:
    """Load the codec's libraries and run the deflaters' self-tests once, in the background at mount,
    so the first cold read after a mount does not pay for them (~0.5 s measured)."""
    try:
        import codec
        from codec import deflate

        codec.self_test()
        deflate.host_ok()
        import cv2  # noqa: F401  (unfiltering)
        import imagecodecs  # noqa: F401  (JPEG XL)
    except Exception as exc:  # a broken deflater is reported where it matters: at the first rebuild
        import logging

        logging.getLogger("simfs").warning("codec warm-up failed: %s", exc)
