"""FUSE mounts from /proc/mounts: which store is mounted where (the store's path is the mount's source)."""

from __future__ import annotations

import os
from pathlib import Path


def fuse_mounts() -> list[tuple[str, str, str]]:
    """(source, mount point, fstype) of every FUSE mount, unescaped, in mount order."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("fuse"):
            out.append((_unescape(parts[0]), _unescape(parts[1]), parts[2]))
    return out


def mount_entry(mountpoint: Path) -> tuple[str, str] | None:
    """(source, fstype) of the FUSE mount at mountpoint (the last one, if stacked)."""
    target = os.path.abspath(mountpoint)
    found = None
    for source, where, fstype in fuse_mounts():
        if where == target:
            found = (source, fstype)
    return found


def mountpoint_of_store(store: Path) -> Path | None:
    """Where a store is mounted, if it is."""
    target = os.path.realpath(store)
    return next((Path(where) for source, where, _ in fuse_mounts() if source == target), None)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
