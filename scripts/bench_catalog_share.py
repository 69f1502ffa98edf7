"""Per photo: catalog bytes of its similarity records (S + T, keys included) with 500 vs LOCAL_KEEP keypoints,
against the bytes of its intra-coded object (codec.encode at the default effort + the 128-byte envelope).

    python scripts/bench_catalog_share.py [DEVSET]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_similarity as B  # noqa: E402

import codec  # noqa: E402
from codec.similarity import extract  # noqa: E402
from simfs.similarity import index as I  # noqa: E402
from simfs.store.envelope import HEADER_SIZE  # noqa: E402

FILES = ["scene-weir/weir_1.png", "scene-weir/weir_2.png", "scene-weir/weir_3.png",
         "edit-sacre-coeur/02928139_3448003521.png", "scene-vlfeat/river1.png"]


def main() -> int:
    devset = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".." / "shared" / "data" / "devset"
    print("| file | MP | PNG KB | intra object KB | S+T before (B) | % | S+T after (B) | % |")
    print("|---|---|---|---|---|---|---|---|")
    for f in FILES:
        data = (devset / f).read_bytes()
        px = B._load(devset / f)
        d = extract(px)
        s = 1 + 32 + len(I.encode_record(d))
        before = s + 1 + 32 + I._LOC.size + len(d.local)  # what older simfs wrote: all keypoints
        after = s + 1 + 32 + len(I.encode_local(d))
        stored = HEADER_SIZE + len(codec.encode(data).blob)
        mp = px.shape[0] * px.shape[1] / 1e6
        print(f"| {f} | {mp:.2f} | {len(data) / 1e3:.0f} | {stored / 1e3:.0f} | {before} | {100 * before / stored:.2f}% "
              f"| {after} | {100 * after / stored:.2f}% |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
