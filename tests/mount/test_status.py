"""`simfs status` of a live mount, and what FORMAT and `simfs stats` say before anything is encoded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import REPO, SIMFS, Mount, needs_fuse, run_simfs, smooth_png

from simfs.errors import ExitCode


def status(target: Path) -> dict:
    result = run_simfs("status", str(target), "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_idle(target: Path, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = status(target)
        if doc["backlog"]["total"] == 0:
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)


def features(store: Path) -> list[str]:
    return json.loads((store / "FORMAT").read_text())["features"]


@needs_fuse
def test_status_shows_backlog_throughput_savings_and_workers(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["workers=1"]) as m:
        assert features(m.store) == ["verbatim-objects"]  # nothing encoded yet
        for i in range(2):
            (m.mountpoint / f"g{i}.png").write_bytes(smooth_png(i))
        held = open(m.mountpoint / "held.png", "wb")  # committed by fsync, but still open: its ingest waits
        held.write(smooth_png(2))
        held.flush()
        os.fsync(held.fileno())
        first = status(m.mountpoint)
        assert first["pid"] == m.proc.pid and first["store"] == str(m.store.absolute())
        assert first["workers"] == 1 and first["codec_processes"] == 1
        assert first["backlog"]["total"] >= 1, first
        assert set(first["backlog"]) >= {"descriptors", "encode", "replan", "in_progress", "deferred", "total"}
        held.close()
        done = wait_idle(m.mountpoint)
        assert done["done"]["descriptors"] >= 3 and done["done"]["encode"] >= 3, done
        assert done["megapixels_per_s"]["descriptors"] > 0 and done["window_s"] == 60
        assert done["saved_bytes"] > 0 and done["stored_bytes"] > 0
        assert "encoded-objects" in features(m.store)  # added with the first encoded object
        text = run_simfs("status", str(m.store), timeout=30)  # a mounted store's directory works too
        assert text.returncode == 0, text.stderr
        assert "backlog          0 objects" in text.stdout and "MP/s over the last 60 s" in text.stdout
        assert "by encoding since the mount" in text.stdout and "1 ingest threads" in text.stdout
        stats = json.loads(run_simfs("stats", str(m.store), "--json").stdout)
        assert stats["ingest_live"] and stats["ingest_pending"] == 0
        watch = subprocess.Popen([*SIMFS, "status", str(m.mountpoint), "--watch", "--json"], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.5)
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=20)
        assert watch.returncode == 0, err
        lines = out.strip().splitlines()
        assert len(lines) >= 2 and all(json.loads(line)["pid"] == m.proc.pid for line in lines)


def test_status_of_something_not_mounted(tmp_path: Path) -> None:
    result = run_simfs("status", str(tmp_path))
    assert result.returncode == ExitCode.NOT_MOUNTED and "not the root of a mounted simfs" in result.stderr
    from simfs.storage import create_store

    create_store(tmp_path / "store")
    result = run_simfs("status", str(tmp_path / "store"))
    assert result.returncode == ExitCode.NOT_MOUNTED and "not mounted" in result.stderr


@needs_fuse
def test_empty_and_noencode_stores_list_no_encoding_and_say_overhead(tmp_path: Path) -> None:
    with Mount(tmp_path / "empty", tmp_path / "mnt"):
        pass
    assert features(tmp_path / "empty") == ["verbatim-objects"]
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["noencode"]) as m:
        (m.mountpoint / "g.png").write_bytes(smooth_png(1))
        wait_idle(m.mountpoint)
    assert features(m.store) == ["verbatim-objects"]
    result = run_simfs("stats", str(m.store))
    assert result.returncode == 0, result.stderr
    assert "saved -" not in result.stdout and "overhead" in result.stdout, result.stdout
    assert "nothing stored encoded" in result.stdout


@needs_fuse
def test_status_of_a_read_only_mount(tmp_path: Path) -> None:
    from simfs.storage import create_store

    create_store(tmp_path / "store")
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["ro"]) as m:
        doc = status(m.mountpoint)
        assert doc["read_only"] and doc["backlog"]["total"] == 0 and doc["workers"] == 0
        text = run_simfs("status", str(m.mountpoint))
        assert text.returncode == 0 and "no background ingest on a read-only mount" in text.stdout
