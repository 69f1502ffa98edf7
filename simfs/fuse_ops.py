"""The only module that imports the FUSE binding: maps kernel requests onto Vfs calls and errno."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

os.environ.setdefault("FUSE_LIBRARY_NAME", "fuse3")  # mfusepy prefers libfuse 2 otherwise

import mfusepy  # noqa: E402

from .ingest.status import STATUS_XATTR  # noqa: E402
from .vfs import Context, Vfs  # noqa: E402

log = logging.getLogger("simfs.fuse")

# libfuse (high-level API, hard_remove off) does not unlink a file that is still open: it probes a
# free name `.fuse_hidden<nodeid><counter>` with getattr (expecting ENOENT) and renames the file to
# it, on the same worker thread, as part of the UNLINK (or RENAME-over) request. We recognise exactly
# that pair and turn it into Vfs.hide(), so fstat on an unlinked open file works (hard_remove would
# make it fail with ESTALE) and no .fuse_hidden file ever shows up or survives the mount.
HIDDEN_NAME = re.compile(r"\.fuse_hidden[0-9a-f]{16}\Z")


class _PerWorker:
    """Per libfuse worker thread: callback count and the last hidden-name probe. Keyed by the OS
    thread, not threading.local: ctypes gives a foreign thread a fresh Python thread state for each
    callback, so a threading.local starts empty every time (the pair above was never recognised,
    and `.fuse_hidden*` names showed up in listings)."""

    __slots__ = ("seq", "hide_probe")

    def __init__(self) -> None:
        self.seq = 0
        self.hide_probe: tuple[str, int] | None = None


_workers: dict[int, _PerWorker] = {}
# Also per worker: its Python thread state is kept between callbacks (one extra PyGILState_Ensure,
# never released). Otherwise ctypes creates and tears one down around every callback: measured,
# a stat through the mount took 225-238 us of daemon CPU, 141-160 us pinned; `ls -l` of 175 files
# 57-71 ms -> 37-42 ms. Only while libfuse keeps its idle threads (max_idle_threads >= max_threads,
# the mount's default): a worker thread that exits would take its pinned state with it, leaked.
_pin_thread_states = False


def _worker() -> _PerWorker:
    tid = threading.get_ident()
    state = _workers.get(tid)
    if state is None:
        state = _workers[tid] = _PerWorker()  # one per thread: a dict store is atomic under the GIL
        if _pin_thread_states:
            ctypes.pythonapi.PyGILState_Ensure()
    return state


# Set by request_exit(): the next callback ends libfuse's loop from inside (fuse_exit needs a context).
_exit_requested = threading.Event()


def _ctx() -> Context:
    uid, gid, pid = mfusepy.fuse_get_context()
    return Context(uid, gid, pid)


def _fh(fi: Any) -> int | None:
    """The file handle inside a raw fuse_file_info (or None when the kernel sent none)."""
    if fi is None:
        return None
    return int(fi.fh)


class SimfsFuse(mfusepy.FUSE):
    """mfusepy's FUSE with the libfuse 3 wrappers that drop information we need put back.

    Upstream drops the file handle for truncate/chmod/chown (ftruncate/fchmod/fchown of an unlinked
    file arrive with no path), the raw UTIME_NOW/UTIME_OMIT markers for utimens, and rename's flags.
    """

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        return self.operations.truncate(self._p(path), length, fip.contents if fip else None)

    def chmod_fuse_3(self, path: bytes | None, mode: int, fip: Any) -> int:
        return self.operations.chmod(self._p(path), mode, fip.contents if fip else None)

    def chown_fuse_3(self, path: bytes | None, uid: int, gid: int, fip: Any) -> int:
        if ctypes.c_uint32(uid + 1).value == 0:
            uid = -1
        if ctypes.c_uint32(gid + 1).value == 0:
            gid = -1
        return self.operations.chown(self._p(path), uid, gid, fip.contents if fip else None)

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        times = None
        if buf:
            a, m = buf.contents.actime, buf.contents.modtime
            times = ((a.tv_sec, a.tv_nsec), (m.tv_sec, m.tv_nsec))
        return self.operations.utimens(self._p(path), times, fip.contents if fip else None)

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        return self.operations.rename(self._p(old), self._p(new), flags)

    def lseek(self, path: bytes | None, offset: int, whence: int, fip: Any) -> int:
        # mfusepy lists libfuse 3's lseek but has no wrapper for it: SEEK_DATA/SEEK_HOLE need one
        return self.operations.lseek(self._p(path), offset, whence, fip.contents if fip else None)

    def _p(self, path: bytes | None) -> str | None:
        return None if path is None else path.decode(self.encoding, self.errors)

    def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        # Count callbacks per worker thread: the hide detection needs "the very next call".
        _worker().seq += 1
        if _exit_requested.is_set():
            mfusepy.fuse_exit()  # this worker answers the request, then the loop ends and libfuse unmounts
        if func.__name__ == "init":
            return super()._wrapper(func, *args, **kwargs)

        def guarded(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except OSError:
                raise
            except Exception:  # a damaged catalog, a bug: the caller gets EIO, the log the details
                log.exception("FUSE operation %s failed; answering EIO", func.__name__)
                raise OSError(errno.EIO, "internal error (see the simfs log)") from None

        guarded.__name__ = func.__name__
        return super()._wrapper(guarded, *args, **kwargs)


class FuseOperations(mfusepy.Operations):
    """Thin adapter: every method translates arguments and delegates to Vfs (which holds the lock)."""

    use_ns = True
    flag_nullpath_ok = True
    flag_nopath = False

    def __init__(self, vfs: Vfs, *, on_ready: Callable[[], None] | None = None,
                 attr_timeout: float = 0.0, entry_timeout: float = 1.0,
                 status: Callable[[], bytes] | None = None):
        self.vfs = vfs
        self.on_ready = on_ready
        self.status = status  # the value of user.simfs.status on the root (simfs/ingest/status.py)
        self.attr_timeout = attr_timeout
        self.entry_timeout = entry_timeout

    # -- lifecycle
    def init_with_config(self, conn: Any, config: Any) -> None:
        if config is not None:
            config.use_ino = 1
            config.readdir_ino = 1
            # libfuse renames an unlinked-but-open file to .fuse_hidden* so fstat keeps working
            # (hard_remove would make it fail with ESTALE); Vfs turns that rename into an unlink.
            config.hard_remove = 0
            config.nullpath_ok = 1
            config.attr_timeout = self.attr_timeout
            config.entry_timeout = self.entry_timeout
            config.negative_timeout = 0.0
            # Page cache kept across opens unless mtime/size changed. libfuse has one kernel node per
            # *name*, so a hard link written through another name must invalidate: auto_cache does.
            config.kernel_cache = 0
            config.auto_cache = 1
        if self.on_ready is not None:
            self.on_ready()

    def destroy(self, path: str) -> None:
        try:
            self.vfs.shutdown()
        except Exception:
            log.exception("error while shutting down")

    # -- attributes
    def getattr(self, path: str | None, fh: Any = None) -> dict[str, int]:
        try:
            return self.vfs.getattr(path, _fh(fh))
        except OSError as exc:
            if exc.errno == errno.ENOENT and path and fh is None and HIDDEN_NAME.search(path):
                me = _worker()
                me.hide_probe = (path, me.seq)
            raise

    def chmod(self, path: str | None, mode: int, fi: Any = None) -> int:
        self.vfs.chmod(path, mode, _fh(fi))
        return 0

    def chown(self, path: str | None, uid: int, gid: int, fi: Any = None) -> int:
        self.vfs.chown(path, uid, gid, _fh(fi))
        return 0

    def utimens(self, path: str | None, times: Any = None, fi: Any = None) -> int:
        self.vfs.utimens(path, times, _fh(fi))
        return 0

    def truncate(self, path: str | None, length: int, fi: Any = None) -> int:
        self.vfs.truncate(path, length, _fh(fi))
        return 0

    # -- namespace
    def mknod(self, path: str, mode: int, dev: int) -> int:
        self.vfs.mknod(path, mode, dev, _ctx())
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        self.vfs.mkdir(path, mode, _ctx())
        return 0

    def symlink(self, target: str, source: str) -> int:
        # mfusepy passes (link path, link contents)
        self.vfs.symlink(target, source, _ctx())
        return 0

    def readlink(self, path: str) -> str:
        return self.vfs.readlink(path)

    def link(self, target: str, source: str) -> int:
        self.vfs.link(target, source)
        return 0

    def unlink(self, path: str) -> int:
        self.vfs.unlink(path)
        return 0

    def rmdir(self, path: str) -> int:
        self.vfs.rmdir(path)
        return 0

    def rename(self, old: str, new: str, flags: int = 0) -> int:
        me = _worker()
        probe, me.hide_probe = me.hide_probe, None
        if probe is not None and not flags and probe == (new, me.seq - 1):
            self.vfs.hide(old, new)
        else:
            self.vfs.rename(old, new, flags)
        return 0

    # -- directories
    def opendir(self, path: str) -> int:
        return self.vfs.opendir(path)

    def readdir(self, path: str | None, fh: int) -> list[tuple[str, dict[str, int], int]]:
        return [(name, {"st_ino": ino, "st_mode": mode}, 0) for name, ino, mode in self.vfs.readdir(path, fh)]

    def releasedir(self, path: str | None, fh: int) -> int:
        self.vfs.releasedir(fh)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        self.vfs.fsyncdir(fh)
        return 0

    # -- files (raw_fi: we get fuse_file_info and set fh / keep_cache ourselves)
    def open(self, path: str, fi: Any) -> int:
        fi.fh = self.vfs.open(path, fi.flags)
        return 0

    def create(self, path: str, mode: int, fi: Any) -> int:
        fi.fh = self.vfs.create(path, mode, fi.flags, _ctx())
        return 0

    def read(self, path: str | None, size: int, offset: int, fi: Any) -> bytes:
        return self.vfs.read(fi.fh, size, offset)

    def write(self, path: str | None, data: bytes, offset: int, fi: Any) -> int:
        return self.vfs.write(fi.fh, data, offset)

    def flush(self, path: str | None, fi: Any) -> int:
        self.vfs.flush(fi.fh)
        return 0

    def fsync(self, path: str | None, datasync: int, fi: Any) -> int:
        self.vfs.fsync(fi.fh, bool(datasync))
        return 0

    def release(self, path: str | None, fi: Any) -> int:
        self.vfs.release(fi.fh)
        return 0

    def fallocate(self, path: str | None, mode: int, offset: int, size: int, fi: Any) -> int:
        self.vfs.fallocate(fi.fh, mode, offset, size)
        return 0

    def lseek(self, path: str | None, offset: int, whence: int, fi: Any) -> int:
        fh = _fh(fi)
        if fh is None:
            raise OSError(errno.EBADF, "lseek without an open file")
        return self.vfs.lseek(fh, offset, whence)

    # -- xattrs
    def setxattr(self, path: str, name: str, value: bytes, options: int, position: int = 0) -> int:
        self.vfs.setxattr(path, name, value, options)
        return 0

    def getxattr(self, path: str, name: str, position: int = 0) -> bytes:
        if path == "/" and name == STATUS_XATTR and self.status is not None:
            return self.status()  # computed from in-memory counters, outside the Vfs lock
        return self.vfs.getxattr(path, name)

    def listxattr(self, path: str) -> list[str]:
        return self.vfs.listxattr(path)

    def removexattr(self, path: str, name: str) -> int:
        self.vfs.removexattr(path, name)
        return 0

    # -- file system
    def statfs(self, path: str) -> dict[str, int]:
        return self.vfs.statfs()

    def access(self, path: str, amode: int) -> int:
        # default_permissions makes the kernel check modes; we only confirm existence.
        self.vfs.getattr(path)
        return 0


def run_fuse(ops: FuseOperations, mountpoint: str, *, foreground: bool = True, options: dict[str, Any]) -> None:
    """Blocks until unmounted. options are FUSE -o options (ro, allow_other, default_permissions...)."""
    opts = {"fsname": "simfs", "subtype": "simfs", **options}
    global _pin_thread_states
    _pin_thread_states = int(opts.get("max_idle_threads", 0)) >= int(opts.get("max_threads", 1 << 30))
    _raise_open_file_limit()
    _exit_requested.clear()
    # mfusepy resets SIGINT to SIG_DFL so that libfuse installs its handler; simfs has its own
    # (simfs/stop_signals.py), so the reset is skipped while the loop runs.
    real_signal = mfusepy.signal
    mfusepy.signal = _keep_signal_handler
    try:
        SimfsFuse(ops, mountpoint, raw_fi=True, foreground=foreground, **opts)
    finally:
        mfusepy.signal = real_signal


def _raise_open_file_limit() -> None:
    """Open chunked files keep descriptors on their staged chunks (up to 40 each): a daemon serving many
    of them needs more than a login shell's 1024, so the soft limit goes up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)


def _keep_signal_handler(signum: int, handler: Any) -> Any:
    return signal.getsignal(signum)


def request_exit(mountpoint: str) -> None:
    """End the FUSE loop soon, from any thread: flag it, then wake one libfuse worker with a request."""
    _exit_requested.set()

    def poke() -> None:
        try:
            os.stat(mountpoint)  # attr_timeout is 0: the kernel always asks the daemon
        except OSError:
            pass

    threading.Thread(target=poke, name="simfs-exit", daemon=True).start()


__all__ = ["FuseOperations", "SimfsFuse", "errno", "request_exit", "run_fuse"]
