"""One log line per object the encoder looked at: kind, bytes on disk before and after, time, why."""

from __future__ import annotations

import logging

log = logging.getLogger("simfs.ingest.object")


def object_line(object_id: bytes, kind: str, before: int, after: int, seconds: float, detail: str = "") -> str:
    """`object 1a2b3c4d5e6f7a8b: inter, 204928 -> 3248 bytes (-98.4%), 0.81 s, against ... (depth 1)`."""
    change = f" ({(after - before) / before * 100:+.1f}%)" if before and after != before else ""
    return (f"object {object_id.hex()[:16]}: {kind}, {before} -> {after} bytes{change}, {seconds:.2f} s"
            + (f", {detail}" if detail else ""))


def log_object(object_id: bytes, kind: str, before: int, after: int, seconds: float, detail: str = "") -> None:
    log.info("%s", object_line(object_id, kind, before, after, seconds, detail))
