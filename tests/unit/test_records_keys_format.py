"""Catalog keys sort as designed, records round-trip and reject unknown versions, FORMAT is validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simfs.catalog import keys
from simfs.catalog.records import Inode, ObjectRecord, RecordError, pack_dentry, unpack_dentry
from simfs.errors import BadStore
from simfs.format import FORMAT_VERSION_WRITTEN, StoreFormat, read_format, write_format


def test_keys_sort_by_parent_then_name() -> None:
    ks = [keys.dentry_key(2, b"b"), keys.dentry_key(1, b"z"), keys.dentry_key(256, b"a"), keys.dentry_key(2, b"a")]
    assert sorted(ks) == [keys.dentry_key(1, b"z"), keys.dentry_key(2, b"a"), keys.dentry_key(2, b"b"),
                          keys.dentry_key(256, b"a")]
    assert keys.dentry_key(7, b"x").startswith(keys.dentry_prefix(7))
    assert not keys.dentry_key(7 + 256, b"x").startswith(keys.dentry_prefix(7))
    prefixes = [keys.FORMAT, keys.NEXT_INO, keys.INODE, keys.DENTRY, keys.XATTR, keys.OBJECT, keys.GARBAGE,
                keys.ORPHAN]
    assert len(set(prefixes)) == len(prefixes) and all(len(p) == 1 for p in prefixes)


def test_inode_round_trip_with_symlink_target() -> None:
    node = Inode(42, 0o120777, 1000, 100, 1, 9, 1, 2, 3, 0, 0, bytes(32), b"\xfftarget")
    assert Inode.unpack(42, node.pack()) == node


def test_object_record_and_dentry_round_trip() -> None:
    rec = ObjectRecord(0, 3, 1 << 40, (1 << 40) + 128, 7, 0)
    assert ObjectRecord.unpack(rec.pack()) == rec
    assert unpack_dentry(pack_dentry(99, 0o100644)) == (99, 0o100000)


@pytest.mark.parametrize("raw", [b"", b"\x02" + bytes(100), b"\x01\x00"])
def test_bad_records_raise(raw: bytes) -> None:
    with pytest.raises(RecordError):
        Inode.unpack(1, raw)
    with pytest.raises(RecordError):
        ObjectRecord.unpack(raw)


def test_format_round_trip_and_refusals(tmp_path: Path) -> None:
    write_format(tmp_path, StoreFormat())
    fmt = read_format(tmp_path)
    assert fmt.version == FORMAT_VERSION_WRITTEN
    doc = json.loads((tmp_path / "FORMAT").read_text())
    for bad, message in [({**doc, "version": 2}, "not supported"), ({**doc, "features": ["x-new"]}, "x-new"),
                         ({**doc, "format": "other"}, "not a simfs store")]:
        (tmp_path / "FORMAT").write_text(json.dumps(bad))
        with pytest.raises(BadStore, match=message):
            read_format(tmp_path)
    (tmp_path / "FORMAT").write_text("{not json")
    with pytest.raises(BadStore, match="not valid JSON"):
        read_format(tmp_path)
    (tmp_path / "FORMAT").unlink()
    with pytest.raises(BadStore, match="no FORMAT"):
        read_format(tmp_path)
