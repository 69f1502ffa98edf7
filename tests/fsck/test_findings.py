"""One test per fsck finding code: inject the fault, see it found (with affected files), repair, see clean."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from simfs.catalog import keys
from simfs.catalog.records import Inode, ObjectRecord, pack_dentry
from simfs.cli import main as simfs_main
from simfs.fsck.checker import Fsck, unclean
from simfs.fsck.findings import CODES, Severity
from simfs.storage import OpenStore
from simfs.vfs import Vfs

ALL_TESTED: set[str] = set()


def make_store(path: Path) -> dict[str, bytes]:
    """A small store: /photos/a.png, /photos/b.png (same content as /copy.png), /notes.txt, /d/e."""
    store = OpenStore(path, create=True)
    vfs = Vfs(store)
    vfs.mkdir("/photos", 0o755)
    vfs.mkdir("/d", 0o755)
    vfs.mkdir("/d/e", 0o755)
    files = {"/photos/a.png": os.urandom(5000), "/photos/b.png": b"B" * 7000, "/copy.png": b"B" * 7000,
             "/notes.txt": b"notes"}
    for p, data in files.items():
        fh = vfs.create(p, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
    vfs.setxattr("/notes.txt", "user.k", b"v")
    vfs.shutdown()
    store.close()
    return files


def run_fsck(path: Path, *, repair: bool = False, verify: bool = True):
    store = OpenStore(path, read_only=not repair, check_catalog_format=False)
    try:
        return Fsck(store, repair=repair, verify_data=verify, progress=False).run()
    finally:
        store.close()


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def inject(path: Path, fn) -> None:
    store = OpenStore(path)
    try:
        fn(store)
    finally:
        store.close()


def ino_of(store: OpenStore, *names: bytes) -> int:
    ino = keys.ROOT_INO
    for name in names:
        raw = store.catalog.get(keys.dentry_key(ino, name))
        assert raw is not None, name
        ino = keys.read_u64(raw)
    return ino


def inode(store: OpenStore, ino: int) -> Inode:
    return Inode.unpack(ino, store.catalog.get(keys.inode_key(ino)))


def put_inode(store: OpenStore, node: Inode) -> None:
    store.catalog.put(keys.inode_key(node.ino), node.pack())


def expect(path: Path, code: str, *, repairable: bool, affected: str | None = None) -> None:
    """The finding is reported; after --repair (if repairable) a second run is clean."""
    ALL_TESTED.add(code)
    found = run_fsck(path)
    assert code in codes(found), [f.line() for f in found]
    if affected is not None:
        hit = [f for f in found if f.code == code]
        assert any(affected in f.affected for f in hit), [(f.line(), f.affected) for f in hit]
    if CODES[code][0] >= Severity.WARNING:
        assert unclean(found)
    if repairable:
        repaired = run_fsck(path, repair=True)
        assert all(f.repaired for f in repaired if f.code == code)
        again = run_fsck(path)
        assert not unclean(again), [f.line() for f in again]
        assert code not in codes(again)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    make_store(path)
    assert not run_fsck(path), "fresh store must be clean"
    return path


def test_s100_undecodable_record(store_path: Path) -> None:
    inject(store_path, lambda s: s.catalog.put(keys.object_key(b"\x01" * 32), b"\x09garbage"))
    expect(store_path, "S100", repairable=False)


def test_s101_dentry_to_missing_inode(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        s.catalog.put(keys.dentry_key(keys.ROOT_INO, b"ghost"), pack_dentry(9999, stat.S_IFREG))
    inject(store_path, fault)
    expect(store_path, "S101", repairable=True)


def test_s102_dentry_type_mismatch(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        ino = ino_of(s, b"notes.txt")
        s.catalog.put(keys.dentry_key(keys.ROOT_INO, b"notes.txt"), pack_dentry(ino, stat.S_IFDIR))
    inject(store_path, fault)
    expect(store_path, "S102", repairable=True)


def test_s103_wrong_nlink(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        node = inode(s, ino_of(s, b"notes.txt"))
        node.nlink = 5
        put_inode(s, node)
    inject(store_path, fault)
    expect(store_path, "S103", repairable=True)


def test_s104_unreachable_inode_goes_to_lost_found(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        batch = s.catalog.new_batch()
        batch.delete(keys.dentry_key(keys.ROOT_INO, b"notes.txt"))
        s.catalog.write(batch, sync=True)
    inject(store_path, fault)
    expect(store_path, "S104", repairable=True)
    store = OpenStore(store_path, read_only=True)
    try:
        lf = keys.read_u64(store.catalog.get(keys.dentry_key(keys.ROOT_INO, b"lost+found")))
        names = [k[9:] for k, _ in store.catalog.scan(keys.dentry_prefix(lf))]
        assert len(names) == 1 and names[0].startswith(b"#")
    finally:
        store.close()


def test_s105_directory_parent_field(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        node = inode(s, ino_of(s, b"d", b"e"))
        node.parent = keys.ROOT_INO
        put_inode(s, node)
    inject(store_path, fault)
    expect(store_path, "S105", repairable=True)


def test_s106_directory_with_two_entries(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        e = ino_of(s, b"d", b"e")
        s.catalog.put(keys.dentry_key(keys.ROOT_INO, b"e-again"), pack_dentry(e, stat.S_IFDIR))
    inject(store_path, fault)
    expect(store_path, "S106", repairable=False)


def test_s106_cycle_cut_off_from_root(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        d, e = ino_of(s, b"d"), ino_of(s, b"d", b"e")
        batch = s.catalog.new_batch()
        batch.delete(keys.dentry_key(keys.ROOT_INO, b"d"))
        batch.put(keys.dentry_key(e, b"loop"), pack_dentry(d, stat.S_IFDIR))
        s.catalog.write(batch, sync=True)
    inject(store_path, fault)
    found = run_fsck(store_path)
    assert any(f.code == "S106" and "cycle" in f.detail for f in found), [f.line() for f in found]


def test_s107_root_missing(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        batch = s.catalog.new_batch()
        batch.delete(keys.inode_key(keys.ROOT_INO))
        s.catalog.write(batch, sync=True)
    inject(store_path, fault)
    expect(store_path, "S107", repairable=False)


def test_s108_next_inode_counter_too_low(store_path: Path) -> None:
    inject(store_path, lambda s: s.catalog.put(keys.NEXT_INO, keys.u64(2)))
    expect(store_path, "S108", repairable=True)


def make_orphan(s: OpenStore, name: bytes) -> None:
    """The file /name as the daemon leaves it when it dies after an unlink while the file was open."""
    ino = ino_of(s, name)
    node = inode(s, ino)
    node.nlink = 0
    batch = s.catalog.new_batch()
    batch.delete(keys.dentry_key(keys.ROOT_INO, name))
    batch.put(keys.inode_key(ino), node.pack())
    batch.put(keys.orphan_key(ino), b"")
    s.catalog.write(batch, sync=True)


def test_s109_orphan_is_info_and_mount_reclaims_it(store_path: Path) -> None:
    inject(store_path, lambda s: make_orphan(s, b"notes.txt"))
    ALL_TESTED.add("S109")
    found = run_fsck(store_path)
    assert "S109" in codes(found) and not unclean(found), [f.line() for f in found]
    store = OpenStore(store_path)  # what a mount does at start
    Vfs(store).shutdown()
    store.close()
    assert not run_fsck(store_path)


def test_s110_entry_under_a_file(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        f = ino_of(s, b"notes.txt")
        a = ino_of(s, b"photos", b"a.png")
        s.catalog.put(keys.dentry_key(f, b"child"), pack_dentry(a, stat.S_IFREG))
    inject(store_path, fault)
    expect(store_path, "S110", repairable=False)


def test_s111_dangling_xattr(store_path: Path) -> None:
    inject(store_path, lambda s: s.catalog.put(keys.xattr_key(777, b"user.x"), b"1"))
    expect(store_path, "S111", repairable=True)


def test_s112_size_mismatch(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        node = inode(s, ino_of(s, b"notes.txt"))
        node.size = 3
        put_inode(s, node)
    inject(store_path, fault)
    expect(store_path, "S112", repairable=False)


def test_s113_catalog_format_copy_differs(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        doc = json.loads(s.catalog.get(keys.FORMAT))
        doc["version"] = 99
        s.catalog.put(keys.FORMAT, json.dumps(doc).encode())
    inject(store_path, fault)
    expect(store_path, "S113", repairable=False)
    from simfs.errors import BadStore

    with pytest.raises(BadStore, match="disagree"):  # a mount refuses such a store
        OpenStore(store_path)


def _object_of(s: OpenStore, *names: bytes) -> tuple[bytes, ObjectRecord]:
    oid = inode(s, ino_of(s, *names)).object_id
    return oid, ObjectRecord.unpack(s.catalog.get(keys.object_key(oid)))


def test_o201_record_missing(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, _ = _object_of(s, b"notes.txt")
        batch = s.catalog.new_batch()
        batch.delete(keys.object_key(oid))
        s.catalog.write(batch, sync=True)
    inject(store_path, fault)
    expect(store_path, "O201", repairable=False, affected="/notes.txt")


def test_o202_refcount_wrong(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"copy.png")
        assert rec.refcount == 2  # b.png and copy.png share it
        rec.refcount = 7
        s.catalog.put(keys.object_key(oid), rec.pack())
    inject(store_path, fault)
    expect(store_path, "O202", repairable=True)


def test_o203_object_file_missing_lists_every_affected_file(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"copy.png")
        s.objects.path_of(oid, rec.gen).unlink()
    inject(store_path, fault)
    expect(store_path, "O203", repairable=False, affected="/photos/b.png")
    found = [f for f in run_fsck(store_path) if f.code == "O203"]
    assert found[0].affected == ["/copy.png", "/photos/b.png"]
    assert simfs_main(["fsck", str(store_path), "--no-progress"]) == 7


def test_o204_object_size_mismatch(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"photos", b"a.png")
        with open(s.objects.path_of(oid, rec.gen), "ab") as fh:
            fh.write(b"extra")
    inject(store_path, fault)
    expect(store_path, "O204", repairable=False, affected="/photos/a.png")


def test_o205_leaked_object_file(store_path: Path) -> None:
    inject(store_path, lambda s: s.objects.put_bytes(b"\xab" * 32, b"nobody names me"))
    expect(store_path, "O205", repairable=True)


def test_o206_garbage_list_wrong(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, _ = _object_of(s, b"notes.txt")
        s.catalog.put(keys.garbage_key(oid), b"")
    inject(store_path, fault)
    expect(store_path, "O206", repairable=True)


def test_o207_stray_file(store_path: Path) -> None:
    (store_path / "objects" / "00" / "not-an-object").write_bytes(b"?")
    expect(store_path, "O207", repairable=True)


def test_o208_staging_leftover_is_info(store_path: Path) -> None:
    (store_path / "staging" / "i5-1-1").write_bytes(b"half written")
    ALL_TESTED.add("O208")
    found = run_fsck(store_path)
    assert "O208" in codes(found) and not unclean(found)
    run_fsck(store_path, repair=True)
    assert not run_fsck(store_path)


def test_o209_gc_interrupted_after_file_delete_is_info(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"notes.txt")
        ino = ino_of(s, b"notes.txt")
        batch = s.catalog.new_batch()  # what unlink does: refcount 0 + garbage entry
        batch.delete(keys.dentry_key(keys.ROOT_INO, b"notes.txt"))
        batch.delete(keys.inode_key(ino))
        batch.delete(keys.xattr_key(ino, b"user.k"))
        rec.refcount = 0
        batch.put(keys.object_key(oid), rec.pack())
        batch.put(keys.garbage_key(oid), b"")
        root = inode(s, keys.ROOT_INO)
        batch.put(keys.inode_key(keys.ROOT_INO), root.pack())
        s.catalog.write(batch, sync=True)
        s.objects.path_of(oid, rec.gen).unlink()  # GC deleted the file, then the daemon died
    inject(store_path, fault)
    ALL_TESTED.add("O209")
    found = run_fsck(store_path)
    assert "O209" in codes(found) and "O203" not in codes(found) and not unclean(found), [f.line() for f in found]
    store = OpenStore(store_path)  # the next mount finishes the collection
    Vfs(store).shutdown()
    store.close()
    assert not run_fsck(store_path)


def test_o210_similarity_record_without_described_object(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        batch = s.catalog.new_batch()
        batch.put(keys.SIMILARITY + b"\x55" * 32, b"\x01" + bytes(57))  # object not in the catalog
        oid, _ = _object_of(s, b"notes.txt")
        batch.put(keys.SIMILARITY_LOCAL + oid, b"\x01" + bytes(8))  # T without S, object not described
        s.catalog.write(batch, sync=True)
    inject(store_path, fault)
    expect(store_path, "O210", repairable=True)


def test_o211_described_image_without_record(store_path: Path) -> None:
    from simfs.catalog.records import FLAG_DESCRIBED

    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"photos", b"a.png")
        rec.flags |= FLAG_DESCRIBED
        s.catalog.put(keys.object_key(oid), rec.pack())
    inject(store_path, fault)
    expect(store_path, "O211", repairable=True)


def test_d301_damaged_content_found_by_verify_data(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        oid, rec = _object_of(s, b"photos", b"a.png")
        path = s.objects.path_of(oid, rec.gen)
        raw = bytearray(path.read_bytes())
        raw[200] ^= 0x01  # one flipped bit in the payload
        path.write_bytes(bytes(raw))
    inject(store_path, fault)
    assert "D301" not in codes(run_fsck(store_path, verify=False))  # only found when data is verified
    expect(store_path, "D301", repairable=False, affected="/photos/a.png")


def test_every_code_has_a_test() -> None:
    here = Path(__file__).read_text()
    missing = [code for code in CODES if f"test_{code.lower()}_" not in here]
    assert not missing, f"finding codes without a test: {missing}"


# ---------------------------------------------------------------- reference graph (O212-O217)
def _set(s: OpenStore, oid: bytes, **fields) -> None:
    raw = s.catalog.get(keys.object_key(oid))
    rec = ObjectRecord.unpack(raw)
    for k, v in fields.items():
        setattr(rec, k, v)
    s.catalog.put(keys.object_key(oid), rec.pack())


def _ids(s: OpenStore) -> tuple[bytes, bytes, bytes]:
    a, _ = _object_of(s, b"photos", b"a.png")
    b, _ = _object_of(s, b"copy.png")
    n, _ = _object_of(s, b"notes.txt")
    return a, b, n


def test_o212_missing_base_lists_dependents(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        a, b, _ = _ids(s)
        _set(s, b, base=b"\x77" * 32, depth=1)
    inject(store_path, fault)
    expect(store_path, "O212", repairable=False, affected="/copy.png")


def test_o213_dependents_count_wrong(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        a, b, _ = _ids(s)
        _set(s, b, base=a, depth=1)  # b coded against a, but a does not count it
    inject(store_path, fault)
    expect(store_path, "O213", repairable=True)


def test_o214_recorded_depth_wrong(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        a, b, _ = _ids(s)
        _set(s, a, dependents=1)
        _set(s, b, base=a, depth=3)
    inject(store_path, fault)
    expect(store_path, "O214", repairable=True)


def test_o215_chain_longer_than_any_limit(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = OpenStore(path, create=True)
    vfs = Vfs(store)
    oids = []
    for i in range(19):
        data = f"object {i}".encode()
        fh = vfs.create(f"/f{i}", 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
        import hashlib

        oids.append(hashlib.sha256(data).digest())
    vfs.shutdown()
    store.close()

    def fault(s: OpenStore) -> None:
        for i in range(1, 19):
            _set(s, oids[i], base=oids[i - 1], depth=i)
        for i in range(18):
            _set(s, oids[i], dependents=1)
    inject(path, fault)
    ALL_TESTED.add("O215")
    found = run_fsck(path)
    assert codes(unclean(found)) == {"O215"}, [f.line() for f in found]
    assert len([f for f in found if f.code == "O215"]) == 2  # depths 17 and 18


def test_o216_reference_cycle(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        a, b, _ = _ids(s)
        _set(s, a, base=b, depth=1, dependents=1)
        _set(s, b, base=a, depth=1, dependents=1)
    inject(store_path, fault)
    expect(store_path, "O216", repairable=False, affected="/photos/a.png")


def test_o217_pinned_base_without_dependents(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        import hashlib

        content = b"a base nothing uses any more"
        oid = hashlib.sha256(content).digest()
        stored = s.objects.put_bytes(oid, content)
        s.catalog.put(keys.object_key(oid), ObjectRecord(0, 0, 28, stored, dependents=2).pack())
    inject(store_path, fault)
    expect(store_path, "O217", repairable=True)
    store = OpenStore(store_path)  # the next mount frees it
    Vfs(store).shutdown()
    store.close()
    assert not run_fsck(store_path)
    store = OpenStore(store_path)
    try:
        import hashlib

        assert store.catalog.get(keys.object_key(hashlib.sha256(b"a base nothing uses any more").digest())) is None
    finally:
        store.close()


def test_s114_damaged_catalog_is_reported_and_nothing_is_deleted(tmp_path: Path) -> None:
    """A flipped byte in an SST block: fsck says the catalog is damaged, --repair deletes no object file."""
    from rocksdict import Rdict

    from simfs.catalog.db import CatalogDamaged

    path = tmp_path / "store"
    store = OpenStore(path, create=True)
    vfs = Vfs(store)
    vfs.mkdir("/d", 0o755)
    for i in range(400):
        fh = vfs.create(f"/d/file-{i:04d}-with-a-longish-name.txt", 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, f"content {i}".encode() * 20, 0)
        vfs.release(fh)
    vfs.shutdown()
    store.close()
    db = Rdict(str(path / "catalog"))
    db.flush()
    db.close()
    ssts = sorted((path / "catalog").glob("*.sst"), key=lambda p: p.stat().st_size)
    raw = bytearray(ssts[-1].read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # inside a data block, not the footer or index
    ssts[-1].write_bytes(bytes(raw))
    objects_before = sorted(p.name for p in (path / "objects").rglob("*.0"))
    assert len(objects_before) == 400
    ALL_TESTED.add("S114")
    try:
        found = run_fsck(path, verify=False)
    except CatalogDamaged:
        pytest.fail("fsck must report a damaged catalog as a finding, not crash")
    assert "S114" in codes(found) and unclean(found), [f.line() for f in found]
    assert not {"O205", "S107"} & codes(found)  # no "root missing", no "every object leaked"
    run_fsck(path, repair=True, verify=False)
    assert sorted(p.name for p in (path / "objects").rglob("*.0")) == objects_before
    assert simfs_main(["fsck", str(path), "--repair", "--no-progress"]) == 7


def test_o218_replanning_job_for_a_missing_object_is_info(store_path: Path) -> None:
    def fault(s: OpenStore) -> None:
        a, _, _ = _ids(s)
        s.catalog.put(keys.replan_key(b"\x55" * 32, a), b"")
    inject(store_path, fault)
    ALL_TESTED.add("O218")
    found = run_fsck(store_path)
    assert "O218" in codes(found) and not unclean(found), [f.line() for f in found]
    store = OpenStore(store_path)  # the next mount drops it
    vfs = Vfs(store)
    from simfs.ingest import Ingestor

    ingest = Ingestor(vfs, [])
    ingest.enqueue_unfinished()
    ingest.run_replans()
    vfs.shutdown()
    store.close()
    assert "O218" not in codes(run_fsck(store_path))


# ---------------------------------------------------------------- chunked files (S115-S117)
def _add_chunked_file(path: Path) -> int:
    """/big.bin: 12 MiB of which chunks 0, 1 and 11 hold data (the rest holes); returns its inode."""
    store = OpenStore(path)
    vfs = Vfs(store)
    fh = vfs.create("/big.bin", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.write(fh, os.urandom(1 << 20) + b"tail of chunk one", 0)
    vfs.write(fh, b"end", (12 << 20) - 3)
    vfs.release(fh)
    ino = vfs.resolve("/big.bin")
    assert vfs.load_inode(ino).chunked
    vfs.shutdown()
    store.close()
    assert not unclean(run_fsck(path)), "a store with a chunked file must be clean"
    return ino


def _chunks_of(s: OpenStore, ino: int) -> dict[int, bytes]:
    from simfs.catalog.records import unpack_chunk

    return {keys.chunk_index(k): unpack_chunk(v) for k, v in s.catalog.scan(keys.chunk_prefix(ino))}


def test_s115_chunk_record_of_a_missing_inode(store_path: Path) -> None:
    from simfs.catalog.records import pack_chunk

    ino = _add_chunked_file(store_path)

    def fault(s: OpenStore) -> None:
        oid = _chunks_of(s, ino)[0]
        s.catalog.put(keys.chunk_key(99_999, 0), pack_chunk(oid))
    inject(store_path, fault)
    expect(store_path, "S115", repairable=False)
    found = run_fsck(store_path, repair=True)
    assert "S115" in codes(found)
    store = OpenStore(store_path, read_only=True)
    try:  # the object the stray chunk names is still there: fsck frees nothing it cannot explain
        oid = _chunks_of(store, 99_999)[0]
        assert store.objects.path_of(oid, 0).exists()
    finally:
        store.close()


def test_s116_chunk_past_the_file_size(store_path: Path) -> None:
    ino = _add_chunked_file(store_path)

    def fault(s: OpenStore) -> None:
        node = inode(s, ino)
        node.size = 2 << 20  # chunk 11 now lies past the end
        put_inode(s, node)
    inject(store_path, fault)
    expect(store_path, "S116", repairable=False, affected="/big.bin")


def test_s117_data_bytes_wrong(store_path: Path) -> None:
    ino = _add_chunked_file(store_path)

    def fault(s: OpenStore) -> None:
        node = inode(s, ino)
        node.data_bytes += 12345
        put_inode(s, node)
    inject(store_path, fault)
    expect(store_path, "S117", repairable=True)


def test_missing_chunk_object_names_the_file(store_path: Path) -> None:
    ino = _add_chunked_file(store_path)

    def fault(s: OpenStore) -> None:
        oid = _chunks_of(s, ino)[11]
        s.objects.path_of(oid, 0).unlink()
    inject(store_path, fault)
    expect(store_path, "O203", repairable=False, affected="/big.bin")


def test_repair_of_a_chunked_orphan_frees_its_chunks(store_path: Path) -> None:
    ino = _add_chunked_file(store_path)

    inject(store_path, lambda s: make_orphan(s, b"big.bin"))
    run_fsck(store_path, repair=True)
    again = run_fsck(store_path)
    assert not unclean(again), [f.line() for f in again]
    store = OpenStore(store_path)
    try:
        assert not _chunks_of(store, ino)
        Vfs(store).shutdown()  # a mount frees the chunk objects, now garbage
    finally:
        store.close()
    assert not unclean(run_fsck(store_path))
