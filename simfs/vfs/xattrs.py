"""Extended attributes in the user namespace."""

from __future__ import annotations

import errno
import time

from ..catalog import keys
from .base import VfsBase
from .common import XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, encode_name, fail, locked
from .txn import Txn

INFO_PREFIX = b"user.simfs."
INFO_FIELDS = ("kind", "depth", "stored_bytes", "reference")


class XattrMixin(VfsBase):
    @staticmethod
    def _xattr_name(name: str) -> bytes:
        raw = encode_name(name)
        if not raw or len(raw) > XATTR_NAME_MAX:
            fail(errno.ERANGE)
        return raw

    @locked
    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0) -> None:
        self._check_writable()
        raw_name = self._xattr_name(name)
        if not raw_name.startswith(b"user."):
            fail(errno.EOPNOTSUPP)  # only the user namespace is stored
        if raw_name.startswith(INFO_PREFIX):
            fail(errno.EPERM)  # read-only storage information
        if len(value) > XATTR_SIZE_MAX:
            fail(errno.E2BIG)
        ino = self.resolve(path)
        node = self.load_inode(ino)
        if not (node.is_reg or node.is_dir):
            fail(errno.EPERM)  # Linux: user xattrs only on regular files and directories
        txn = Txn(self)
        key = keys.xattr_key(ino, raw_name)
        exists = txn.get(key) is not None
        if flags & XATTR_CREATE and exists:
            fail(errno.EEXIST)
        if flags & XATTR_REPLACE and not exists:
            fail(errno.ENODATA)
        txn.put(key, value)
        node = txn.inode(ino)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, ino)

    @locked
    def getxattr(self, path: str, name: str) -> bytes:
        ino = self.resolve(path)
        raw_name = self._xattr_name(name)
        if raw_name.startswith(INFO_PREFIX):
            return self._storage_info(ino, raw_name[len(INFO_PREFIX):].decode("utf-8", "replace"))
        value = self.catalog.get(keys.xattr_key(ino, raw_name))
        if value is None:
            fail(errno.ENODATA)
        return value

    @locked
    def listxattr(self, path: str) -> list[str]:
        ino = self.resolve(path)
        prefix = keys.xattr_prefix(ino)
        return [k[len(prefix):].decode("utf-8", "surrogateescape") for k, _ in self.catalog.scan(prefix)]

    def _storage_info(self, ino: int, field: str) -> bytes:
        """user.simfs.kind / depth / stored_bytes / reference: how this file's content is stored.

        Not listed by listxattr, so `cp -a` and `rsync -X` never copy them elsewhere."""
        node = self.load_inode(ino)
        rec = self.object_record(node.object_id) if node.is_reg and node.has_object else None
        of = self.open_files.get(ino)
        if field not in INFO_FIELDS or not node.is_reg:
            fail(errno.ENODATA)
        if node.chunked and (of is None or not of.dirty):
            values = {"kind": "chunked", "depth": "0", "stored_bytes": str(node.data_bytes), "reference": ""}
        elif rec is None or (of is not None and (of.staging is not None or of.dirty)):
            values = {"kind": "unsaved" if of is not None and (of.staging is not None or of.dirty) else "empty",
                      "depth": "0", "stored_bytes": "0", "reference": ""}
        else:
            from ..catalog.records import FLAG_PIXEL_DUPLICATE

            kind = ("verbatim" if rec.codec == 0 else
                    ("pixel-duplicate" if rec.flags & FLAG_PIXEL_DUPLICATE else "inter") if rec.has_base else "intra")
            ref = ""
            if rec.has_base:
                ref = self._path_holding(rec.base) or rec.base.hex()
            values = {"kind": kind, "depth": str(rec.depth), "stored_bytes": str(rec.stored), "reference": ref}
        return values[field].encode("utf-8", "surrogateescape")

    def _path_holding(self, oid: bytes) -> str | None:
        """A path of a file whose content is object oid (a tree walk: for diagnostics only)."""
        for path, ino in self.iter_paths():
            node = self.load_inode(ino)
            if node.is_reg and node.object_id == oid:
                return path.decode("utf-8", "surrogateescape")
        return None

    @locked
    def removexattr(self, path: str, name: str) -> None:
        self._check_writable()
        ino = self.resolve(path)
        if self._xattr_name(name).startswith(INFO_PREFIX):
            fail(errno.EPERM)
        key = keys.xattr_key(ino, self._xattr_name(name))
        txn = Txn(self)
        if txn.get(key) is None:
            fail(errno.ENODATA)
        txn.delete(key)
        node = txn.inode(ino)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, ino)
