"""Rebuilt-file cache: encoded objects decoded once per open into plain files that read() serves from."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from ..errors import CorruptObject
from .ballast import BALLAST_NAME
from .envelope import HEADER_SIZE


class RebuiltCache:
    """STORE/cache/<id>.<gen> files holding an encoded object's original bytes after HEADER_SIZE pad bytes.

    The pad keeps read offsets identical to verbatim objects (payload at HEADER_SIZE). Every rebuilt
    file is checked against its object id (SHA-256 of the content) before it is used: a decoder bug
    can never turn into wrong bytes served. The cache is bounded (least recently used files go first)
    and emptied at every mount, so it never outlives the objects it mirrors.
    """

    def __init__(self, root: Path, max_bytes: int = 2 << 30):
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(exist_ok=True)
        for entry in os.scandir(root):
            if entry.name == BALLAST_NAME:
                continue  # not a rebuilt file: the store's reserve lives here (store/ballast.py)
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()
        self._building: dict[str, threading.Event] = {}
        self._seq = 0

    def _name(self, object_id: bytes, gen: int) -> str:
        return f"{object_id.hex()}.{gen}"

    def ensure(self, object_id: bytes, gen: int, rebuild: Callable[[], bytes]) -> None:
        """Make sure the rebuilt file exists (decoding at most once even with concurrent openers)."""
        name = self._name(object_id, gen)
        while True:
            with self._lock:
                if name in self._sizes:
                    self._sizes.move_to_end(name)
                    return
                event = self._building.get(name)
                if event is None:
                    event = self._building[name] = threading.Event()
                    break
            event.wait()
        try:
            content = rebuild()
            if hashlib.sha256(content).digest() != object_id:
                raise CorruptObject(object_id, "rebuilt bytes do not match the object's content hash")
            with self._lock:
                self._seq += 1
                tmp = self.root / f".{name}.{self._seq}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(bytes(HEADER_SIZE))
                fh.write(content)
            os.replace(tmp, self.root / name)
            with self._lock:
                self._sizes[name] = HEADER_SIZE + len(content)
                self._evict_locked(keep=name)
        finally:
            with self._lock:
                self._building.pop(name, None)
            event.set()

    def cached(self, object_id: bytes, gen: int) -> bool:
        with self._lock:
            return self._name(object_id, gen) in self._sizes

    def open(self, object_id: bytes, gen: int) -> int | None:
        """fd of the rebuilt file (payload at HEADER_SIZE), or None if not (or no longer) cached."""
        name = self._name(object_id, gen)
        with self._lock:
            if name not in self._sizes:
                return None
            self._sizes.move_to_end(name)
        try:
            return os.open(self.root / name, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    def _evict_locked(self, keep: str) -> None:
        total = sum(self._sizes.values())
        for name in list(self._sizes):
            if total <= self.max_bytes:
                break
            if name == keep:
                continue
            total -= self._sizes.pop(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / name)  # an open fd keeps reading the unlinked file

    def drop(self, object_id: bytes, gen: int) -> None:
        name = self._name(object_id, gen)
        with self._lock:
            if self._sizes.pop(name, None) is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.root / name)
