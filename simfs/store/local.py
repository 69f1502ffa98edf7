"""Local object store: objects/<aa>/<id-hex>.<gen> files written tmp → fsync → rename → fsync dir."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

from ..errors import CorruptObject
from ..format import fsync_dir
from .envelope import CODEC_VERBATIM, HEADER_SIZE, EnvelopeError, Header

CHUNK = 1 << 20


def object_name(object_id: bytes, gen: int) -> str:
    return f"{object_id.hex()}.{gen}"


@dataclass
class StagingFile:
    """A file being written: payload lives at HEADER_SIZE so commit can write the header and rename."""

    path: Path
    fd: int

    def pwrite(self, data: bytes, offset: int) -> int:
        return os.pwrite(self.fd, data, HEADER_SIZE + offset)

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, HEADER_SIZE + offset)

    def truncate(self, length: int) -> None:
        os.ftruncate(self.fd, HEADER_SIZE + length)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class LocalObjectStore:
    """Owns STORE/objects, STORE/staging and STORE/tmp."""

    def __init__(self, root: Path):
        self.root = root
        self.objects = root / "objects"
        self.staging = root / "staging"
        self._staging_seq = 0

    # -- layout ---------------------------------------------------------------------------
    @classmethod
    def create_layout(cls, root: Path) -> None:
        (root / "objects").mkdir(exist_ok=True)
        for i in range(256):
            (root / "objects" / f"{i:02x}").mkdir(exist_ok=True)
        (root / "staging").mkdir(exist_ok=True)
        fsync_dir(root / "objects")
        fsync_dir(root)

    def path_of(self, object_id: bytes, gen: int) -> Path:
        return self.objects / object_id[:1].hex() / object_name(object_id, gen)

    # -- staging --------------------------------------------------------------------------
    def new_staging(self, tag: str) -> StagingFile:
        self._staging_seq += 1
        path = self.staging / f"{tag}-{os.getpid()}-{self._staging_seq}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.ftruncate(fd, HEADER_SIZE)
        return StagingFile(path, fd)

    def clear_staging(self) -> int:
        """Remove staging leftovers of a previous run (uncommitted writes; their close() never returned)."""
        removed = 0
        for entry in os.scandir(self.staging):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed

    @staticmethod
    def hash_staging(staging: StagingFile, length: int) -> tuple[bytes, int]:
        """sha256 (the object id) and xxh3-64 of the payload, read back from the staging file."""
        sha, xx = hashlib.sha256(), xxhash.xxh3_64()
        offset = 0
        while offset < length:
            chunk = os.pread(staging.fd, min(CHUNK, length - offset), HEADER_SIZE + offset)
            if not chunk:
                raise OSError(f"staging file {staging.path} shorter than {length}")
            sha.update(chunk)
            xx.update(chunk)
            offset += len(chunk)
        return sha.digest(), xx.intdigest()

    @staticmethod
    def seal_staging(fd: int, object_id: bytes, xxh: int, length: int) -> None:
        """Write the object header into a staging file and flush it (done without the VFS lock)."""
        os.pwrite(fd, Header(CODEC_VERBATIM, 0, length, length, xxh, object_id).pack(), 0)
        os.fsync(fd)

    def commit_staging(self, staging: StagingFile, object_id: bytes, xxh: int, length: int, *,
                       sealed: bool = False) -> int:
        """Turn a staging file into object (object_id, gen 0): header, fsync, rename, fsync dir.

        sealed: seal_staging() already wrote this header and flushed the file, and nothing changed
        since (the caller checked the content version); only the rename and the directory flush remain.
        Returns the physical size of the object file.
        """
        if not sealed or os.fstat(staging.fd).st_size != HEADER_SIZE + length:
            header = Header(CODEC_VERBATIM, 0, length, length, xxh, object_id)
            os.pwrite(staging.fd, header.pack(), 0)
            os.ftruncate(staging.fd, HEADER_SIZE + length)  # staging may hold bytes past a truncate
            os.fsync(staging.fd)
        staging.close()
        final = self.path_of(object_id, 0)
        os.rename(staging.path, final)
        fsync_dir(final.parent)
        return HEADER_SIZE + length

    def put_bytes(self, object_id: bytes, payload: bytes, *, gen: int = 0, codec: int = CODEC_VERBATIM,
                  content_len: int | None = None) -> int:
        """Write an object from memory (used by tests and fsck injection, and later by the encoder)."""
        staging = self.new_staging("put")
        try:
            os.pwrite(staging.fd, payload, HEADER_SIZE)
            header = Header(codec, 0, len(payload), len(payload) if content_len is None else content_len,
                            xxhash.xxh3_64_intdigest(payload), object_id)
            os.pwrite(staging.fd, header.pack(), 0)
            os.fsync(staging.fd)
            staging.close()
            final = self.path_of(object_id, gen)
            os.rename(staging.path, final)
            fsync_dir(final.parent)
        except BaseException:
            staging.discard()
            raise
        return HEADER_SIZE + len(payload)

    # -- reading --------------------------------------------------------------------------
    def open_verified(self, object_id: bytes, gen: int) -> tuple[int, Header]:
        """Open an object, check its envelope and payload checksum; return (fd, header).

        Raises CorruptObject on any mismatch: a damaged object is never served.
        """
        path = self.path_of(object_id, gen)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise CorruptObject(object_id, f"object file {path.name} is missing") from None
        try:
            header = self.read_header(fd, object_id)
            xx = xxhash.xxh3_64()
            offset, end = 0, header.payload_len
            while offset < end:
                chunk = os.pread(fd, min(CHUNK, end - offset), HEADER_SIZE + offset)
                if not chunk:
                    raise CorruptObject(object_id, "payload truncated")
                xx.update(chunk)
                offset += len(chunk)
            if xx.intdigest() != header.payload_xxh3:
                raise CorruptObject(object_id, "payload checksum mismatch")
            return fd, header
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def read_header(fd: int, object_id: bytes) -> Header:
        try:
            header = Header.unpack(os.pread(fd, HEADER_SIZE, 0))
        except EnvelopeError as exc:
            raise CorruptObject(object_id, str(exc)) from None
        if header.content_sha256 != object_id:
            raise CorruptObject(object_id, "header names another object")
        size = os.fstat(fd).st_size
        if size != HEADER_SIZE + header.payload_len:
            raise CorruptObject(object_id, f"file is {size} bytes, header says {HEADER_SIZE + header.payload_len}")
        return header

    def read_payload(self, object_id: bytes, gen: int) -> bytes:
        fd, header = self.open_verified(object_id, gen)
        try:
            return os.pread(fd, header.payload_len, HEADER_SIZE)
        finally:
            os.close(fd)

    def verify_content(self, object_id: bytes, gen: int) -> None:
        """Deep check for fsck --verify-data: checksum plus the strong hash of the content."""
        fd, header = self.open_verified(object_id, gen)
        try:
            if header.codec != CODEC_VERBATIM:
                return  # encoded objects are verified by decoding (codec layer)
            sha = hashlib.sha256()
            offset = 0
            while offset < header.payload_len:
                chunk = os.pread(fd, min(CHUNK, header.payload_len - offset), HEADER_SIZE + offset)
                sha.update(chunk)
                offset += len(chunk)
            if sha.digest() != object_id:
                raise CorruptObject(object_id, "content hash mismatch")
        finally:
            os.close(fd)

    # -- deleting / listing ---------------------------------------------------------------
    def delete(self, object_id: bytes, gen: int) -> int:
        """Remove an object file; returns the bytes freed (0 if it was already gone)."""
        path = self.path_of(object_id, gen)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def iter_files(self) -> Iterator[tuple[bytes, int, int]]:
        """Every object file as (object id, gen, physical size); odd names yield id b'' (fsck reports)."""
        for fan in sorted(os.scandir(self.objects), key=lambda e: e.name):
            if not fan.is_dir():
                continue
            for entry in os.scandir(fan.path):
                name = entry.name
                hex_id, _, gen = name.partition(".")
                try:
                    oid = bytes.fromhex(hex_id)
                    g = int(gen)
                    if len(oid) != 32 or oid[:1].hex() != fan.name:
                        raise ValueError
                except ValueError:
                    yield b"", -1, 0
                    continue
                yield oid, g, entry.stat().st_size

    def iter_stray(self) -> Iterator[Path]:
        """Files in objects/ whose names are not object names (fsck reports them)."""
        for fan in os.scandir(self.objects):
            if not fan.is_dir():
                yield Path(fan.path)
                continue
            for entry in os.scandir(fan.path):
                hex_id, _, gen = entry.name.partition(".")
                try:
                    ok = len(bytes.fromhex(hex_id)) == 32 and gen.isdigit()
                except ValueError:
                    ok = False
                if not ok:
                    yield Path(entry.path)
