#!/usr/bin/env python3
"""Throughput of a simfs mount vs a plain directory on the same disk: prints a table.

    python scripts/bench_fs.py [--large-mb 256 --large-files 2] [--small 2000] [--tree DIR] [--json]
                               [--latency [--photos DIR]] [--sparse MB]

Measures, for each target: large-file write MB/s (copy + close, which commits durably on simfs),
large-file read MB/s cold (after remount and dropping the page cache, when allowed) and warm,
small-file write and read files/s, and (with --tree) copying a real directory tree in and reading
it back; with --sparse, small durable writes into a large sparse file (time and space used) and a
4 KiB edit of a large file; with --latency, the idle cost of a stat and an `ls -l`, then stat/ls
latency of other files during a 2 GiB truncate, a 1 GiB write and (--photos) an ingest. The last
column is simfs / plain.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIMFS = [sys.executable, "-m", "simfs"]
CHUNK = 1 << 20


def is_mounted(mnt: Path) -> bool:
    target = str(mnt.resolve())
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh)


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


class SimfsTarget:
    name = "simfs"

    def __init__(self, work: Path):
        self.store, self.root = work / "store", work / "mnt"
        self.root.mkdir()

    def start(self) -> None:
        subprocess.run([*SIMFS, "mount", str(self.store), str(self.root)], check=True, cwd=REPO)

    def stop(self) -> None:
        subprocess.run([*SIMFS, "umount", str(self.root)], check=True, cwd=REPO)

    def cold(self) -> bool:
        self.stop()
        dropped = drop_caches()
        self.start()
        return dropped

    def wait_ingest(self, timeout: float = 3600) -> None:
        """Until the background ingest (descriptors, encodings) has nothing left to do."""
        deadline = time.monotonic() + timeout
        time.sleep(0.5)
        while time.monotonic() < deadline:
            out = subprocess.run([*SIMFS, "stats", str(self.store), "--json"], capture_output=True, text=True, cwd=REPO)
            if out.returncode == 0 and json.loads(out.stdout).get("ingest_pending", 1) == 0:
                return
            time.sleep(1)


class PlainTarget:
    name = "plain"

    def __init__(self, work: Path):
        self.root = work / "plain"
        self.root.mkdir()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def cold(self) -> bool:
        return drop_caches()


def write_file(path: Path, data: bytes, repeat: int) -> None:
    """repeat MiB-sized blocks, each made distinct by its number (no dedup shortcut between blocks)."""
    with open(path, "wb") as fh:
        for i in range(repeat):
            fh.write(i.to_bytes(8, "big") + data[8:])


def sparse_edits(root: Path, out: dict[str, float], size_mb: int) -> None:
    """Small changes to large files: what a database, a VM image or a torrent client does."""
    p = root / "sparse.img"
    t = time.perf_counter()
    with open(p, "wb") as fh:
        fh.truncate(size_mb << 20)
        for k in range(5):  # five 4 KiB writes, each made durable
            fh.seek((k * 7 + 3) * (size_mb << 20) // 40)
            fh.write(os.urandom(4096))
            fh.flush()
            os.fsync(fh.fileno())
    out[f"sparse {size_mb} MiB: 5 x (4 KiB + fsync) s"] = time.perf_counter() - t
    out[f"sparse {size_mb} MiB: space used KiB"] = os.stat(p).st_blocks * 512 / 1024
    p.unlink()
    big = root / "large0.bin"
    t = time.perf_counter()
    with open(big, "r+b") as fh:
        fh.seek(os.stat(big).st_size // 3)
        fh.write(os.urandom(4096))
        fh.flush()
        os.fsync(fh.fileno())
    out["4 KiB edit + fsync of a large file s"] = time.perf_counter() - t


def read_file(path: Path) -> int:
    n = 0
    with open(path, "rb", buffering=0) as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return n
            n += len(chunk)


def _probe(root: Path, stop: threading.Event, lat: list[float]) -> None:
    """stat one file and list the top directory every 10 ms (as `ls -l` would), recording latency."""
    other = root / "probe.txt"
    while not stop.is_set():
        t = time.perf_counter()
        os.stat(other)
        for e in os.scandir(root):
            e.stat(follow_symlinks=False)
        lat.append(time.perf_counter() - t)
        stop.wait(0.01)


def latency_during(root: Path, label: str, action, out: dict[str, float]) -> None:
    """p50/p99 (ms) of stat + ls of other files while ``action()`` runs (then 0.3 s more)."""
    (root / "probe.txt").write_bytes(b"probe")
    lat: list[float] = []
    stop = threading.Event()
    th = threading.Thread(target=_probe, args=(root, stop, lat), daemon=True)
    th.start()
    t = time.perf_counter()
    action()
    took = time.perf_counter() - t
    time.sleep(0.3)
    stop.set()
    th.join()
    lat.sort()
    out[f"{label}: s"] = took
    out[f"{label}: stat/ls p50 ms"] = lat[len(lat) // 2] * 1e3 if lat else 0.0
    out[f"{label}: stat/ls p99 ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3 if lat else 0.0


def _photo_ingest(target, src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    if isinstance(target, SimfsTarget):
        target.wait_ingest()


def stat_cost(root: Path, out: dict[str, float]) -> None:
    """Idle cost of metadata calls: one stat, and `ls -l` (readdir + a stat per entry) of 200 files."""
    d = root / "statdir"
    d.mkdir()
    for i in range(200):
        (d / f"f{i:03d}").write_bytes(b"x")
    one = d / "f000"
    for _ in range(200):
        os.stat(one)  # warm the dentries
    t = time.perf_counter()
    for _ in range(5000):
        os.stat(one)
    out["idle stat us"] = (time.perf_counter() - t) / 5000 * 1e6
    runs = []
    for _ in range(10):
        t = time.perf_counter()
        for e in os.scandir(d):
            e.stat(follow_symlinks=False)
        runs.append(time.perf_counter() - t)
    out["idle ls -l of 200 files ms"] = sorted(runs)[len(runs) // 2] * 1e3
    shutil.rmtree(d)


def bench(target, args) -> dict[str, float]:
    out: dict[str, float] = {}
    target.start()
    root = target.root
    # large files: distinct random content (no dedup shortcut)
    block = os.urandom(CHUNK)
    big = [root / f"large{i}.bin" for i in range(args.large_files)]
    t = time.perf_counter()
    for i, p in enumerate(big):
        write_file(p, bytes([i]) + block[1:], args.large_mb)
    out["large write MB/s"] = args.large_files * args.large_mb / (time.perf_counter() - t)
    out["cold is cold"] = float(target.cold())
    t = time.perf_counter()
    total = sum(read_file(p) for p in big)
    out["large read cold MB/s"] = total / CHUNK / (time.perf_counter() - t)
    t = time.perf_counter()
    total = sum(read_file(p) for p in big)
    out["large read warm MB/s"] = total / CHUNK / (time.perf_counter() - t)
    # small files
    small_dir = root / "small"
    small_dir.mkdir()
    payloads = [os.urandom(4096 + (i * 997) % 60000) for i in range(64)]
    t = time.perf_counter()
    for i in range(args.small):
        (small_dir / f"s{i:06d}.png").write_bytes(payloads[i % 64] + i.to_bytes(4, "big"))
    out["small write files/s"] = args.small / (time.perf_counter() - t)
    target.cold()
    t = time.perf_counter()
    for i in range(args.small):
        (small_dir / f"s{i:06d}.png").read_bytes()
    out["small read files/s"] = args.small / (time.perf_counter() - t)
    if args.tree:
        files = [p for p in args.tree.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / CHUNK
        t = time.perf_counter()
        shutil.copytree(args.tree, root / "tree")
        out["tree copy-in MB/s"] = size / (time.perf_counter() - t)
        target.cold()
        t = time.perf_counter()
        for p in (root / "tree").rglob("*"):
            if p.is_file():
                read_file(p)
        out["tree read cold MB/s"] = size / (time.perf_counter() - t)
    if args.sparse:
        sparse_edits(root, out, args.sparse)
    if args.latency:
        stat_cost(root, out)
        big = root / "huge.bin"
        latency_during(root, "truncate 2 GiB", lambda: subprocess.run(["truncate", "-s", "2G", str(big)], check=True), out)
        big.unlink()
        latency_during(root, "write 1 GiB", lambda: subprocess.run(
            ["dd", "if=/dev/zero", f"of={root / 'gig.bin'}", "bs=1M", "count=1024", "conv=fsync", "status=none"],
            check=True), out)
        (root / "gig.bin").unlink()
        if args.photos:
            latency_during(root, f"ingest {args.photos.name}", lambda: _photo_ingest(target, args.photos, root / "photos"), out)
    target.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large-mb", type=int, default=256, help="size of each large file in MiB")
    ap.add_argument("--large-files", type=int, default=2)
    ap.add_argument("--small", type=int, default=2000, help="number of small (4-64 KiB) files")
    ap.add_argument("--tree", type=Path, help="also copy this directory tree in and read it back")
    ap.add_argument("--latency", action="store_true",
                    help="stat/ls latency of other files during a 2 GiB truncate and a 1 GiB write")
    ap.add_argument("--sparse", type=int, metavar="MB", default=0,
                    help="five 4 KiB writes + fsync into a sparse file of this size, and a 4 KiB edit of a large file")
    ap.add_argument("--photos", type=Path, help="with --latency: also during the ingest of this photo directory")
    ap.add_argument("--workdir", type=Path, help="where to put store and plain dir (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="simfs-bench-", dir=args.workdir))
    results = {}
    try:
        for cls in (PlainTarget, SimfsTarget):
            sub = work / cls.name
            sub.mkdir()
            target = cls(sub)
            try:
                results[cls.name] = bench(target, args)
            finally:
                if isinstance(target, SimfsTarget) and is_mounted(target.root):
                    target.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    cold = results["simfs"].pop("cold is cold") and results["plain"].pop("cold is cold")
    results["plain"].pop("cold is cold", None)
    print(f"simfs bench_fs: {args.large_files} x {args.large_mb} MiB large files, {args.small} small files"
          + (f", tree {args.tree}" if args.tree else ""))
    print(f"{'metric':<40} {'plain dir':>12} {'simfs':>12} {'simfs/plain':>12}")
    for key in results["plain"]:
        p, s = results["plain"][key], results["simfs"][key]
        print(f"{key:<40} {p:>12.4g} {s:>12.4g} {s / p if p else 0:>12.2f}")
    if not cold:
        print("note: could not drop the page cache (needs root); 'cold' reads of the backing files may be warm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
