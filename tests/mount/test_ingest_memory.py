"""Memory per ingested object is bounded: PNGs with huge ancillary chunks are stored verbatim without
being held several times (issue 9: peak daemon RSS was 675 MiB for two PNGs with 100 MB chunks)."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import Mount, assert_fsck_clean, needs_fuse, run_simfs
from PIL import Image

from simfs.storage import StoreLock

pytestmark = [needs_fuse]


def _chunk(ctype: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + ctype + payload + struct.pack(">I", zlib.crc32(ctype + payload))


def _png_with_ancillary(seed: int, size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(buf, "PNG")
    png = buf.getvalue()
    return png[:33] + _chunk(b"zzXt", os.urandom(size)) + png[33:]


def _tree_hwm(pid: int) -> int:
    """Peak RSS (VmHWM) of pid plus its children (the ingest's worker processes), bytes."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _tree_hwm(int(child))
    except OSError:
        pass
    return total


def _wait_ingest(store: Path, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(run_simfs("stats", str(store), "--json").stdout)
        if st["ingest_pending"] == 0:
            return st
        time.sleep(0.5)
    pytest.fail("ingest did not finish")


@pytest.mark.timeout(600)
def test_huge_ancillary_chunks_do_not_multiply_memory(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    size = 100 << 20
    with Mount(store, mnt) as m:
        (m.mountpoint / "warm.png").write_bytes(_png_with_ancillary(0, 1000))  # loads the codec everywhere
        _wait_ingest(store)
        pid = StoreLock.holder(store)
        assert pid is not None
        before = _tree_hwm(pid)
        files = {f"big{i}.png": _png_with_ancillary(i + 1, size) for i in range(2)}
        for name, data in files.items():
            (m.mountpoint / name).write_bytes(data)
        st = _wait_ingest(store)
        grew = _tree_hwm(pid) - before
        print(f"peak RSS of daemon + workers grew by {grew / 2**20:.0f} MiB")
        # held once by the daemon and once by a worker, at most: not the 3-4 copies of before
        assert grew < 2.5 * size, f"peak RSS grew by {grew / 2**20:.0f} MiB for {size / 2**20:.0f} MiB files"
        for name, data in files.items():
            assert (m.mountpoint / name).read_bytes() == data
        assert st["objects_encoded"] <= 1  # the big ones stay verbatim
    assert_fsck_clean(store)
