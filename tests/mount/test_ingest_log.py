"""The ingest log: one line per object (kind, bytes before/after, time), rotated, and `simfs mount --log FILE`."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

from conftest import assert_fsck_clean, needs_fuse, run_simfs, smooth_png

from simfs import log_setup
from simfs.errors import ExitCode
from simfs.storage import known_top_level
from simfs.store.envelope import HEADER_SIZE

LINE = re.compile(r"object ([0-9a-f]{16}): (\w[\w-]*), (\d+) -> (\d+) bytes(?: \([+-]\d+\.\d%\))?, (\d+\.\d\d) s")


def wait_idle(mnt: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = run_simfs("status", str(mnt), "--json", timeout=30)
        assert out.returncode == 0, out.stderr
        if json.loads(out.stdout)["backlog"]["total"] == 0:
            return
        assert time.monotonic() < deadline
        time.sleep(0.3)


@needs_fuse
def test_log_file_has_one_line_per_object_with_kind_and_sizes(tmp_path: Path) -> None:
    store, mnt, log = tmp_path / "store", tmp_path / "mnt", tmp_path / "logs" / "ingest.log"
    mnt.mkdir()
    log.parent.mkdir()
    out = run_simfs("mount", str(store), str(mnt), "--log", str(log), "-o", "workers=1")
    assert out.returncode == 0, out.stderr
    pngs = {"a.png": smooth_png(11), "b.png": smooth_png(12)}
    try:
        for name, data in pngs.items():
            (mnt / name).write_bytes(data)
        wait_idle(mnt)
    finally:
        assert run_simfs("umount", str(mnt)).returncode == 0
    assert not (store / "simfs.log").exists()  # everything went to --log
    text = log.read_text()
    assert "mounting " in text and "unmounted " in text
    lines = [m for m in map(LINE.search, text.splitlines()) if m]
    ids = {hashlib.sha256(data).hexdigest()[:16]: data for data in pngs.values()}
    assert sorted(m.group(1) for m in lines) == sorted(ids), text  # exactly one line per object
    for m in lines:
        kind, before, after = m.group(2), int(m.group(3)), int(m.group(4))
        assert before == HEADER_SIZE + len(ids[m.group(1)])  # stored verbatim first
        assert kind in ("intra", "inter", "pixel-duplicate", "verbatim")
        assert (after < before) if kind != "verbatim" else (after == before)
    assert any(m.group(2) == "intra" for m in lines)  # smooth pictures shrink with JPEG XL
    assert_fsck_clean(store, verify_data=False)


def test_bad_log_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    out = run_simfs("mount", str(tmp_path / "store"), str(tmp_path / "mnt"), "--log", str(tmp_path / "no" / "x.log"))
    assert out.returncode == ExitCode.USAGE and "is not a directory" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "store").exists()
    out = run_simfs("mount", str(tmp_path / "store"), str(tmp_path / "mnt"), "-o", "log")
    assert out.returncode == ExitCode.USAGE and "-o log" in out.stderr
    out = run_simfs("mount", str(tmp_path / "store"), str(tmp_path / "mnt"), "--log", str(tmp_path / "mnt" / "x.log"))
    assert out.returncode == ExitCode.USAGE and "inside the mount point" in out.stderr
    assert not (tmp_path / "store").exists()


def test_log_rotates_and_fsck_knows_the_old_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(log_setup, "MAX_BYTES", 2000)
    path = tmp_path / "simfs.log"
    log_setup.setup_logging(path, None, False)
    try:
        for i in range(200):
            logging.getLogger("simfs.ingest.object").info("object %016x: intra, 1000 -> 500 bytes", i)
    finally:
        logging.basicConfig(handlers=[logging.NullHandler()], force=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["simfs.log", *(f"simfs.log.{i}" for i in range(1, log_setup.BACKUPS + 1))]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert all(known_top_level(name) for name in names) and not known_top_level("simfs.log.x")
