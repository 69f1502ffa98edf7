"""Metadata backups on real mounts: made at unmount and periodically, last N kept; `fsck --restore-catalog`
brings every file of the backup back by name and every later one into /lost+found by content."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DEVSET, REPO, Mount, assert_fsck_clean, needs_devset, needs_fuse, run_simfs
from PIL import Image

from simfs.errors import ExitCode

pytestmark = needs_fuse


def random_png(seed: int) -> bytes:
    """A small noisy PNG (incompressible enough that no two seeds share anything)."""
    rng = __import__("numpy").random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype="uint8")).save(buf, format="PNG")
    return buf.getvalue()


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write(mnt: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = mnt / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)


def batch(tag: str, n: int = 4) -> dict[str, bytes]:
    """n files per batch: PNGs and plain bytes, some in a subdirectory; all distinct content."""
    out = {}
    for i in range(n):
        seed = sum(map(ord, tag)) * 100 + i
        if i % 2:
            out[f"{tag}/doc-{i}.dat"] = os.urandom(3000 + i) + tag.encode()
        else:
            out[f"{tag}-photo-{i}.png"] = random_png(seed)
    return out


def wait_ingest(store: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while json.loads(run_simfs("stats", str(store), "--json").stdout)["ingest_pending"]:
        assert time.monotonic() < deadline, "background ingest did not finish"
        time.sleep(0.2)


def backups(store: Path) -> list[str]:
    root = store / "backups"
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def manifest(store: Path, name: str) -> dict:
    return json.loads((store / "backups" / name / "BACKUP.json").read_text())


def restore(store: Path, *name: str) -> str:
    result = run_simfs("fsck", "--restore-catalog", *name, str(store), "--no-progress")
    assert result.returncode == ExitCode.FSCK_REPAIRED, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def check_tree(mnt: Path, by_name: dict[str, bytes], by_content: dict[str, bytes]) -> None:
    """Files of the backup are back under their names, later ones in /lost+found named by content hash."""
    for name, data in by_name.items():
        assert (mnt / name).read_bytes() == data, name
    lost = {p.name: p.read_bytes() for p in (mnt / "lost+found").iterdir()} if by_content else {}
    expected = {}
    for name, data in by_content.items():
        ext = ".png" if name.endswith(".png") else ".bin"
        expected[hashlib.sha256(data).hexdigest() + ext] = data
        assert not (mnt / name).exists(), f"{name} was written after the backup: it has no name"
    assert lost == expected


def test_catalog_destroyed_then_restored_every_file_is_back(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    first, second, later = batch("first"), batch("second"), batch("later")
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, first)
    assert len(backups(store)) == 1, "a clean unmount makes a backup"
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, second)
    assert len(backups(store)) == 2
    m = Mount(store, mnt, ["noencode"]).start()
    write(m.mountpoint, later)  # closed, so durable; but the daemon dies before any backup has them
    m.kill()
    assert len(backups(store)) == 2
    objects_before = sorted(p.name for p in (store / "objects").rglob("*.*"))
    shutil.rmtree(store / "catalog")

    result = run_simfs("fsck", str(store))
    assert result.returncode == ExitCode.BAD_STORE
    assert "catalog database is missing" in result.stderr and "--restore-catalog" in result.stderr
    assert "2 metadata backup(s) available" in result.stderr
    out = restore(store)
    assert f"backup {backups(store)[1]}" in out and "4 object file(s)" in out, out
    assert not list(store.glob("catalog.damaged-*")), "there was no catalog to keep aside"
    assert sorted(p.name for p in (store / "objects").rglob("*.*")) == objects_before  # nothing deleted
    assert_fsck_clean(store)
    with Mount(store, mnt) as m:
        check_tree(m.mountpoint, {**first, **second}, later)
    assert_fsck_clean(store)


def test_restore_a_named_backup_keeps_the_damaged_catalog_aside(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    first, second = batch("first", 2), batch("second", 3)
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, first)
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, second)
    oldest, newest = backups(store)
    before = sorted(p.name for p in (store / "catalog").iterdir() if p.name != "LOCK")

    result = run_simfs("fsck", "--restore-catalog", "20000101T000000.000000Z", str(store))
    assert result.returncode == ExitCode.NO_BACKUP and "no such backup" in result.stderr
    assert oldest in result.stderr and newest in result.stderr  # it lists what there is
    assert not list(store.glob("catalog.*")), "a failed restore changes nothing"

    out = restore(store, oldest)
    assert f"backup {oldest}" in out
    aside = list(store.glob("catalog.damaged-*"))
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir() if p.name != "LOCK") == before
    assert_fsck_clean(store)  # the catalog kept aside is not "an unexpected file"
    with Mount(store, mnt) as m:
        check_tree(m.mountpoint, first, second)
    assert oldest in backups(store) and newest in backups(store), "a restore deletes no backup"


def test_restore_is_refused_while_mounted_and_without_backups(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    with Mount(store, mnt, ["noencode", "metadata_backups=0"]) as m:
        write(m.mountpoint, {"a.txt": b"a"})
    assert not backups(store), "metadata_backups=0 makes none"
    result = run_simfs("fsck", "--restore-catalog", str(store))
    assert result.returncode == ExitCode.NO_BACKUP and "no metadata backup" in result.stderr
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"b.txt": b"b"})
        files = sorted(p.name for p in (store / "catalog").iterdir())
        result = run_simfs("fsck", "--restore-catalog", str(store))
        assert result.returncode == ExitCode.ALREADY_MOUNTED and "already mounted" in result.stderr
        assert sorted(p.name for p in (store / "catalog").iterdir()) == files
        assert not list(store.glob("catalog.*"))
        assert (m.mountpoint / "b.txt").read_bytes() == b"b"
    assert len(backups(store)) == 1


def test_last_n_kept_and_unchanged_catalog_not_backed_up_again(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    made = []
    for i in range(3):
        with Mount(store, mnt, ["noencode", "metadata_backups=2"]) as m:
            write(m.mountpoint, {f"f{i}.txt": b"x" * (i + 1), f"big{i}.bin": os.urandom(2 << 20)})
            wait_ingest(store)  # else the next mount describes the file: a real change, backed up
        made.append(backups(store)[-1])
    assert len(set(made)) == 3
    assert backups(store) == made[1:], "the oldest is pruned"
    with Mount(store, mnt, ["noencode", "metadata_backups=2"]) as m:
        assert (m.mountpoint / "f2.txt").read_bytes() == b"xxx"
    assert backups(store) == made[1:], "nothing changed: no new backup pushes an older one out"
    # every backup owns its files: none is shared with the live catalog
    live = {(p.stat().st_ino) for p in (store / "catalog").iterdir()}
    for name in backups(store):
        for p in (store / "backups" / name / "catalog").iterdir():
            assert p.stat().st_ino not in live, p
    assert manifest(store, made[-1])["reason"] == "unmount"
    # small: the objects (6 MiB here) are never copied, only the catalog
    info = json.loads(run_simfs("stats", str(store), "--json").stdout)
    assert info["metadata_backups"] == 2 and info["newest_backup"] == made[-1]
    assert 0 < info["backup_bytes"] < 512 << 10, info["backup_bytes"]


def test_periodic_backup_while_mounted_is_restorable(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    m = Mount(store, mnt, ["noencode", "backup_interval=1"]).start()
    try:
        write(m.mountpoint, {"during.txt": b"written while mounted"})
        deadline = time.monotonic() + 30
        while not backups(store):
            assert time.monotonic() < deadline, "no periodic backup within 30 s"
            time.sleep(0.2)
        assert manifest(store, backups(store)[0])["reason"] == "periodic"
        assert (m.mountpoint / "during.txt").read_bytes() == b"written while mounted"  # the mount goes on
    finally:
        m.kill()
    shutil.rmtree(store / "catalog")
    restore(store)
    with Mount(store, mnt) as m:
        assert (m.mountpoint / "during.txt").read_bytes() == b"written while mounted"
    assert_fsck_clean(store)


def test_flipped_byte_in_the_live_catalog_leaves_backups_intact(tmp_path: Path) -> None:
    """S114 names the backups; the backup does not share the damaged SST (a hard link would)."""
    from rocksdict import Rdict

    store, mnt = tmp_path / "store", tmp_path / "mnt"
    files = {f"d/file-{i:04d}-with-a-longish-name.txt": f"content {i}".encode() * 20 for i in range(300)}
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, files)
    db = Rdict(str(store / "catalog"))
    db.flush()
    db.close()
    ssts = sorted((store / "catalog").glob("*.sst"), key=lambda p: p.stat().st_size)
    with open(ssts[-1], "r+b") as fh:  # in place, as a disk error would
        fh.seek(ssts[-1].stat().st_size // 3)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    result = run_simfs("fsck", str(store), "--no-progress")
    assert result.returncode == ExitCode.FSCK_FINDINGS and "S114" in result.stdout
    assert "1 metadata backup(s) available" in result.stdout and "--restore-catalog" in result.stdout
    restore(store)
    assert_fsck_clean(store)
    with Mount(store, mnt) as m:
        for name, data in files.items():
            assert (m.mountpoint / name).read_bytes() == data
        assert not (m.mountpoint / "lost+found").exists()


def test_damaged_backup_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"a.txt": b"a" * 5000})
    (name,) = backups(store)
    sst = max((store / "backups" / name / "catalog").glob("*.sst"), key=lambda p: p.stat().st_size)
    raw = bytearray(sst.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    sst.write_bytes(bytes(raw))
    result = run_simfs("fsck", "--restore-catalog", name, str(store))
    assert result.returncode == ExitCode.NO_BACKUP and "damaged" in result.stderr and sst.name in result.stderr
    assert not list(store.glob("catalog.*"))
    assert_fsck_clean(store)


def test_mount_refuses_a_store_whose_catalog_is_gone(tmp_path: Path) -> None:
    """It used to create an empty catalog, after which every object file looked leaked."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"a.txt": b"keep me"})
    shutil.rmtree(store / "catalog")
    objects = sorted(p.name for p in (store / "objects").rglob("*.*"))
    result = run_simfs("mount", str(store), str(mnt), timeout=60)
    assert result.returncode == ExitCode.BAD_STORE, result.stderr
    assert "catalog database is missing" in result.stderr and "--restore-catalog" in result.stderr
    assert not (store / "catalog").exists() and sorted(p.name for p in (store / "objects").rglob("*.*")) == objects


@pytest.mark.parametrize("option", ["metadata_backups=-1", "metadata_backups=many", "metadata_backups=1001",
                                    "backup_interval=0", "backup_interval=6y", "backup_interval=31d"])
def test_bad_backup_options_are_usage_errors(tmp_path: Path, option: str) -> None:
    (tmp_path / "mnt").mkdir()
    result = run_simfs("mount", str(tmp_path / "store"), str(tmp_path / "mnt"), "-o", option)
    assert result.returncode == ExitCode.USAGE and option.split("=")[0] in result.stderr
    assert not (tmp_path / "store").exists(), "checked before anything is created"


@needs_devset
@pytest.mark.timeout(600)
def test_restore_keeps_reference_chains_working(tmp_path: Path) -> None:
    """The backup knows a photo as verbatim; since then it was encoded (new file generation, the old one
    freed) and two copies were coded against it. After restore the photo is back by name (its record
    names the generation on disk) and the copies are in /lost+found, still decoding through it."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    ukb = DEVSET / "edit-ukbench"
    base = {"photo.png": (ukb / "ukbench00120.png").read_bytes()}
    # Exact flips made here: the dev set's own flipped copies were re-saved as JPEG and are now smaller
    # coded on their own (as their JPEG coefficients) than against the photo.
    with Image.open(ukb / "ukbench00120.png") as im:
        copies = {"photo_hflip.png": png_bytes(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
                  "photo_rot90.png": png_bytes(im.transpose(Image.Transpose.ROTATE_90))}
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, base)
    base_id = hashlib.sha256(base["photo.png"]).hexdigest()
    m = Mount(store, mnt).start()
    try:
        wait_ingest(store, timeout=400)  # the photo is encoded first: an exact flip would be as good a base
        write(m.mountpoint, copies)
        wait_ingest(store, timeout=400)
        deadline = time.monotonic() + 60
        while list((store / "objects").rglob(f"{base_id}.0")):  # the verbatim generation is freed
            assert time.monotonic() < deadline, "old generation not freed"
            time.sleep(0.2)
        kinds = {n: os.getxattr(m.mountpoint / n, "user.simfs.kind").decode() for n in copies}
        assert set(kinds.values()) == {"inter"}, kinds
    finally:
        m.kill()
    shutil.rmtree(store / "catalog")
    out = restore(store)
    assert "1 object(s) recorded with the file generation now on disk" in out, out
    assert_fsck_clean(store)  # with --verify-data: every chain decodes to its content hash
    with Mount(store, mnt) as m:
        check_tree(m.mountpoint, base, copies)
        for data in copies.values():
            path = m.mountpoint / "lost+found" / (hashlib.sha256(data).hexdigest() + ".png")
            assert os.getxattr(path, "user.simfs.kind") == b"inter"
            assert os.getxattr(path, "user.simfs.reference").decode() == "/photo.png"
        assert os.getxattr(m.mountpoint / "photo.png", "user.simfs.kind") == b"intra"
    assert_fsck_clean(store)


def test_file_deleted_after_the_backup_is_reported_missing(tmp_path: Path) -> None:
    """Restoring an older backup brings back a name whose content was freed since: O203 lists it, exit 7."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"kept.txt": b"kept", "gone.txt": b"deleted later"})
    (oldest,) = backups(store)
    with Mount(store, mnt, ["noencode"]) as m:
        (m.mountpoint / "gone.txt").unlink()
    gone_id = hashlib.sha256(b"deleted later").hexdigest()
    assert not list((store / "objects").rglob(f"{gone_id}.*")), "freed at unmount"
    result = run_simfs("fsck", "--restore-catalog", oldest, str(store), "--no-progress")
    assert result.returncode == ExitCode.FSCK_FINDINGS, result.stdout + result.stderr
    assert "O203" in result.stdout and "affects /gone.txt" in result.stdout and "1 problem(s) left" in result.stdout
    with Mount(store, mnt) as m:
        assert (m.mountpoint / "kept.txt").read_bytes() == b"kept"
        with pytest.raises(OSError):
            (m.mountpoint / "gone.txt").read_bytes()


def test_restore_killed_midway_never_lets_a_mount_delete_unnamed_objects(tmp_path: Path) -> None:
    """A crash after the swap, before the re-link, leaves the files written since the backup unnamed.
    The next mount must not sweep them away as 'unrecorded after a crash'; a second restore names them."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    later = batch("later", 2)
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"a.txt": b"a"})
    m = Mount(store, mnt, ["noencode"]).start()
    write(m.mountpoint, later)
    m.kill()  # leaves the dirty marker: the next mount would sweep unrecorded object files
    assert (store / "dirty").exists()
    objects = sorted(p.name for p in (store / "objects").rglob("*.*"))
    shutil.rmtree(store / "catalog")
    code = ("import os, sys; from pathlib import Path; import simfs.fsck.restore as r; "
            "r.relink_objects = lambda opened: os._exit(9); r.restore_catalog(Path(sys.argv[1]), None)")
    proc = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 9, proc.stderr  # died where we wanted it to
    assert not (store / "dirty").exists()
    with Mount(store, mnt, ["noencode"]) as m:
        assert (m.mountpoint / "a.txt").read_bytes() == b"a"
    assert sorted(p.name for p in (store / "objects").rglob("*.*")) == objects
    restore(store)
    with Mount(store, mnt) as m:
        check_tree(m.mountpoint, {"a.txt": b"a"}, later)
    assert_fsck_clean(store)


def test_restore_command_line_errors(tmp_path: Path) -> None:
    for args, text in ((["--restore-catalog"], "give the store directory"),
                       (["--restore-catalog", str(tmp_path), "--repair"], "cannot be combined"),
                       (["--restore-catalog", str(tmp_path), "--json"], "cannot be combined")):
        result = run_simfs("fsck", *args)
        assert result.returncode == ExitCode.USAGE and text in result.stderr, result.stderr
    result = run_simfs("fsck", "--restore-catalog", str(tmp_path / "nope"))
    assert result.returncode == ExitCode.BAD_STORE and "Traceback" not in result.stderr
    result = run_simfs("fsck", "--restore-catalog", str(tmp_path))  # a directory that is no store
    assert result.returncode == ExitCode.BAD_STORE and "not a simfs store" in result.stderr


def test_damage_in_the_block_holding_the_format_copy_is_s114_not_a_traceback(tmp_path: Path) -> None:
    """All keys in one small SST: the flipped byte hits the block with the F key, read at every open."""
    from rocksdict import Rdict

    from simfs.backups import make_backup
    from simfs.storage import OpenStore
    from simfs.vfs import Vfs

    store = tmp_path / "store"
    opened = OpenStore(store, create=True)
    vfs = Vfs(opened)
    for i in range(50):
        fh = vfs.create(f"/f{i}", 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, b"x" * i, 0)
        vfs.release(fh)
    vfs.shutdown()
    make_backup(opened.catalog, opened.path, reason="unmount", keep=5)
    opened.close()
    db = Rdict(str(store / "catalog"))
    db.flush()
    db.compact_range(None, None)  # one SST holding every key
    db.close()
    (sst,) = (store / "catalog").glob("*.sst")
    with open(sst, "r+b") as fh:
        fh.seek(100)  # the first data block: F is the first key after D…
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    result = run_simfs("fsck", str(store), "--no-progress")
    assert result.returncode == ExitCode.FSCK_FINDINGS and "S114" in result.stdout, result.stdout + result.stderr
    assert "--restore-catalog" in result.stdout and "Traceback" not in result.stderr
    (tmp_path / "mnt").mkdir()
    result = run_simfs("mount", str(store), str(tmp_path / "mnt"), timeout=60)
    assert result.returncode == ExitCode.BAD_STORE and "damaged" in result.stderr, result.stderr
    assert "--restore-catalog" in result.stderr and "Traceback" not in result.stderr
    restore(store)
    assert_fsck_clean(store)


def test_a_damaged_live_catalog_never_replaces_a_good_backup(tmp_path: Path) -> None:
    """A checkpoint copies damage too: the copy is read back first, and a damaged one is dropped unpruned."""
    from rocksdict import Rdict

    from simfs.backups import list_backups, make_backup, verify
    from simfs.catalog.db import Catalog, CatalogDamaged
    from simfs.storage import OpenStore
    from simfs.vfs import Vfs

    store = tmp_path / "store"
    opened = OpenStore(store, create=True)
    vfs = Vfs(opened)
    for i in range(300):
        fh = vfs.create(f"/file-{i:04d}-with-a-longish-name", 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, b"y" * i, 0)
        vfs.release(fh)
    vfs.shutdown()
    (good,) = [make_backup(opened.catalog, opened.path, reason="unmount", keep=1)]
    assert good is not None and good.doc["keys"] > 600
    opened.close()
    db = Rdict(str(store / "catalog"))
    db.put(b"N", (10**6).to_bytes(8, "big"))  # a change, so the next backup is not skipped as unchanged
    db.flush()
    db.compact_range(None, None)
    db.close()
    (sst,) = (store / "catalog").glob("*.sst")
    with open(sst, "r+b") as fh:
        fh.seek(sst.stat().st_size // 3)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    catalog = Catalog(store / "catalog")  # as the daemon has it open: reads of the damaged block fail
    try:
        with pytest.raises(CatalogDamaged):
            make_backup(catalog, store, reason="periodic", keep=1)
    finally:
        catalog.close()
    assert [b.name for b in list_backups(store)] == [good.name] and not verify(good)
    assert [p.name for p in (store / "backups").iterdir()] == [good.name], "no partial copy left behind"


def test_partial_backup_left_by_a_crash_is_ignored_then_removed(tmp_path: Path) -> None:
    from simfs.backups import find_backup, list_backups, make_backup
    from simfs.storage import OpenStore

    store = tmp_path / "store"
    opened = OpenStore(store, create=True)
    try:
        first = make_backup(opened.catalog, opened.path, reason="unmount", keep=5)
        assert first is not None
        assert make_backup(opened.catalog, opened.path, reason="unmount", keep=5) is None, "unchanged: skipped"
        partial = store / "backups" / ".tmp-20260101T000000.000000Z"
        (partial / "catalog").mkdir(parents=True)
        (partial / "catalog" / "CURRENT").write_text("MANIFEST-000001\n")
        (store / "backups" / "20260101T000000.000000Z").mkdir()  # no BACKUP.json: not a backup
        assert [b.name for b in list_backups(store)] == [first.name]
        assert find_backup(store, None).name == first.name
        assert find_backup(store, str(first.path)).name == first.name  # a path works too
        opened.catalog.put(b"N", (99).to_bytes(8, "big"))
        second = make_backup(opened.catalog, opened.path, reason="periodic", keep=5)
        assert second is not None and not partial.exists()
        assert [b.name for b in list_backups(store)] == [first.name, second.name]
    finally:
        opened.close()
    assert_fsck_clean(store)


def test_restore_killed_before_its_repair_pass_leaves_named_files_usable(tmp_path: Path) -> None:
    """The re-link batch counts the new names itself: files in /lost+found read and delete normally
    even when the restore dies before recomputing the other counters."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    later = batch("later", 2)
    with Mount(store, mnt, ["noencode"]) as m:
        write(m.mountpoint, {"a.txt": b"a"})
    with Mount(store, mnt, ["noencode", "metadata_backups=0"]) as m:
        write(m.mountpoint, later)
    shutil.rmtree(store / "catalog")
    code = ("import os, sys; from pathlib import Path; import simfs.fsck.restore as r; "
            "r.Fsck.run = lambda self: os._exit(9); r.restore_catalog(Path(sys.argv[1]), None)")
    proc = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 9, proc.stderr
    with Mount(store, mnt, ["noencode"]) as m:
        check_tree(m.mountpoint, {"a.txt": b"a"}, later)
        for p in (m.mountpoint / "lost+found").iterdir():
            p.unlink()
        assert not list((m.mountpoint / "lost+found").iterdir())
    assert_fsck_clean(store)


def test_restore_brings_chunked_files_back(tmp_path: Path) -> None:
    """A large file in the backup is back whole; one written after it survives as its 1 MiB chunks
    in /lost+found (the catalog that ordered them is what was lost)."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    big = os.urandom(10 << 20)
    late = os.urandom(9 << 20)
    with Mount(store, mnt, ["noencode"]) as m:
        (m.mountpoint / "big.bin").write_bytes(big)
        assert os.getxattr(m.mountpoint / "big.bin", "user.simfs.kind") == b"chunked"
    m = Mount(store, mnt, ["noencode"]).start()
    (m.mountpoint / "late.bin").write_bytes(late)  # durable, but after the last backup
    m.kill()
    shutil.rmtree(store / "catalog")
    restore(store)
    assert_fsck_clean(store)
    with Mount(store, mnt, ["noencode"]) as m:
        assert (m.mountpoint / "big.bin").read_bytes() == big
        assert not (m.mountpoint / "late.bin").exists()
        pieces = {p.read_bytes() for p in (m.mountpoint / "lost+found").iterdir()}
        assert pieces == {late[i:i + (1 << 20)] for i in range(0, len(late), 1 << 20)}
    assert_fsck_clean(store)
