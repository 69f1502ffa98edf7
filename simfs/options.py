"""simfs's own `-o` mount options (the rest go to libfuse), parsed and checked before the daemon starts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import ExitCode, SimfsError

OURS = ("noencode", "workers", "maxdepth", "refcache", "candidates", "effort", "first_effort", "metadata_backups", "backup_interval")
_SIZE = re.compile(r"^(\d+)([KMGT]i?B?|B)?$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_DURATION = re.compile(r"^(\d+)([smhd]?)$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_INTERVAL = 30 * 86400


class UsageError(SimfsError):
    exit_code = ExitCode.USAGE


@dataclass
class SimfsOptions:
    encode: bool = True
    workers: int = 1
    max_depth: int = 4
    refcache_bytes: int = 512 << 20
    candidates: int = 3
    effort: int = 7
    first_effort: int = 1  # first-pass JPEG XL effort; the polish pass re-codes at `effort` (equal: one pass)
    metadata_backups: int = 5  # catalog backups kept (STORE/backups/); 0: none made
    backup_interval: float = 6 * 3600.0  # seconds between backups while mounted (one is made at unmount too)


def parse_size(text: str) -> int:
    """'512M', '2G', '1048576', '64KiB' -> bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(text)
    unit = (m.group(2) or "").upper()[:1]
    return int(m.group(1)) * _UNITS[unit]


def parse_duration(text: str) -> int:
    """'6h', '30m', '90s', '90', '1d' -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * _SECONDS[m.group(2).lower()]


def _int(opts: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    if key not in opts:
        return default
    raw = opts[key]
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise UsageError(f"-o {key}={raw}: expected a whole number from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise UsageError(f"-o {key}={raw}: expected a whole number from {lo} to {hi}")
    return value


def simfs_options(opts: dict[str, Any]) -> SimfsOptions:
    """Our options from parsed -o values; raises UsageError (exit 2) with the option named."""
    out = SimfsOptions()
    out.encode = not opts.get("noencode")
    cpus = os.cpu_count() or 1
    out.workers = _int(opts, "workers", max(1, min(4, cpus - 1)), 1, 64)
    out.max_depth = _int(opts, "maxdepth", 4, 0, 16)
    out.candidates = _int(opts, "candidates", 3, 0, 16)
    out.effort = _int(opts, "effort", 7, 1, 9)
    out.first_effort = min(out.effort, _int(opts, "first_effort", 1, 1, 9))
    if "refcache" in opts:
        try:
            out.refcache_bytes = parse_size(str(opts["refcache"]))
        except ValueError:
            raise UsageError(f"-o refcache={opts['refcache']}: expected a size such as 512M or 2G") from None
    out.metadata_backups = _int(opts, "metadata_backups", 5, 0, 1000)
    if "backup_interval" in opts:
        raw = opts["backup_interval"]
        try:
            seconds = parse_duration(str(raw))
        except ValueError:
            seconds = -1
        if not 1 <= seconds <= MAX_INTERVAL:
            raise UsageError(f"-o backup_interval={raw}: expected a duration from 1s to 30d, such as 6h, 30m "
                             "or 90 (seconds)")
        out.backup_interval = float(seconds)
    # libfuse's loop options, parsed by fuse_main() where a bad value is only a warning: check them here.
    _int(opts, "max_threads", 8, 1, 100_000)
    _int(opts, "max_idle_threads", 8, 1, 100_000)
    return out
