"""Train the global-code parameters (local PCA, VLAD centroids, PCA-256, ITQ) -> codec/similarity/global_code_v1.npz."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.similarity import descriptors, globalcode, synthetic  # noqa: E402


def _load(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--synthetic", type=int, default=1500, help="procedural training images (default 1500)")
    ap.add_argument("--images", type=Path, action="append", default=[],
                    help="extra directory of training photos (never the evaluation set)")
    ap.add_argument("--out", type=Path, default=ROOT / "codec/similarity" / globalcode.PARAMS_FILE)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    descs = []

    def add(img: np.ndarray) -> None:
        _, d = descriptors.local_features(descriptors.grey_copy(img))
        if d is not None and len(d) >= descriptors.LOW_TEXTURE_KEYPOINTS:
            descs.append(d)

    for _ in range(args.synthetic):
        h = int(rng.integers(240, 640))
        w = int(rng.integers(240, 640))
        img = synthetic.textured_image(rng, h, w)
        if rng.random() < 0.3:  # derived copies too, so rotated/flipped statistics are represented
            img = synthetic.edit(img, rng, str(rng.choice(synthetic.EDITS)))
        add(img)
    for d in args.images:
        for p in sorted(d.rglob("*")):
            if p.suffix.lower() in {".png", ".jpg", ".jpeg"} and (img := _load(p)) is not None:
                add(img)
    print(f"{len(descs)} images with features in {time.perf_counter() - t0:.1f}s", flush=True)
    p = globalcode.train(descs, seed=args.seed)
    np.savez_compressed(args.out, **{k: v.astype(np.float16) for k, v in p.items()})
    print(f"trained in {time.perf_counter() - t0:.1f}s -> {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
