"""`simfs compact STORE`: run the background ingest (descriptors, PNG encoding) over a whole unmounted store."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from .catalog import keys
from .catalog.records import ObjectRecord
from .storage import OpenStore


def compact(store_path: Path, *, encode: bool = True, progress: bool | None = None) -> dict[str, int]:
    """Process every object the ingest has not finished; returns counts. The store must not be mounted."""
    from .ingest import describer, make_ingestor
    from .vfs import Vfs

    opened = OpenStore(store_path)  # takes the mount lock: refuses a mounted store
    try:
        descriptors, _index = describer(opened.catalog)
        vfs = Vfs(opened, processors=[descriptors])
        ingest = make_ingestor(opened, vfs, descriptors, encode=encode, processes=0)  # inline: one at a time
        todo = []
        for key, raw in opened.catalog.scan(keys.OBJECT):
            rec = ObjectRecord.unpack(raw)
            if rec.refcount > 0 and (rec.flags & ingest.all_flags) != ingest.all_flags:
                todo.append(bytes(key[1:]))
        before = vfs.stored_bytes
        disable = (not sys.stderr.isatty()) if progress is None else not progress
        for oid in tqdm(todo, desc="describing", unit="obj", disable=disable):
            ingest.process(oid)  # descriptors first: the encoder then knows every image
        for oid in tqdm(ingest.take_pending(), desc="encoding", unit="obj", disable=disable):
            ingest.process(oid)
        replanned = ingest.run_replans()
        for oid in tqdm(ingest.take_pending(), desc="polishing", unit="obj", disable=disable):
            ingest.process(oid)  # two-pass encoding: payloads re-coded at the final effort
        ingest.stop()
        vfs.shutdown()  # frees superseded generations once the switches are durable
        encoded = sum(ObjectRecord.unpack(v).codec != 0 for _, v in opened.catalog.scan(keys.OBJECT))
        return {"processed": len(todo), "stored_before": before, "stored_after": vfs.stored_bytes,
                "objects_encoded": encoded, "replanned": replanned}
    finally:
        opened.close()
