"""Background ingest order: a file that was still open at its turn is described soon after it is closed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from conftest import Mount, needs_fuse, run_simfs, smooth_png


def status(mnt: Path) -> dict:
    result = run_simfs("status", str(mnt), "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_fuse
def test_deferred_file_is_described_before_the_queued_encodings(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["workers=1"]) as m:
        held = open(m.mountpoint / "held.png", "wb")
        held.write(smooth_png(99, size=320))
        held.flush()
        os.fsync(held.fileno())  # committed and queued, but open: the ingest defers it
        for i in range(6):  # ~2 s of encoding each on this machine: a queue of slow work
            (m.mountpoint / f"p{i}.png").write_bytes(smooth_png(i, size=640))
        deadline = time.monotonic() + 120
        while status(m.mountpoint)["backlog"]["deferred"] == 0:
            assert time.monotonic() < deadline, "the open file was never deferred"
            time.sleep(0.2)
        held.close()
        while True:
            doc = status(m.mountpoint)
            if doc["done"].get("descriptors", 0) >= 7:
                break
            assert time.monotonic() < deadline, doc
            time.sleep(0.2)
        # Described while most encodings are still queued (it used to wait until both queues were empty).
        assert doc["backlog"]["encode"] >= 2, doc
