"""Blob container (format version 1): header, reference-id slot, metadata, payload, checksums.

Layout (all integers big-endian), documented in developer-notes/codec-bitstream.md:

    magic "SIMC" | u8 version | u8 mode | u8 flags | u8 ref_id_len | ref_id
    u32 meta_len | meta (zlib: u32 json_len, JSON, then sections: u8 name_len, name, u32 len, bytes)
    u64 payload_len | payload
    32 bytes SHA-256 of the rebuilt file
    u32 CRC-32 of every preceding byte of the blob
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"SIMC"
FORMAT_VERSION = 1
ACCEPTED_VERSIONS = (1,)
MODES = {1: "intra", 2: "inter"}
MODE_IDS = {v: k for k, v in MODES.items()}


class CorruptBlob(ValueError):
    """The blob is damaged, truncated, of an unknown version, or does not rebuild its file."""


@dataclass
class Blob:
    mode: str
    ref_id: bytes
    meta: dict
    sections: dict[str, bytes]
    payload: bytes
    file_sha256: bytes
    version: int = FORMAT_VERSION
    flags: int = 0
    extra: dict = field(default_factory=dict)


def _pack_meta(meta: dict, sections: dict[str, bytes]) -> bytes:
    js = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    parts = [struct.pack(">I", len(js)), js]
    for name, data in sections.items():
        nb = name.encode()
        parts += [struct.pack(">B", len(nb)), nb, struct.pack(">I", len(data)), data]
    # Metadata is compressed with whatever zlib Python has: only its inflated form matters.
    return zlib.compress(b"".join(parts), 9)


def _unpack_meta(raw: bytes) -> tuple[dict, dict[str, bytes]]:
    d = zlib.decompressobj()
    buf = d.decompress(raw, 1 << 30)
    if not d.eof:
        raise CorruptBlob("metadata stream truncated")
    (jl,) = struct.unpack(">I", buf[:4])
    meta = json.loads(buf[4: 4 + jl])
    pos = 4 + jl
    sections: dict[str, bytes] = {}
    while pos < len(buf):
        nl = buf[pos]
        name = buf[pos + 1: pos + 1 + nl].decode()
        pos += 1 + nl
        (ln,) = struct.unpack(">I", buf[pos: pos + 4])
        pos += 4
        if pos + ln > len(buf):
            raise CorruptBlob("metadata section truncated")
        sections[name] = buf[pos: pos + ln]
        pos += ln
    return meta, sections


def pack(b: Blob) -> bytes:
    if len(b.ref_id) > 255:
        raise ValueError("reference id longer than 255 bytes")
    if len(b.file_sha256) != 32:
        raise ValueError("file hash must be 32 bytes")
    meta = _pack_meta(b.meta, b.sections)
    out = b"".join([
        MAGIC, struct.pack(">BBBB", FORMAT_VERSION, MODE_IDS[b.mode], b.flags, len(b.ref_id)), b.ref_id,
        struct.pack(">I", len(meta)), meta, struct.pack(">Q", len(b.payload)), b.payload, b.file_sha256,
    ])
    return out + struct.pack(">I", zlib.crc32(out))


def reference_id(blob: bytes) -> bytes:
    """The reference id an inter blob names (b"" for intra), read from the header alone; raises CorruptBlob."""
    if len(blob) < 8 + 4 + 8 + 32 + 4 or blob[:4] != MAGIC:
        raise CorruptBlob("bad magic (not a simfs codec blob)")
    rl = blob[7]
    return bytes(blob[8: 8 + rl])


def unpack(blob: bytes) -> Blob:
    """Parse and checksum-verify a blob; raises CorruptBlob."""
    try:
        blob = bytes(blob)
        if len(blob) < 8 + 4 + 8 + 32 + 4 or blob[:4] != MAGIC:
            raise CorruptBlob("bad magic (not a simfs codec blob)")
        version, mode_id, flags, rl = struct.unpack(">BBBB", blob[4:8])
        if version not in ACCEPTED_VERSIONS:
            raise CorruptBlob(f"unknown blob format version {version}")
        (crc,) = struct.unpack(">I", blob[-4:])
        if zlib.crc32(blob[:-4]) != crc:
            raise CorruptBlob("blob checksum mismatch")
        if mode_id not in MODES:
            raise CorruptBlob(f"unknown mode {mode_id}")
        pos = 8
        ref_id = blob[pos: pos + rl]
        pos += rl
        (ml,) = struct.unpack(">I", blob[pos: pos + 4])
        pos += 4
        meta, sections = _unpack_meta(blob[pos: pos + ml])
        pos += ml
        (pl,) = struct.unpack(">Q", blob[pos: pos + 8])
        pos += 8
        payload = blob[pos: pos + pl]
        pos += pl
        file_sha = blob[pos: pos + 32]
        if pos + 32 + 4 != len(blob):
            raise CorruptBlob("blob length does not match its fields")
        return Blob(MODES[mode_id], ref_id, meta, sections, payload, file_sha, version, flags)
    except CorruptBlob:
        raise
    except Exception as e:
        raise CorruptBlob(f"malformed blob ({type(e).__name__}: {e})") from None
