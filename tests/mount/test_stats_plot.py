"""`simfs stats --plot`: a PNG of where the bytes went, from a store or its mount point."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import Mount, needs_fuse, run_simfs, smooth_png
from PIL import Image

from simfs.errors import ExitCode
from simfs.stats_plot import HEIGHT_PX, WIDTH_PX


def assert_png(path: Path) -> None:
    with Image.open(path) as img:
        img.load()
        assert img.format == "PNG" and img.size == (WIDTH_PX, HEIGHT_PX) == (1200, 800)
        assert len(img.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 10  # not a blank canvas


@needs_fuse
def test_plot_from_mount_point_and_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Mount(store, tmp_path / "mnt") as m:
        for i in range(2):
            (m.mountpoint / f"p{i}.png").write_bytes(smooth_png(i))
        (m.mountpoint / "p-copy.png").write_bytes(smooth_png(0))
        (m.mountpoint / "notes.txt").write_bytes(b"text" * 100)
        deadline = time.monotonic() + 300
        while json.loads(run_simfs("stats", str(store), "--json").stdout)["ingest_pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        result = run_simfs("stats", str(m.mountpoint), "--plot", str(tmp_path / "live.png"))
        assert result.returncode == 0, result.stderr
        assert f"plot               {tmp_path / 'live.png'}" in result.stdout
        assert_png(tmp_path / "live.png")
    result = run_simfs("stats", str(store), "--json", "--plot", str(tmp_path / "offline.png"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["objects_encoded"] >= 1
    assert_png(tmp_path / "offline.png")


def test_plot_of_an_empty_store_and_a_bad_output_path(tmp_path: Path) -> None:
    from simfs.storage import create_store

    create_store(tmp_path / "store")
    result = run_simfs("stats", str(tmp_path / "store"), "--plot", str(tmp_path / "empty.png"))
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "empty.png")
    result = run_simfs("stats", str(tmp_path / "store"), "--plot", str(tmp_path / "no" / "such" / "x.png"))
    assert result.returncode == ExitCode.USAGE and "cannot write the plot" in result.stderr
    assert "Traceback" not in result.stderr
