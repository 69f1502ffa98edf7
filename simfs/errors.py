"""Exceptions and the process exit codes every `simfs` command uses."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Distinct exit codes; documented in README.md (keep both in sync)."""

    OK = 0
    FSCK_REPAIRED = 1  # fsck --repair fixed every finding; the store is clean now
    USAGE = 2  # bad command line (argparse also uses 2)
    ALREADY_MOUNTED = 3  # the store is in use by a running daemon
    BAD_STORE = 4  # not a simfs store, unknown format version/feature, damaged FORMAT
    BAD_MOUNTPOINT = 5  # missing, not a directory, or not empty
    FUSE_FAILED = 6  # /dev/fuse missing, fusermount3 failed, kernel refused the mount
    FSCK_FINDINGS = 7  # fsck found problems it did not (or could not) repair
    NOT_MOUNTED = 8  # umount/similar of something that is not a simfs mount
    NO_BACKUP = 9  # fsck --restore-catalog: no usable metadata backup (none, not found, damaged); nothing changed
    INTERNAL = 70  # unexpected failure; see the log (EX_SOFTWARE)


class SimfsError(Exception):
    """An error with a one-line, actionable message and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class StoreInUse(SimfsError):
    exit_code = ExitCode.ALREADY_MOUNTED


class BadStore(SimfsError):
    exit_code = ExitCode.BAD_STORE


class BadMountpoint(SimfsError):
    exit_code = ExitCode.BAD_MOUNTPOINT


class FuseFailed(SimfsError):
    exit_code = ExitCode.FUSE_FAILED


class CorruptObject(Exception):
    """An object failed its checksum or envelope validation; never serve its bytes."""

    def __init__(self, object_id: bytes, why: str):
        super().__init__(f"object {object_id.hex()} is damaged: {why}")
        self.object_id = object_id
        self.why = why
