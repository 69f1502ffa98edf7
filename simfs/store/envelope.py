"""Object envelope: a fixed 128-byte header (magic, version, codec, lengths, checksums) before the payload."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

MAGIC = b"SIMFSOBJ"
ENVELOPE_VERSION = 1
HEADER_SIZE = 128  # fixed, so a staging file can reserve it and become an object by rename (no copy)

CODEC_VERBATIM = 0
CODEC_PNG = 1  # payload is a codec blob (codec.decode rebuilds the original PNG bytes)

# magic, envelope version, codec id, flags, payload length, content length, payload xxh3-64,
# content sha256, then zero padding up to HEADER_SIZE - 4 and a crc32 of everything before it.
_FIXED = struct.Struct(">8sBBHQQQ32s")
_CRC = struct.Struct(">I")


class EnvelopeError(ValueError):
    """The header is not a valid simfs object envelope."""


@dataclass(frozen=True)
class Header:
    codec: int
    flags: int
    payload_len: int
    content_len: int
    payload_xxh3: int
    content_sha256: bytes
    version: int = ENVELOPE_VERSION

    def pack(self) -> bytes:
        fixed = _FIXED.pack(
            MAGIC,
            self.version,
            self.codec,
            self.flags,
            self.payload_len,
            self.content_len,
            self.payload_xxh3,
            self.content_sha256,
        )
        body = fixed + bytes(HEADER_SIZE - _CRC.size - len(fixed))
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        if len(raw) < HEADER_SIZE:
            raise EnvelopeError(f"header truncated ({len(raw)} of {HEADER_SIZE} bytes)")
        body, (crc,) = raw[: HEADER_SIZE - _CRC.size], _CRC.unpack_from(raw, HEADER_SIZE - _CRC.size)
        magic, version, codec, flags, plen, clen, pxx, csha = _FIXED.unpack_from(body)
        if magic != MAGIC:
            raise EnvelopeError("bad magic")
        if zlib.crc32(body) != crc:
            raise EnvelopeError("header checksum mismatch")
        if version != ENVELOPE_VERSION:
            raise EnvelopeError(f"unknown envelope version {version}")
        return cls(codec, flags, plen, clen, pxx, csha, version)
