"""`simfs similar PATH`: the stored files most similar to PATH, with scores and relation hints."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from .catalog import keys
from .catalog.records import Inode
from .errors import ExitCode, SimfsError
from .mounts import mount_entry
from .storage import OpenStore, is_store


class NotOnSimfs(SimfsError):
    exit_code = ExitCode.NOT_MOUNTED


@dataclass
class SimilarFile:
    paths: list[str]
    score: float
    relation: str
    global_distance: int
    copy_distance: int
    inliers: int


def find_mount(path: Path) -> tuple[Path, Path]:
    """(mountpoint, store) of the simfs mount holding path."""
    probe = path.absolute()
    for candidate in [probe, *probe.parents]:
        entry = mount_entry(candidate)
        if entry is not None and entry[1] == "fuse.simfs":
            store = Path(entry[0])
            if not store.is_absolute() or not is_store(store):
                raise NotOnSimfs(f"{candidate}: simfs mount whose store path is not recorded; mount it again")
            return candidate, store
    raise NotOnSimfs(f"{path} is not on a mounted simfs file system")


def similar(path: Path, k: int = 10) -> tuple[list[SimilarFile], bool, str]:
    """Most similar stored files, the "worth trying inter" decision, and a note on how PATH was described."""
    from codec.similarity import extract

    from .ingest.describe import decode_image
    from .similarity import SimilarityIndex

    if not path.exists():
        raise SimfsError(f"{path}: no such file", ExitCode.USAGE)
    if not path.is_file():
        raise SimfsError(f"{path}: not a regular file", ExitCode.USAGE)
    mountpoint, store = find_mount(path)
    rel = os.path.relpath(path.absolute(), mountpoint)
    opened = OpenStore(store, read_only=True)
    try:
        from .catalog.records import ObjectRecord
        from .ingest.describe import stored_pixels
        from .store.chains import ChainDecoder

        def record_of(oid: bytes) -> ObjectRecord | None:
            raw = opened.catalog.get(keys.object_key(oid))
            return None if raw is None else ObjectRecord.unpack(raw)

        index = SimilarityIndex(opened.catalog, pixel_source=stored_pixels(
            opened.objects, ChainDecoder(opened.objects, record_of), record_of))
        index.load()
        ino = _resolve(opened, rel)
        raw = opened.catalog.get(keys.inode_key(ino))
        own = Inode.unpack(ino, raw).object_id if raw else None
        desc = index.get(own) if own else None
        note = "indexed"
        if desc is not None and not desc.mirror_code:
            # The index keeps no mirror-image features (they would double the T records), but a
            # flipped copy is only found through them: describe the query's mirror image now; and its T
            # record keeps only the best spread keypoints: the query side gets all of them.
            pixels = decode_image(path.read_bytes())
            if pixels is not None:
                fresh = extract(pixels)
                desc = dataclasses.replace(desc, local=fresh.local, mirror_code=fresh.mirror_code,
                                           mirror_local=fresh.mirror_local)
        if desc is None:  # not described yet (ingest pending) or not stored as an image: do it now
            pixels = decode_image(path.read_bytes())
            if pixels is None:
                raise SimfsError(f"{path}: not an image simfs can describe", ExitCode.USAGE)
            desc = extract(pixels)
            note = "described now (not indexed yet)"
        # pinned objects (no file names them; kept as bases of others) are not shown: ask for spares
        result = index.query(desc, k=2 * k + 4, exclude=[own] if own else [])
        where = paths_of({c.object_id for c in result} | ({own} if own else set()), opened)
    finally:
        opened.close()

    def shown(paths: list[str]) -> list[str]:  # absolute paths, as the user can open them
        return sorted(os.path.join(mountpoint, p.lstrip("/")) for p in paths)

    me = os.path.join(mountpoint, rel) if rel != "." else str(mountpoint)
    out = []
    twins = [p for p in shown(where.get(own, [])) if os.path.normpath(p) != os.path.normpath(me)] if own else []
    if twins:  # byte-identical copies: the closest relatives there are
        out.append(SimilarFile(twins, 1.0, "identical", 0, 0, 0))
    out += [SimilarFile(shown(where[c.object_id]), c.score, c.relation or "similar?",
                        c.global_distance, c.copy_distance, c.inliers) for c in result if c.object_id in where]
    out = out[:k]
    return out, result.worth_trying_inter or bool(twins), note


def _resolve(opened: OpenStore, rel: str) -> int:
    ino = keys.ROOT_INO
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        raw = opened.catalog.get(keys.dentry_key(ino, part.encode("utf-8", "surrogateescape")))
        if raw is None:
            raise SimfsError(f"{rel}: not found in the store (still being written?)", ExitCode.USAGE)
        ino = keys.read_u64(raw)
    return ino


def paths_of(object_ids: set[bytes], opened: OpenStore) -> dict[bytes, list[str]]:
    """Every path naming one of the objects (one walk of the tree: fine for a command-line query)."""
    wanted: dict[int, bytes] = {}
    for key, raw in opened.catalog.scan(keys.INODE):
        node = Inode.unpack(keys.read_u64(key, 1), raw)
        if node.is_reg and node.object_id in object_ids:
            wanted[node.ino] = node.object_id
    found: dict[bytes, list[str]] = {}
    stack: list[tuple[str, int]] = [("", keys.ROOT_INO)]
    while stack and wanted:
        prefix, dino = stack.pop()
        dprefix = keys.dentry_prefix(dino)
        for key, raw in opened.catalog.scan(dprefix):
            child = keys.read_u64(raw)
            name = prefix + "/" + key[len(dprefix):].decode("utf-8", "surrogateescape")
            if child in wanted:
                found.setdefault(wanted[child], []).append(name)
            if raw[8] << 12 == 0o040000:
                stack.append((name, child))
    return found
