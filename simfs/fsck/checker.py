"""The fsck passes: structure (catalog), objects (catalog vs files), data (re-hash); optional repair."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..catalog import keys
from ..catalog.records import (
    FLAG_DESCRIBED,
    FLAG_LOCAL_DROPPED,
    FLAG_NOT_IMAGE,
    NO_OBJECT,
    Inode,
    ObjectRecord,
    RecordError,
    pack_dentry,
    unpack_chunk,
    unpack_dentry,
)
from ..errors import CorruptObject
from ..format import StoreFormat
from ..storage import OpenStore, known_top_level
from ..store.envelope import CODEC_PNG
from .findings import Finding, Severity

LOST_FOUND = b"lost+found"


@dataclass
class Scan:
    """The whole catalog, loaded once."""

    inodes: dict[int, Inode] = field(default_factory=dict)
    dentries: list[tuple[int, bytes, int, int]] = field(default_factory=list)  # parent, name, child, type
    objects: dict[bytes, ObjectRecord] = field(default_factory=dict)
    garbage: set[bytes] = field(default_factory=set)
    orphans: set[int] = field(default_factory=set)
    xattr_inos: dict[int, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    next_ino: int | None = None
    format_copy: bytes | None = None
    similarity: dict[bytes, bytes] = field(default_factory=dict)  # S records
    similarity_local: set[bytes] = field(default_factory=set)  # T keys
    stale: set[tuple[bytes, int]] = field(default_factory=set)  # V keys: superseded generations
    replans: set[tuple[bytes, bytes]] = field(default_factory=set)  # R keys: (object, new base)
    chunks: dict[int, dict[int, bytes]] = field(default_factory=lambda: defaultdict(dict))  # C keys


class Fsck:
    def __init__(self, store: OpenStore, *, repair: bool = False, verify_data: bool = False,
                 progress: bool | None = None):
        self.store = store
        self.cat = store.catalog
        self.repair = repair
        self.verify_data = verify_data
        self.progress = progress
        self.findings: list[Finding] = []
        self.scan = Scan()
        self._paths: dict[int, list[str]] | None = None
        self._children: dict[bytes, list[bytes]] | None = None
        self._users: dict[bytes, list[int]] = {}
        from ..store.chains import ChainDecoder

        self._chains = ChainDecoder(store.objects, self.scan.objects.get)

    # ---------------------------------------------------------------- helpers
    def _bar(self, it: Iterable, desc: str, total: int | None = None) -> Iterable:
        disable = (not sys.stderr.isatty()) if self.progress is None else not self.progress
        return tqdm(it, desc=desc, total=total, disable=disable, unit="it", leave=False)

    def add(self, code: str, subject: str, detail: str = "", affected: list[str] | None = None) -> Finding:
        finding = Finding(code, subject, detail, affected or [])
        self.findings.append(finding)
        return finding

    def paths_of(self, ino: int) -> list[str]:
        if self._paths is None:
            names: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
            for parent, name, child, _ in self.scan.dentries:
                names[child].append((parent, name))
            cache: dict[int, list[str]] = {}
            visiting: set[int] = set()

            def build(i: int) -> list[str]:
                if i == keys.ROOT_INO:
                    return [""]
                if i in cache:
                    return cache[i]
                if i in visiting or len(visiting) > 500:
                    return ["<cycle>"]
                visiting.add(i)
                out = []
                for parent, name in names.get(i, []):
                    for prefix in build(parent):
                        out.append(prefix + "/" + name.decode("utf-8", "backslashreplace"))
                visiting.discard(i)
                cache[i] = out or [f"<inode {i}, no name>"]
                return cache[i]

            self._paths = {i: build(i) for i in names}
        return self._paths.get(ino) or [f"<inode {ino}, no name>"]

    # ---------------------------------------------------------------- load
    def load(self) -> None:
        s = self.scan
        for key, raw in self._bar(self.cat.scan(b""), "reading catalog"):
            prefix = key[:1]
            try:
                if prefix == keys.INODE:
                    ino = keys.read_u64(key, 1)
                    s.inodes[ino] = Inode.unpack(ino, raw)
                elif prefix == keys.DENTRY:
                    child, mode = unpack_dentry(raw)
                    s.dentries.append((keys.read_u64(key, 1), bytes(key[9:]), child, mode))
                elif prefix == keys.OBJECT:
                    s.objects[bytes(key[1:])] = ObjectRecord.unpack(raw)
                elif prefix == keys.GARBAGE:
                    s.garbage.add(bytes(key[1:]))
                elif prefix == keys.ORPHAN:
                    s.orphans.add(keys.read_u64(key, 1))
                elif prefix == keys.XATTR:
                    s.xattr_inos[keys.read_u64(key, 1)].append(bytes(key))
                elif prefix == keys.NEXT_INO:
                    s.next_ino = keys.read_u64(raw)
                elif prefix == keys.FORMAT:
                    s.format_copy = bytes(raw)
                elif prefix == keys.SIMILARITY:
                    s.similarity[bytes(key[1:])] = bytes(raw)
                elif prefix == keys.STALE:
                    s.stale.add((bytes(key[1:33]), int.from_bytes(key[33:37], "big")))
                elif prefix == keys.REPLAN:
                    s.replans.add((bytes(key[1:33]), bytes(key[33:65])))
                elif prefix == keys.CHUNK:
                    s.chunks[keys.read_u64(key, 1)][keys.chunk_index(key)] = unpack_chunk(raw)
                elif prefix == keys.SIMILARITY_LOCAL:
                    s.similarity_local.add(bytes(key[1:]))
            except (RecordError, ValueError, IndexError) as exc:
                self.add("S100", f"key {key[:40].hex()}", str(exc))

    # ---------------------------------------------------------------- structure
    def check_structure(self) -> None:
        s = self.scan
        if s.format_copy is not None:
            try:
                copy = StoreFormat.from_json(s.format_copy, "catalog")
                if copy.version != self.store.format.version:
                    self.add("S113", "catalog", f"catalog says version {copy.version}")
            except Exception as exc:  # BadStore and friends: report, keep checking
                self.add("S113", "catalog", str(exc))
        root = s.inodes.get(keys.ROOT_INO)
        if root is None or not root.is_dir:
            self.add("S107", "inode 1")
        links: Counter[int] = Counter()
        subdirs: Counter[int] = Counter()
        dir_entries: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for parent, name, child, dtype in s.dentries:
            pnode = s.inodes.get(parent)
            node = s.inodes.get(child)
            where = f"entry {self._entry_name(parent, name)}"
            if pnode is None or not pnode.is_dir:
                self.add("S110", where, f"parent inode {parent}")
            if node is None:
                f = self.add("S101", where, f"inode {child}")
                if self.repair:
                    self._delete_dentry(parent, name)
                    f.repaired = True
                continue
            if stat.S_IFMT(node.mode) != dtype:
                f = self.add("S102", where)
                if self.repair:
                    self.cat.put(keys.dentry_key(parent, name), pack_dentry(child, node.mode), sync=False)
                    f.repaired = True
            links[child] += 1
            if node.is_dir:
                subdirs[parent] += 1
                dir_entries[child].append((parent, name))
        for ino, node in self._bar(list(s.inodes.items()), "checking inodes", len(s.inodes)):
            if node.is_dir:
                entries = dir_entries.get(ino, [])
                if ino != keys.ROOT_INO:
                    if len(entries) > 1:
                        self.add("S106", f"directory inode {ino}", f"{len(entries)} entries name it")
                    elif len(entries) == 1 and entries[0][0] != node.parent:
                        f = self.add("S105", f"directory {self.paths_of(ino)[0]}",
                                     f"parent field {node.parent}, entry in {entries[0][0]}")
                        if self.repair:
                            node.parent = entries[0][0]
                            self._save(node)
                            f.repaired = True
                expected = 2 + subdirs[ino]
            else:
                expected = links[ino]
            if ino in s.orphans and links[ino] == 0 and node.nlink == 0:
                f = self.add("S109", f"inode {ino}")
                if self.repair:
                    self._drop_orphan(node)
                    f.repaired = True
                continue
            if ino != keys.ROOT_INO and links[ino] == 0:
                f = self.add("S104", f"inode {ino}", f"{stat.filemode(node.mode)} {node.size} bytes")
                if self.repair:
                    self._to_lost_found(node)
                    f.repaired = True
                continue
            if node.nlink != expected:
                f = self.add("S103", f"inode {ino} ({self.paths_of(ino)[0]})", f"nlink {node.nlink}, expected {expected}")
                if self.repair:
                    node.nlink = expected
                    self._save(node)
                    f.repaired = True
        self._check_reachability(dir_entries)
        if s.inodes:
            top = max(s.inodes)
            if s.next_ino is None or s.next_ino <= top:
                f = self.add("S108", "next-inode counter", f"{s.next_ino}, highest inode {top}")
                if self.repair:
                    self.cat.put(keys.NEXT_INO, keys.u64(top + 1), sync=False)
                    f.repaired = True
        for ino, xkeys in s.xattr_inos.items():
            if ino not in s.inodes:
                f = self.add("S111", f"inode {ino}", f"{len(xkeys)} attributes")
                if self.repair:
                    batch = self.cat.new_batch()
                    for k in xkeys:
                        batch.delete(k)
                    self.cat.write(batch, sync=False)
                    f.repaired = True

    def _check_reachability(self, dir_entries: dict[int, list[tuple[int, bytes]]]) -> None:
        """Directories must reach the root by parent links (no cycles cut off from the tree)."""
        s = self.scan
        good = {keys.ROOT_INO}
        for ino, node in s.inodes.items():
            if not node.is_dir or ino in good:
                continue
            chain, cur = [], ino
            while cur not in good:
                entries = dir_entries.get(cur)
                if not entries or cur in chain:
                    break
                chain.append(cur)
                cur = entries[0][0]
            if cur in good:
                good.update(chain)
            elif entries and cur in chain:
                self.add("S106", f"directory inode {ino}", "entries form a cycle unreachable from the root")

    # ---------------------------------------------------------------- objects
    def check_objects(self) -> None:
        s = self.scan
        refs: Counter[bytes] = Counter()
        users: dict[bytes, list[int]] = defaultdict(list)
        for ino, node in s.inodes.items():
            if node.is_reg and node.object_id != NO_OBJECT:
                refs[node.object_id] += 1
                users[node.object_id].append(ino)
            elif node.is_reg and node.size != 0 and not node.chunked:
                self.add("S112", f"inode {ino} ({self.paths_of(ino)[0]})", f"size {node.size} but no object")
        for ino, chunks in s.chunks.items():
            for oid in chunks.values():
                refs[oid] += 1  # every C key holds its object, even a stray one: nothing is freed unexplained
                users[oid].append(ino)
        self._check_chunks()
        for oid, inos in users.items():
            rec = s.objects.get(oid)
            if rec is None:
                self.add("O201", f"object {oid.hex()}", affected=self._affected(inos))
                continue
            for ino in inos:
                user = s.inodes.get(ino)
                if user is not None and not user.chunked and user.size != rec.size:
                    self.add("S112", f"inode {ino} ({self.paths_of(ino)[0]})", f"size {user.size}, object {rec.size}")
        for oid, rec in s.objects.items():
            if rec.refcount != refs[oid]:
                f = self.add("O202", f"object {oid.hex()}", f"refcount {rec.refcount}, counted {refs[oid]}")
                if self.repair:
                    rec.refcount = refs[oid]
                    self._save_object(oid, rec)
                    f.repaired = True
            if rec.collectable != (oid in s.garbage):
                f = self.add("O206", f"object {oid.hex()}", f"refcount {rec.refcount}, listed {oid in s.garbage}")
                if self.repair:
                    self._fix_garbage(oid, rec)
                    f.repaired = True
        for oid in s.garbage - set(s.objects):
            f = self.add("O206", f"object {oid.hex()}", "garbage entry without record")
            if self.repair:
                batch = self.cat.new_batch()
                batch.delete(keys.garbage_key(oid))
                self.cat.write(batch, sync=False)
                f.repaired = True
        on_disk: dict[bytes, dict[int, int]] = defaultdict(dict)
        objs = self.store.objects
        for oid, gen, size in self._bar(objs.iter_files(), "listing objects"):
            if oid:
                on_disk[oid][gen] = size
        for stray in objs.iter_stray():
            f = self.add("O207", str(stray.relative_to(self.store.path)))
            if self.repair:
                with contextlib.suppress(OSError):
                    stray.unlink()
                f.repaired = True
        for oid, rec in s.objects.items():
            files = on_disk.get(oid, {})
            if rec.gen not in files and rec.collectable and refs[oid] == 0 and oid in s.garbage:
                f = self.add("O209", f"object {oid.hex()}")
                if self.repair:
                    batch = self.cat.new_batch()
                    batch.delete(keys.object_key(oid))
                    batch.delete(keys.garbage_key(oid))
                    self.cat.write(batch, sync=False)
                    f.repaired = True
            elif rec.gen not in files:
                self.add("O203", f"object {oid.hex()}", f"expected {objs.path_of(oid, rec.gen).name}",
                         affected=self._affected_by(oid, users))
            elif files[rec.gen] != rec.stored:
                self.add("O204", f"object {oid.hex()}", f"file {files[rec.gen]} bytes, record {rec.stored}",
                         affected=self._affected_by(oid, users))
        for oid, files in on_disk.items():
            rec = s.objects.get(oid)
            for gen in files:
                if (rec is None or rec.gen != gen) and (oid, gen) not in s.stale:
                    f = self.add("O205", f"object {oid.hex()}.{gen}", f"{files[gen]} bytes")
                    if self.repair:
                        # never deleted: a leaked file may be all that is left of a photo
                        self._quarantine(objs.path_of(oid, gen))
                        f.repaired = True
        for entry in os.scandir(objs.staging):
            f = self.add("O208", f"staging/{entry.name}")
            if self.repair:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                f.repaired = True
        for entry in os.scandir(self.store.path):
            if not known_top_level(entry.name):
                self.add("O207", entry.name, "not created by simfs; left alone")
        self._users = users

    # ---------------------------------------------------------------- similarity index
    def _check_chunks(self) -> None:
        """C keys: of a chunked inode, below its size, no longer than a chunk; data_bytes adds up."""
        s = self.scan
        for ino, chunks in s.chunks.items():
            node = s.inodes.get(ino)
            if node is None or not node.chunked:
                self.add("S115", f"inode {ino}", f"{len(chunks)} chunk records",
                         affected=[] if node is None else self.paths_of(ino))
                continue
            cs = 1 << node.chunk_shift
            total = 0
            for index, oid in sorted(chunks.items()):
                rec = s.objects.get(oid)
                length = rec.size if rec is not None else 0
                total += length
                if index * cs >= node.size or length > min(cs, node.size - index * cs):
                    self.add("S116", f"inode {ino} ({self.paths_of(ino)[0]})",
                             f"chunk {index} of {length} bytes, file size {node.size}", affected=self.paths_of(ino))
            if total != node.data_bytes:
                f = self.add("S117", f"inode {ino} ({self.paths_of(ino)[0]})",
                             f"data_bytes {node.data_bytes}, chunks hold {total}")
                if self.repair:
                    node.data_bytes = total
                    self._save(node)
                    f.repaired = True

    def check_similarity(self) -> None:
        """S/T records exist together, exactly for live objects the descriptor processor marked done."""
        from ..similarity.index import RECORD_VERSION

        s = self.scan
        for oid in sorted(set(s.similarity) | s.similarity_local):
            rec = s.objects.get(oid)
            raw = s.similarity.get(oid)
            if rec is None:
                why = "object not in the catalog"
            elif raw is not None and oid not in s.similarity_local and rec.flags & FLAG_LOCAL_DROPPED:
                continue  # a near-free copy whose local features were dropped on purpose
            elif raw is None or oid not in s.similarity_local:
                why = "S without T" if raw is not None else "T without S"
            elif not rec.flags & FLAG_DESCRIBED or rec.flags & FLAG_NOT_IMAGE:
                why = "object is not marked as a described image"
            elif not raw or raw[0] != RECORD_VERSION:
                why = "unknown record version"
            else:
                continue
            f = self.add("O210", f"object {oid.hex()}", why)
            if self.repair:
                batch = self.cat.new_batch()
                batch.delete(keys.SIMILARITY + oid)
                batch.delete(keys.SIMILARITY_LOCAL + oid)
                if rec is not None:  # described again at the next mount
                    rec.flags &= ~(FLAG_DESCRIBED | FLAG_NOT_IMAGE)
                    batch.put(keys.object_key(oid), rec.pack())
                self.cat.write(batch, sync=False)
                f.repaired = True
        for oid, rec in s.objects.items():
            if (rec.refcount > 0 and rec.flags & FLAG_DESCRIBED and not rec.flags & FLAG_NOT_IMAGE
                    and oid not in s.similarity):
                f = self.add("O211", f"object {oid.hex()}")
                if self.repair:
                    rec.flags &= ~FLAG_DESCRIBED
                    self.cat.put(keys.object_key(oid), rec.pack(), sync=False)
                    f.repaired = True

    # ---------------------------------------------------------------- data
    def check_data(self) -> None:
        s = self.scan
        users = getattr(self, "_users", {})
        for oid, rec in self._bar(list(s.objects.items()), "verifying data", len(s.objects)):
            if not self.store.objects.path_of(oid, rec.gen).exists():
                continue  # already reported as O203
            try:
                self.store.objects.verify_content(oid, rec.gen)
                if rec.codec == CODEC_PNG:
                    self._verify_encoded(oid, rec)
            except CorruptObject as exc:
                self.add("D301", f"object {oid.hex()}", exc.why, affected=self._affected_by(oid, users))

    def _verify_encoded(self, oid: bytes, rec: ObjectRecord) -> None:
        """Decode the blob (its reference chain too) and compare the rebuilt bytes with the object id."""
        import hashlib

        import codec

        blob = self.store.objects.read_payload(oid, rec.gen)
        try:
            named = codec.blob_reference(blob)
        except Exception as exc:
            raise CorruptObject(oid, f"blob does not decode ({exc})") from None
        if named != (rec.base if rec.has_base else b""):
            raise CorruptObject(oid, f"blob is coded against {named.hex()[:16] or 'nothing'}, the record says "
                                     f"{rec.base.hex()[:16] if rec.has_base else 'nothing'}")
        try:
            rebuilt = self._chains.rebuild(oid, rec.gen)
        except CorruptObject as exc:
            raise CorruptObject(oid, exc.why) from None
        if len(rebuilt) != rec.size or hashlib.sha256(rebuilt).digest() != oid:
            raise CorruptObject(oid, "decoded bytes differ from the stored file")

    # ---------------------------------------------------------------- reference graph
    def check_references(self) -> None:
        """Bases exist, dependents counts and depths match the graph, no cycles, no needless pins."""
        s = self.scan
        counted: Counter[bytes] = Counter()
        for oid, rec in s.objects.items():
            if rec.has_base:
                counted[rec.base] += 1
                if rec.base not in s.objects:
                    self.add("O212", f"object {oid.hex()}", f"base {rec.base.hex()}",
                             affected=self._affected_by(oid, self._users))
        for oid, rec in s.objects.items():
            real_depth, cyclic = self._chain_depth(oid)
            if cyclic:
                self.add("O216", f"object {oid.hex()}", affected=self._affected_by(oid, self._users))
                continue
            if real_depth > 16:
                self.add("O215", f"object {oid.hex()}", f"depth {real_depth}")
            if rec.depth != real_depth and not (rec.has_base and rec.base not in s.objects):
                f = self.add("O214", f"object {oid.hex()}", f"recorded {rec.depth}, chain {real_depth}")
                if self.repair:
                    rec.depth = real_depth
                    self.cat.put(keys.object_key(oid), rec.pack(), sync=False)
                    f.repaired = True
        for oid, rec in s.objects.items():
            if rec.dependents == counted[oid]:
                continue
            code = "O217" if rec.refcount == 0 and counted[oid] == 0 else "O213"
            f = self.add(code, f"object {oid.hex()}", f"recorded {rec.dependents}, counted {counted[oid]}")
            if self.repair:
                rec.dependents = counted[oid]
                self._save_object(oid, rec)  # an orphaned pinned base becomes garbage: the next mount frees it
                f.repaired = True

    def check_replans(self) -> None:
        for oid, base in sorted(self.scan.replans):
            if oid in self.scan.objects and base in self.scan.objects:
                continue
            f = self.add("O218", f"object {oid.hex()}", f"against {base.hex()}")
            if self.repair:
                batch = self.cat.new_batch()
                batch.delete(keys.replan_key(oid, base))
                self.cat.write(batch, sync=False)
                f.repaired = True

    def _chain_depth(self, oid: bytes) -> tuple[int, bool]:
        """(links below oid, True if the chain loops back on itself)."""
        seen = {oid}
        depth = 0
        rec = self.scan.objects.get(oid)
        while rec is not None and rec.has_base:
            depth += 1
            if rec.base in seen:
                return depth, True
            seen.add(rec.base)
            rec = self.scan.objects.get(rec.base)
        return depth, False

    def _dependents_closure(self, oid: bytes) -> list[bytes]:
        """oid and every object whose reference chain passes through it."""
        if self._children is None:
            self._children = defaultdict(list)
            for other, rec in self.scan.objects.items():
                if rec.has_base:
                    self._children[rec.base].append(other)
        out, stack, seen = [], [oid], {oid}
        while stack:
            cur = stack.pop()
            out.append(cur)
            for child in self._children.get(cur, []):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return out

    def _affected_by(self, oid: bytes, users: dict[bytes, list[int]]) -> list[str]:
        """Every file whose content needs oid: its own files and those of all its dependents, transitively."""
        inos: list[int] = []
        for o in self._dependents_closure(oid):
            inos.extend(users.get(o, []))
        return self._affected(inos)

    # ---------------------------------------------------------------- run
    def run(self) -> list[Finding]:
        from ..catalog.db import CatalogDamaged

        try:
            self.load()
        except CatalogDamaged as exc:
            # Everything below would be judged from a partial catalog (a missing root, every object
            # "leaked"): report the damage and touch nothing. Restoring the catalog is the way out.
            self.findings = [f for f in self.findings if f.code == "S100"]
            from ..backups import hint

            self.add("S114", str(self.store.path / "catalog"), f"{exc}; {hint(self.store.path)}")
            return self.findings
        self.check_structure()
        self.check_objects()
        self.check_references()
        self.check_replans()
        self.check_similarity()
        if self.verify_data:
            self.check_data()
        if self.repair:
            self.cat.flush_wal()
        return self.findings

    # ---------------------------------------------------------------- repair primitives
    def _affected(self, inos: list[int]) -> list[str]:
        out: list[str] = []
        for ino in inos:
            out.extend(self.paths_of(ino))
        return sorted(out)

    def _quarantine(self, path: Path) -> None:
        """Move a file no record explains to STORE/quarantine/ (kept for the user to look at)."""
        qdir = self.store.path / "quarantine"
        qdir.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            os.rename(path, qdir / path.name)

    def _entry_name(self, parent: int, name: bytes) -> str:
        base = self.paths_of(parent)[0] if parent != keys.ROOT_INO else ""
        return base + "/" + name.decode("utf-8", "backslashreplace")

    def _save(self, node: Inode) -> None:
        self.cat.put(keys.inode_key(node.ino), node.pack(), sync=False)

    def _save_object(self, oid: bytes, rec: ObjectRecord) -> None:
        self.cat.put(keys.object_key(oid), rec.pack(), sync=False)
        self._fix_garbage(oid, rec)

    def _fix_garbage(self, oid: bytes, rec: ObjectRecord) -> None:
        batch = self.cat.new_batch()
        if rec.collectable:
            batch.put(keys.garbage_key(oid), b"")
        else:
            batch.delete(keys.garbage_key(oid))
        self.cat.write(batch, sync=False)

    def _delete_dentry(self, parent: int, name: bytes) -> None:
        batch = self.cat.new_batch()
        batch.delete(keys.dentry_key(parent, name))
        self.cat.write(batch, sync=False)

    def _drop_orphan(self, node: Inode) -> None:
        batch = self.cat.new_batch()
        batch.delete(keys.inode_key(node.ino))
        batch.delete(keys.orphan_key(node.ino))
        for k in self.scan.xattr_inos.get(node.ino, []):
            batch.delete(k)
        for index in self.scan.chunks.get(node.ino, {}):
            batch.delete(keys.chunk_key(node.ino, index))  # its chunk objects become garbage (O202/O206)
        self.cat.write(batch, sync=False)
        self.scan.inodes.pop(node.ino, None)  # refcounts are recomputed without it
        self.scan.chunks.pop(node.ino, None)

    def _to_lost_found(self, node: Inode) -> None:
        """Give an unreachable inode a name under /lost+found (created if needed)."""
        lf_raw = self.cat.get(keys.dentry_key(keys.ROOT_INO, LOST_FOUND))
        batch = self.cat.new_batch()
        if lf_raw is None:
            nxt = max(self.scan.next_ino or 0, max(self.scan.inodes) + 1)
            root = self.scan.inodes[keys.ROOT_INO]
            lf = Inode(nxt, stat.S_IFDIR | 0o700, 0, 0, 2, 0, root.mtime, root.mtime, root.mtime, parent=keys.ROOT_INO)
            self.scan.inodes[nxt] = lf
            self.scan.next_ino = nxt + 1
            root.nlink += 1
            batch.put(keys.inode_key(nxt), lf.pack())
            batch.put(keys.inode_key(keys.ROOT_INO), root.pack())
            batch.put(keys.NEXT_INO, keys.u64(nxt + 1))
            batch.put(keys.dentry_key(keys.ROOT_INO, LOST_FOUND), pack_dentry(nxt, lf.mode))
            lf_ino = nxt
        else:
            lf_ino = unpack_dentry(lf_raw)[0]
        name = f"#{node.ino}".encode()
        if node.is_dir:
            node.parent = lf_ino
            lf_node = self.scan.inodes[lf_ino]
            lf_node.nlink += 1
            batch.put(keys.inode_key(lf_ino), lf_node.pack())
        else:
            node.nlink = 1
        batch.put(keys.inode_key(node.ino), node.pack())
        batch.put(keys.dentry_key(lf_ino, name), pack_dentry(node.ino, node.mode))
        self.cat.write(batch, sync=False)


def worst(findings: list[Finding]) -> Severity | None:
    sev = [f.severity for f in findings if not f.repaired]
    return max(sev) if sev else None


def summarize(findings: list[Finding]) -> dict[str, int]:
    return dict(Counter(f.code for f in findings))


def unclean(findings: list[Finding]) -> list[Finding]:
    """Findings that make the store not clean: unrepaired warnings and errors (info is expected after a crash)."""
    return [f for f in findings if not f.repaired and f.severity >= Severity.WARNING]


__all__ = ["Fsck", "Finding", "Severity", "worst", "summarize", "unclean", "Path"]
