"""`simfs similar --groups`: every group of similar stored images (connected components), with their bytes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import keys
from .catalog.records import FLAG_DESCRIBED, FLAG_NOT_IMAGE, ObjectRecord
from .similar import find_mount, paths_of
from .stats import object_kind
from .storage import OpenStore

NEIGHBOURS = 10  # verified neighbours asked for per image; a group is their transitive closure


@dataclass
class Member:
    object_id: bytes
    paths: list[str]  # absolute paths on the mount; empty for a pinned base
    kind: str  # verbatim / intra / inter / pixel-duplicate / pinned (as `simfs stats`)
    size: int  # content bytes of one copy
    stored: int  # bytes of its object file on disk (paid once, however many paths name it)
    base: bytes | None = None  # the object it is coded against, if any


@dataclass
class Group:
    members: list[Member]
    links: list[tuple[bytes, bytes, str]] = field(default_factory=list)  # (a, b, relation)

    @property
    def relations(self) -> list[str]:
        found = {rel for _a, _b, rel in self.links}
        if any(len(m.paths) > 1 for m in self.members):
            found.add("identical")
        return sorted(found)

    @property
    def files(self) -> int:
        return sum(len(m.paths) for m in self.members)

    @property
    def logical_bytes(self) -> int:  # what the files add up to (ls -l)
        return sum(m.size * max(1, len(m.paths)) for m in self.members if m.paths)

    @property
    def stored_bytes(self) -> int:
        return sum(m.stored for m in self.members)


@dataclass
class Groups:
    mountpoint: Path
    store: Path
    groups: list[Group]
    images: int  # images in the similarity index
    undescribed: int  # objects the background ingest has not described yet (not in any group yet)


class _Union:
    def __init__(self) -> None:
        self.parent: dict[bytes, bytes] = {}

    def find(self, x: bytes) -> bytes:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: bytes, b: bytes) -> None:
        self.parent[self.find(a)] = self.find(b)


def _pair(a: bytes, b: bytes) -> tuple[bytes, bytes]:
    return (a, b) if a < b else (b, a)


def find_groups(path: Path) -> Groups:
    """Components of: verified similarity (the index's query, as `simfs similar`), reference-chain links
    (an object coded against a base: the encoder only picks verified similar bases) and byte-identical
    copies (paths naming one object). Images with nothing similar and a single path are in no group."""
    from .similarity import SimilarityIndex

    mountpoint, store = find_mount(path)
    opened = OpenStore(store, read_only=True)
    try:
        recs: dict[bytes, ObjectRecord] = {}
        undescribed = 0
        for key, raw in opened.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if rec.collectable:
                continue
            recs[bytes(key[1:])] = rec
            undescribed += not rec.flags & (FLAG_DESCRIBED | FLAG_NOT_IMAGE)
        index = SimilarityIndex(opened.catalog)
        images = index.load()
        union = _Union()
        links: dict[tuple[bytes, bytes], str] = {}
        for oid in recs:
            d = index.get(oid)
            if d is None:
                continue
            for c in index.query(d, k=NEIGHBOURS, exclude=[oid]):
                if c.relation and c.object_id in recs:
                    union.join(oid, c.object_id)
                    links.setdefault(_pair(oid, c.object_id), c.relation)
        for oid, rec in recs.items():
            if rec.has_base and rec.base in recs:
                union.join(oid, rec.base)
                links.setdefault(_pair(oid, rec.base), "coded against")
        where = paths_of(set(recs), opened)
    finally:
        opened.close()

    def shown(paths: list[str]) -> list[str]:
        return sorted(os.path.join(mountpoint, p.lstrip("/")) for p in paths)

    parts: dict[bytes, list[bytes]] = {}
    for oid in recs:
        if oid in union.parent or len(where.get(oid, [])) > 1:
            parts.setdefault(union.find(oid), []).append(oid)
    groups = []
    for oids in parts.values():
        members = [Member(oid, shown(where.get(oid, [])), object_kind(recs[oid]), recs[oid].size, recs[oid].stored,
                          recs[oid].base if recs[oid].has_base else None) for oid in oids]
        if sum(max(1, len(m.paths)) for m in members) < 2:
            continue
        members.sort(key=lambda m: (not m.paths, m.paths[:1], m.object_id))
        ids = set(oids)
        group_links = sorted((a, b, rel) for (a, b), rel in links.items() if a in ids and b in ids)
        groups.append(Group(members, group_links))
    groups.sort(key=lambda g: (-g.files, g.members[0].paths[:1]))
    return Groups(mountpoint, store, groups, images, undescribed)


def as_json(found: Groups) -> dict:
    return {
        "mountpoint": str(found.mountpoint), "store": str(found.store), "images_indexed": found.images,
        "undescribed": found.undescribed,
        "groups": [{
            "relations": g.relations, "files": g.files, "logical_bytes": g.logical_bytes,
            "stored_bytes": g.stored_bytes,
            "members": [{"object": m.object_id.hex(), "paths": m.paths, "kind": m.kind, "size": m.size,
                         "stored": m.stored, "base": m.base.hex() if m.base else None} for m in g.members],
            "links": [{"a": a.hex(), "b": b.hex(), "relation": rel} for a, b, rel in g.links],
        } for g in found.groups],
    }
