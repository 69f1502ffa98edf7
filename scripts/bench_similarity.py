"""Similarity benchmark: recall before/after re-ranking, decision rates, latencies; or a synthetic scale run."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread: the global code's small matrix products otherwise spin extra threads that cost
# more CPU than they save (measured 5x); the filesystem daemon should set the same.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.similarity import Descriptors, extract, synthetic  # noqa: E402
from codec.similarity.verify import Thresholds, calibrate, recall_at, relation_hint, thresholds_json  # noqa: E402
from simfs.catalog.db import Catalog  # noqa: E402
from simfs.similarity import index as index_mod  # noqa: E402
from simfs.similarity.index import SimilarityIndex  # noqa: E402


def _oid(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def _pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs) * 1000, q)) if len(xs) else float("nan")


def _load(path: Path) -> np.ndarray | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I"):
                return np.asarray(im).astype(np.uint16)
            return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except Exception:
        return None


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _trim() -> None:
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


NULL_PREFIX = "null:"  # group names of the real null photos (never a dev-set group)


def _holdout(group: str, fraction: float) -> bool:
    """Stable split of null-photo groups: the same group is held out on every run and machine."""
    h = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") / 2**64
    return h < fraction


def _null_photos(args) -> tuple[dict, dict]:
    """--null-photos DIR: (calibration, held-out) photos, name -> (group, source, pixels).

    Groups and sources come from DIR/groups.tsv (scripts/fetch_null_photos.py writes it); an image it does not
    list is its own group, its source the first directory under DIR. A group is held out whole: with
    --holdout-sources when its source is listed, otherwise when the hash of its name falls under
    --holdout-fraction.
    """
    cal: dict[str, tuple[str, str, np.ndarray]] = {}
    held: dict[str, tuple[str, str, np.ndarray]] = {}
    if not args.null_photos:
        return cal, held
    listed: dict[str, tuple[str, str]] = {}
    tsv = args.null_photos / "groups.tsv"
    if tsv.is_file():
        with open(tsv, newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                listed[row["file"]] = (row["group"], row.get("source") or row["file"].split("/")[0])
    held_sources = set(args.holdout_sources.split(",")) if args.holdout_sources else None
    for p in sorted(args.null_photos.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}:
            continue
        rel = p.relative_to(args.null_photos).as_posix()
        if rel.startswith("."):
            continue
        group, source = listed.get(rel, (rel, rel.split("/")[0]))
        if (img := _load(p)) is None:
            continue
        out = held if (source in held_sources if held_sources is not None
                       else _holdout(group, args.holdout_fraction)) else cal
        out[f"{NULL_PREFIX}{rel}"] = (NULL_PREFIX + group, source, img)
    return cal, held


def _verified_inliers(res) -> list[int]:
    """Inliers of the candidates a query verified: the per-candidate null counts no unverified candidate.

    Candidates left unverified by the CPU budget have 0 inliers; counting them as null pairs would lower
    the measured per-candidate rate. The verified ones are the `verified` largest (0 for a failed fit).
    """
    return sorted((c.inliers for c in res), reverse=True)[:res.timings["verified"]]


def _count_sources(photos: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for _g, src, _img in photos.values():
        out[src] = out.get(src, 0) + 1
    return dict(sorted(out.items()))


class _NullRun:
    """Unrelated queries on real photos: how many said "similar images exist", and why."""

    def __init__(self) -> None:
        self.n = self.fp = self.fp_alt = 0
        self.by_relation: dict[str, int] = {}
        self.by_source: dict[str, list[int]] = {}  # source -> [queries, false positives]
        self.examples: list[str] = []
        self.max_inliers: list[int] = []
        self.verified: list[int] = []

    def add(self, q: str, res, name_of: dict, *, desc: dict | None = None, t_alt: Thresholds | None = None) -> None:
        self.n += 1
        src = q[len(NULL_PREFIX):].split("/")[0]
        s = self.by_source.setdefault(src, [0, 0])
        s[0] += 1
        self.max_inliers.append(max((c.inliers for c in res), default=0))
        self.verified.append(res.timings["verified"])
        if res.worth_trying_inter:
            self.fp += 1
            s[1] += 1
            c = next(c for c in res if c.relation)
            self.by_relation[c.relation] = self.by_relation.get(c.relation, 0) + 1
            self.examples.append(f"{q[len(NULL_PREFIX):]} -> {name_of[c.object_id].removeprefix(NULL_PREFIX)}: "
                                 f"{c.relation}, {c.inliers} inliers, copy {c.copy_distance} / global "
                                 f"{c.global_distance} bits")
        if desc is not None and t_alt is not None:
            dq = desc[q]
            self.fp_alt += any(relation_hint(dq, desc[name_of[c.object_id]], c.copy_distance, c.global_distance,
                                             c.match, t_alt) for c in res)

    def summary(self) -> dict:
        mx = np.array(self.max_inliers)
        return {"queries": self.n, "false_positives": self.fp,
                "false_positive_rate": round(self.fp / self.n, 4) if self.n else None,
                "false_positives_by_relation": self.by_relation,
                "candidates_verified_mean": round(float(np.mean(self.verified)), 1) if self.n else None,
                "by_source_queries_fp": dict(sorted(self.by_source.items())),
                "queries_with_a_candidate_at_inliers": {str(t): int(np.count_nonzero(mx >= t))
                                                         for t in (10, 15, 20, 25, 30, 40)} if self.n else {},
                "false_positive_examples": self.examples[:40]}


def bench_images(args) -> dict:
    groups: dict[str, str] = {}
    with open(args.groups, newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            groups[row["file"]] = row["group"]
    edited_prefixes = tuple(p for p in args.edited_prefixes.split(",") if p)
    items: list[tuple[str, str | None, np.ndarray]] = []  # name, group (None = distractor), pixels
    for p in sorted(args.images.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}:
            continue
        rel = p.relative_to(args.images).as_posix()
        g = groups.get(rel)
        if g is not None and g.startswith("fmt-"):
            continue  # format-conformance files, not a similarity group
        if (img := _load(p)) is not None:
            items.append((rel, g, img))
    null_cal, null_held = _null_photos(args)  # real photos: name -> (group, source, pixels)
    for name, (g, _, img) in null_cal.items():
        items.append((name, g, img))
    rng = np.random.default_rng(args.seed)
    for i in range(args.distractors):  # procedural distractors: never related to anything
        maker = synthetic.low_texture_image if i % 10 == 0 else synthetic.textured_image
        items.append((f"synthetic/{i}", None, maker(rng, int(rng.integers(300, 640)), int(rng.integers(300, 640)))))

    desc: dict[str, Descriptors] = {}
    t_extract = []
    for name, _, img in items:
        t = time.process_time()
        desc[name] = extract(img)
        t_extract.append(time.process_time() - t)
    group_of = {name: g for name, g, _ in items}
    members: dict[str, list[str]] = {}
    for name, g in group_of.items():
        if g is not None:
            members.setdefault(g, []).append(name)
    null_members = {g: m for g, m in members.items() if g.startswith(NULL_PREFIX)}
    members = {g: m for g, m in members.items() if len(m) >= 2 and not g.startswith(NULL_PREFIX)}

    tmp = Path(tempfile.mkdtemp(prefix="simbench-"))
    cat = Catalog(tmp / "db")
    try:
        pixels_of = {_oid(name): img for name, _, img in items}
        # The mount re-derives full features from the stored object's decoded pixels; here the pixels are
        # in memory, so the decode's cost is not in these latencies (it is measured on its own, README).
        t_arg = (Thresholds(**{k: v for k, v in json.loads(args.thresholds.read_text()).items()
                               if k in Thresholds.__dataclass_fields__}) if args.thresholds else None)
        idx = SimilarityIndex(cat, thresholds_=t_arg, pixel_source=None if args.no_rederive else pixels_of.get)
        if args.keep is not None:
            index_mod.LOCAL_KEEP = args.keep
        t_bytes = []
        for name, d in desc.items():
            idx.put(_oid(name), d)
            t_bytes.append(len(cat.get(index_mod.local_key(_oid(name))) or b""))
        name_of = {_oid(n): n for n in desc}
        n_rederived = []
        missed: list[str] = []  # queries with no same-group image in the top 10 after re-ranking
        thr = idx.t
        per: dict[str, dict[str, list]] = {}
        t_query, t_global, t_verify, n_verified, n_over = [], [], [], [], []
        sim_inl, null_inl = [], []
        hints: dict[str, dict[str, int]] = {}  # relation hint of the best same-group candidate
        tp = fp = n_pos = n_neg = 0
        null_query_max: list[int] = []  # per unrelated query: most inliers of any candidate (query-level null)
        for g, ms in sorted(members.items()):
            cls = "edited" if g.startswith(edited_prefixes) else "scene"
            for q in ms:
                d = desc[q]
                own = _oid(q)
                # before re-ranking: global code alone (+ copy hash shortlist), ordered by global distance
                rows, gd, cd, _ = idx.shortlist(d, max(10, thr.k), exclude=[own])
                order = np.lexsort((cd, gd))
                pre = [name_of[idx._ids[r].tobytes()] for r in rows[order]]
                t0 = time.process_time()
                dq = extract(next(img for n, _, img in items if n == q))
                res = idx.query(dq, k=10, exclude=[own])
                t_query.append(time.process_time() - t0)
                t_global.append(res.timings["global"])
                t_verify.append(res.timings["verify"])
                n_verified.append(res.timings["verified"])
                n_over.append(res.timings["unverified_over_budget"] > 0)
                n_rederived.append(res.timings["rederived"])
                post = [name_of[c.object_id] for c in res]
                s = per.setdefault(cls, {"pre1": [], "pre10": [], "shortlist": [], "post1": [], "post10": []})
                s["pre1"].append(group_of.get(pre[0]) == g if pre else False)
                s["pre10"].append(any(group_of.get(x) == g for x in pre[:10]))
                s["shortlist"].append(any(group_of.get(x) == g for x in pre))
                s["post1"].append(group_of.get(post[0]) == g if post else False)
                s["post10"].append(any(group_of.get(x) == g for x in post[:10]))
                if not s["post10"][-1]:
                    missed.append(q)
                n_pos += 1
                tp += res.worth_trying_inter and any(c.relation and group_of.get(name_of[c.object_id]) == g
                                                     for c in res)
                for c in res:
                    if c.inliers and group_of.get(name_of[c.object_id]) == g:
                        sim_inl.append(c.inliers)
                best = next((c for c in res if group_of.get(name_of[c.object_id]) == g), None)
                h = hints.setdefault(cls, {})
                key = (best.relation or "unverified") if best else "not found"
                h[key] = h.get(key, 0) + 1
                # unrelated: the same query with its whole group hidden
                res2 = idx.query(d, k=thr.k, exclude=[_oid(x) for x in ms])
                n_neg += 1
                fp += res2.worth_trying_inter
                null_inl += _verified_inliers(res2)
                null_query_max.append(max((c.inliers for c in res2), default=0))
        for name, g in group_of.items():  # distractors queried against everything else
            if g is None and name.startswith("synthetic/"):
                res2 = idx.query(desc[name], k=thr.k, exclude=[_oid(name)])
                n_neg += 1
                fp += res2.worth_trying_inter
                null_inl += _verified_inliers(res2)
                null_query_max.append(max((c.inliers for c in res2), default=0))
        # calibration photos: each queried with its whole group hidden (never a held-out photo in the index yet)
        cal_photos = _NullRun()
        for _g, ms in sorted(null_members.items()):
            for q in ms:
                res2 = idx.query(desc[q], k=thr.k, exclude=[_oid(x) for x in ms])
                cal_photos.add(q, res2, name_of)
                null_inl += _verified_inliers(res2)
                null_query_max.append(max((c.inliers for c in res2), default=0))
        recall = {
            cls: {k: round(float(np.mean(v)), 3) for k, v in s.items()} | {"queries": len(s["pre1"])}
            for cls, s in per.items()
        }
        cal = calibrate(np.array(null_inl), np.array(sim_inl), k=thr.k, target=args.target_fp,
                        floor=args.min_inliers_floor, base=thr, query_max_inliers=np.array(null_query_max))
        # held-out photos: only now added to the index; queried with their group hidden, at the thresholds in
        # use and (re-deciding the same verified candidates) at the calibrated ones
        held = _NullRun()
        if null_held:
            for name, (_g, _src, img) in null_held.items():
                desc[name] = extract(img)
                group_of[name] = _g
                name_of[_oid(name)] = name
                pixels_of[_oid(name)] = img
                idx.put(_oid(name), desc[name])
            held_members: dict[str, list[str]] = {}
            for name, (g, _src, _img) in null_held.items():
                held_members.setdefault(g, []).append(name)
            for _g, ms in sorted(held_members.items()):
                for q in ms:
                    res2 = idx.query(desc[q], k=thr.k, exclude=[_oid(x) for x in ms])
                    held.add(q, res2, name_of, desc=desc, t_alt=cal)
        p_now = float(np.mean(np.array(null_inl) >= thr.min_inliers)) if null_inl else 0.0
        out = {
            "images": len(items), "groups": len(members), "distractors": sum(g is None for g in group_of.values()),
            "recall": recall,
            "hint_of_best_same_group_candidate": hints,
            "decision": {"true_positive_rate": round(tp / max(1, n_pos), 3),
                         "false_positive_rate": round(fp / max(1, n_neg), 4),
                         "positives": n_pos, "negatives": n_neg, "thresholds": thr.__dict__},
            "calibration": {"per_candidate_fp_at_current": p_now,
                            "query_fp_at_current": 1 - (1 - p_now) ** thr.k,
                            "similar_pairs_kept_at_current": recall_at(np.array(sim_inl), thr.min_inliers),
                            "suggested": cal.__dict__, "unrelated_pairs": len(null_inl),
                            "similar_pairs_verified": len(sim_inl),
                            "similar_pairs_kept": recall_at(np.array(sim_inl), cal.min_inliers)},
            "latency_ms": {"extract_p50": _pct(t_extract, 50), "extract_p99": _pct(t_extract, 99),
                           "query_total_cpu_p50": _pct(t_query, 50), "query_total_cpu_p99": _pct(t_query, 99),
                           "global_stage_p50": _pct(t_global, 50),
                           "verify_wall_p50": _pct(t_verify, 50), "verify_wall_p99": _pct(t_verify, 99),
                           "candidates_verified_mean": float(np.mean(n_verified)) if n_verified else 0.0,
                           "queries_over_verify_budget": int(np.sum(n_over))},
            "local_bytes_per_image": float(np.mean([len(d.local) for d in desc.values()])),
            "T_record_bytes_per_image": {"mean": float(np.mean(t_bytes)), "max": int(np.max(t_bytes))},
            "T_record_keypoints_kept": index_mod.LOCAL_KEEP,
            "rederived_per_grouped_query": {"mean": float(np.mean(n_rederived)) if n_rederived else 0.0,
                                            "max": int(np.max(n_rederived)) if n_rederived else 0},
            "rederived_total": idx.rederived,
            "missed_at_10": missed,
            "null_photos": {
                "calibration": {"images": len(null_cal), "groups": len(null_members),
                                "by_source": _count_sources(null_cal), **cal_photos.summary()},
                "held_out": {"images": len(null_held), "groups": len({v[0] for v in null_held.values()}),
                             "by_source": _count_sources(null_held), **held.summary(),
                             "false_positive_rate_at_suggested": (round(held.fp_alt / held.n, 4)
                                                                  if held.n else None)},
                "calibration_null_queries": len(null_query_max),
            },
            "low_texture_images": sum(d.low_texture for d in desc.values()),
        }
        if args.write_thresholds:
            args.write_thresholds.write_text(thresholds_json(cal))
        return out
    finally:
        cat.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_synthetic(args) -> dict:
    n = args.synthetic
    rng = np.random.default_rng(args.seed)
    n_q = 200
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    copies = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    # planted neighbours: the first n_q codes get a partner 60-100 bits away (real near-duplicate range)
    targets = rng.choice(np.arange(n_q, n), n_q, replace=False)
    queries = []
    for t in targets:
        q = np.unpackbits(codes[t]).copy()
        flip = rng.choice(256, int(rng.integers(60, 101)), replace=False)
        q[flip] ^= 1
        queries.append((len(flip), np.packbits(q).tobytes(), t))
    tmp = Path(tempfile.mkdtemp(prefix="simsynth-"))
    local = b"\x00" * 6
    try:
        cat = Catalog(tmp / "db")
        idx = SimilarityIndex(cat)
        t0 = time.perf_counter()
        batch_size = 1000
        for s in range(0, n, batch_size):
            batch = cat.new_batch()
            pend = []
            for i in range(s, min(n, s + batch_size)):
                d = Descriptors(bytes(16), int(copies[i]), codes[i].tobytes(), local, False, 1, 1)
                pend.append(idx.stage_put(batch, hashlib.sha256(i.to_bytes(8, "big")).digest(), d))
            cat.write(batch, sync=False)
            idx.applied(*pend)
        insert_s = time.perf_counter() - t0
        cat.close()
        disk = _du(tmp / "db")
        cat = Catalog(tmp / "db")
        idx = SimilarityIndex(cat)
        _trim()
        rss0 = _rss()
        t0 = time.perf_counter()
        idx.load()
        load_s = time.perf_counter() - t0
        _trim()  # give the load's transient buffers back, so RSS shows what the index keeps
        rss1 = _rss()
        lat, hit10, hit30 = [], 0, 0
        band = {"60-80": [0, 0], "81-100": [0, 0]}  # planted distance -> [found in top 30, planted]
        target_ids = {int(t): hashlib.sha256(int(t).to_bytes(8, "big")).digest() for _, _, t in queries}
        for dist, code, t in queries:
            # a real query also carries its mirror image's code: the stage scans for both
            d = Descriptors(bytes(16), int(rng.integers(0, 2**63)), code, local, False, 1, 1, rng.bytes(32))
            t1 = time.perf_counter()
            rows, gd, _, _ = idx.shortlist(d, 30)
            lat.append(time.perf_counter() - t1)
            found = [idx._ids[r].tobytes() for r in rows[np.argsort(gd, kind="stable")]]
            hit10 += target_ids[int(t)] in found[:10]
            hit30 += target_ids[int(t)] in found
            b = band["60-80" if dist <= 80 else "81-100"]
            b[0] += target_ids[int(t)] in found
            b[1] += 1
        cat.close()
        return {
            "n": n, "insert_per_s": round(n / insert_s), "load_s": round(load_s, 2),
            "global_stage_ms_p50": round(_pct(lat, 50), 2), "global_stage_ms_p99": round(_pct(lat, 99), 2),
            "planted_recall@10": hit10 / n_q, "planted_recall@30": hit30 / n_q,
            "planted_recall@30_by_distance": {k: round(v[0] / max(1, v[1]), 3) for k, v in band.items()},
            "index_ram_bytes_per_image": round(idx.memory_bytes() / n, 1),
            "process_rss_growth_per_image": round((rss1 - rss0) / n, 1),
            "disk_bytes_per_image_S_records_only": round(disk / n, 1),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=Path)
    ap.add_argument("--groups", type=Path)
    ap.add_argument("--distractors", type=int, default=0, help="add N procedural distractor images")
    ap.add_argument("--edited-prefixes", default="edit-,noise-",
                    help="groups whose names start with these are edited/derived copies; others different shots")
    ap.add_argument("--target-fp", type=float, default=0.01)
    ap.add_argument("--min-inliers-floor", type=int, default=20,
                    help="calibration never suggests fewer inliers (FINDINGS 6: real photos' false matches "
                         "rise below ~20; a small or synthetic null sample cannot show that)")
    ap.add_argument("--write-thresholds", type=Path, help="write the calibrated decision thresholds (JSON)")
    ap.add_argument("--thresholds", type=Path,
                    help="run with these decision thresholds (JSON, as --write-thresholds writes) instead of the "
                         "shipped codec/similarity/decision_v1.json")
    ap.add_argument("--null-photos", type=Path,
                    help="directory of real photos unrelated to the dev set (scripts/fetch_null_photos.py), with "
                         "groups.tsv (file, group, source): a group's images are hidden together. Groups not held "
                         "out are queried with their group hidden and join the calibration; held-out groups are "
                         "added to the index only after calibrating and give the held-out false-positive rate")
    ap.add_argument("--holdout-fraction", type=float, default=0.5,
                    help="share of the null-photo groups held out from calibration, chosen by a hash of the group "
                         "name (stable over runs; default 0.5)")
    ap.add_argument("--holdout-sources",
                    help="hold out these null-photo sources (comma-separated groups.tsv source names) whole, "
                         "instead of --holdout-fraction")
    ap.add_argument("--synthetic", type=int, help="N random codes with planted neighbours (scale run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cv-threads", type=int, default=1,
                    help="OpenCV worker threads (default 1: report single-thread CPU per query)")
    ap.add_argument("--keep", type=int, help="keypoints kept in T records (default: the index's LOCAL_KEEP)")
    ap.add_argument("--no-rederive", action="store_true",
                    help="verify on the T records only (no full features re-derived for near misses)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(args.cv_threads)
    if args.synthetic:
        out = bench_synthetic(args)
    elif args.images and args.groups:
        out = bench_images(args)
    else:
        ap.error("give --images DIR --groups TSV, or --synthetic N")
    out["threads"] = os.cpu_count()
    print(json.dumps(out, indent=None if args.json else 2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
