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
    for name in groups:
        with Image.open(DEVSET / name) as im:
            descs[name] = extract(np.asarray(im.convert("RGB")))
    rng = np.random.default_rng(123)
    for i in range(100):
        maker = synthetic.low_texture_image if i % 10 == 0 else synthetic.textured_image
        descs[f"distractor{i}"] = extract(maker(rng, 480, 640))
    cat = Catalog(tmp_path_factory.mktemp("devset") / "db")
    idx = SimilarityIndex(cat)
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
