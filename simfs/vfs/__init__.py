"""POSIX file-system semantics over the catalog and the object store; testable without FUSE."""

from .common import (
    FALLOC_FL_KEEP_SIZE,
    NAME_MAX,
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    ROOT_CONTEXT,
    UTIME_NOW,
    UTIME_OMIT,
    XATTR_CREATE,
    XATTR_REPLACE,
    Context,
)
from .core import Vfs
from .files_state import Handle, OpenFile
from .txn import Txn

__all__ = [
    "FALLOC_FL_KEEP_SIZE", "NAME_MAX", "RENAME_EXCHANGE", "RENAME_NOREPLACE", "ROOT_CONTEXT", "UTIME_NOW",
    "UTIME_OMIT", "XATTR_CREATE", "XATTR_REPLACE", "Context", "Handle", "OpenFile", "Txn", "Vfs",
]
