"""Rebuild the null photo set: real photographs, none related to the dev set, grouped so that related shots hide together.

The similarity decision ("similar images exist") is calibrated on queries whose related images are all
hidden; this set supplies such queries from real photos (scripts/bench_similarity.py --null-photos DIR).
Nothing here is committed: the photos go to OUT (e.g. /tmp/h11-photos), never into the repository.

Every source is a public GitHub repository at a pinned commit. A repository is read from
--mirrors DIR/<owner>+<name>/repo (a bare git directory) when there is one, otherwise it is cloned
bare with --filter=blob:none into --cache (blobs are fetched on demand, only for the files kept).

OUT/groups.tsv lists file, group, source, origin (repo@commit:path), width, height and the first
16 hex digits of the sha256 of the decoded pixels. Images of one group are related (same scene, a
sequence, crops of one photo) and must be hidden together; every other pair is a null pair.

Kept: decodable images whose shorter side is at least --min-side px (default 200), converted to
8-bit RGB or grey PNG; exact pixel duplicates are dropped (the first one kept).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Source:
    name: str  # directory under OUT and the group prefix
    repo: str  # owner/name on GitHub
    commit: str
    include: str  # regex on the path in the repository
    group: str  # "file": each image its own group; "all": one group; otherwise a regex whose group 1 names it
    note: str
    exclude: str = r"^$"


# Dev-set overlap (../shared/data/devset/groups.tsv origins) is excluded here: vlfeat river/roofs, the
# scikit-image motorcycle pair and the UKBench objects 00120-00123 and 09380-09383 are dev-set images; the
# BSD100/CBSD68/BSD68 sets of the SR and denoising repos are BSDS500 images again, and are not used.
SOURCES = [
    Source("bsds500", "BIDS/BSDS500", "a04b7c6c3a9f0ace74bf205c72a43d32e1c72722",
           r"^BSDS500/data/images/(train|val|test)/\d+\.jpg$", "file",
           "Berkeley Segmentation Dataset 500 (481x321 natural photos, Corel), research use"),
    Source("urban100", "jbhuang0604/SelfExSR", "8f6dd8c1d20cb7e8792a7177b4f6fd677633f598",
           r"^data/Urban100/image_SRF_2/img_\d+_SRF_2_HR\.png$", "file",
           "Urban100 HR images (Flickr, buildings and streets), via SelfExSR"),
    Source("sunhays80", "jbhuang0604/SelfExSR", "8f6dd8c1d20cb7e8792a7177b4f6fd677633f598",
           r"^data/Sun-Hays80/image_SRF_8/img_\d+_SRF_8_HR\.png$", "file",
           "Sun-Hays 80 HR images (web photos of scenes), via SelfExSR"),
    Source("kodak24", "cszn/FFDNet", "e787f46df2f374ff3591186706229cb9a0591fea",
           r"^testsets/Kodak24/kodim\d+\.png$", "file", "Kodak PhotoCD test images (768x512), via FFDNet"),
    # McMaster: 18 crops of 8 high-resolution photos; which crop comes from which photo is not recorded
    # in the repository, so all 18 hide together.
    Source("mcmaster", "cszn/FFDNet", "e787f46df2f374ff3591186706229cb9a0591fea",
           r"^testsets/McMaster/\d+\.tif$", "all", "McMaster colour demosaicking set (500x500 crops), via FFDNet"),
    Source("phototourism", "magicleap/SuperGluePretrainedNetwork", "ddcf11f42e7e0732a0c4607648f9448ea8d73590",
           r"^assets/phototourism_sample_images/.*\.jpg$", r"/([a-z_]+?)_\d+_\d+\.jpg$",
           "Phototourism landmark photos (YFCC), grouped by landmark"),
    Source("scannet", "magicleap/SuperGluePretrainedNetwork", "ddcf11f42e7e0732a0c4607648f9448ea8d73590",
           r"^assets/scannet_sample_images/.*\.jpg$", r"/(scene\d+_\d+)_frame", "ScanNet indoor frames, grouped by scene"),
    Source("freiburg", "magicleap/SuperGluePretrainedNetwork", "ddcf11f42e7e0732a0c4607648f9448ea8d73590",
           r"^assets/freiburg_sequence/.*\.png$", "all", "TUM RGB-D freiburg sequence (one group)"),
    Source("skimage", "scikit-image/scikit-image", "cd0a3d22b9f359f05618d75d5c7a29b91b4951ca",
           r"^src/_skimage2/data/(astronaut|camera|chelsea|coffee|coins|rocket|hubble_deep_field|moon|ihc|retina|"
           r"grass|gravel|brick)\.(png|jpg)$", "file", "scikit-image bundled photos (BSD)"),
    Source("darknet", "pjreddie/darknet", "f6afaabcdf85f77e7aff2ec55c020c0e297c77f9",
           r"^data/(dog|eagle|giraffe|horses|person|kite)\.jpg$", "file", "darknet sample photos"),
    # UKBench: four consecutive numbers are four shots of one object (ukbench00120-00123 ...).
    Source("ukbench", "idealo/imagededup", "57a7e855eb00cbe824b63c265bc2ecc4dbee89dd",
           r"^tests/data/base_images/ukbench\d+\.jpg$", "ukbench",
           "UKBench photos via imagededup, grouped by object (number // 4)",
           exclude=r"ukbench0(012[0-3]|938[0-3])\.jpg$"),
]


def _git(gitdir: Path, *args: str, binary: bool = False):
    out = subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True, capture_output=True)
    return out.stdout if binary else out.stdout.decode()


def _repo_dir(repo: str, commit: str, mirrors: Path | None, cache: Path) -> tuple[Path, str]:
    key = repo.replace("/", "+")
    if mirrors is not None and (mirrors / key / "repo").is_dir():
        gitdir = mirrors / key / "repo"
    else:
        gitdir = cache / f"{key}.git"
        if not gitdir.is_dir():
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "clone", "--bare", "--filter=blob:none", f"https://github.com/{repo}",
                            str(gitdir)], check=True)
    try:
        _git(gitdir, "cat-file", "-e", f"{commit}^{{commit}}")
        return gitdir, commit
    except subprocess.CalledProcessError:
        head = _git(gitdir, "rev-parse", "HEAD").strip()
        print(f"warning: {repo}: pinned commit {commit[:12]} not found, using HEAD {head[:12]}", file=sys.stderr)
        return gitdir, head


def _group(src: Source, path: str) -> str:
    if src.group == "file":
        return f"{src.name}/{Path(path).stem}"
    if src.group == "all":
        return src.name
    if src.group == "ukbench":
        number = re.search(r"ukbench(\d+)", path)
        return f"{src.name}/{int(number.group(1)) // 4 if number else path}"
    m = re.search(src.group, path)
    if m is None:
        raise ValueError(f"{src.name}: {path} does not match its group rule")
    return f"{src.name}/{m.group(1)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="output directory (not inside the repository)")
    ap.add_argument("--mirrors", type=Path, help="directory of bare mirrors <owner>+<name>/repo to read first")
    ap.add_argument("--cache", type=Path, help="where to clone repositories not mirrored (default OUT/.git-cache)")
    ap.add_argument("--min-side", type=int, default=200, help="drop images whose shorter side is smaller")
    ap.add_argument("--sources", help="comma-separated source names to fetch (default: all)")
    args = ap.parse_args()
    import numpy as np
    from PIL import Image

    root = Path(__file__).resolve().parents[1]
    out = args.out.resolve()
    if out == root or root in out.parents:
        ap.error("--out must be outside the repository: the photos are never committed")
    wanted = set(args.sources.split(",")) if args.sources else None
    cache = args.cache or out / ".git-cache"
    rows, seen = [], {}
    dropped = {"small": 0, "undecodable": 0, "duplicate": 0}
    for src in SOURCES:
        if wanted is not None and src.name not in wanted:
            continue
        gitdir, commit = _repo_dir(src.repo, src.commit, args.mirrors, cache)
        paths = [p for p in _git(gitdir, "ls-tree", "-r", "--name-only", commit).splitlines()
                 if re.search(src.include, p) and not re.search(src.exclude, p)]
        kept = 0
        for path in sorted(paths):
            data = _git(gitdir, "show", f"{commit}:{path}", binary=True)
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    im = im.convert("L" if im.mode in ("1", "L", "I;16", "I") else "RGB")
            except Exception:
                dropped["undecodable"] += 1
                continue
            if min(im.size) < args.min_side:
                dropped["small"] += 1
                continue
            px = np.asarray(im)
            digest = hashlib.sha256(px.tobytes() + str(px.shape).encode()).hexdigest()[:16]
            if digest in seen:
                dropped["duplicate"] += 1
                continue
            seen[digest] = path
            rel = f"{src.name}/{Path(path).stem}.png"
            (out / src.name).mkdir(parents=True, exist_ok=True)
            im.save(out / rel, optimize=False, compress_level=3)
            rows.append({"file": rel, "group": _group(src, path), "source": src.name,
                         "origin": f"{src.repo}@{commit[:12]}:{path}", "width": im.size[0], "height": im.size[1],
                         "pixels_sha256_16": digest})
            kept += 1
        print(f"{src.name:14s} {kept:4d} images  ({src.note})")
    with open(out / "groups.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["file"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    n_groups = len({r["group"] for r in rows})
    print(f"total {len(rows)} images in {n_groups} groups -> {out}/groups.tsv; dropped {dropped}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
