#!/usr/bin/env python3
"""Encoder throughput of the ingest's intra path (and bytes), this checkout against another revision.

Runs the ingest job `simfs.ingest.jobs.encode_png(content, [], Knobs())` (analyze, JPEG XL, one
verification) on each PNG, in a fresh subprocess per tree, alternating trees file by file so both
see the same machine load; prints megapixels per CPU-second, wall time and bytes side by side.

Example: python scripts/bench_encoder.py ../shared/data/devset --against 43f6512 --limit 20 --first-effort 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from simfs.ingest import jobs
import codec
first = int(sys.argv[2])
out = []
for f in sys.argv[3:]:
    data = open(f, "rb").read()
    px = codec.png_pixels(data)
    c0, t0 = time.process_time(), time.perf_counter()
    r = jobs.encode_png(data, [], jobs.Knobs(effort=first))
    row = {"file": f, "mp": px.shape[0] * px.shape[1] / 1e6 if px is not None else 0,
           "cpu": time.process_time() - c0, "wall": time.perf_counter() - t0,
           "bytes": len(r.blob) if r.blob else len(data), "mode": r.mode, "polish_cpu": 0.0}
    if first < 7 and r.blob:  # the polish pass, later, in the background
        c1 = time.process_time()
        p = codec.repack(r.blob, 7)
        row["polish_cpu"] = time.process_time() - c1
        row["bytes"] = len(p) if p else row["bytes"]
    out.append(row)
print(json.dumps(out))
"""


def run(tree: Path, files: list[str], first_effort: int = 7) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(first_effort), *files], capture_output=True, text=True,
                         check=True, cwd=tree)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="a PNG or a folder of PNGs (fmt-* folders skipped)")
    ap.add_argument("--against", required=True, help="git revision to compare with (checked out in a temp worktree)")
    ap.add_argument("--limit", type=int, default=20, help="at most this many files (largest first)")
    ap.add_argument("--first-effort", type=int, default=7,
                    help="this checkout's first-pass effort (the default mount uses 1; then the polish pass "
                         "re-codes at 7, timed separately); the other revision always codes at 7 in one pass")
    args = ap.parse_args()
    src = args.src.resolve()
    files = [src] if src.is_file() else [p for p in src.rglob("*.png") if "fmt-" not in str(p)]
    files = sorted(files, key=lambda p: -p.stat().st_size)[: args.limit]
    with tempfile.TemporaryDirectory() as td:
        old = Path(td) / "old"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old), args.against],
                       check=True, capture_output=True)
        try:
            rows = []
            for f in files:
                new_r = run(REPO, [str(f)], args.first_effort)[0]
                old_r = run(old, [str(f)])[0]
                rows.append((f, old_r, new_r))
                print(f"  {f.name}: {old_r['cpu']:.2f} -> {new_r['cpu']:.2f} CPU s", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)], check=False)
    print(f"{'file':40s} {'MP':>6s} {'old cpu':>8s} {'new cpu':>8s} {'old wall':>8s} {'new wall':>8s} "
          f"{'old bytes':>10s} {'new bytes':>10s}")
    tot = {"mp": 0.0, "oc": 0.0, "nc": 0.0, "ow": 0.0, "nw": 0.0, "ob": 0, "nb": 0, "pc": 0.0}
    for f, o, n in rows:
        print(f"{f.name[:40]:40s} {n['mp']:6.2f} {o['cpu']:8.2f} {n['cpu']:8.2f} {o['wall']:8.2f} {n['wall']:8.2f} "
              f"{o['bytes']:10d} {n['bytes']:10d}")
        for k, v in (("mp", n["mp"]), ("oc", o["cpu"]), ("nc", n["cpu"]), ("ow", o["wall"]), ("nw", n["wall"]),
                     ("ob", o["bytes"]), ("nb", n["bytes"]), ("pc", n["polish_cpu"])):
            tot[k] += v
    print(f"total: {tot['mp']:.1f} MP; old {tot['mp'] / tot['oc']:.3f} MP/CPU-s ({tot['oc']:.1f} CPU s, "
          f"{tot['ow']:.1f} s wall); new {tot['mp'] / tot['nc']:.3f} MP/CPU-s ({tot['nc']:.1f} CPU s, "
          f"{tot['nw']:.1f} s wall); speed-up {tot['oc'] / tot['nc']:.2f}x CPU; bytes new/old "
          f"{tot['nb'] / tot['ob']:.4f}")
    if args.first_effort < 7:
        print(f"polish pass (background, effort 7): {tot['pc']:.1f} CPU s; first pass + polish "
              f"{tot['mp'] / (tot['nc'] + tot['pc']):.3f} MP/CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
