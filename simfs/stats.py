"""Store statistics for `simfs stats`: logical bytes of files vs bytes the store occupies on disk."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from .catalog import keys
from .catalog.records import FLAG_DESCRIBED, FLAG_ENCODE_TRIED, FLAG_PIXEL_DUPLICATE, Inode, ObjectRecord
from .storage import CATALOG_DIR, OpenStore, is_store


def _dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


KINDS = ("verbatim", "intra", "inter", "pixel-duplicate", "pinned")


def object_kind(rec: ObjectRecord) -> str:
    """How an object is stored: verbatim, intra (coded alone), inter / pixel-duplicate (against a base),
    or pinned (no file names it; kept because others are coded against it)."""
    if rec.pinned:
        return "pinned"
    if rec.codec == 0:
        return "verbatim"
    if rec.has_base:
        return "pixel-duplicate" if rec.flags & FLAG_PIXEL_DUPLICATE else "inter"
    return "intra"


def store_of(path: Path) -> Path:
    """A store's directory, or the store mounted at path (the mount's source in /proc/mounts)."""
    if is_store(path):
        return path
    from .status import store_of_mountpoint

    return store_of_mountpoint(path) or path  # not a store: OpenStore says so


def _live_pending(store: Path) -> int | None:
    """While mounted, the daemon's own backlog (queued, in progress, deferred, re-plans) is the truth:
    the catalog alone cannot tell whether a described PNG still waits for the encoder."""
    from .mounts import mountpoint_of_store
    from .status import NotMounted, read_status

    mnt = mountpoint_of_store(store)
    if mnt is None:
        return None
    try:
        return int(read_status(mnt)["backlog"]["total"])
    except (NotMounted, KeyError, ValueError):
        return None


def store_stats(store: Path) -> dict[str, Any]:
    opened = OpenStore(store, read_only=True)
    try:
        files = dirs = links = logical = chunked = chunked_data = 0
        for key, raw in opened.catalog.scan(keys.INODE):
            node = Inode.unpack(keys.read_u64(key, 1), raw)
            if node.is_reg:
                files += 1
                logical += node.size  # hard links share one inode: counted once
                if node.chunked:
                    chunked += 1
                    chunked_data += node.data_bytes
            elif node.is_dir:
                dirs += 1
            elif node.is_symlink:
                links += 1

        wanted = FLAG_DESCRIBED | (FLAG_ENCODE_TRIED if "encoded-objects" in opened.format.features else 0)
        encoded = 0
        by_kind = {k: {"objects": 0, "logical_bytes": 0, "stored_bytes": 0} for k in KINDS}
        depths: dict[int, int] = {}
        intra_only = 0  # what the same objects would take coded each on its own (measured or stored)

        objects = unique = object_bytes = pending = 0
        for _, raw in opened.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if rec.collectable:
                continue  # garbage awaiting deletion
            kind = object_kind(rec)
            k = by_kind[kind]
            k["objects"] += 1
            k["logical_bytes"] += rec.size
            k["stored_bytes"] += rec.stored
            object_bytes += rec.stored
            if kind == "pinned":
                continue
            intra_only += (rec.intra_bytes or rec.stored) if rec.has_base else rec.stored
            depths[rec.depth] = depths.get(rec.depth, 0) + 1
            objects += 1
            unique += rec.size
            pending += (rec.flags & wanted) != wanted
            encoded += rec.codec != 0
        pending += sum(1 for _ in opened.catalog.scan(keys.REPLAN))  # re-planning jobs not done yet
        indexed = sum(1 for _ in opened.catalog.scan(keys.SIMILARITY))
        catalog_bytes = _dir_bytes(opened.path / CATALOG_DIR)
    finally:
        opened.close()
    live = _live_pending(opened.path)
    return {
        "store": str(opened.path),
        "ingest_live": live is not None,
        "files": files,
        "directories": dirs,
        "symlinks": links,
        "logical_bytes": logical,
        "chunked_files": chunked,  # large non-PNG files stored as 1 MiB chunks
        "chunked_data_bytes": chunked_data,  # what their chunks hold (holes excluded)
        "objects": objects,
        "unique_bytes": unique,
        "object_bytes": object_bytes,
        "catalog_bytes": catalog_bytes,
        "stored_bytes": object_bytes + catalog_bytes,
        "images_indexed": indexed,
        "ingest_pending": pending if live is None else live,
        "objects_encoded": encoded,
        "by_kind": by_kind,
        "pinned_objects": by_kind["pinned"]["objects"],
        "pinned_bytes": by_kind["pinned"]["stored_bytes"],
        "depth_histogram": {str(d): n for d, n in sorted(depths.items())},
        "intra_only_bytes": intra_only,
        "saved_vs_logical": logical - (object_bytes + catalog_bytes),
        "saved_vs_intra_only": intra_only - object_bytes,
        **_backup_stats(opened.path),
    }


def _backup_stats(store: Path) -> dict[str, Any]:
    """How many metadata backups, the newest, and their bytes on disk (a file shared by two counts once)."""
    from .backups import backups_dir, list_backups

    found = list_backups(store)
    seen: set[int] = set()
    total = 0
    for root, _dirs, names in os.walk(backups_dir(store)):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(root, name))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return {"metadata_backups": len(found), "newest_backup": found[-1].name if found else None,
            "backup_bytes": total}
