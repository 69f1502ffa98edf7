"""Read benchmark: cold and warm reads of 1, 12 and 24 MP photos through a real mount, next to the floor.

    python scripts/bench_read.py ../shared/data/devset [--sizes 1,12,24] [--chain 4] [--dir-photos 20]

Photos: 1 MP is a real dev-set photo; 12 and 24 MP are mosaics of distinct real dev-set photos
(detailed content everywhere, not an upscale). Per size the script writes the photo and a chain of
edited copies (each a small colour change of the previous one, as a photo editor's successive
exports), one file at a time, waiting for the background ingest between files so a copy can be
coded against the file before it; the depth each file got is read from `user.simfs.depth`.

Cold read = after a remount (simfs empties its rebuilt-file cache at mount) and after dropping the
page cache (`/proc/sys/vm/drop_caches` if writable, else `posix_fadvise(DONTNEED)` on every store
file): open + read all. Time to first byte = open + first 64 KiB read. Warm = the same read again.
Next to them, in the same run: one core's zlib level 6 of the photo's filtered rows (the floor of a
byte-exact rebuild: a PNG writer does at least this), a plain file's cold and warm read, and the codec
alone (`codec.decode` of a chain built with the codec API up to `--chain` levels, no FUSE). CPU
seconds of the daemon are printed next to wall times. Also: a directory of 1 MP encoded photos
copied out cold (`cp -r`), MB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402
from bench_store import daemon_cpu, mount, pending, umount  # noqa: E402
from PIL import Image  # noqa: E402

import codec  # noqa: E402
from codec import recipe  # noqa: E402

TILE = (600, 800)  # rows, columns of one mosaic tile
MOSAIC = {12: (5, 5), 24: (7, 7)}  # tiles down, across: 4000x3000 and 5600x4200


def photos(src: Path, min_shape: tuple[int, int], min_pixels: int = 0) -> list[Path]:
    """Real photos of the dev set at least ``min_shape`` (and ``min_pixels``), largest first."""
    out = []
    for p in sorted(src.rglob("*.png")):
        if p.parts[-2].startswith(("fmt-", "edit-", "burst-", "opencv-")):
            continue  # test images, edits and bursts: near-copies would make a repetitive mosaic
        try:
            with Image.open(p) as im:
                if (im.height >= min_shape[0] and im.width >= min_shape[1] and im.width * im.height >= min_pixels
                        and im.mode in ("RGB", "RGBA", "P", "L")):
                    out.append((im.width * im.height, p))
        except Exception:
            continue
    return [p for _, p in sorted(out, key=lambda t: (-t[0], str(t[1])))]


def mosaic(tiles: list[Path], down: int, across: int) -> np.ndarray:
    h, w = TILE
    out = np.zeros((down * h, across * w, 3), np.uint8)
    for i in range(down * across):
        with Image.open(tiles[i % len(tiles)]) as im:
            t = np.asarray(im.convert("RGB"))[:h, :w]
        r, c = divmod(i, across)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return out


def png_bytes(px: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG")  # Pillow's defaults: what most programs write
    return buf.getvalue()


def edit(px: np.ndarray, k: int) -> np.ndarray:
    """A small global colour change (gain and lift per channel), different for every step."""
    gain = np.array([1.0 + 0.012 * k, 1.0 - 0.008 * k, 1.0 + 0.004 * k])
    return np.clip(px.astype(np.float32) * gain + (2 * k), 0, 255).astype(np.uint8)


def floor_seconds(data: bytes) -> float:
    """One core, zlib level 6 of the photo's filtered rows (best of 2)."""
    a = codec.analyze(data)
    assert a.ok and a.recipe is not None and a.pixels is not None and a.header is not None
    raw = recipe.filtered_stream(a.header, a.pixels, a.recipe.filters)
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        zlib.compress(raw, 6)
        best = min(best, time.perf_counter() - t)
    return best


def drop_caches(paths: list[Path]) -> str:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "drop_caches"
    except OSError:
        for root in paths:
            for p in [root] if root.is_file() else root.rglob("*"):
                if p.is_file():
                    try:
                        fd = os.open(p, os.O_RDONLY)
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                        os.close(fd)
                    except OSError:
                        pass
        return "fadvise"


def timed_read(path: Path) -> tuple[float, float, bytes]:
    """(time to first 64 KiB, time to all, content)."""
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        first = fh.read(1 << 16)
        ttfb = time.perf_counter() - t
        rest = fh.read()
    return ttfb, time.perf_counter() - t, first + rest


def wait_ingest(store: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while pending(store) and time.monotonic() < deadline:
        time.sleep(0.5)


def codec_chain(files: list[bytes], depth: int) -> list[tuple[int, float, float]]:
    """(depth, wall s, CPU s) of codec.decode at depth 0..depth of a chain coded with the codec API."""
    refs: list[codec.Reference] = []
    blobs: list[tuple[bytes, codec.Reference | None]] = []
    for i, data in enumerate(files[: depth + 1]):
        ref = refs[-1] if refs else None
        r = codec.encode(data, ref, effort=1, include_intra=ref is None)
        if r.blob is None or (ref is not None and r.mode != "inter"):
            break
        blobs.append((r.blob, ref))
        refs.append(codec.Reference(codec.decode_pixels(r.blob, ref), hashlib.sha256(data).digest()[:16]))
        del i
    out = []
    for d in range(len(blobs)):
        t, c = time.perf_counter(), time.process_time()
        px = None
        for blob, ref in blobs[:d]:
            px = codec.decode_pixels(blob, None if ref is None else codec.Reference(px, ref.ref_id))
        blob, ref = blobs[d]
        codec.decode(blob, None if ref is None else codec.Reference(px, ref.ref_id))
        out.append((d, time.perf_counter() - t, time.process_time() - c))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("--sizes", default="1,12,24", help="megapixel sizes (1, 12, 24)")
    ap.add_argument("--chain", type=int, default=4, help="edited copies per size (the default depth limit)")
    ap.add_argument("--dir-photos", type=int, default=20,
                    help="photos of 0.45-1 MP (largest first) in the copied-out directory")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("-o", dest="opts", action="append", default=[], help="mount option (repeatable)")
    ap.add_argument("--ingest-timeout", type=float, default=1800)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="simfs-bench-read-"))).resolve()
    store, mnt, plain = work / "store", work / "mnt", work / "plain"
    for d in (mnt, plain):
        d.mkdir(parents=True, exist_ok=True)
    cpus = os.cpu_count()
    print(f"# {cpus} cores; host zlib {zlib.ZLIB_RUNTIME_VERSION} used for rebuilds: {codec.deflate.host_ok()}",
          file=sys.stderr)

    # ---- the photos
    one_mp = photos(args.src, (1, 1), 700_000)
    tiles = photos(args.src, TILE)
    sets: dict[int, list[tuple[str, bytes]]] = {}
    for mp in sizes:
        if mp == 1:
            base = np.asarray(Image.open(one_mp[0]).convert("RGB"))
        else:
            base = mosaic(tiles, *MOSAIC[mp])
        files = [(f"p{mp}mp.png", png_bytes(base))]
        px = base
        for k in range(1, args.chain + 1):
            px = edit(px, k)
            files.append((f"p{mp}mp_e{k}.png", png_bytes(px)))
        sets[mp] = files
    for files in sets.values():
        for name, data in files:
            (plain / name).write_bytes(data)

    # ---- write through the mount, one file at a time, ingest in between
    proc = mount(store, mnt, args.opts)  # the store is created at first mount
    t_ing, c_ing = time.perf_counter(), daemon_cpu(store)
    for files in sets.values():
        for name, data in files:
            (mnt / name).write_bytes(data)
            wait_ingest(store, args.ingest_timeout)
    dir_src = photos(args.src, (1, 1), 450_000)[: args.dir_photos]
    dest = {p: f"{i:03d}_{p.name}" for i, p in enumerate(dir_src)}  # dev-set names repeat across groups
    (mnt / "dir").mkdir(exist_ok=True)
    for p in dir_src:
        shutil.copyfile(p, mnt / "dir" / dest[p])
    wait_ingest(store, args.ingest_timeout)
    ingest_wall, ingest_cpu = time.perf_counter() - t_ing, daemon_cpu(store) - c_ing
    kinds = {name: (os.getxattr(mnt / name, "user.simfs.kind").decode(),
                    int(os.getxattr(mnt / name, "user.simfs.depth")))
             for files in sets.values() for name, _ in files}
    dir_kinds = [os.getxattr(mnt / "dir" / dest[p], "user.simfs.kind").decode() for p in dir_src]
    umount(mnt, proc)
    print(f"# ingest {ingest_wall:.0f} s wall, {ingest_cpu:.0f} s daemon CPU", file=sys.stderr)

    # ---- cold and warm reads
    rows = []
    bad = 0
    for mp, files in sets.items():
        fl = floor_seconds(files[0][1])
        for name, data in files:
            proc = mount(store, mnt, args.opts)
            time.sleep(2)  # the daemon's codec warm-up (self-tests, imports) runs at mount; not a read cost
            how = drop_caches([store, plain / name])
            c0 = daemon_cpu(store)
            ttfb, cold, got = timed_read(mnt / name)
            cold_cpu = daemon_cpu(store) - c0
            _, warm, got2 = timed_read(mnt / name)
            umount(mnt, proc)
            bad += got != data or got2 != data
            drop_caches([plain / name])
            _, pcold, _ = timed_read(plain / name)
            _, pwarm, _ = timed_read(plain / name)
            kind, depth = kinds[name]
            rows.append((mp, name, kind, depth, len(data), ttfb, cold, cold_cpu, warm, fl, pcold, pwarm))
    # directory copied out cold
    proc = mount(store, mnt, args.opts)
    time.sleep(2)
    drop_caches([store])
    out_dir = work / "copied"
    shutil.rmtree(out_dir, ignore_errors=True)
    c0 = daemon_cpu(store)
    t = time.perf_counter()
    subprocess.run(["cp", "-r", str(mnt / "dir"), str(out_dir)], check=True)
    dir_wall = time.perf_counter() - t
    dir_cpu = daemon_cpu(store) - c0
    umount(mnt, proc)
    dir_bytes = sum(p.stat().st_size for p in dir_src)
    bad += sum((out_dir / dest[p]).read_bytes() != p.read_bytes() for p in dir_src)

    print(f"\ncache drop: {how}; every file identical: {bad == 0}")
    print(f"{'file':<16} {'kind':<6} {'d':>1} {'MB':>6} {'ttfb s':>7} {'cold s':>7} {'cpu s':>6} {'warm s':>7} "
          f"{'floor s':>7} {'cold/floor':>10} {'plain cold':>10} {'plain warm':>10}")
    for _mp, name, kind, depth, size, ttfb, cold, cpu, warm, fl, pcold, pwarm in rows:
        print(f"{name:<16} {kind:<6} {depth:>1} {size / 1e6:>6.1f} {ttfb:>7.3f} {cold:>7.3f} {cpu:>6.2f} {warm:>7.3f} "
              f"{fl:>7.3f} {cold / fl:>10.2f} {pcold:>10.4f} {pwarm:>10.4f}")
    print(f"\ndirectory of {len(dir_src)} photos of 0.45-1 MP ({', '.join(sorted(set(dir_kinds)))}), {dir_bytes / 1e6:.1f} MB, "
          f"copied out cold: {dir_wall:.2f} s wall, {dir_cpu:.2f} s daemon CPU, {dir_bytes / 1e6 / dir_wall:.1f} MB/s")

    print("\ncodec alone (no FUSE), chain coded with the codec API, decode of the file at each depth:")
    print(f"{'size':<6} {'depth':>5} {'wall s':>7} {'cpu s':>6}")
    for mp, files in sets.items():
        for d, wall, cpu in codec_chain([data for _, data in files], args.chain):
            print(f"{mp:>3} MP {d:>5} {wall:>7.3f} {cpu:>6.2f}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
