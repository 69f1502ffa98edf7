"""Store benchmark: a real mount of a fresh store, `cp -r SRC`, background ingest, remount, compare, fsck,
then a table per group: PNG bytes, per-file JPEG XL e7 / WebP lossless, zstd -19 of a tar, simfs on disk.

    python scripts/bench_store.py ../shared/data/devset --groups ../shared/data/devset/groups.tsv

simfs bytes on disk = object files + catalog (never the rebuilt-file cache or the log); the catalog is
shared out over groups by their number of image files (it is mostly per-image descriptors). Also
printed: encode throughput (megapixels per wall second and per daemon CPU second), p50/p99 latency of
`stat`/`ls -l` on the mount while the encoder is busy, and cold/warm read latency by storage kind.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import imagecodecs  # noqa: E402
import numpy as np  # noqa: E402

import codec  # noqa: E402

SIMFS = [sys.executable, "-m", "simfs"]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIMFS, *args], capture_output=True, text=True, check=check, cwd=REPO)


def groups_of(src: Path, tsv: Path | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if tsv is not None:
        with open(tsv, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                out[row["file"]] = row["group"]
    for p in src.rglob("*"):
        if p.is_file():
            rel = str(p.relative_to(src))
            out.setdefault(rel, rel.split("/")[0] if "/" in rel else "(top)")
    return out


def per_file_codecs(data: bytes) -> tuple[int, int, float]:
    """(JPEG XL e7 lossless bytes, WebP lossless bytes, megapixels); the file itself where not an image."""
    px = codec.png_pixels(data) if data.startswith(b"\x89PNG") else None
    if px is None:
        return len(data), len(data), 0.0
    mp = px.shape[0] * px.shape[1] / 1e6
    try:
        jxl = len(imagecodecs.jpegxl_encode(px, lossless=True, effort=7))
    except Exception:
        jxl = len(data)
    try:
        if px.dtype == np.uint8 and px.ndim == 3 and px.shape[2] in (3, 4):
            webp = len(imagecodecs.webp_encode(px, lossless=True))
        elif px.dtype == np.uint8 and px.ndim == 2:
            webp = len(imagecodecs.webp_encode(np.dstack([px] * 3), lossless=True))
        else:
            webp = jxl  # WebP has no 16-bit or grey+alpha: counted at the JPEG XL size
    except Exception:
        webp = len(data)
    return min(jxl, len(data)), min(webp, len(data)), mp


def zstd_tar(files: list[Path], root: Path) -> int:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in files:
            tar.add(p, arcname=str(p.relative_to(root)))
    return len(imagecodecs.zstd_encode(buf.getvalue(), level=19))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _cpu_tree(pid: int) -> float:
    """CPU seconds of pid and of its living descendants (the codec worker processes)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _cpu_tree(int(child))
    except (OSError, ValueError):
        pass
    return total


def daemon_cpu(store: Path) -> float:
    from simfs.storage import StoreLock

    pid = StoreLock.holder(store)
    return 0.0 if pid is None else _cpu_tree(pid)


def probe_latency(names: list[str], out: str, stop_file: str) -> None:
    """In a separate process (its own GIL): stat one file, or ls -l a directory every 20th call."""
    lat = []
    i = 0
    while not os.path.exists(stop_file):
        t = time.perf_counter()
        if i % 20 == 0:
            for e in os.scandir(os.path.dirname(names[i % len(names)])):
                e.stat(follow_symlinks=False)
        else:
            os.stat(names[i % len(names)])
        lat.append(time.perf_counter() - t)
        i += 1
        time.sleep(0.02)
    Path(out).write_text(json.dumps(lat))


def descriptor_bytes(store: Path) -> dict[str, int]:
    """Bytes of each object's similarity records (S + T values), by object id hex."""
    from simfs.catalog import keys
    from simfs.storage import OpenStore

    out: dict[str, int] = defaultdict(int)
    opened = OpenStore(store, read_only=True)
    try:
        for prefix in (keys.SIMILARITY, keys.SIMILARITY_LOCAL):
            for k, v in opened.catalog.scan(prefix):
                out[bytes(k[1:]).hex()] += len(k) + len(v)
    finally:
        opened.close()
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def wait_mounted(mnt: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("mount failed")
        time.sleep(0.05)


def mount(store: Path, mnt: Path, opts: list[str]) -> subprocess.Popen:
    args = [*SIMFS, "mount", "--foreground", str(store), str(mnt)]
    for o in opts:
        args += ["-o", o]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    wait_mounted(mnt, proc)
    return proc


def umount(mnt: Path, proc: subprocess.Popen) -> None:
    run("umount", str(mnt))
    proc.wait(timeout=300)


def pending(store: Path) -> int:
    from simfs.stats import store_stats  # in-process: a `simfs stats` subprocess per poll costs CPU

    return store_stats(store)["ingest_pending"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("--groups", type=Path)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temporary store (removed after a clean run)")
    ap.add_argument("-o", dest="opts", action="append", default=[], help="mount option (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    ap.add_argument("--baseline-cache", type=Path, help="JSON file keeping per-file baselines between runs")
    args = ap.parse_args()
    src = args.src.resolve()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="simfs-bench-store-"))
    store, mnt = work / "store", work / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    groups = groups_of(src, args.groups)
    files = sorted(p for p in src.rglob("*") if p.is_file())

    print(f"baselines over {len(files)} files ...", file=sys.stderr)
    t0 = time.process_time()
    base: dict[str, tuple[int, int, int, float]] = {}
    cache: dict[str, list] = {}
    if args.baseline_cache and args.baseline_cache.exists():
        cache = json.loads(args.baseline_cache.read_text())
    for p in files:
        data = p.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        if key not in cache:
            cache[key] = list(per_file_codecs(data))
        jxl, webp, mp = cache[key]
        base[str(p.relative_to(src))] = (len(data), int(jxl), int(webp), float(mp))
    if args.baseline_cache:
        args.baseline_cache.write_text(json.dumps(cache))
    by_group_files: dict[str, list[Path]] = defaultdict(list)
    for p in files:
        by_group_files[groups[str(p.relative_to(src))]].append(p)
    zst = {g: zstd_tar(fs, src) for g, fs in by_group_files.items()}
    zst_total = zstd_tar(files, src)
    print(f"  baselines took {time.process_time() - t0:.0f} s CPU", file=sys.stderr)

    # ---- copy in, measure stat latency while the encoder works
    proc = mount(store, mnt, args.opts)
    t_copy = time.monotonic()
    subprocess.run(["cp", "-r", f"{src}/.", str(mnt)], check=True)
    copy_s = time.monotonic() - t_copy
    cpu0 = daemon_cpu(store)
    t_ingest = time.monotonic()
    import multiprocessing

    names = [str(mnt / str(p.relative_to(src))) for p in files]
    stop_file, lat_file = str(work / "probe.stop"), str(work / "probe.json")
    prober = multiprocessing.get_context("spawn").Process(target=probe_latency, args=(names, lat_file, stop_file))
    prober.start()
    while pending(store) > 0:  # objects not yet described/encoded, and re-planning jobs
        time.sleep(2)
    ingest_s = time.monotonic() - t_ingest
    cpu_ingest = daemon_cpu(store) - cpu0
    Path(stop_file).write_text("")
    prober.join()
    lat: list[float] = json.loads(Path(lat_file).read_text())
    kinds: dict[str, str] = {}
    stored: dict[str, int] = {}
    for p in files:
        rel = str(p.relative_to(src))
        kinds[rel] = os.getxattr(mnt / rel, "user.simfs.kind").decode()
        stored[rel] = int(os.getxattr(mnt / rel, "user.simfs.stored_bytes"))
    umount(mnt, proc)

    # ---- cold and warm reads after a remount, compare every file
    proc = mount(store, mnt, args.opts)
    cold: dict[str, list[float]] = defaultdict(list)
    warm: dict[str, list[float]] = defaultdict(list)
    bad = 0
    for p in files:
        rel = str(p.relative_to(src))
        for bucket in (cold, warm):
            t = time.perf_counter()
            data = (mnt / rel).read_bytes()
            bucket[kinds[rel]].append(time.perf_counter() - t)
        bad += data != p.read_bytes()
    umount(mnt, proc)
    fsck = run("fsck", str(store), "--verify-data", "--json", "--no-progress", check=False)
    stats = json.loads(run("stats", str(store), "--json").stdout)
    desc_bytes = descriptor_bytes(store)
    catalog = dir_bytes(store / "catalog")
    objects_total = dir_bytes(store / "objects")

    # ---- tables
    seen: set[str] = set()  # dedup: an object's bytes counted once, for its first file
    g_rows: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for p in files:
        rel = str(p.relative_to(src))
        g = groups[rel]
        size, jxl, webp, mp = base[rel]
        r = g_rows[g]
        r["files"] += 1
        r["png"] += size
        r["jxl"] += jxl
        r["webp"] += webp
        r["mp"] += mp
        r["images"] += mp > 0
        oid = hashlib.sha256(p.read_bytes()).hexdigest()
        if oid not in seen:
            seen.add(oid)
            r["objects"] += stored[rel]
            r["descriptors"] += desc_bytes.get(oid, 0)
    # each group pays its objects, its own descriptor records, and a share of the rest of the catalog
    # (RocksDB files, inodes, names) by number of files
    rest = max(0, catalog - sum(desc_bytes.values()))
    for g, r in g_rows.items():
        r["simfs"] = r["objects"] + r["descriptors"] + rest * r["files"] / len(files)
        r["zstd"] = zst[g]
    tot: dict[str, float] = defaultdict(float)
    for r in g_rows.values():
        for k, v in r.items():
            tot[k] += v
    tot["zstd"] = zst_total
    tot["simfs"] = objects_total + catalog

    hdr = (f"{'group':<20} {'files':>5} {'PNG MB':>8} {'JXL e7':>8} {'WebP-LL':>8} {'zstd tar':>8} "
           f"{'simfs':>8} {'simfs/JXL':>9} {'simfs/PNG':>9}")
    print(hdr)
    print("-" * len(hdr))
    for g in sorted(g_rows):
        r = g_rows[g]
        print(f"{g:<20} {int(r['files']):>5} {r['png'] / 1e6:>8.2f} {r['jxl'] / 1e6:>8.2f} {r['webp'] / 1e6:>8.2f} "
              f"{r['zstd'] / 1e6:>8.2f} {r['simfs'] / 1e6:>8.2f} {r['simfs'] / max(r['jxl'], 1):>9.3f} "
              f"{r['simfs'] / max(r['png'], 1):>9.3f}")
    print("-" * len(hdr))
    print(f"{'total':<20} {int(tot['files']):>5} {tot['png'] / 1e6:>8.2f} {tot['jxl'] / 1e6:>8.2f} "
          f"{tot['webp'] / 1e6:>8.2f} {tot['zstd'] / 1e6:>8.2f} {tot['simfs'] / 1e6:>8.2f} "
          f"{tot['simfs'] / tot['jxl']:>9.3f} {tot['simfs'] / tot['png']:>9.3f}")
    print(f"\nsimfs on disk: objects {objects_total / 1e6:.2f} MB + catalog {catalog / 1e6:.2f} MB "
          f"({100 * catalog / max(objects_total, 1):.1f}% of the objects; similarity records "
          f"{sum(desc_bytes.values()) / 1e6:.2f} MB)")
    big = [(desc_bytes.get(hashlib.sha256(p.read_bytes()).hexdigest(), 0), stored[str(p.relative_to(src))])
           for p in files if base[str(p.relative_to(src))][3] >= 1.0]
    if big:
        d, s_ = sum(b[0] for b in big), sum(b[1] for b in big)
        print(f"similarity records of the {len(big)} photos >= 1 MP: {d / 1e3:.0f} KB = "
              f"{100 * d / max(s_, 1):.2f}% of their stored bytes")
    print("objects by kind: " + ", ".join(f"{k} {v['objects']} ({v['stored_bytes'] / 1e6:.2f} MB)"
                                          for k, v in stats["by_kind"].items() if v["objects"]))
    print(f"chain depths: {stats['depth_histogram']}")
    print(f"copy-in {copy_s:.1f} s; ingest {ingest_s:.1f} s wall, {cpu_ingest:.1f} s daemon CPU; "
          f"encode {tot['mp'] / max(ingest_s, 1e-9):.3f} MP/s wall, {tot['mp'] / max(cpu_ingest, 1e-9):.3f} MP/CPU-s")
    print(f"stat/ls -l during ingest: {len(lat)} calls, p50 {pct(lat, 50) * 1e3:.1f} ms, "
          f"p99 {pct(lat, 99) * 1e3:.1f} ms, max {max(lat, default=0) * 1e3:.1f} ms")
    print(f"{'kind':<16} {'files':>5} {'cold p50':>9} {'cold p95':>9} {'warm p50':>9} {'warm p95':>9}  (ms)")
    for k in sorted(cold):
        print(f"{k:<16} {len(cold[k]):>5} {pct(cold[k], 50) * 1e3:>9.1f} {pct(cold[k], 95) * 1e3:>9.1f} "
              f"{pct(warm[k], 50) * 1e3:>9.1f} {pct(warm[k], 95) * 1e3:>9.1f}")
    print(f"\nfiles differing after remount: {bad}; fsck --verify-data exit {fsck.returncode}")
    if args.json:
        args.json.write_text(json.dumps({"groups": g_rows, "total": tot, "catalog": catalog,
                                         "objects": objects_total, "stats": stats, "ingest_s": ingest_s,
                                         "ingest_cpu_s": cpu_ingest, "stat_p99_ms": pct(lat, 99) * 1e3,
                                         "bad": bad, "fsck": fsck.returncode}, indent=1, default=float))
    ok = bad == 0 and fsck.returncode == 0
    if args.workdir is None and ok and not args.keep:
        shutil.rmtree(work)  # a temporary store of the whole source: left behind only to look at a failure
    elif args.workdir is None:
        print(f"store kept in {work}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
