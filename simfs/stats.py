"""Store statistics for `simfs stats`: logical bytes of files vs bytes the store occupies on disk."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .catalog import keys
from .catalog.records import Inode, ObjectRecord
from .storage import CATALOG_DIR, OpenStore


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def store_stats(store: Path) -> dict[str, Any]:
    opened = OpenStore(store, read_only=True)
    try:
        files = dirs = links = logical = 0
        for key, raw in opened.catalog.scan(keys.INODE):
            node = Inode.unpack(keys.read_u64(key, 1), raw)
            if node.is_reg:
                files += 1
                logical += node.size  # hard links share one inode: counted once
            elif node.is_dir:
                dirs += 1
            elif node.is_symlink:
                links += 1
        from .describe import FLAG_DESCRIBED
        from .encode import FLAG_ENCODE_TRIED

        wanted = FLAG_DESCRIBED | (FLAG_ENCODE_TRIED if "encoded-objects" in opened.format.features else 0)
        encoded = 0

        objects = unique = object_bytes = pending = 0
        for _, raw in opened.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if rec.refcount == 0:
                continue
            objects += 1
            unique += rec.size
            object_bytes += rec.stored
            pending += (rec.flags & wanted) != wanted
            encoded += rec.codec != 0
        indexed = sum(1 for _ in opened.catalog.scan(keys.SIMILARITY))
        catalog_bytes = _dir_bytes(opened.path / CATALOG_DIR)
    finally:
        opened.close()
    return {
        "store": str(opened.path),
        "files": files,
        "directories": dirs,
        "symlinks": links,
        "logical_bytes": logical,
        "objects": objects,
        "unique_bytes": unique,
        "object_bytes": object_bytes,
        "catalog_bytes": catalog_bytes,
        "stored_bytes": object_bytes + catalog_bytes,
        "images_indexed": indexed,
        "ingest_pending": pending,
        "objects_encoded": encoded,
    }
