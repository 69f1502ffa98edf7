"""The daemon's live status (`simfs status`): ingest backlog, throughput, savings, workers, as JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..vfs.core import Vfs

STATUS_XATTR = "user.simfs.status"  # read-only, on the mount's root directory only, never listed
STATUS_VERSION = 1


def live_status(vfs: Vfs, store: Path, mountpoint: Path, started: float) -> dict[str, Any]:
    ingestor = getattr(vfs, "ingestor", None)
    doc: dict[str, Any] = {
        "status_version": STATUS_VERSION,
        "pid": os.getpid(),
        "store": str(store),
        "mountpoint": str(mountpoint),
        "read_only": vfs.read_only,
        "uptime_s": round(time.monotonic() - started, 1),
        "pending_writes": vfs.pending_writes(),
        # objects + catalog, as df reports it: watching it shrink is the ingest's progress in bytes
        "stored_bytes": vfs.stored_bytes + vfs._catalog_bytes(),
        # the full-disk reserve: false while the ballast is released (the disk filled up)
        "ballast_held": vfs.ballast.held,
        "ballast_bytes": vfs.ballast.size,
    }
    if ingestor is None:  # read-only mount: no background work
        doc.update(workers=0, codec_processes=0, backlog={"total": 0}, done={}, megapixels_per_s={},
                   saved_bytes=0, window_s=0)
        return doc
    backlog = ingestor.backlog()
    backlog["total"] = ingestor.pending()
    meter = ingestor.meter.snapshot()
    doc.update(yielding=ingestor.yielding)
    doc.update(workers=ingestor.workers, codec_processes=ingestor.codec_processes, backlog=backlog,
               done=meter["done"], failed=ingestor.failed, megapixels_per_s=meter["megapixels_per_s"],
               window_s=meter["window_s"], saved_bytes=meter["saved_bytes"])
    return doc


def status_bytes(doc: dict[str, Any]) -> bytes:
    raw = json.dumps(doc, sort_keys=True).encode()
    # Padded to a multiple of 512 bytes: getfattr asks for the size first and reads second, and a
    # value that grew by a digit in between would fail with ERANGE.
    return raw.ljust((len(raw) // 512 + 1) * 512)
