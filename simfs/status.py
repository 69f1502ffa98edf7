"""`simfs status MNT`: the running daemon's ingest backlog, throughput, savings and workers (read from an xattr)."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ExitCode, SimfsError
from .ingest.status import STATUS_XATTR
from .mounts import mount_entry, mountpoint_of_store
from .storage import is_store
from .units import human_bytes as _human


class NotMounted(SimfsError):
    exit_code = ExitCode.NOT_MOUNTED


def store_of_mountpoint(mountpoint: Path) -> Path | None:
    """The store mounted at mountpoint, if it is a simfs mount."""
    entry = mount_entry(Path(os.path.realpath(mountpoint)))
    if entry is None:
        return None
    source = Path(entry[0])
    return source if source.is_absolute() and is_store(source) else None


def read_status(path: Path) -> dict[str, Any]:
    """The daemon's status for a mount point (or a mounted store's directory)."""
    if is_store(path):
        mnt = mountpoint_of_store(path)
        if mnt is None:
            raise NotMounted(f"{path} is a simfs store but not mounted (simfs stats {path} works offline)")
        path = mnt
    try:
        raw = os.getxattr(path, STATUS_XATTR)
    except FileNotFoundError:
        raise NotMounted(f"{path}: no such file or directory") from None
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
            raise NotMounted(f"{path} is not the root of a mounted simfs") from None
        if exc.errno == errno.ENOTCONN:
            raise NotMounted(f"{path} is a dead mount (its daemon died); run: simfs umount {path}") from None
        raise NotMounted(f"{path}: {exc.strerror}") from None
    return dict(json.loads(raw))




def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


DONE_LABEL = {"descriptors": "described", "encode": "encoded", "replan": "re-planned"}
RATE_LABEL = {"descriptors": "describe", "encode": "encode", "replan": "re-plan"}


def render(doc: dict[str, Any]) -> str:
    if doc.get("read_only"):
        return (f"simfs status {doc['mountpoint']}  (store {doc['store']}, pid {doc['pid']}, "
                f"up {_duration(doc['uptime_s'])}, read-only)\nno background ingest on a read-only mount")
    backlog = doc.get("backlog", {})
    rates = doc.get("megapixels_per_s", {})
    done = doc.get("done", {})
    lines = [f"simfs status {doc['mountpoint']}  (store {doc['store']}, pid {doc['pid']}, "
             f"up {_duration(doc['uptime_s'])})"]
    steps = [f"{backlog.get('descriptors', 0)} to describe", f"{backlog.get('encode', 0)} to encode",
             f"{backlog.get('replan', 0)} to re-plan"]
    extra = [f"{backlog.get('in_progress', 0)} in progress"]
    if doc.get("yielding"):
        extra.append("paused while programs write to the mount")
    if backlog.get("deferred"):
        extra.append(f"{backlog['deferred']} waiting for their file to be closed")
    lines.append(f"backlog          {backlog.get('total', 0)} objects: {', '.join(steps)} ({', '.join(extra)})")
    total_rate = sum(rates.values())
    per = ", ".join(f"{RATE_LABEL.get(step, step)} {mps:.2f}" for step, mps in sorted(rates.items()))
    lines.append(f"throughput       {total_rate:.2f} MP/s over the last {int(doc.get('window_s', 60))} s"
                 + (f"  ({per})" if per else ""))
    lines.append("done this mount  " + (", ".join(f"{n} {DONE_LABEL.get(step, step)}" for step, n in sorted(done.items()))
                                       or "nothing yet")
                 + (f"; {doc['failed']} failed" if doc.get("failed") else ""))
    lines.append(f"saved            {_human(doc.get('saved_bytes', 0))} by encoding since the mount; "
                 f"{_human(doc.get('stored_bytes', 0))} on disk now (objects + catalog)")
    lines.append(f"workers          {doc.get('workers', 0)} ingest threads, {doc.get('codec_processes', 0)} "
                 f"codec processes; {doc.get('pending_writes', 0)} files open with unsaved writes")
    if doc.get("ballast_held") is False and not doc.get("read_only"):
        lines.append(f"disk full        the {_human(doc.get('ballast_bytes', 0))} ballast is released: delete files "
                     "to make room (it is written again first)")
    return "\n".join(lines)


def status_command(path: Path, *, watch: bool, as_json: bool, interval: float = 1.0) -> int:
    if not watch:
        doc = read_status(path)
        print(json.dumps(doc, indent=2) if as_json else render(doc))
        return 0
    tty = sys.stdout.isatty()
    try:
        while True:
            doc = read_status(path)
            if as_json:
                print(json.dumps(doc), flush=True)  # one document per line
            else:
                print(("\x1b[H\x1b[2J" if tty else "") + render(doc) + ("" if tty else "\n"), flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
