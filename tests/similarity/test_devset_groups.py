"""Each dev-set group of related images finds its members among the others plus procedural distractors."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from codec.similarity import extract, synthetic
from simfs.catalog.db import Catalog
from simfs.similarity.index import SimilarityIndex

DEVSET = Path(os.environ.get("SIMFS_DEVSET", Path(__file__).resolve().parents[2] / ".." / "shared/data/devset"))
pytestmark = pytest.mark.skipif(not (DEVSET / "groups.tsv").is_file(), reason=f"dev set not found at {DEVSET}")
EDITED = ("edit-", "noise-")  # derived copies; every other group is different shots of one scene


def _oid(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from PIL import Image

    groups = {}
    with open(DEVSET / "groups.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if not row["group"].startswith("fmt-"):
                groups[row["file"]] = row["group"]
    descs = {}
    pixels = {}
    for name in groups:
        with Image.open(DEVSET / name) as im:
            pixels[_oid(name)] = np.asarray(im.convert("RGB"))
            descs[name] = extract(pixels[_oid(name)])
    rng = np.random.default_rng(123)
    for i in range(100):
        maker = synthetic.low_texture_image if i % 10 == 0 else synthetic.textured_image
        pixels[_oid(f"distractor{i}")] = maker(rng, 480, 640)
        descs[f"distractor{i}"] = extract(pixels[_oid(f"distractor{i}")])
    cat = Catalog(tmp_path_factory.mktemp("devset") / "db")
    idx = SimilarityIndex(cat, pixel_source=pixels.get)  # as mounted: near misses get their full features
    for name, d in descs.items():
        idx.put(_oid(name), d)
    yield groups, descs, idx
    cat.close()


def test_groups_find_their_members(loaded) -> None:
    groups, descs, idx = loaded
    name_of = {_oid(n): n for n in descs}
    hits: dict[str, list[bool]] = {"edited": [], "scene": []}
    per_group: dict[str, list[bool]] = {}
    for q, g in groups.items():
        res = idx.query(descs[q], k=10, exclude=[_oid(q)])
        found = any(groups.get(name_of[c.object_id]) == g for c in res)
        hits["edited" if g.startswith(EDITED) else "scene"].append(found)
        per_group.setdefault(g, []).append(found)
    recall = {k: float(np.mean(v)) for k, v in hits.items()}
    assert recall["edited"] >= 0.95, recall
    assert recall["scene"] >= 0.80, recall
    for g, v in per_group.items():
        assert np.mean(v) >= 0.5, (g, v)


def test_unrelated_queries_are_rarely_worth_trying(loaded) -> None:
    groups, descs, idx = loaded
    members: dict[str, list[str]] = {}
    for n, g in groups.items():
        members.setdefault(g, []).append(n)
    false = 0
    for q, g in groups.items():
        res = idx.query(descs[q], k=10, exclude=[_oid(x) for x in members[g]])
        false += res.worth_trying_inter
    assert false <= max(1, round(0.03 * len(groups))), false


def test_derived_copies_are_worth_trying_and_hinted(loaded) -> None:
    groups, descs, idx = loaded
    for q, g in groups.items():
        if g.startswith("edit-"):
            res = idx.query(descs[q], k=5, exclude=[_oid(q)])
            assert res.worth_trying_inter, q
            assert res[0].relation in ("copy", "edited"), (q, res[0])


def test_t_record_of_a_real_photo_is_small(loaded) -> None:
    """Issue 7: the per-image catalog cost of a >= 0.8 MP photo stays far under 1% of its stored bytes."""
    from simfs.similarity.index import LOCAL_KEEP, local_key, record_key

    groups, descs, idx = loaded
    for name in ("edit-sacre-coeur/02928139_3448003521.png", "scene-weir/weir_1.png"):
        assert descs[name].n_keypoints == 500 and len(descs[name].local) > 18_000  # what the query side has
        t = idx.catalog.get(local_key(_oid(name)))
        s = idx.catalog.get(record_key(_oid(name)))
        assert len(t) == 9 + 6 + 36 * LOCAL_KEEP <= 4_700 and len(s) == 58
        # intra-coded, these photos take 505-1,278 KB (README, measured): 1% is 5 KB or more
        assert len(t) + len(s) + 2 * 33 < 0.01 * (DEVSET / name).stat().st_size / 2


def test_known_copies_are_still_found_with_compact_records(loaded) -> None:
    """The rotated and scaled copies of sacre-coeur find their original, verified as a relation (rot180: 6
    inliers on its compact T record, 105 on all its features; the half-size copy: 5 on the compact record:
    both found through re-derivation). Coded against a sibling instead, the half-size copy took 186 KB in a
    full dev-set run, against 1 KB against the original."""
    groups, descs, idx = loaded
    stem = "edit-sacre-coeur/02928139_3448003521"
    for q in ("rot45", "rot90", "rot180", "scale0.8", "scale0.5"):
        res = idx.query(descs[f"{stem}_{q}.png"], k=10, exclude=[_oid(f"{stem}_{q}.png")])
        assert res.worth_trying_inter and groups[next(n for n in groups if _oid(n) == res[0].object_id)] == \
            "edit-sacre-coeur" and res[0].relation in ("copy", "edited"), (q, res[0])
        hit = next(c for c in res if c.object_id == _oid(f"{stem}.png"))
        assert hit.relation in ("copy", "edited"), (q, hit)
