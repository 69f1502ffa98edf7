"""Pinned deflater: classic zlib from the cmeel-zlib wheel, driven through ctypes.

Python's ``zlib`` module and Pillow link the host's libz, which may be zlib-ng (never
byte-identical to zlib). Rebuilding a PNG byte for byte needs the same deflater on every
host, so re-deflating goes through the shared library shipped by the ``cmeel-zlib``
dependency. Inflating may use any correct inflater (its output is defined by the format).

The wheel's libz is an unoptimised (-O0) build, ~2x slower than a distribution libz with
identical output. SIMFS_CODEC_LIBZ=/path/libz.so selects another classic zlib for measurements;
self_test() still refuses it unless it reproduces the test vectors byte for byte.

Fast path: when the host's libz (Python's ``zlib`` module) reproduces the same test vectors it is
a classic zlib with identical output, and rebuilds use it (``host_ok()``); callers check the rebuilt
bytes against their SHA-256 anyway and fall back to the pinned library when they differ.
SIMFS_CODEC_NO_HOST_ZLIB=1 disables the fast path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

Z_OK = 0
Z_STREAM_END = 1
Z_NO_FLUSH = 0
Z_FINISH = 4
Z_BUF_ERROR = -5
Z_BLOCK = 5

# Strategies (zlib.h)
STRATEGIES = {0: "default", 1: "filtered", 2: "huffman", 3: "rle", 4: "fixed"}


class DeflaterUnavailable(RuntimeError):
    """The pinned zlib could not be loaded or does not produce the expected bytes."""


class _ZStream(ctypes.Structure):
    _fields_ = [
        ("next_in", ctypes.c_void_p),
        ("avail_in", ctypes.c_uint),
        ("total_in", ctypes.c_ulong),
        ("next_out", ctypes.c_void_p),
        ("avail_out", ctypes.c_uint),
        ("total_out", ctypes.c_ulong),
        ("msg", ctypes.c_char_p),
        ("state", ctypes.c_void_p),
        ("zalloc", ctypes.c_void_p),
        ("zfree", ctypes.c_void_p),
        ("opaque", ctypes.c_void_p),
        ("data_type", ctypes.c_int),
        ("adler", ctypes.c_ulong),
        ("reserved", ctypes.c_ulong),
    ]


@dataclass(frozen=True)
class DeflateParams:
    """zlib deflateInit2 parameters that (together with the input) fix the output bytes."""

    level: int
    mem_level: int
    strategy: int
    wbits: int

    def as_list(self) -> list[int]:
        return [self.level, self.mem_level, self.strategy, self.wbits]


def _find_library() -> Path:
    """Locate libz inside the cmeel prefix of the installed cmeel-zlib wheel (never the host's)."""
    override = os.environ.get("SIMFS_CODEC_LIBZ")
    if override:
        return Path(override)
    try:
        import cmeel  # type: ignore[import-not-found]

        roots = [Path(cmeel.__file__).resolve().parent.parent / "cmeel.prefix"]
    except Exception:  # pragma: no cover - cmeel missing
        roots = []
    import sys

    for p in sys.path:
        roots.append(Path(p) / "cmeel.prefix")
    for root in roots:
        for sub in ("lib", "lib64"):
            for name in ("libz.so.1.3.2", "libz.so.1", "libz.so", "libz.dylib"):
                cand = root / sub / name
                if cand.exists():
                    return cand
    raise DeflaterUnavailable("cmeel-zlib shared library not found (is the cmeel-zlib wheel installed?)")


_lib = None
_lib_path: Path | None = None
_lock = threading.Lock()


def _load():
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = _find_library()
            # RTLD_LOCAL so our symbols do not collide with the host libz already loaded by Python.
            lib = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)
            lib.zlibVersion.restype = ctypes.c_char_p
            lib.deflateInit2_.argtypes = [
                ctypes.POINTER(_ZStream), ctypes.c_int, ctypes.c_int, ctypes.c_int,
                ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
            ]
            lib.deflateInit2_.restype = ctypes.c_int
            lib.deflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
            lib.deflate.restype = ctypes.c_int
            lib.deflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
            lib.deflateEnd.restype = ctypes.c_int
            lib.deflateSetDictionary.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_char_p, ctypes.c_uint]
            lib.deflateSetDictionary.restype = ctypes.c_int
            lib.inflateInit2_.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.inflateInit2_.restype = ctypes.c_int
            lib.inflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
            lib.inflate.restype = ctypes.c_int
            lib.inflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
            lib.inflateEnd.restype = ctypes.c_int
            _lib_path = path
            _lib = lib
    return _lib


def zlib_version() -> str:
    return _load().zlibVersion().decode()


def deflater_identity() -> str:
    """Stable name of the deflater whose bytes blobs rely on (recorded in every blob)."""
    return f"zlib-{zlib_version()}"


class _Deflater:
    """One deflate stream over the pinned library (a thin RAII wrapper)."""

    def __init__(self, p: DeflateParams, *, raw: bool = False, zdict: bytes = b""):
        self.lib = _load()
        self.strm = _ZStream()
        ver = self.lib.zlibVersion()
        rc = self.lib.deflateInit2_(
            ctypes.byref(self.strm), p.level, 8, -p.wbits if raw else p.wbits, p.mem_level, p.strategy, ver,
            ctypes.sizeof(_ZStream),
        )
        if rc != Z_OK:
            raise ValueError(f"deflateInit2 failed ({rc}) for {p}")
        self.open = True
        if zdict and self.lib.deflateSetDictionary(ctypes.byref(self.strm), zdict, len(zdict)) != Z_OK:
            self.close()
            raise ValueError("deflateSetDictionary failed")

    def close(self) -> None:
        if self.open:
            self.lib.deflateEnd(ctypes.byref(self.strm))
            self.open = False

    def __del__(self):  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass


def _chunks(raw: bytes, step: int):
    for off in range(0, len(raw), step):
        yield off, min(step, len(raw) - off)


class _HostStreamCompressor:
    """StreamCompressor over the host's classic zlib (Python's zlib module; releases the GIL)."""

    def __init__(self, p: DeflateParams):
        self.c = zlib.compressobj(p.level, zlib.DEFLATED, p.wbits, p.mem_level, p.strategy)
        self.out: list[bytes] = []

    def feed(self, data: bytes) -> None:
        if data:
            self.out.append(self.c.compress(data))

    def finish(self) -> bytes:
        self.out.append(self.c.flush())
        return b"".join(self.out)


def stream_compressor(p: DeflateParams, *, host: bool = False):
    """An incremental deflater: the host's zlib when ``host`` and host_ok(), else the pinned one."""
    return _HostStreamCompressor(p) if host and host_ok() else StreamCompressor(p)


class StreamCompressor:
    """Incremental deflate with the pinned zlib. For levels 1-9 zlib's output does not depend on
    how the input is split (Z_NO_FLUSH), so a rebuild can deflate rows while later rows are still
    being filtered in another thread."""

    def __init__(self, p: DeflateParams, out_chunk: int = 1 << 18):
        self.d = _Deflater(p)
        self.out_chunk = out_chunk
        self.buf = ctypes.create_string_buffer(out_chunk)
        self.out: list[bytes] = []
        self.done = False

    def _run(self, data: bytes, flush: int) -> None:
        s = self.d.strm
        keep = bytes(data)
        s.next_in = ctypes.cast(ctypes.c_char_p(keep), ctypes.c_void_p).value or 0
        s.avail_in = len(keep)
        while True:
            s.next_out = ctypes.addressof(self.buf)
            s.avail_out = self.out_chunk
            rc = self.d.lib.deflate(ctypes.byref(s), flush)
            got = self.out_chunk - s.avail_out
            if got:
                self.out.append(ctypes.string_at(self.buf, got))
            if rc == Z_STREAM_END:
                self.done = True
                return
            if rc not in (Z_OK, Z_BUF_ERROR):
                raise RuntimeError(f"deflate failed ({rc})")
            if flush == Z_NO_FLUSH and s.avail_in == 0 and s.avail_out != 0:
                return

    def feed(self, data: bytes) -> None:
        if data:
            self._run(data, Z_NO_FLUSH)

    def finish(self) -> bytes:
        try:
            self._run(b"", Z_FINISH)
            return b"".join(self.out)
        finally:
            self.d.close()


def _finish(d: _Deflater, data, out_chunk: int) -> bytes:
    """Deflate all of ``data`` to the end of the stream (Z_FINISH) on ``d``, which it closes."""
    try:
        keep = bytes(data)
        buf = ctypes.create_string_buffer(out_chunk)
        out = bytearray()
        s = d.strm
        s.next_in = ctypes.cast(ctypes.c_char_p(keep), ctypes.c_void_p).value or 0
        s.avail_in = len(keep)
        while True:
            s.next_out = ctypes.addressof(buf)
            s.avail_out = out_chunk
            rc = d.lib.deflate(ctypes.byref(s), Z_FINISH)
            out += buf.raw[: out_chunk - s.avail_out]
            if rc == Z_STREAM_END:
                return bytes(out)
            if rc not in (Z_OK, Z_BUF_ERROR):
                raise RuntimeError(f"deflate failed ({rc})")
    finally:
        d.close()


def compress(raw: bytes, p: DeflateParams, *, out_chunk: int = 1 << 18) -> bytes:
    """Deflate ``raw`` with the pinned zlib (zlib wrapper: header + data + Adler-32)."""
    return _finish(_Deflater(p), raw, out_chunk)


def raw_deflate(data, p: DeflateParams, zdict: bytes = b"", *, host: bool = False) -> bytes:
    """Raw deflate (no zlib header or trailer) of ``data`` to the end (Z_FINISH), the window primed
    with ``zdict``: one segment of a split re-deflate (codec.split_deflate)."""
    if host and host_ok():
        c = zlib.compressobj(p.level, zlib.DEFLATED, -p.wbits, p.mem_level, p.strategy,
                             **({"zdict": zdict} if zdict else {}))
        return c.compress(data) + c.flush()
    return _finish(_Deflater(p, raw=True, zdict=bytes(zdict)), data, max(1 << 16, len(data) // 2))


def block_boundaries(body: bytes, wbits: int = 15) -> list[tuple[int, int]]:
    """(inflated offset, bit offset) of every boundary between two deflate blocks of the raw
    deflate stream ``body`` (inflate with Z_BLOCK, as zlib's zran example does); [] when the
    stream does not inflate cleanly."""
    lib = _load()
    strm = _ZStream()
    if lib.inflateInit2_(ctypes.byref(strm), -wbits, lib.zlibVersion(), ctypes.sizeof(_ZStream)) != Z_OK:
        return []
    try:
        keep = bytes(body)
        strm.next_in = ctypes.cast(ctypes.c_char_p(keep), ctypes.c_void_p).value or 0
        strm.avail_in = len(keep)
        size = 1 << 20
        buf = ctypes.create_string_buffer(size)  # a rolling output window: inflate keeps its own
        points: list[tuple[int, int]] = []
        while True:
            strm.next_out = ctypes.addressof(buf)
            strm.avail_out = size
            rc = lib.inflate(ctypes.byref(strm), Z_BLOCK)
            if rc == Z_STREAM_END:
                return points
            if rc != Z_OK and not (rc == Z_BUF_ERROR and strm.avail_in):
                return []
            dt = strm.data_type
            if dt & 128 and not dt & 64 and strm.total_out:
                points.append((strm.total_out, strm.total_in * 8 - (dt & 7)))
    finally:
        lib.inflateEnd(ctypes.byref(strm))


def reproduces(raw: bytes, target: bytes, p: DeflateParams, *, skip_header: int = 2,
               in_chunk: int = 1 << 15, prefix: int | None = None) -> bool:
    """True if deflating ``raw`` with ``p`` gives ``target`` (ignoring its first ``skip_header`` bytes);
    with ``prefix``, True as soon as that many output bytes matched (the caller verifies the rest).

    Compares output as it is produced and stops at the first differing byte, so a wrong
    candidate usually costs only the first deflate block (this is what makes the search fast).
    """
    d = _Deflater(p)
    try:
        raw = bytes(raw)
        base = ctypes.cast(ctypes.c_char_p(raw), ctypes.c_void_p).value or 0
        out_size = 1 << 16
        buf = ctypes.create_string_buffer(out_size)
        s = d.strm
        pos = 0  # bytes of output produced so far
        tlen = len(target)
        n = len(raw)
        fed = 0
        while True:
            take = min(in_chunk, n - fed)
            s.next_in = base + fed
            s.avail_in = take
            fed += take
            flush = Z_FINISH if fed >= n else Z_NO_FLUSH
            while True:
                s.next_out = ctypes.addressof(buf)
                s.avail_out = out_size
                rc = d.lib.deflate(ctypes.byref(s), flush)
                got = out_size - s.avail_out
                if got:
                    lo = max(pos, skip_header)
                    hi = pos + got
                    if hi > tlen:
                        return False
                    if hi > lo and buf.raw[lo - pos: got] != target[lo:hi]:
                        return False
                    pos = hi
                    if prefix is not None and pos >= prefix:
                        return True
                if rc == Z_STREAM_END:
                    return pos == tlen
                if rc not in (Z_OK, Z_BUF_ERROR):
                    return False
                if flush == Z_NO_FLUSH and s.avail_in == 0 and s.avail_out != 0:
                    break  # needs more input
    finally:
        d.close()


# Test vectors: deterministic inputs and the SHA-256 of the pinned deflater's output. classic zlib
# 1.2.x/1.3.x agree on these; zlib-ng and other deflaters do not, so a mismatch means blobs made
# elsewhere may not rebuild here.
def _vector_inputs() -> list[bytes]:
    text = b"".join(b"simfs row %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(3000))
    h = hashlib.sha256(b"seed").digest()
    noise = bytearray()
    while len(noise) < 200_000:
        h = hashlib.sha256(h).digest()
        noise += h
    # smooth-ish "image" bytes: mostly small deltas, like filtered photo rows
    smooth = bytes((b % 7) for b in noise[:150_000])
    return [text, bytes(noise), smooth]


VECTOR_PARAMS = [
    DeflateParams(1, 8, 0, 15), DeflateParams(6, 8, 0, 15), DeflateParams(6, 9, 1, 15),
    DeflateParams(9, 9, 1, 15), DeflateParams(9, 8, 3, 15), DeflateParams(3, 9, 0, 15),
    DeflateParams(4, 9, 1, 12), DeflateParams(9, 9, 2, 15),
]

EXPECTED_VECTOR_DIGEST = "f1845bb6bb815cce777d5842c59457010c80032b957c360ff7dd43f8bcfec145"


def vector_digest() -> str:
    h = hashlib.sha256()
    for raw in _vector_inputs():
        for p in VECTOR_PARAMS:
            h.update(compress(raw, p))
    return h.hexdigest()


_self_test_ok = False
_host_ok: bool | None = None


def host_vector_digest() -> str:
    h = hashlib.sha256()
    for raw in _vector_inputs():
        for p in VECTOR_PARAMS:
            c = zlib.compressobj(p.level, zlib.DEFLATED, p.wbits, p.mem_level, p.strategy)
            h.update(c.compress(raw) + c.flush())
    return h.hexdigest()


def host_ok() -> bool:
    """True when the host's zlib (faster than the pinned build) reproduces the test vectors."""
    global _host_ok
    if _host_ok is None:
        try:
            _host_ok = (os.environ.get("SIMFS_CODEC_NO_HOST_ZLIB") != "1"
                        and host_vector_digest() == EXPECTED_VECTOR_DIGEST)
        except Exception:  # pragma: no cover - a broken host zlib
            _host_ok = False
    return _host_ok


def self_test() -> None:
    """Raise DeflaterUnavailable unless the pinned deflater reproduces the recorded test vectors."""
    global _self_test_ok
    if _self_test_ok:
        return
    got = vector_digest()
    if got != EXPECTED_VECTOR_DIGEST:
        raise DeflaterUnavailable(
            f"deflater {deflater_identity()} at {_lib_path} produced unexpected test-vector bytes "
            f"({got[:16]} != {EXPECTED_VECTOR_DIGEST[:16]}); refusing to rebuild PNGs with it"
        )
    _self_test_ok = True
