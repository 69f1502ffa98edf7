"""`simfs` command line: mount, umount, fsck, stats, status, similar, compact, man. Clear one-line errors, distinct exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from .errors import BadStore, ExitCode, SimfsError, StoreInUse
from .options import UsageError
from .units import human_bytes as _human


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value




def cmd_mount(args: argparse.Namespace) -> int:
    from .mount import mount, parse_options

    opts = parse_options(args.o or [])
    foreground = args.foreground or bool(opts.pop("foreground", False))
    log = args.log or opts.pop("log", None)  # -o log=FILE: the same from fstab or mount(8)
    if log is True or log == "":
        raise UsageError("-o log: give a file, as in -o log=/var/log/simfs.log")
    return mount(Path(args.store), Path(args.mountpoint), foreground=foreground, options=opts, debug=args.debug,
                 log_file=Path(log) if log else None)


def cmd_umount(args: argparse.Namespace) -> int:
    from .mount import umount

    return umount(Path(args.mountpoint), lazy=args.lazy, timeout=args.timeout)


def cmd_fsck(args: argparse.Namespace) -> int:
    from .fsck.checker import Fsck, summarize, unclean
    from .storage import OpenStore, StoreLock

    if args.restore_catalog is not None:
        return cmd_restore_catalog(args)
    if args.store is None:
        raise UsageError("fsck: give the store directory")
    store = Path(args.store)
    if not store.exists():
        raise BadStore(f"{store}: no such directory")
    if not store.is_dir():
        raise BadStore(f"{store} is a file, not a simfs store (a store is a directory)")
    holder = StoreLock.holder(store)
    if args.repair and holder is not None:
        raise StoreInUse(f"{store}: store is mounted (pid {holder}); unmount it before fsck --repair")
    opened = OpenStore(store, read_only=not args.repair, check_catalog_format=False)
    try:
        checker = Fsck(opened, repair=args.repair, verify_data=args.verify_data,
                       progress=None if not args.no_progress else False)
        findings = checker.run()
    finally:
        opened.close()
    left = unclean(findings)
    if args.json:
        print(json.dumps({
            "store": str(store),
            "mounted": holder is not None,
            "clean": not left,
            "summary": summarize(findings),
            "findings": [
                {"code": f.code, "severity": f.severity.name.lower(), "subject": f.subject, "detail": f.detail,
                 "affected": f.affected, "repaired": f.repaired}
                for f in findings
            ],
        }, indent=2))
    else:
        if holder is not None:
            print(f"note: store is mounted (pid {holder}); checking a live store, in-flight changes may show")
        for f in findings:
            print(f.line())
            for path in f.affected[:50]:
                print(f"    affects {path}")
            if len(f.affected) > 50:
                print(f"    ... and {len(f.affected) - 50} more files")
        state = "clean" if not left else f"{len(left)} problem(s) left"
        print(f"simfs fsck {store}: {len(findings)} finding(s), {state}")
    if left:
        return int(ExitCode.FSCK_FINDINGS)
    if any(f.repaired and f.severity > 0 for f in findings):
        return int(ExitCode.FSCK_REPAIRED)
    return int(ExitCode.OK)


def cmd_restore_catalog(args: argparse.Namespace) -> int:
    """fsck --restore-catalog [BACKUP] STORE: restore, re-link unknown objects, then an ordinary check."""
    from .fsck.checker import Fsck, unclean
    from .fsck.restore import restore_catalog
    from .storage import OpenStore

    # `--restore-catalog STORE` (newest backup): argparse hands the store over as the option's value
    name, store_arg = (None, args.restore_catalog) if args.store is None else (args.restore_catalog, args.store)
    if name == "":
        name = None
    if store_arg in (None, ""):
        raise UsageError("fsck --restore-catalog: give the store directory")
    if args.repair or args.json:
        raise UsageError("fsck --restore-catalog cannot be combined with --repair or --json "
                         "(it repairs what the restore needs itself)")
    store = Path(store_arg)
    if not store.is_dir():
        raise BadStore(f"{store}: no such store directory")
    done = restore_catalog(store, name, say=lambda text: print(f"simfs: {text}"))
    moved = done.relinked
    if moved.named:
        print(f"simfs: {len(moved.named)} object file(s) no restored file names are now in /lost+found/ "
              "(named by content hash):")
        for path in moved.named[:50]:
            print(f"    {path}")
        if len(moved.named) > 50:
            print(f"    ... and {len(moved.named) - 50} more")
    if moved.regenerated:
        print(f"simfs: {len(moved.regenerated)} object(s) recorded with the file generation now on disk")
    for name_ in moved.unreadable:
        print(f"simfs: object file {name_} has a damaged header, so its content cannot be named; "
              "moved to quarantine/")
    if done.repaired:
        counts = Counter(f.code for f in done.repaired)
        codes = ", ".join(f"{code} x{n}" if n > 1 else code for code, n in sorted(counts.items()))
        print(f"simfs: recomputed {len(done.repaired)} count(s) the re-linked objects changed ({codes})")
    opened = OpenStore(store, read_only=True)
    try:
        findings = Fsck(opened, verify_data=args.verify_data, progress=None if not args.no_progress else False).run()
    finally:
        opened.close()
    for f in findings:
        print(f.line())
        for path in f.affected[:50]:
            print(f"    affects {path}")
    left = unclean(findings)
    state = "clean" if not left else f"{len(left)} problem(s) left"
    print(f"simfs fsck {store}: catalog restored from {done.backup.name}; {len(findings)} finding(s), {state}")
    return int(ExitCode.FSCK_FINDINGS if left else ExitCode.FSCK_REPAIRED)


def cmd_stats(args: argparse.Namespace) -> int:
    from .stats import store_of, store_stats

    stats = store_stats(store_of(Path(args.store)))
    if args.plot:
        from .stats_plot import write_plot

        write_plot(stats, Path(args.plot))
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"store              {stats['store']}")
    print(f"files              {stats['files']}  (directories {stats['directories']}, symlinks {stats['symlinks']})")
    if stats.get("chunked_files"):
        print(f"chunked files      {stats['chunked_files']} (large non-PNG files in 1 MiB chunks; "
              f"{_human(stats['chunked_data_bytes'])} of data, holes excluded)")
    print(f"logical size       {_human(stats['logical_bytes'])}  ({stats['logical_bytes']} bytes)")
    print(f"unique content     {_human(stats['unique_bytes'])}  in {stats['objects']} objects "
          f"({stats['objects_encoded']} stored encoded)")
    print(f"stored on disk     {_human(stats['stored_bytes'])}  (objects {_human(stats['object_bytes'])}, "
          f"catalog {_human(stats['catalog_bytes'])})")
    ratio = stats["stored_bytes"] / stats["logical_bytes"] if stats["logical_bytes"] else 0.0
    saved = stats["saved_vs_logical"]
    if saved >= 0:
        print(f"stored / logical   {ratio:.3f}  (saved {_human(saved)})")
    else:  # nothing (or too little) encoded: the catalog is all there is to see
        print(f"stored / logical   {ratio:.3f}  (overhead {_human(-saved)}: the catalog, "
              f"{_human(stats['catalog_bytes'])} with metadata and similarity records"
              + (", and nothing stored encoded" if not stats["objects_encoded"] else "") + ")")
    refs = stats["saved_vs_intra_only"]
    print(f"vs intra-only      {_human(stats['intra_only_bytes'])} if every object were coded on its own; "
          + (f"references save {_human(refs)}" if refs >= 0 else f"references cost {_human(-refs)}"))
    print(f"{'kind':<16} {'objects':>8} {'logical':>10} {'stored':>10}")
    for kind, k in stats["by_kind"].items():
        print(f"  {kind:<14} {k['objects']:>8} {_human(k['logical_bytes']):>10} {_human(k['stored_bytes']):>10}")
    hist = ", ".join(f"{d}: {n}" for d, n in stats["depth_histogram"].items())
    print(f"chain depths       {hist or '-'}")
    print(f"metadata backups   {stats['metadata_backups']}"
          + (f", newest {stats['newest_backup']}, {_human(stats['backup_bytes'])} on disk"
             if stats["newest_backup"] else " (made at each clean unmount)"))
    print(f"similarity index   {stats['images_indexed']} images"
          + (f"  ({stats['ingest_pending']} objects waiting for background ingest)" if stats["ingest_pending"] else ""))
    if args.plot:
        print(f"plot               {args.plot}")
    return 0


def _writable(path: str, flag: str) -> Path:
    out = Path(path)
    if out.is_dir() or not out.absolute().parent.is_dir():
        raise UsageError(f"{flag} {path}: cannot write there (no such directory, or a directory)")
    return out


def cmd_groups(args: argparse.Namespace) -> int:
    from .groups import as_json, find_groups

    html_out = _writable(args.html, "--html") if args.html else None
    sheet_out = _writable(args.sheet, "--sheet") if args.sheet else None
    found = find_groups(Path(args.path))
    try:
        if html_out or sheet_out:
            from .groups_render import write_html, write_sheet

            if html_out:
                write_html(found, html_out)
            if sheet_out:
                write_sheet(found, sheet_out)
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    if args.json:
        print(json.dumps(as_json(found), indent=2))
        return 0
    from .groups_render import title

    print(f"{len(found.groups)} groups of similar images in {found.mountpoint} ({found.images} images indexed"
          + (f", {found.undescribed} objects not described yet" if found.undescribed else "") + ")")
    names = {m.object_id: Path(m.paths[0]).name if m.paths else f"pinned {m.object_id.hex()[:16]}"
             for g in found.groups for m in g.members}
    for i, g in enumerate(found.groups, 1):
        print(title(i, g))
        for m in g.members:
            how = m.kind + (f" against {names.get(m.base, m.base.hex()[:16])}" if m.base else "")
            paths = m.paths or [f"(no file: kept as a base, {m.object_id.hex()[:16]})"]
            print(f"  {_human(m.stored):>10}  {how:<40} {paths[0]}")
            for extra in paths[1:]:  # the same object: no extra bytes
                print(f"  {'':>10}  {'(same content)':<40} {extra}")
    for flag, out in (("html", html_out), ("sheet", sheet_out)):
        if out:
            print(f"{flag:<6} {out}")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from .similar import similar

    if args.groups:
        return cmd_groups(args)
    if args.html or args.sheet:
        raise UsageError("--html and --sheet go with --groups")

    found, worth, note = similar(Path(args.path), k=args.k)
    if args.json:
        print(json.dumps({"path": args.path, "described": note, "worth_trying_inter": worth,
                          "similar": [f.__dict__ for f in found]}, indent=2))
        return 0
    print(f"{args.path} ({note}); {'similar images exist' if worth else 'no verified similar image'}")
    if not found:
        print("  nothing similar stored")
    print(f"{'rank':>4} {'score':>6} {'relation':<11} {'global':>6} {'copy':>4} {'inliers':>7}  path")
    for i, f in enumerate(found, 1):
        print(f"{i:>4} {f.score:>6.3f} {f.relation:<11} {f.global_distance:>6} {f.copy_distance:>4} "
              f"{f.inliers:>7}  {f.paths[0]}")
        for extra in f.paths[1:]:
            print(f"{'':>40}  {extra}")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from .compact import compact

    result = compact(Path(args.store), encode=not args.noencode, progress=None if not args.no_progress else False)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"simfs compact {args.store}: {result['processed']} objects processed, "
              f"{result['objects_encoded']} stored encoded; objects {_human(result['stored_before'])} "
              f"-> {_human(result['stored_after'])}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .status import status_command

    return status_command(Path(args.mountpoint), watch=args.watch, as_json=args.json)


def cmd_man(args: argparse.Namespace) -> int:
    from .manpage import render

    sys.stdout.write(render(build_parser()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .help_text import main_epilog, mount_epilog

    raw = argparse.RawDescriptionHelpFormatter  # keep the epilogs' tables as written
    p = argparse.ArgumentParser(prog="simfs", description="FUSE file system for photo collections.",
                                epilog=main_epilog(), formatter_class=raw)

    p.add_argument("--version", action="version", version=f"simfs {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("mount", help="mount a store (created on first use); daemonizes unless --foreground",
                       epilog=mount_epilog(), formatter_class=raw)
    m.add_argument("store", metavar="STORE", help="the store directory (created if missing or empty)")
    m.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty directory")
    m.add_argument("-f", "--foreground", action="store_true", help="stay in the foreground, log to stderr")
    m.add_argument("-o", action="append", metavar="OPTIONS",
                   help="comma-separated mount options, simfs's and libfuse's (listed below); may be repeated")
    m.add_argument("--log", metavar="FILE", help="log here instead of STORE/simfs.log (rotated at 10 MiB, "
                   "5 old files kept: FILE.1 ... FILE.5); also -o log=FILE")
    m.add_argument("--debug", action="store_true", help="verbose log")
    m.set_defaults(func=cmd_mount)

    u = sub.add_parser("umount", help="unmount and wait until the daemon has flushed the store")
    u.add_argument("mountpoint", metavar="MOUNTPOINT", help="where the store is mounted")
    u.add_argument("-z", "--lazy", action="store_true", help="lazy unmount (detach now, finish when unused)")
    u.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS", help="seconds to wait for the daemon (default 120)")
    u.set_defaults(func=cmd_umount)

    f = sub.add_parser("fsck", help="check a store (read-only unless --repair)",
                       usage="simfs fsck [--repair] [--verify-data] [--json] [--no-progress] STORE\n"
                             "       simfs fsck --restore-catalog [BACKUP] STORE")
    f.add_argument("store", nargs="?", metavar="STORE", help="the store directory (not the mount point)")
    f.add_argument("--restore-catalog", nargs="?", const="", metavar="BACKUP",
                   help="replace the catalog by a metadata backup (the newest unless BACKUP names one) and put "
                        "every object file it does not know into /lost+found/ (store must not be mounted)")
    f.add_argument("--repair", action="store_true", help="fix what can be fixed (store must not be mounted)")
    f.add_argument("--verify-data", action="store_true", help="re-hash every object's content")
    f.add_argument("--json", action="store_true", help="machine-readable report")
    f.add_argument("--no-progress", action="store_true", help="no progress bars")
    f.set_defaults(func=cmd_fsck)

    q = sub.add_parser("similar", help="list the stored files most similar to PATH, or with --groups every "
                       "group of similar images (on a mounted store)",
                       usage="simfs similar [-k N] [--json] PATH\n"
                             "       simfs similar --groups [--html OUT.html] [--sheet OUT.png] [--json] MOUNTPOINT")
    q.add_argument("path", metavar="PATH", help="a file on a mounted simfs (with --groups: the mount point)")
    q.add_argument("--groups", action="store_true",
                   help="every group of similar images in the store (exact copies, edits, same scene) with the "
                        "bytes each costs")
    q.add_argument("--html", metavar="OUT.html", help="with --groups: also write a page with thumbnails")
    q.add_argument("--sheet", metavar="OUT.png",
                   help="with --groups: also write a contact sheet (one row of thumbnails per group)")
    q.add_argument("-k", type=positive_int, default=10, help="how many (default 10, at least 1)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=cmd_similar)

    c = sub.add_parser("compact", help="describe and encode everything the background ingest has not (store unmounted)")
    c.add_argument("store", metavar="STORE", help="the store directory (not mounted)")
    c.add_argument("--noencode", action="store_true", help="only describe images, keep PNGs verbatim")
    c.add_argument("--json", action="store_true", help="machine-readable summary")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_compact)

    st = sub.add_parser("status", help="live background-ingest status of a mounted store: backlog, MP/s, savings")
    st.add_argument("mountpoint", metavar="MOUNTPOINT", help="the mount point (or the directory of a mounted store)")
    st.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")
    st.add_argument("--json", action="store_true", help="machine-readable (with --watch: one document per line)")
    st.set_defaults(func=cmd_status)

    s = sub.add_parser("stats", help="logical vs stored size of a store (works while mounted)")
    s.add_argument("store", metavar="STORE_OR_MOUNTPOINT", help="a store directory or the mount point of one")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--plot", metavar="OUT.png", help="also draw where the bytes went (PNG, 1200x800)")
    s.set_defaults(func=cmd_stats)

    man = sub.add_parser("man", help="print the simfs(1) manual page (roff; view with: simfs man | man -l -)")
    man.set_defaults(func=cmd_man)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SimfsError as exc:
        print(f"simfs: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("simfs: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
