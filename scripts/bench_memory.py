"""Memory per ingested object: the peak of every ingest and read stage, next to the image's pixel buffer.

    python scripts/bench_memory.py ../shared/data/devset [--sizes 1,6,12,24]

Per size and kind, a mosaic of distinct real dev-set photos (detailed everywhere), every tile
resampled by 3/4 (no JPEG grid of its own left), and a colour-edited copy of it are written as PNG.
Two kinds: `plain`, the mosaic as it is (the plain intra path), and `jpeg`, the mosaic once through
a JPEG at quality 90 (Pillow, 4:2:0) and decoded: a camera's JPEG saved as PNG, one grid and one
table over the whole picture, so the codec's JPEG recovery runs on all of it. Every stage then runs in a fresh process, as the store runs it (same
functions, same settings), after a warm-up that loads the codec's libraries:

- daemon: `describe` (pixels + similarity descriptors), `rebuild` of the intra and the inter blob
  (codec.decode, the cold read);
- worker (`-o workers`): `encode` of the photo on its own and of the copy against the photo's pixels
  (the first pass, effort 1, with its one verification), `polish` (the payload re-coded at effort 7).

Peak = VmHWM over the stage, reset just before it (/proc/self/clear_refs), minus VmRSS before it:
memory the stage itself needs beyond its inputs (the file bytes and the reference pixels, printed
apart; a worker receives both pickled). The last lines give the bound that holds for every size:
peak ≤ k × pixel buffer + inputs + fixed.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import numpy as np  # noqa: E402

TILES = {1: (1, 2), 3: (2, 3), 6: (3, 4), 12: (5, 5), 24: (7, 7)}  # mosaic tiles (600 x 800 each) down, across
STAGES = ("describe", "encode-intra", "encode-inter", "polish", "rebuild-intra", "rebuild-inter")
FIXED_MIB = 64  # the fixed part of the fitted bound (thread stacks, allocator arenas, small tables)
# The bound README states for every stage (measured at 1, 6 and 12 MP): peak beyond the inputs
# <= BOUND_K x the pixel buffer + BOUND_FIXED_MIB (libjxl's own fixed memory dominates at 1 MP).
BOUND_K, BOUND_FIXED_MIB = 12, 160


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _warm_up() -> None:
    """Load every library a stage uses (their code and first arenas are not per-object memory)."""
    from bench_read import png_bytes

    import codec
    from simfs.ingest.describe import describe_content
    from simfs.ingest.encode import EncodeOptions
    from simfs.ingest.jobs import Ref, encode_png, repack_blob

    y, x = np.mgrid[0:192, 0:256]
    px = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)  # smooth: coding is smaller than the file
    data = png_bytes(px)
    describe_content(data)
    job = encode_png(data, [], EncodeOptions().knobs())
    if job.blob is not None:
        codec.decode(job.blob)
        repack_blob(job.blob, 7)
    encode_png(png_bytes(px // 2 * 2), [Ref(b"w", px, 1)], EncodeOptions().knobs())


def resampled_mosaic(tiles: list[Path], down: int, across: int) -> np.ndarray:
    """Like bench_read.mosaic, every tile a 3/4 Lanczos resampling of a larger crop (no JPEG grid)."""
    from bench_read import TILE
    from PIL import Image

    h, w = TILE
    out = np.zeros((down * h, across * w, 3), np.uint8)
    for i in range(down * across):
        with Image.open(tiles[i % len(tiles)]) as im:
            big = im.convert("RGB").crop((0, 0, min(im.width, w * 4 // 3), min(im.height, h * 4 // 3)))
            t = np.asarray(big.resize((w, h), Image.Resampling.LANCZOS))
        r, c = divmod(i, across)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return out


def jpeg_mosaic(tiles: list[Path], down: int, across: int) -> np.ndarray:
    """resampled_mosaic once through a quality-90 JPEG (4:2:0) and decoded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(resampled_mosaic(tiles, down, across)).save(buf, "JPEG", quality=90)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def child(stage: str, work: Path) -> dict[str, float]:
    """Run one stage in this (fresh) process; the peak it needed beyond its inputs, in bytes."""
    import codec
    from simfs.ingest.describe import describe_content
    from simfs.ingest.encode import EncodeOptions
    from simfs.ingest.jobs import Ref, encode_png, repack_blob

    _warm_up()
    photo = (work / "photo.png").read_bytes()
    copy = (work / "copy.png").read_bytes()
    inputs: dict[str, object] = {}
    if stage == "describe":
        inputs["content"] = photo
    elif stage == "encode-intra":
        inputs["content"] = photo
    elif stage == "encode-inter":
        inputs["content"] = copy
        inputs["ref"] = codec.png_pixels(photo)
    elif stage == "polish":
        inputs["blob"] = (work / "intra.blob").read_bytes()
    elif stage == "rebuild-intra":
        inputs["blob"] = (work / "intra.blob").read_bytes()
    elif stage == "rebuild-inter":
        inputs["blob"] = (work / "inter.blob").read_bytes()
        inputs["ref"] = codec.png_pixels(photo)
    del photo, copy
    gc.collect()
    input_bytes = sum(v.nbytes if isinstance(v, np.ndarray) else len(v) for v in inputs.values())  # type: ignore[arg-type]
    before = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    t0, c0 = time.perf_counter(), time.process_time()
    if stage == "describe":
        assert describe_content(inputs["content"]) is not None  # type: ignore[arg-type]
    elif stage in ("encode-intra", "encode-inter"):
        refs = [Ref(hashlib.sha256(b"photo").digest(), inputs["ref"], 1)] if "ref" in inputs else []  # type: ignore[arg-type]
        job = encode_png(inputs["content"], refs, EncodeOptions().knobs())  # type: ignore[arg-type]
        assert job.blob is not None, job.reason
        (work / ("intra.blob" if stage == "encode-intra" else "inter.blob")).write_bytes(job.blob)
        inputs["mode"] = job.mode  # type: ignore[assignment]
    elif stage == "polish":
        repack_blob(inputs["blob"], 7)  # type: ignore[arg-type]
    elif stage == "rebuild-intra":
        codec.decode(inputs["blob"])  # type: ignore[arg-type]
    else:
        codec.decode(inputs["blob"], codec.Reference(inputs["ref"], hashlib.sha256(b"photo").digest()))  # type: ignore[arg-type]
    peak = _status("VmHWM") - before
    return {"peak": peak, "inputs": input_bytes, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
            "mode": inputs.get("mode", "")}  # type: ignore[dict-item]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("devset", type=Path)
    ap.add_argument("--sizes", default="1,6,12,24", help="megapixels, among " + ",".join(map(str, TILES)))
    ap.add_argument("--kinds", default="plain,jpeg", help="plain (resampled tiles), jpeg (the same through a JPEG)")
    ap.add_argument("--check", action="store_true",
                    help=f"exit 3 if a stage's peak exceeds {BOUND_K} x pixel buffer + {BOUND_FIXED_MIB} MiB")
    ap.add_argument("--child", nargs=2, metavar=("STAGE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return 0
    from bench_read import TILE, edit, photos, png_bytes

    tiles = photos(args.devset, TILE)
    rows = []
    with tempfile.TemporaryDirectory(prefix="simfs-bench-memory-") as tmp:
        for kind, size in ((k, int(s)) for k in args.kinds.split(",") for s in args.sizes.split(",")):
            work = Path(tmp) / f"{kind}{size}mp"
            work.mkdir()
            px = (jpeg_mosaic if kind == "jpeg" else resampled_mosaic)(tiles, *TILES[size])
            (work / "photo.png").write_bytes(png_bytes(px))
            (work / "copy.png").write_bytes(png_bytes(edit(px, 1)))
            for stage in STAGES:
                out = subprocess.run([sys.executable, __file__, str(args.devset), "--child", stage, str(work)],
                                     capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    print(f"{size} MP {stage}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    return 1
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((kind, size, px.nbytes, (work / "photo.png").stat().st_size, stage, r))
                print(f"  {kind} {size} MP {stage}: peak {r['peak'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
    mib = 2**20
    print(f"{'kind':<5} {'MP':>4} {'pixels MiB':>10} {'file MiB':>8}  {'stage':<14} {'mode':<6} {'inputs MiB':>10} "
          f"{'peak MiB':>8} {'peak/pixels':>11} {'wall s':>7} {'cpu s':>6}")
    for kind, size, pix, file_bytes, stage, r in rows:
        print(f"{kind:<5} {size:>4} {pix / mib:>10.1f} {file_bytes / mib:>8.1f}  {stage:<14} {r['mode']:<6} "
              f"{r['inputs'] / mib:>10.1f} {r['peak'] / mib:>8.0f} {r['peak'] / pix:>11.2f} "
              f"{r['wall']:>7.2f} {r['cpu']:>6.2f}")
    print()
    for stage in STAGES:
        k = max((r["peak"] - FIXED_MIB * mib) / pix for _, _, pix, _, s, r in rows if s == stage)
        print(f"{stage:<14} peak <= {max(k, 0):.2f} x pixel buffer + {FIXED_MIB} MiB (beyond its inputs)")
    over = [(kind, size, stage, r["peak"]) for kind, size, pix, _, stage, r in rows
            if r["peak"] > BOUND_K * pix + BOUND_FIXED_MIB * mib]
    print(f"\nstated bound: peak <= {BOUND_K} x pixel buffer + {BOUND_FIXED_MIB} MiB: "
          + ("holds for every stage" if not over else "EXCEEDED by " + ", ".join(
              f"{kind} {size} MP {stage} ({peak / mib:.0f} MiB)" for kind, size, stage, peak in over)))
    return 3 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
