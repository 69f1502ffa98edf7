"""scripts/bench_similarity.py --null-photos: groups hide together and a held-out group never joins the calibration."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_similarity", ROOT / "scripts" / "bench_similarity.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["file\tgroup\tsource"]
    for src, names, group in (("a", ["1", "2", "3"], None), ("b", ["s1", "s2"], "b/seq"), ("c", ["x"], None)):
        (tmp_path / src).mkdir()
        for n in names:
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / src / f"{n}.png")
            rows.append(f"{src}/{n}.png\t{group or f'{src}/{n}'}\t{src}")
    (tmp_path / "a" / "unlisted.png").write_bytes((tmp_path / "a" / "1.png").read_bytes())
    (tmp_path / "groups.tsv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_holdout_by_source_keeps_groups_whole(tmp_path) -> None:
    bench = _bench()
    args = argparse.Namespace(null_photos=_photos(tmp_path), holdout_sources="b,c", holdout_fraction=0.5)
    cal, held = bench._null_photos(args)
    assert set(held) == {"null:b/s1.png", "null:b/s2.png", "null:c/x.png"}
    assert set(cal) == {"null:a/1.png", "null:a/2.png", "null:a/3.png", "null:a/unlisted.png"}
    assert held["null:b/s1.png"][0] == held["null:b/s2.png"][0] == "null:b/seq"  # one group: hidden together
    assert cal["null:a/unlisted.png"][:2] == ("null:a/unlisted.png", "a")  # not in groups.tsv: its own group


def test_holdout_fraction_splits_by_group_stably(tmp_path) -> None:
    bench = _bench()
    photos = _photos(tmp_path)
    assert not any(bench._holdout(f"g{i}", 0.0) for i in range(100))
    assert all(bench._holdout(f"g{i}", 1.0) for i in range(100))
    share = np.mean([bench._holdout(f"g{i}", 0.5) for i in range(2000)])
    assert 0.45 < share < 0.55
    for fraction in (0.3, 0.5, 0.7):
        args = argparse.Namespace(null_photos=photos, holdout_sources=None, holdout_fraction=fraction)
        cal, held = bench._null_photos(args)
        assert set(cal).isdisjoint(held) and len(cal) + len(held) == 7
        # a group is on one side only, and the same side on every run
        assert {v[0] for v in cal.values()}.isdisjoint({v[0] for v in held.values()})
        assert (cal.keys(), held.keys()) == tuple(d.keys() for d in bench._null_photos(args))
