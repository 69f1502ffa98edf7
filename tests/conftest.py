"""Shared fixtures: stores, an in-process Vfs, and real `simfs mount --foreground` subprocess mounts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simfs.fsck.checker import Fsck, unclean
from simfs.storage import OpenStore
from simfs.vfs import Vfs

REPO = Path(__file__).resolve().parents[1]
DEVSET = Path(os.environ.get("SIMFS_DEVSET", REPO / ".." / "shared" / "data" / "devset")).resolve()
SIMFS = [sys.executable, "-m", "simfs"]


def fuse_available() -> str | None:
    """None if real mounts can run here, else the reason they cannot."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (apt install fuse3)"
    return None


needs_fuse = pytest.mark.skipif(fuse_available() is not None, reason=str(fuse_available()))
needs_devset = pytest.mark.skipif(not DEVSET.is_dir(), reason=f"dev set not found at {DEVSET}")


def run_simfs(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIMFS, *args], capture_output=True, text=True, timeout=timeout, check=check, cwd=REPO)


def smooth_png(seed: int, size: int = 192) -> bytes:
    """A smooth random picture saved by Pillow: the codec rebuilds it exactly and JPEG XL is ~40% smaller."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 12, 3)).astype(np.uint8))
    buf = io.BytesIO()
    coarse.resize((size, size), Image.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def fsck_json(store: Path, *extra: str) -> dict:
    result = run_simfs("fsck", str(store), "--json", *extra)
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    report["returncode"] = result.returncode
    return report


def assert_fsck_clean(store: Path, verify_data: bool = True) -> None:
    report = fsck_json(store, *(["--verify-data"] if verify_data else []))
    assert report["returncode"] == 0 and report["clean"], json.dumps(report["findings"], indent=1)[:4000]


def is_mounted(mountpoint: Path) -> bool:
    target = str(mountpoint.resolve())
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh)


class Mount:
    """A real simfs mount: `simfs mount --foreground` in a subprocess."""

    def __init__(self, store: Path, mountpoint: Path, options: list[str] | None = None):
        self.store = store
        self.mountpoint = mountpoint
        self.options = options or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Mount:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        args = [*SIMFS, "mount", "--foreground", str(self.store), str(self.mountpoint)]
        for opt in self.options:
            args += ["-o", opt]
        self.log = open(self.store.parent / f"{self.store.name}.mount.log", "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while not is_mounted(self.mountpoint):
            if self.proc.poll() is not None:
                raise RuntimeError(f"simfs mount exited with {self.proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mount did not appear within {timeout}s: {self._log_tail()}")
            time.sleep(0.02)
        return self

    def _log_tail(self) -> str:
        path = self.store.parent / f"{self.store.name}.mount.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, timeout: float = 60) -> None:
        """Clean unmount through the CLI; waits for the daemon to exit."""
        if self.proc is None:
            return
        if is_mounted(self.mountpoint):
            result = run_simfs("umount", str(self.mountpoint), "--timeout", str(timeout))
            assert result.returncode == 0, result.stderr
        try:
            self.proc.wait(timeout=timeout)
        finally:
            self.log.close()
        assert self.proc.returncode == 0, f"daemon exit code {self.proc.returncode}: {self._log_tail()}"
        self.proc = None

    def kill(self) -> None:
        """kill -9 the daemon and detach the dead mount."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.proc = None
            self.log.close()
        if is_mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)

    def __enter__(self) -> Mount:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            try:
                self.stop()
            except Exception:
                self.kill()
        else:
            self.stop()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """A mounted empty store; after the test: unmount, then fsck (with data verification) must be clean."""
    if fuse_available():
        pytest.skip(fuse_available())
    m = Mount(tmp_path / "store", tmp_path / "mnt").start()
    try:
        yield m
    except BaseException:
        m.kill()
        raise
    m.stop()
    assert_fsck_clean(m.store)


def fsck_findings(path: Path, verify_data: bool = True) -> list:
    opened = OpenStore(path, read_only=True)
    try:
        return Fsck(opened, verify_data=verify_data, progress=False).run()
    finally:
        opened.close()


@pytest.fixture
def vfs(tmp_path: Path) -> Iterator[Vfs]:
    store = OpenStore(tmp_path / "store", create=True)
    v = Vfs(store)
    yield v
    v.shutdown()
    store.close()
    left = unclean(fsck_findings(tmp_path / "store"))
    assert not left, [f.line() for f in left]


@pytest.fixture(scope="session")
def devset() -> Path:
    """The dev image set (codec and similarity tests); skipped with a reason when it is absent."""
    if not DEVSET.is_dir():
        pytest.skip(f"dev image set not found at {DEVSET}")
    return DEVSET
