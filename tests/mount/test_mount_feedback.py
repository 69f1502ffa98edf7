"""What `simfs mount` tells the user: bad -o options, libfuse's own errors, no spurious libfuse warnings."""

from __future__ import annotations

from pathlib import Path

from conftest import Mount, needs_fuse, run_simfs

from simfs.errors import ExitCode


@needs_fuse
def test_unknown_option_is_a_usage_error_before_the_store_exists(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    result = run_simfs("mount", "-o", "ro,bogus", str(store), str(mnt), timeout=30)
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "-o bogus: unknown mount option" in result.stderr
    assert "-o ro" not in result.stderr  # only the bad one is named
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not store.exists()
    result = run_simfs("mount", "-o", "max_read=lots", str(store), str(mnt), timeout=30)
    assert result.returncode == ExitCode.USAGE and "max_read=lots" in result.stderr
    result = run_simfs("mount", "-o", "max_threads=0", str(store), str(mnt), timeout=30)
    assert result.returncode == ExitCode.USAGE and "max_threads=0" in result.stderr
    assert not store.exists()


@needs_fuse
def test_libfuse_error_of_the_daemon_reaches_the_user(tmp_path: Path) -> None:
    # blksize is a valid libfuse option that the kernel refuses for a non-block FUSE mount: the
    # failure happens in the daemon, after the fork, and only libfuse knows why.
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    result = run_simfs("mount", "-o", "blksize=4096", str(store), str(mnt), timeout=60)
    assert result.returncode == ExitCode.FUSE_FAILED, result.stderr
    assert "mount failed: Invalid argument" in result.stderr, result.stderr
    log = (store / "simfs.log").read_text()
    assert "mount failed: Invalid argument" in log and "Traceback" not in log


def test_store_below_a_file_names_the_file_and_no_log(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    (tmp_path / "mnt").mkdir()
    result = run_simfs("mount", str(tmp_path / "afile" / "sub"), str(tmp_path / "mnt"))
    assert result.returncode == ExitCode.BAD_STORE
    assert "afile is a file, not a directory" in result.stderr and "simfs.log" not in result.stderr


@needs_fuse
def test_foreground_mount_prints_no_libfuse_thread_warning(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt") as m:
        (m.mountpoint / "x").write_bytes(b"x")
    output = (tmp_path / "store.mount.log").read_text()
    assert "mounting" in output  # the log reached the terminal
    assert "Ignoring invalid max threads" not in output, output


@needs_fuse
def test_signal_unmounts_promptly_saying_so(tmp_path: Path) -> None:
    import signal
    import time

    from conftest import is_mounted

    for signum in (signal.SIGINT, signal.SIGTERM):
        m = Mount(tmp_path / "store", tmp_path / "mnt").start()
        fh = open(m.mountpoint / f"open-{signum}.bin", "wb")  # a pending write, committed at unmount
        fh.write(b"p" * 5000)
        fh.flush()
        assert m.proc is not None
        started = time.monotonic()
        m.proc.send_signal(signum)
        m.proc.wait(timeout=30)
        took = time.monotonic() - started
        try:
            fh.close()
        except OSError:
            pass  # the mount is gone; the daemon committed the file at shutdown
        m.log.close()
        output = (tmp_path / "store.mount.log").read_text()
        assert m.proc.returncode == 0, output
        assert f"{signal.Signals(signum).name}: unmounting {m.mountpoint}, finishing 1 pending write" in output
        assert took < 3.0, f"took {took:.1f}s"
        assert not is_mounted(m.mountpoint)
    with Mount(tmp_path / "store", tmp_path / "mnt") as again:
        for signum in (signal.SIGINT, signal.SIGTERM):
            assert (again.mountpoint / f"open-{signum}.bin").read_bytes() == b"p" * 5000


@needs_fuse
def test_second_signal_forces_and_says_so(tmp_path: Path) -> None:
    import signal

    from conftest import assert_fsck_clean, is_mounted

    m = Mount(tmp_path / "store", tmp_path / "mnt").start()
    (m.mountpoint / "kept.bin").write_bytes(b"k" * 1000)
    assert m.proc is not None
    # Two different signals: two of the same kind sent at once may merge into one in the kernel.
    m.proc.send_signal(signal.SIGTERM)
    m.proc.send_signal(signal.SIGINT)
    m.proc.wait(timeout=30)
    m.log.close()
    output = (tmp_path / "store.mount.log").read_text()
    assert "): forcing: detaching" in output and "second signal (SIG" in output, output
    assert m.proc.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
    assert not is_mounted(m.mountpoint)
    with Mount(m.store, m.mountpoint) as again:  # recovers like after a crash
        assert (again.mountpoint / "kept.bin").read_bytes() == b"k" * 1000
    assert_fsck_clean(m.store)


@needs_fuse
def test_libfuse_dry_run_names_every_unknown_option_at_once() -> None:
    from simfs.fuse_check import bad_options

    assert bad_options({"ro": True, "allow_other": True, "default_permissions": True, "max_threads": "4"}) == []
    assert bad_options({"bogus": True, "ro": True, "foo": "1"}) == [("bogus", "unknown mount option"),
                                                                    ("foo=1", "unknown mount option")]


def test_last_log_line_is_the_exception_of_a_traceback(tmp_path: Path) -> None:
    from simfs.mount import last_log_line

    log = tmp_path / "simfs.log"
    assert last_log_line(log) == ""  # no log: nothing to point at
    log.write_text("x INFO mounting\nTraceback (most recent call last):\n  File \"a.py\", line 1\nRuntimeError: boom\n\n")
    assert last_log_line(log) == "RuntimeError: boom"
