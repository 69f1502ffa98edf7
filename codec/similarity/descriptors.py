"""Image descriptors for similarity search: pixel hash, perceptual copy hash, ORB+TEBLID local features, global code."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from . import globalcode

FORMAT_VERSION = 1
MAX_SIDE = 640  # local features and hashes are computed on a <= 640 px grey copy (FINDINGS 6)
N_KEYPOINTS = 500
LOW_TEXTURE_KEYPOINTS = 40  # below this, VLAD codes of different images degenerate towards one point
COORD_SCALE = 32  # keypoint coordinates stored as u16 in 1/32 px of the grey copy (640*32 < 65536)
SPREAD_GRID = 4  # keypoints are packed in spatial-priority order: the strongest of each of 4x4 cells first

_F_LOW = 1
_F_MIRROR = 2
_HEADER = struct.Struct(">BBIIQ16s32s")  # version, flags, width, height, copy hash, pixel hash, global code
_LOCAL_HEADER = struct.Struct(">HHH")  # count, grey width, grey height

# ORB/TEBLID objects are not thread-safe to share; creating them costs ~20 us, so make them per call.


def _orb() -> cv2.ORB:
    return cv2.ORB_create(nfeatures=N_KEYPOINTS, scaleFactor=1.2, nlevels=8, edgeThreshold=31, fastThreshold=12)  # type: ignore[attr-defined]  # absent from some OpenCV stub releases


def _teblid():
    return cv2.xfeatures2d.TEBLID_create(1.0, cv2.xfeatures2d.TEBLID_SIZE_256_BITS)


@dataclass
class Descriptors:
    pixel_hash: bytes  # 16 bytes, blake2b-128 of dtype, shape and pixel bytes: exact-pixel duplicates
    copy_hash: int  # 64-bit DCT pHash of the grey copy: resizes, recompression, exposure, grey
    global_code: bytes  # 32 bytes: VLAD->PCA->ITQ of local features (or a thumbnail code if low_texture)
    local: bytes  # packed keypoints + TEBLID descriptors (see pack_local)
    low_texture: bool
    width: int = 0  # original image size; keypoints live in the grey copy's coordinates
    height: int = 0
    # Query side only (not persisted by the index): the same features of the mirrored image, because
    # ORB/TEBLID are rotation- but not flip-invariant. Empty when not computed.
    mirror_code: bytes = b""
    mirror_local: bytes = b""

    def to_bytes(self, *, include_mirror: bool = False) -> bytes:
        mirror = include_mirror and bool(self.mirror_code)
        flags = (_F_LOW if self.low_texture else 0) | (_F_MIRROR if mirror else 0)
        parts = [
            _HEADER.pack(FORMAT_VERSION, flags, self.width, self.height, self.copy_hash, self.pixel_hash,
                         self.global_code),
            struct.pack(">I", len(self.local)),
            self.local,
        ]
        if mirror:
            parts += [self.mirror_code, struct.pack(">I", len(self.mirror_local)), self.mirror_local]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Descriptors:
        if not raw or raw[0] != FORMAT_VERSION:
            raise ValueError(f"unknown descriptor version {raw[:1]!r}")
        version, flags, w, h, ch, ph, gc = _HEADER.unpack_from(raw, 0)
        off = _HEADER.size
        (n,) = struct.unpack_from(">I", raw, off)
        off += 4
        local = bytes(raw[off:off + n])
        off += n
        mc = ml = b""
        if flags & _F_MIRROR:
            mc = bytes(raw[off:off + 32])
            off += 32
            (n,) = struct.unpack_from(">I", raw, off)
            off += 4
            ml = bytes(raw[off:off + n])
            off += n
        if off != len(raw) or len(local) < _LOCAL_HEADER.size:
            raise ValueError("descriptor record has the wrong length")
        return cls(ph, ch, gc, local, bool(flags & _F_LOW), w, h, mc, ml)

    @property
    def n_keypoints(self) -> int:
        return _LOCAL_HEADER.unpack_from(self.local, 0)[0] if self.local else 0


def pixel_hash(pixels: np.ndarray) -> bytes:
    a = np.ascontiguousarray(pixels)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(a.tobytes() if not a.flags.c_contiguous else a.data.cast("B"))
    return h.digest()


def grey_copy(pixels: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """<= max_side px uint8 grey copy. Huge inputs are stride-subsampled first so time/memory stay bounded."""
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"unsupported pixel array shape {a.shape}")
    h, w = a.shape[:2]
    # Keep at least 2x the target resolution before the area-filtered resize (limits aliasing).
    step = max(1, max(h, w) // (2 * max_side))
    a = a[::step, ::step]
    if a.ndim == 3:
        if a.shape[2] >= 3:
            a = a[:, :, 0] * np.float32(0.299) + a[:, :, 1] * np.float32(0.587) + a[:, :, 2] * np.float32(0.114)
        else:  # grey + alpha: alpha is ignored (photos)
            a = a[:, :, 0].astype(np.float32)
    else:
        a = a.astype(np.float32)
    if pixels.dtype == np.uint16:
        a = a * np.float32(1 / 257)
    elif pixels.dtype != np.uint8:
        a = a * np.float32(255.0 / max(1.0, float(np.max(a))))
    h, w = a.shape
    scale = max_side / max(h, w)
    if scale < 1:
        a = cv2.resize(a, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def phash64(grey: np.ndarray) -> int:
    """64-bit DCT perceptual hash: signs of the 8x8 lowest frequencies against their median."""
    small = cv2.resize(grey.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    block = cv2.dct(small)[:8, :8].ravel()
    bits = block > np.median(block[1:])
    return int(np.packbits(bits).view(">u8")[0])


def spread_order(xy: np.ndarray, response: np.ndarray, grey_shape: tuple[int, int]) -> np.ndarray:
    """Indices of the keypoints in spatial-priority order: round robin over a SPREAD_GRID x SPREAD_GRID grid,
    strongest first within each cell. Any prefix is then a well spread subset of the strongest corners,
    which verifies more pairs than the same number of strongest corners (measured: bench_similarity)."""
    h, w = grey_shape
    g = SPREAD_GRID
    cx = np.minimum(g - 1, (xy[:, 0] * g / max(1, w)).astype(np.int64))
    cy = np.minimum(g - 1, (xy[:, 1] * g / max(1, h)).astype(np.int64))
    cell = cy * g + cx
    by_cell = np.lexsort((-response, cell))  # cell by cell, strongest first
    rank = np.empty(len(xy), np.int64)
    starts = np.searchsorted(cell[by_cell], np.arange(g * g))
    rank[by_cell] = np.arange(len(xy)) - starts[cell[by_cell]]
    return np.lexsort((-response, rank))  # every cell's best, then every cell's second best, ...


def pack_local(kps, desc: np.ndarray | None, grey_shape: tuple[int, int]) -> bytes:
    """Header + u16 x, y (1/COORD_SCALE px) of every keypoint + its 32-byte descriptor, in spread_order."""
    n = 0 if desc is None else len(desc)
    h, w = grey_shape
    head = _LOCAL_HEADER.pack(n, w, h)
    if n == 0:
        return head
    xy = np.array([kp.pt for kp in kps], dtype=np.float32)
    order = spread_order(xy, np.array([kp.response for kp in kps], dtype=np.float32), grey_shape)
    xy = xy[order]
    desc = np.asarray(desc)[order]
    q = np.clip(np.round(xy * COORD_SCALE), 0, 65535).astype(">u2")
    return head + q.tobytes() + np.ascontiguousarray(desc, dtype=np.uint8).tobytes()


def compact_local(blob: bytes, keep: int) -> bytes:
    """The first `keep` keypoints of a packed local-feature blob (the best spread ones, see spread_order)."""
    n, w, h = _LOCAL_HEADER.unpack_from(blob, 0)
    if n <= keep:
        return bytes(blob)
    off = _LOCAL_HEADER.size
    return (_LOCAL_HEADER.pack(keep, w, h) + bytes(blob[off:off + 4 * keep])
            + bytes(blob[off + 4 * n:off + 4 * n + 32 * keep]))


def unpack_local(blob: bytes) -> tuple[np.ndarray, np.ndarray, int, int]:
    """-> (xy float32 (n,2) in grey-copy pixels, descriptors uint8 (n,32), grey width, grey height)."""
    n, w, h = _LOCAL_HEADER.unpack_from(blob, 0)
    off = _LOCAL_HEADER.size
    xy = np.frombuffer(blob, dtype=">u2", count=2 * n, offset=off).reshape(n, 2).astype(np.float32) / COORD_SCALE
    desc = np.frombuffer(blob, dtype=np.uint8, count=32 * n, offset=off + 4 * n).reshape(n, 32)
    return xy, desc, w, h


def local_features(grey: np.ndarray):
    """ORB keypoints (strongest N_KEYPOINTS) described with TEBLID-256: -> (keypoints, descriptors or None)."""
    if min(grey.shape) < 64:  # ORB's border and pyramid need room; such images are low texture anyway
        return [], None
    kps = _orb().detect(grey, None)
    if not kps:
        return [], None
    kps, desc = _teblid().compute(grey, kps)
    if desc is None or len(kps) == 0:
        return [], None
    return kps, desc


def extract(pixels: np.ndarray, *, mirror: bool = True) -> Descriptors:
    """All descriptors of one decoded image (HxW or HxWxC, uint8/uint16).

    mirror=True also computes the mirrored image's code and local features (~+4 ms) so a query can
    find flipped copies; the index stores only the unmirrored fields.
    """
    arr = np.asarray(pixels)
    grey = grey_copy(arr)
    kps, desc = local_features(grey)
    low = desc is None or len(desc) < LOW_TEXTURE_KEYPOINTS
    thumb = globalcode.colour_thumbnail(arr) if low else None
    if thumb is not None:
        gcode = globalcode.thumbnail_code(thumb)
    else:
        assert desc is not None  # not low texture means descriptors were found
        gcode = globalcode.encode(desc)
    d = Descriptors(
        pixel_hash=pixel_hash(arr),
        copy_hash=phash64(grey),
        global_code=gcode,
        local=pack_local(kps, desc, grey.shape),
        low_texture=low,
        width=int(arr.shape[1]),
        height=int(arr.shape[0]),
    )
    if mirror:
        mg = np.ascontiguousarray(grey[:, ::-1])
        mk, md = local_features(mg)
        d.mirror_local = pack_local(mk, md, mg.shape)
        if thumb is not None:
            d.mirror_code = globalcode.thumbnail_code(thumb[:, ::-1])
        else:
            d.mirror_code = globalcode.encode(md) if md is not None and len(md) else gcode
    return d
