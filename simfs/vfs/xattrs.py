"""Extended attributes in the user namespace."""

from __future__ import annotations

import errno
import time

from ..catalog import keys
from .base import VfsBase
from .common import XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, encode_name, fail, locked
from .txn import Txn


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
        value = self.catalog.get(keys.xattr_key(ino, self._xattr_name(name)))
        if value is None:
            fail(errno.ENODATA)
        return value

    @locked
    def listxattr(self, path: str) -> list[str]:
        ino = self.resolve(path)
        prefix = keys.xattr_prefix(ino)
        return [k[len(prefix):].decode("utf-8", "surrogateescape") for k, _ in self.catalog.scan(prefix)]

    @locked
    def removexattr(self, path: str, name: str) -> None:
        self._check_writable()
        ino = self.resolve(path)
        key = keys.xattr_key(ino, self._xattr_name(name))
        txn = Txn(self)
        if txn.get(key) is None:
            fail(errno.ENODATA)
        txn.delete(key)
        node = txn.inode(ino)
        node.ctime = time.time_ns()
        txn.save(node)
        self._commit_meta(txn, ino)
