#!/usr/bin/env python3
"""Benchmark the simfs codec: intra vs anchors (--images), inter vs intra (--pairs), big-image decode.

Examples (from the repo root):
  PYTHONPATH=. python scripts/bench_codec.py --images ../shared/data/devset --exclude fmt-
  PYTHONPATH=. python scripts/bench_codec.py --pairs scripts/devset_pairs.tsv
  python scripts/make_edit_set.py /tmp/editset && python scripts/bench_codec.py --pairs /tmp/editset/pairs.tsv
  PYTHONPATH=. python scripts/bench_codec.py --writers          # Pillow/OpenCV rebuild exactness
  PYTHONPATH=. python scripts/bench_codec.py --big 12           # 12 MP encode/decode timing
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import codec  # noqa: E402
from codec import intra  # noqa: E402


def _anchors(data: bytes, pixels: np.ndarray) -> dict[str, int]:
    from PIL import Image

    out = {"jxl_e7": len(intra.encode_pixels(pixels, 7))}
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
        mode = "RGBA" if ("A" in im.mode or "transparency" in im.info) else ("L" if im.mode in ("L", "1", "I;16") and pixels.ndim == 2 else "RGB")
        conv = im.convert(mode) if mode != "L" or im.mode == "L" else im.convert("L")
        b = io.BytesIO()
        conv.save(b, "WEBP", lossless=True, quality=100, method=4)
        out["webp_ll"] = len(b.getvalue())
        b = io.BytesIO()
        im.save(b, "PNG", optimize=True)
        out["png_opt"] = len(b.getvalue())
    except Exception as e:  # anchors are informative only
        out["anchor_error"] = str(e)  # type: ignore[assignment]
    return out


def bench_images(root: Path, exclude: list[str], effort: int, anchors: bool) -> dict:
    rows = []
    files = sorted(p for p in root.rglob("*.png") if not any(x in str(p.relative_to(root)) for x in exclude))
    for f in files:
        data = f.read_bytes()
        t0 = time.perf_counter()
        r = codec.encode(data, effort=effort, allow_larger=True)
        te = time.perf_counter() - t0
        row = {"file": str(f.relative_to(root)), "orig": len(data), "mode": r.mode, "reason": r.reason,
               "chosen": r.chosen, "plain_intra": r.sizes.get("intra")}
        if r.blob is not None:
            t1 = time.perf_counter()
            back = codec.decode(r.blob)
            td = time.perf_counter() - t1
            a = codec.analyze(data)
            mp = a.pixels.shape[0] * a.pixels.shape[1] / 1e6
            row.update(intra=len(r.blob), exact=back == data, enc_mps=mp / te, dec_mps=mp / td, mp=mp)
            if anchors:
                row.update(_anchors(data, a.pixels))
        else:
            row.update(intra=len(data), exact=False)
        rows.append(row)
        print(f"  {row['file']}: {row['mode']} {row['orig']} -> {row['intra']}", file=sys.stderr, flush=True)
    coded = [r for r in rows if r["mode"] != "verbatim"]
    summ = {
        "files": len(rows), "coded": len(coded), "verbatim": len(rows) - len(coded),
        "exact_of_coded": sum(r["exact"] for r in coded),
        "total_orig": sum(r["orig"] for r in rows), "total_intra_or_verbatim": sum(r["intra"] for r in rows),
        "coded_orig": sum(r["orig"] for r in coded), "coded_intra": sum(r["intra"] for r in coded),
        # what a store keeps: the blob, or the file itself when the blob is not smaller
        "total_stored": sum(min(r["intra"], r["orig"]) for r in rows),
        "smaller_than_file": sum(r["intra"] < r["orig"] for r in coded),
    }
    if coded:
        summ["intra_ratio_total"] = summ["coded_intra"] / summ["coded_orig"]
        summ["intra_ratio_median"] = statistics.median(r["intra"] / r["orig"] for r in coded)
        summ["enc_mps_median"] = statistics.median(r["enc_mps"] for r in coded)
        summ["dec_mps_median"] = statistics.median(r["dec_mps"] for r in coded)
        for k in ("jxl_e7", "webp_ll", "png_opt"):
            vals = [r for r in coded if isinstance(r.get(k), int)]
            if vals:
                summ[f"{k}_ratio_total"] = sum(r[k] for r in vals) / sum(r["orig"] for r in vals)
        # PNGs recognised as decoded JPEGs and coded as their coefficients (codec/jpeg_origin.py)
        jp = [r for r in coded if r.get("chosen") == "intra:jpeg"]
        summ["jpeg_coefficient_files"] = len(jp)
        if jp:
            summ["jpeg_coefficient_bytes"] = sum(r["intra"] for r in jp)
            summ["jpeg_coefficient_vs_plain_intra"] = summ["jpeg_coefficient_bytes"] / sum(r["plain_intra"] for r in jp)
            if all(isinstance(r.get("jxl_e7"), int) for r in jp):
                summ["jpeg_coefficient_vs_jxl_e7"] = summ["jpeg_coefficient_bytes"] / sum(r["jxl_e7"] for r in jp)
        summ["stored_vs_jxl_e7_total"] = (sum(r["intra"] for r in coded if isinstance(r.get("jxl_e7"), int))
                                          / max(1, sum(r["jxl_e7"] for r in coded if isinstance(r.get("jxl_e7"), int))))
    return {"rows": rows, "summary": summ}


def bench_pairs(tsv: Path, effort: int) -> dict:
    """Each target coded against its reference. Ratios are stored bytes / JPEG XL (effort 7, the
    target's pixels alone); decode times are pixel decodes (inter: the whole chain step; intra:
    the JPEG XL alone), measured side by side."""
    base = tsv.parent
    rows = []
    refs: dict[str, codec.Reference] = {}
    with open(tsv) as f:
        for rec in csv.DictReader(f, delimiter="\t"):
            tp, rp = base / rec["target"], base / rec["reference"]
            group = rec.get("group") or tp.parent.name
            if str(rp) not in refs:
                a = codec.analyze(rp.read_bytes())
                if not a.ok:
                    print(f"  skip reference {rp}: {a.reason}", file=sys.stderr)
                    continue
                refs[str(rp)] = codec.Reference(a.pixels, rec["reference"].encode()[-255:])
            ref = refs[str(rp)]
            data = tp.read_bytes()
            c0, t0 = time.process_time(), time.perf_counter()
            r = codec.encode(data, ref, effort=effort, allow_larger=True)
            te, ce = time.perf_counter() - t0, time.process_time() - c0
            row = {"group": group, "edit": rec.get("edit", ""), "target": rec["target"], "reference": rec["reference"],
                   "orig": len(data), "mode": r.mode, "chosen": r.chosen, "encode_s": te, "encode_cpu_s": ce,
                   "timings": r.timings, "reason": r.reason}
            if r.blob is not None:
                a = codec.analyze(data)
                jxl = intra.encode_pixels(a.pixels, 7)
                t1 = time.perf_counter()
                px = codec.decode_pixels(r.blob, ref if r.mode == "inter" else None)
                row["decode_s"] = time.perf_counter() - t1
                t2 = time.perf_counter()
                intra.decode_pixels(jxl, a.pixels.shape, str(a.pixels.dtype))
                row["decode_intra_s"] = time.perf_counter() - t2
                ok = np.array_equal(px, a.pixels) and codec.decode(r.blob, ref if r.mode == "inter" else None) == data
                inter_sizes = [v for k, v in r.sizes.items() if k.startswith("inter")]
                row.update(intra=r.sizes["intra"], jxl_e7=len(jxl), inter=min(inter_sizes) if inter_sizes else None,
                           stored=len(r.blob), exact=ok, ratio=len(r.blob) / r.sizes["intra"],
                           ratio_jxl=len(r.blob) / len(jxl))
            rows.append(row)
            print(f"  {group} {rec['target']}: {r.mode} {r.chosen} {row.get('stored')} / jxl {row.get('jxl_e7')}",
                  file=sys.stderr, flush=True)

    def summarise(key) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for r in rows:
            if "intra" not in r:
                continue
            g = out.setdefault(key(r), {"pairs": 0, "jxl_e7": 0, "stored": 0, "inter_chosen": 0, "exact": 0,
                                        "max_ratio": 0.0, "decode_s": 0.0, "decode_intra_s": 0.0,
                                        "encode_cpu_s": 0.0})
            g["pairs"] += 1
            for k in ("jxl_e7", "stored", "decode_s", "decode_intra_s", "encode_cpu_s"):
                g[k] += r[k]
            g["inter_chosen"] += r["mode"] == "inter"
            g["exact"] += r["exact"]
            g["max_ratio"] = max(g["max_ratio"], r["ratio_jxl"])
        for g in out.values():
            g["ratio"] = g["stored"] / g["jxl_e7"]
            g["decode_vs_intra"] = g["decode_s"] / max(g["decode_intra_s"], 1e-9)
        return out

    return {"rows": rows, "groups": summarise(lambda r: r["group"]),
            "edits": summarise(lambda r: f"{r['group']}/{r['edit']}") if any(r["edit"] for r in rows) else {}}


def bench_writers() -> dict:
    """Rebuild exactness of PNGs written by Pillow (levels 0-9, optimize) and OpenCV (levels 0-9)."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:300, 0:400]
    base = np.stack([(x + y) % 256, (2 * y) % 256, (x * y // 50) % 256], 2) + rng.integers(-8, 9, (300, 400, 3))
    img = np.clip(base, 0, 255).astype(np.uint8)
    files = []
    for mode in ("RGB", "RGBA", "L", "LA", "P"):
        im = Image.fromarray(img).convert(mode)
        for kw in [dict(compress_level=lv) for lv in range(10)] + [dict(optimize=True)]:
            b = io.BytesIO()
            im.save(b, "PNG", **kw)
            files.append((f"pillow {mode} {kw}", b.getvalue()))
    for arr, name in ((img, "BGR"), (img[:, :, 0], "GRAY"), (img.astype(np.uint16) * 257, "BGR16")):
        for lv in range(10):
            files.append((f"opencv {name} level {lv}", cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, lv])[1].tobytes()))
        for strat in range(5):
            files.append((f"opencv {name} strategy {strat}",
                          cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_STRATEGY, strat])[1].tobytes()))
    rows = []
    for name, data in files:
        t = time.perf_counter()
        a = codec.analyze(data)
        ok = a.ok and codec.recipe.rebuild(a.pixels, a.recipe) == data
        rows.append({"writer": name, "exact": ok, "reason": a.reason, "search_s": time.perf_counter() - t,
                     "params": a.recipe.params if a.ok else None})
    return {"rows": rows, "summary": {"files": len(rows), "exact": sum(r["exact"] for r in rows),
                                      "exact_pct": 100 * sum(r["exact"] for r in rows) / len(rows)}}


def bench_big(mp: float, effort: int) -> dict:
    """A synthetic photo-like image of ``mp`` megapixels saved by Pillow (level 6): encode and decode."""
    import cv2
    from PIL import Image

    w = int((mp * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (h // 32, w // 32, 3), dtype=np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    img += rng.integers(-4, 5, img.shape, dtype=np.int16)
    img = np.clip(img, 0, 255).astype(np.uint8)
    b = io.BytesIO()
    Image.fromarray(img).save(b, "PNG")
    data = b.getvalue()
    t = time.perf_counter()
    r = codec.encode(data, effort=effort, allow_larger=True)
    te = time.perf_counter() - t
    out = {"width": w, "height": h, "png_bytes": len(data), "mode": r.mode, "blob": len(r.blob or b""),
           "encode_s": te, "encode_timings": r.timings}
    dec = []
    for _ in range(2):
        t = time.perf_counter()
        back = codec.decode(r.blob)
        dec.append(time.perf_counter() - t)
        assert back == data
    b = codec.bitstream.unpack(r.blob)
    t = time.perf_counter()
    px = intra.decode_pixels(b.payload, tuple(b.meta["pixels"]["shape"]), "uint8")
    tj = time.perf_counter() - t
    t = time.perf_counter()
    codec.recipe.rebuild(px, codec.api._recipe_from(b.meta, b.sections))
    tr = time.perf_counter() - t
    out.update(decode_s=min(dec), decode_runs=dec, jxl_decode_s=tj, png_rebuild_s=tr)
    return out


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v)

    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols] if rows else [len(c) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for r in rows:
        lines.append("  ".join(fmt(r.get(c, "")).ljust(w) for c, w in zip(cols, widths, strict=True)))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path)
    ap.add_argument("--exclude", action="append", default=[], help="skip paths containing this (repeatable)")
    ap.add_argument("--no-anchors", action="store_true")
    ap.add_argument("--pairs", type=Path)
    ap.add_argument("--writers", action="store_true")
    ap.add_argument("--big", type=float, metavar="MP")
    ap.add_argument("--effort", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    codec.self_test()
    result: dict = {"deflater": codec.deflater_identity(), "effort": args.effort}
    if args.images:
        result["images"] = bench_images(args.images, args.exclude, args.effort, not args.no_anchors)
    if args.pairs:
        result["pairs"] = bench_pairs(args.pairs, args.effort)
    if args.writers:
        result["writers"] = bench_writers()
    if args.big:
        result["big"] = bench_big(args.big, args.effort)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    if "images" in result:
        print(_table(result["images"]["rows"], ["file", "orig", "mode", "intra", "jxl_e7", "webp_ll", "png_opt",
                                                "exact", "enc_mps", "dec_mps", "reason"]))
        print(json.dumps(result["images"]["summary"], indent=2))
    if "pairs" in result:
        print(_table(result["pairs"]["rows"], ["group", "target", "jxl_e7", "inter", "mode", "chosen", "ratio_jxl",
                                               "exact", "encode_cpu_s", "decode_s", "decode_intra_s"]))
        cols = ["group", "pairs", "jxl_e7", "stored", "ratio", "max_ratio", "inter_chosen", "exact",
                "encode_cpu_s", "decode_vs_intra"]
        if result["pairs"]["edits"]:
            print(_table([{"group": k, **v} for k, v in sorted(result["pairs"]["edits"].items())], cols))
        print(_table([{"group": k, **v} for k, v in result["pairs"]["groups"].items()], cols))
    if "writers" in result:
        bad = [r for r in result["writers"]["rows"] if not r["exact"]]
        print(_table(bad, ["writer", "reason"]) if bad else "all writer outputs rebuilt exactly")
        print(json.dumps(result["writers"]["summary"]))
    if "big" in result:
        print(json.dumps(result["big"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
