"""Texts shared by `simfs --help` and the man page: exit codes, `-o` mount options, examples."""

from __future__ import annotations

from .errors import ExitCode

# One entry per ExitCode (a test checks that none is missing), plus the signal convention.
EXIT_CODES: list[tuple[str, str]] = [
    (str(int(ExitCode.OK)), "success; for fsck: the store is clean"),
    (str(int(ExitCode.FSCK_REPAIRED)), "fsck --repair fixed every finding, or --restore-catalog restored a backup"),
    (str(int(ExitCode.USAGE)), "usage error: bad command line, unknown -o option, unwritable output file"),
    (str(int(ExitCode.ALREADY_MOUNTED)), "the store is mounted / in use"),
    (str(int(ExitCode.BAD_STORE)), "not a simfs store, unknown format version, damaged FORMAT or catalog"),
    (str(int(ExitCode.BAD_MOUNTPOINT)), "bad mount point: missing, not a directory, not empty, stale or mounted"),
    (str(int(ExitCode.FUSE_FAILED)), "FUSE failure: no /dev/fuse or fusermount3, the kernel refused, unmount failed"),
    (str(int(ExitCode.FSCK_FINDINGS)), "fsck found problems it did not (or could not) repair"),
    (str(int(ExitCode.NOT_MOUNTED)), "not a mounted simfs (umount, similar, status)"),
    (str(int(ExitCode.NO_BACKUP)), "fsck --restore-catalog: no usable metadata backup; nothing was changed"),
    (str(int(ExitCode.INTERNAL)), "internal error (see the log)"),
    ("128+N", "a foreground mount forced down by a second signal N (130: Ctrl-C twice)"),
]

# simfs's own -o options (simfs/options.py checks them); the rest go to libfuse.
MOUNT_OPTIONS: list[tuple[str, str]] = [
    ("noencode", "keep new PNGs verbatim (no background encoding)"),
    ("workers=N", "background ingest threads (default: cores - 1, at least 1, at most 4)"),
    ("maxdepth=N", "longest reference chain, 0-16 (default 4; 0: every PNG coded on its own)"),
    ("candidates=K", "similar stored images an encoding is tried against, 0-16 (default 3)"),
    ("refcache=SIZE", "decoded reference pixels kept in memory, e.g. 256M, 2G (default 512M)"),
    ("effort=N", "JPEG XL effort 1-9 every payload ends at (default 7)"),
    ("first_effort=N", "JPEG XL effort of the first, fast encoding (default 1); a background polish pass re-codes at effort"),
    ("metadata_backups=N", "catalog backups kept in STORE/backups/, 0-1000 (default 5)"),
    ("backup_interval=T", "a catalog backup every T while mounted: 90, 90s, 30m, 6h, 1d (default 6h)"),
    ("log=FILE", "log to FILE instead of STORE/simfs.log (as --log; rotated at 10 MiB, 5 old files kept)"),
    ("ro", "read-only mount (libfuse)"),
    ("allow_other", "let other users in (libfuse; needs user_allow_other in /etc/fuse.conf unless root)"),
    ("max_threads=N", "FUSE worker threads (libfuse; default 8)"),
]

EXAMPLES: list[tuple[str, str]] = [
    ("simfs mount ~/photo-store ~/photos", "mount (the store is created on first use)"),
    ("cp -r ~/Pictures/. ~/photos/", "copy photos in; they are deduplicated and encoded in the background"),
    ("simfs status ~/photos --watch", "watch the background ingest"),
    ("simfs similar ~/photos/a.png", "the stored images most similar to a.png"),
    ("simfs similar --groups --html groups.html ~/photos", "every group of similar images, with thumbnails"),
    ("simfs stats ~/photos --plot where.png", "where the bytes went"),
    ("simfs umount ~/photos && simfs fsck --verify-data ~/photo-store", "unmount, then check everything"),
    ("mount -t fuse.simfs -o workers=2 /srv/store /mnt/photos", "the same through mount(8) (mount.fuse.simfs)"),
]


def _table(rows: list[tuple[str, str]], width: int) -> str:
    return "\n".join(f"  {left:<{width}} {right}" for left, right in rows)


def main_epilog() -> str:
    return ("exit codes:\n" + _table(EXIT_CODES, 6) + "\n\nexamples:\n"
            + "\n".join(f"  {cmd}\n      {what}" for cmd, what in EXAMPLES)
            + "\n\n'simfs COMMAND --help' describes one command; 'simfs man' prints the manual page.")


def mount_epilog() -> str:
    return ("mount options (-o, comma-separated; any other option goes to libfuse, see mount.fuse3(8)):\n"
            + _table(MOUNT_OPTIONS, 19)
            + "\n\nexamples:\n  simfs mount store/ /mnt/photos\n  simfs mount -f -o workers=2,noencode store/ /mnt/photos"
            "\n  simfs mount --log /var/log/simfs.log store/ /mnt/photos")
