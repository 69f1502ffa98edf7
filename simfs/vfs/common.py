"""Shared pieces of the VFS: errno helper, the operation lock, name encoding, constants, caller context."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

log = logging.getLogger("simfs.vfs")

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
XATTR_CREATE = 1
XATTR_REPLACE = 2
NAME_MAX = 255
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
FALLOC_FL_KEEP_SIZE = 1
COPY_CHUNK = 1 << 20
# Largest file accepted (EFBIG above). Chunked files cost nothing for their holes, but a file stored
# as one object (a PNG) is hashed whole at each commit; 1 TiB is far beyond any photo.
MAX_FILE_SIZE = 1 << 40

F = TypeVar("F", bound=Callable[..., Any])


def fail(code: int) -> NoReturn:
    raise OSError(code, os.strerror(code))


def locked(method: F) -> F:
    """Serialise every operation: the catalog has no transactions (read-modify-write under one lock)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def encode_name(name: str) -> bytes:
    # FUSE hands us str decoded with surrogateescape: this gives back the exact bytes (non-UTF-8 too).
    return name.encode("utf-8", "surrogateescape")


def split_path(path: str) -> list[bytes]:
    return [encode_name(p) for p in path.split("/") if p]


@dataclass
class Context:
    """Caller identity (from fuse_get_context); owner of files it creates."""

    uid: int
    gid: int
    pid: int = 0


ROOT_CONTEXT = Context(0, 0)


