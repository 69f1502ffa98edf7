"""`simfs` command errors: one clear line and a distinct exit code for each way a mount can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO, Mount, needs_fuse, run_simfs

from simfs.errors import ExitCode


@needs_fuse
def test_second_mount_of_same_store_fails_at_once(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt") as m:
        (tmp_path / "mnt2").mkdir()
        result = run_simfs("mount", str(m.store), str(tmp_path / "mnt2"), timeout=20)
        assert result.returncode == ExitCode.ALREADY_MOUNTED
        assert f"store is already mounted (pid {m.proc.pid})" in result.stderr
        # fsck --repair is refused on a mounted store; a read-only check works
        result = run_simfs("fsck", str(m.store), "--repair")
        assert result.returncode == ExitCode.ALREADY_MOUNTED and "unmount it" in result.stderr
        result = run_simfs("fsck", str(m.store))
        assert result.returncode == 0, result.stdout + result.stderr


def test_missing_and_non_empty_mountpoints(tmp_path: Path) -> None:
    result = run_simfs("mount", str(tmp_path / "store"), str(tmp_path / "nope"))
    assert result.returncode == ExitCode.BAD_MOUNTPOINT
    assert "does not exist" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    result = run_simfs("mount", str(tmp_path / "store"), str(full))
    assert result.returncode == ExitCode.BAD_MOUNTPOINT and "not empty" in result.stderr
    afile = tmp_path / "afile"
    afile.write_text("")
    result = run_simfs("mount", str(tmp_path / "store"), str(afile))
    assert result.returncode == ExitCode.BAD_MOUNTPOINT and "not a directory" in result.stderr


def test_unknown_format_version_and_not_a_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    from simfs.storage import create_store

    create_store(store)
    doc = json.loads((store / "FORMAT").read_text())
    doc["version"] = 99
    (store / "FORMAT").write_text(json.dumps(doc))
    (tmp_path / "mnt").mkdir()
    result = run_simfs("mount", str(store), str(tmp_path / "mnt"))
    assert result.returncode == ExitCode.BAD_STORE and "version 99 is not supported" in result.stderr
    result = run_simfs("fsck", str(store))
    assert result.returncode == ExitCode.BAD_STORE
    doc["version"] = 1
    doc["features"] = ["teleportation"]
    (store / "FORMAT").write_text(json.dumps(doc))
    result = run_simfs("mount", str(store), str(tmp_path / "mnt"))
    assert result.returncode == ExitCode.BAD_STORE and "teleportation" in result.stderr
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.png").write_bytes(b"x")
    result = run_simfs("mount", str(other), str(tmp_path / "mnt"))
    assert result.returncode == ExitCode.BAD_STORE and "not a simfs store" in result.stderr
    assert (other / "a.png").read_bytes() == b"x" and sorted(p.name for p in other.iterdir()) == ["a.png"]


def test_umount_of_something_not_mounted(tmp_path: Path) -> None:
    result = run_simfs("umount", str(tmp_path))
    assert result.returncode == ExitCode.NOT_MOUNTED and "not a FUSE mount" in result.stderr


def test_usage_error_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "simfs", "frobnicate"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == ExitCode.USAGE


@needs_fuse
def test_daemon_mode_returns_when_mounted_and_umount_waits(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    result = run_simfs("mount", str(store), str(mnt), timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        (mnt / "f.txt").write_bytes(b"daemonized")  # mounted as soon as the command returned
        from simfs.storage import StoreLock

        pid = StoreLock.holder(store)
        assert pid and pid > 0
    finally:
        result = run_simfs("umount", str(mnt))
    assert result.returncode == 0, result.stderr
    assert StoreLock.holder(store) is None  # umount returned only after the daemon let go
    fsck = run_simfs("fsck", str(store), "--verify-data")
    assert fsck.returncode == 0, fsck.stdout
    result = run_simfs("mount", str(store), str(mnt), timeout=60)
    assert result.returncode == 0, result.stderr
    try:
        assert (mnt / "f.txt").read_bytes() == b"daemonized"
    finally:
        assert run_simfs("umount", str(mnt)).returncode == 0


@needs_fuse
def test_sigterm_unmounts_cleanly_and_keeps_data(tmp_path: Path) -> None:
    import signal

    from conftest import is_mounted

    m = Mount(tmp_path / "store", tmp_path / "mnt").start()
    (m.mountpoint / "kept.bin").write_bytes(b"k" * 100_000)
    fh = open(m.mountpoint / "open-while-stopped.bin", "wb")  # still open when the daemon stops
    fh.write(b"o" * 1000)
    fh.flush()
    m.proc.send_signal(signal.SIGTERM)
    try:
        m.proc.wait(timeout=60)
    finally:
        try:
            fh.close()
        except OSError:
            pass  # the mount is gone: close may fail, the daemon committed at shutdown
    assert m.proc.returncode == 0
    assert not is_mounted(m.mountpoint)
    m.log.close()
    m.proc = None
    result = run_simfs("fsck", str(m.store), "--verify-data")
    assert result.returncode == 0, result.stdout
    with Mount(m.store, m.mountpoint) as again:
        assert (again.mountpoint / "kept.bin").read_bytes() == b"k" * 100_000
        assert (again.mountpoint / "open-while-stopped.bin").read_bytes() == b"o" * 1000
