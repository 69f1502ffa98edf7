"""`simfs mount`/`umount`: checks before forking, daemonizing, readiness handshake, clean shutdown."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .backup_schedule import BackupSchedule
from .errors import BadMountpoint, BadStore, ExitCode, FuseFailed, SimfsError, StoreInUse
from .format import read_format
from .log_setup import check_log_file, setup_logging
from .mounts import mount_entry
from .options import OURS, UsageError, simfs_options
from .stderr_log import StderrToLog
from .stop_signals import StopSignals
from .storage import LOG_FILE, OpenStore, StoreLock, is_store

log = logging.getLogger("simfs.mount")


def parse_options(opts: list[str]) -> dict[str, Any]:
    """-o a,b=c,... (possibly repeated) → {'a': True, 'b': 'c'}."""
    out: dict[str, Any] = {}
    for group in opts:
        for item in group.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            out[key] = value if sep else True
    return out


def check_mountpoint(mountpoint: Path) -> None:
    try:
        st = os.stat(mountpoint)
    except FileNotFoundError:
        raise BadMountpoint(f"mountpoint {mountpoint} does not exist; create it with mkdir") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise BadMountpoint(
                f"mountpoint {mountpoint} is a stale FUSE mount (its daemon died); run: simfs umount {mountpoint}"
            ) from None
        raise BadMountpoint(f"mountpoint {mountpoint}: {exc.strerror}") from None
    if not os.path.isdir(mountpoint):
        raise BadMountpoint(f"mountpoint {mountpoint} is not a directory")
    if os.path.ismount(mountpoint) and _is_fuse_mount(mountpoint):
        raise BadMountpoint(f"mountpoint {mountpoint} is already a mount point; unmount it first")
    if any(os.scandir(mountpoint)):
        raise BadMountpoint(f"mountpoint {mountpoint} is not empty; use an empty directory")
    del st


def _is_fuse_mount(mountpoint: Path) -> bool:
    return mount_entry(mountpoint) is not None


def prepare_store(store: Path) -> None:
    """Validate the store before forking; a new store is created later, by the daemon.

    RocksDB must not be opened before fork(): its background thread pool does not survive into the
    child, and the child's close() then waits forever.
    """
    if store.exists() and not store.is_dir():
        raise BadStore(f"{store} is not a directory")
    if not is_store(store):
        if store.exists() and any(store.iterdir()):
            raise BadStore(f"{store} is not a simfs store and not empty; give an empty or new directory")
        return
    read_format(store)  # refuses unknown versions before anything is forked
    holder = StoreLock.holder(store)
    if holder is not None:
        raise StoreInUse(f"{store}: store is already mounted (pid {holder})")


def check_fuse_available() -> None:
    if not os.path.exists("/dev/fuse"):
        raise FuseFailed("/dev/fuse is missing: load the fuse kernel module (modprobe fuse) or run where FUSE is allowed")
    if shutil.which("fusermount3") is None and os.geteuid() != 0:
        raise FuseFailed("fusermount3 not found: install fuse3 (apt install fuse3)")


def fuse_options(opts: dict[str, Any], store: Path) -> dict[str, Any]:
    out = dict(opts)
    out.pop("foreground", None)
    for key in OURS:  # ours, not libfuse's
        out.pop(key, None)
    # Ownership and permission checks by the kernel: without them any user could read any file.
    out.setdefault("default_permissions", True)
    out.setdefault("max_threads", 8)  # libfuse 3's default (-1) only produces a warning
    # libfuse 3.14 defaults max_idle_threads to UINT_MAX and then warns "Ignoring invalid max threads
    # value 4294967295" on every mount; keeping as many idle threads as workers avoids thread churn too.
    out.setdefault("max_idle_threads", out["max_threads"])
    # The store path in /proc/mounts lets `simfs umount` find the daemon and wait for it.
    path = str(store)
    out.setdefault("fsname", path if not any(c in path for c in ", \t\n\\") else "simfs")
    return out


def check_libfuse_options(options: dict[str, Any], store: Path) -> None:
    """Options that are neither simfs's nor libfuse's are a usage error (exit 2), named one by one."""
    from .fuse_check import bad_options

    bad = bad_options(fuse_options(options, store))
    if not bad:
        return
    parts = [f"-o {option}: {said}" for option, said in bad]
    raise UsageError("; ".join(parts) + f" (simfs's options: {', '.join(OURS)}; others go to libfuse, see mount.fuse3(8))")


def serve(store: Path, mountpoint: Path, opts: dict[str, Any], *, notify_fd: int | None = None,
          foreground: bool = True, debug: bool = False, log_file: Path | None = None) -> int:
    """Open the store and run the FUSE loop until unmounted. Returns an exit code."""
    log_path = log_file or store / LOG_FILE
    from .fuse_ops import FuseOperations, run_fuse  # imports libfuse: keep it out of fsck/stats
    from .vfs import Vfs

    read_only = bool(opts.get("ro"))
    ready = {"done": False}

    def report(message: str) -> None:
        if ready["done"]:
            return
        ready["done"] = True
        if notify_fd is not None:
            with contextlib.suppress(OSError):
                os.write(notify_fd, message.encode())
                os.close(notify_fd)

    try:
        opened = OpenStore(store, read_only=False, create=True)
    except SimfsError as exc:
        report(f"ERR {int(exc.exit_code)} {exc}\n")
        if notify_fd is None:
            raise
        return int(exc.exit_code)
    stderr = StderrToLog()
    signals: StopSignals | None = None
    setup_logging(log_path, stderr.console if foreground else None, debug)
    backups: BackupSchedule | None = None
    try:
        from .ingest import EncodeOptions, describer, make_ingestor

        ours = simfs_options(opts)
        descriptors, _index = describer(opened.catalog)
        vfs = Vfs(opened, read_only=read_only, processors=[descriptors], refcache_bytes=ours.refcache_bytes)
        if not read_only:
            enc = EncodeOptions(effort=ours.effort, first_effort=ours.first_effort, candidates=ours.candidates,
                                max_depth=ours.max_depth)
            vfs.start_background(make_ingestor(opened, vfs, descriptors, encode=ours.encode, options=enc,
                                               workers=ours.workers))
        from .ingest.status import live_status, status_bytes

        started = time.monotonic()
        ops = FuseOperations(vfs, on_ready=lambda: report("OK\n"),
                             status=lambda: status_bytes(live_status(vfs, store, mountpoint, started)))
        backups = BackupSchedule(opened, vfs.lock, keep=0 if read_only else ours.metadata_backups,
                                 interval=ours.backup_interval, reserve=vfs.data_reserve)
        log.info("mounting %s on %s (pid %d)", store, mountpoint, os.getpid())
        signals = StopSignals(stop=lambda sig: _stop(vfs, mountpoint, sig),
                              force=lambda sig: _force(mountpoint, sig))
        try:
            backups.start()
            run_fuse(ops, str(mountpoint), foreground=True, options=fuse_options(opts, store))
        except Exception as exc:
            if ready["done"] and isinstance(exc, RuntimeError):
                # An error status after the mount was up (libfuse counts a signal it saw as one): it
                # did unmount cleanly.
                log.info("stopped by a signal (libfuse status %s); unmounted %s", exc, mountpoint)
                return 0
            said = stderr.sync()  # libfuse's own reason ("fuse: mount failed: Invalid argument")
            if isinstance(exc, RuntimeError):
                why = f"{said} (libfuse status {exc})" if said else f"libfuse status {exc}"
                log.error("FUSE loop failed: %s", why)
            else:
                why = str(exc)
                log.exception("FUSE loop failed")
            msg = f"could not mount {mountpoint}: {why}; see {log_path}"
            report(f"ERR {int(ExitCode.FUSE_FAILED)} {msg}\n")
            if notify_fd is None:
                raise FuseFailed(msg) from None
            return int(ExitCode.FUSE_FAILED)
        if not ready["done"]:
            said = stderr.sync()
            report(f"ERR {int(ExitCode.FUSE_FAILED)} mount of {mountpoint} failed"
                   f"{': ' + said if said else ''}; see {log_path}\n")
            return int(ExitCode.FUSE_FAILED)
        log.info("unmounted %s", mountpoint)
        return 0
    finally:
        if backups is not None:
            backups.finish(clean=ready["done"])
        if signals is not None:
            signals.close()
        opened.close()
        stderr.close()


def _stop(vfs: Any, mountpoint: Path, signum: int) -> None:
    """First signal: a clean unmount, saying what it waits for."""
    from .fuse_ops import request_exit

    writes = vfs.pending_writes()
    log.warning("%s: unmounting %s, finishing %d pending write%s (stopping background ingest; it resumes at "
                "the next mount)... send the signal again to force", signal.Signals(signum).name, mountpoint,
                writes, "" if writes == 1 else "s")
    request_exit(str(mountpoint))


def _force(mountpoint: Path, signum: int) -> None:
    """Second signal: detach the mount and exit now; the store recovers like after a crash."""
    log.warning("second signal (%s): forcing: detaching %s and exiting now; writes not committed yet are lost, "
                "the next mount recovers the store", signal.Signals(signum).name, mountpoint)
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool:
        subprocess.run([tool, "-u", "-z", str(mountpoint)], capture_output=True, timeout=10)
    logging.shutdown()
    os._exit(128 + signum)


def check_distinct(store: Path, mountpoint: Path) -> None:
    """The store must live outside the file system mounted over it (and the other way round)."""
    s, m = Path(os.path.realpath(store)), Path(os.path.realpath(mountpoint))
    if s == m or m in s.parents:
        raise BadMountpoint(f"the store {store} would be hidden under its own mount point {mountpoint}; "
                            "put the store somewhere else")
    if s in m.parents:
        raise BadMountpoint(f"mount point {mountpoint} is inside the store {store}; choose a directory outside it")


def mount(store: Path, mountpoint: Path, *, foreground: bool, options: dict[str, Any], debug: bool = False,
          log_file: Path | None = None) -> int:
    store = store.absolute()
    mountpoint = mountpoint.absolute()
    check_distinct(store, mountpoint)
    log_file = check_log_file(log_file, mountpoint) if log_file is not None else None
    if not store.exists() and not store.parent.is_dir():
        why = "is a file, not a directory" if store.parent.exists() else "does not exist (mistyped path?)"
        raise BadStore(f"cannot create a store at {store}: {store.parent} {why}")
    new_store = not is_store(store)
    simfs_options(options)  # a bad -o value is a usage error before anything is created
    check_libfuse_options(options, store)
    check_mountpoint(mountpoint)
    prepare_store(store)
    check_fuse_available()
    if new_store:
        print(f"simfs: creating a new store at {store}", file=sys.stderr)
    if foreground:
        return serve(store, mountpoint, options, foreground=True, debug=debug, log_file=log_file)

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # daemon
        code = 70
        try:
            os.close(read_fd)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.chdir("/")
            code = serve(store, mountpoint, options, notify_fd=write_fd, foreground=False, debug=debug,
                         log_file=log_file)
        except BaseException:
            logging.getLogger("simfs").exception("daemon failed")
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    message = b"".join(chunks).decode(errors="replace").strip()
    if message == "OK":
        return 0
    if message.startswith("ERR "):
        _, code_text, text = message.split(" ", 2)
        print(f"simfs: {text}", file=sys.stderr)
        return int(code_text)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    log_path = log_file or store / LOG_FILE
    hint = f"; see {log_path}" if log_path.exists() else ""
    last = last_log_line(log_path)
    print(f"simfs: the mount daemon exited before mounting{': ' + last if last else ''}{hint}", file=sys.stderr)
    return int(ExitCode.FUSE_FAILED)


def last_log_line(path: Path) -> str:
    """The last non-empty line of a log (a traceback's last line is its exception), or ''."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def umount(mountpoint: Path, *, timeout: float = 120.0, lazy: bool = False) -> int:
    """Unmount and wait until the daemon has flushed and released the store."""
    mountpoint = mountpoint.absolute()
    entry = mount_entry(mountpoint)
    if entry is None:
        print(f"simfs: {mountpoint} is not a FUSE mount", file=sys.stderr)
        return int(ExitCode.NOT_MOUNTED)
    source = Path(entry[0])
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    cmd = [tool, "-u"] if tool else ["umount"]
    if lazy:
        cmd.append("-z")
    result = subprocess.run([*cmd, str(mountpoint)], capture_output=True, text=True)
    if result.returncode != 0:
        stale = not lazy and "not connected" in (result.stderr or "")
        if stale or "Transport endpoint" in (result.stderr or ""):
            result = subprocess.run([*cmd, "-z", str(mountpoint)], capture_output=True, text=True)
        if result.returncode != 0:
            msg = (result.stderr or "").strip() or f"{cmd[0]} failed"
            print(f"simfs: cannot unmount {mountpoint}: {msg} (is a program still using it? try lsof)", file=sys.stderr)
            return int(ExitCode.FUSE_FAILED)
    if source.is_absolute() and is_store(source):
        deadline = time.monotonic() + timeout
        while StoreLock.holder(source) is not None:
            if time.monotonic() > deadline:
                print(f"simfs: unmounted, but the daemon still holds {source} after {timeout:.0f}s", file=sys.stderr)
                return int(ExitCode.FUSE_FAILED)
            time.sleep(0.05)
    return 0
