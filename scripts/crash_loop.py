#!/usr/bin/env python3
"""Crash test: kill -9 the simfs daemon while a writer works; every fsync'd file must survive intact.

    python scripts/crash_loop.py --rounds 20 [--workdir DIR] [--seed N]

Each round: mount (simfs mount --foreground), start a writer process that creates files, fsyncs and
closes them, and only then records (name, sha256) in a journal on the local disk; kill -9 the daemon
at a random moment; detach the dead mount; check fsck finds no errors; remount; verify that every
journalled file reads back byte-identical; unmount cleanly; fsck must be clean.
Exit status 0 when every round passed. Prints one line per round and a summary table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIMFS = [sys.executable, "-m", "simfs"]


def is_mounted(mnt: Path) -> bool:
    target = str(mnt.resolve())
    with open("/proc/mounts") as fh:
        return any(line.split()[1] == target for line in fh)


DEVSET = REPO.parent / "shared" / "data" / "devset"


def writer(mnt: Path, journal: Path, seed: int) -> None:
    """Write files until the mount dies. Journal lines: done <name> <sha> | pending <name> <sha>."""
    rng = random.Random(seed)
    # Real images too (when the dev set is there), so kills also interrupt background ingest.
    images = sorted(DEVSET.glob("burst-*/*.png"))[:40] + sorted(DEVSET.glob("edit-*/*.png"))[:40]
    jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def note(kind: str, name: str, digest: str) -> None:
        os.write(jfd, f"{kind} {name} {digest}\n".encode())
        os.fsync(jfd)

    i = 0
    big: dict[str, bytearray] = {}  # large (chunked) files written so far, edited in place later
    try:
        (mnt / f"w{seed}").mkdir(exist_ok=True)
        while True:
            i += 1
            if rng.random() < 0.08:
                # a large file (stored in chunks), sparse in part; or a small in-place edit of one
                if big and rng.random() < 0.6:
                    name = rng.choice(sorted(big))
                    content = big[name]
                    off = rng.randrange(0, len(content) + (1 << 20))
                    patch = rng.randbytes(rng.choice([1, 4096, 70_000]))
                    if off > len(content):
                        content.extend(bytes(off - len(content)))
                    content[off:off + len(patch)] = patch
                    note("pending", name, hashlib.sha256(content).hexdigest())
                    with open(mnt / name, "r+b") as fh:
                        fh.seek(off)
                        fh.write(patch)
                        fh.flush()
                        os.fsync(fh.fileno())
                else:
                    name = f"w{seed}/big{i}"
                    content = bytearray(rng.randbytes(rng.randrange(9 << 20, 14 << 20)))
                    hole = rng.randrange(0, len(content) - (3 << 20))
                    content[hole:hole + (3 << 20)] = bytes(3 << 20)
                    with open(mnt / name, "wb") as fh:
                        fh.write(content[:hole])
                        fh.seek(hole + (3 << 20))
                        fh.write(content[hole + (3 << 20):])
                        fh.flush()
                        os.fsync(fh.fileno())
                    big[name] = content
                note("done", name, hashlib.sha256(big[name]).hexdigest())
                continue
            size = rng.choice([0, 1, 100, 4096, 65_536, 300_000]) if rng.random() < 0.85 else rng.randrange(1, 6 << 20)
            data = rng.randbytes(size) if rng.random() < 0.7 else bytes([i % 256]) * size
            if images and rng.random() < 0.25:
                data = rng.choice(images).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if rng.random() < 0.7:
                name = f"w{seed}/f{i}"
                with open(mnt / name, "wb") as fh:
                    for off in range(0, len(data), 1 << 20):
                        fh.write(data[off:off + (1 << 20)])
                    fh.flush()
                    os.fsync(fh.fileno())
                note("done", name, digest)
            else:
                # atomic replace: tmp + fsync + rename over one of a few stable names
                name = f"w{seed}/current{rng.randrange(3)}"
                tmp = f"w{seed}/.tmp{i}"
                with open(mnt / tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                note("pending", name, digest)
                os.rename(mnt / tmp, mnt / name)
                note("done", name, digest)
    except OSError:
        return  # the daemon died under us: expected


def verify(mnt: Path, journal: Path) -> tuple[int, list[str]]:
    """Check every journalled file; return (files checked, problems)."""
    last_done: dict[str, str] = {}
    pending_after: dict[str, set[str]] = {}
    if journal.exists():
        for line in journal.read_text().splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue  # a torn last line from the killed writer
            kind, name, digest = parts
            if kind == "done":
                last_done[name] = digest
                pending_after[name] = set()
            else:
                pending_after.setdefault(name, set()).add(digest)
    problems = []
    for name, digest in last_done.items():
        try:
            actual = hashlib.sha256((mnt / name).read_bytes()).hexdigest()
        except OSError as exc:
            problems.append(f"{name}: unreadable after crash ({exc})")
            continue
        if actual != digest and actual not in pending_after.get(name, set()):
            problems.append(f"{name}: content differs from what was fsync'd")
    return len(last_done), problems


def fsck(store: Path) -> dict:
    out = subprocess.run([*SIMFS, "fsck", str(store), "--json", "--verify-data"], capture_output=True, text=True,
                         cwd=REPO, timeout=600)
    report = json.loads(out.stdout)
    report["returncode"] = out.returncode
    return report


def start_mount(store: Path, mnt: Path, log: Path) -> subprocess.Popen:
    logf = open(log, "ab")
    proc = subprocess.Popen([*SIMFS, "mount", "--foreground", str(store), str(mnt)], stdout=logf,
                            stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while not is_mounted(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mount failed; see {log}")
        time.sleep(0.02)
    return proc


def run(rounds: int, workdir: Path, seed: int, max_delay: float) -> int:
    store, mnt, journal, log = workdir / "store", workdir / "mnt", workdir / "journal", workdir / "mount.log"
    mnt.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    failures = 0
    rows = []
    for rnd in range(1, rounds + 1):
        proc = start_mount(store, mnt, log)
        w = subprocess.Popen([sys.executable, __file__, "writer", str(mnt), str(journal), str(seed * 1000 + rnd)],
                             cwd=REPO)
        delay = rng.uniform(0.2, max_delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        w.wait(timeout=60)
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        crashed = fsck(store)
        errors = [f for f in crashed["findings"] if f["severity"] == "error"]
        proc = start_mount(store, mnt, log)
        checked, problems = verify(mnt, journal)
        subprocess.run([*SIMFS, "umount", str(mnt)], check=True, cwd=REPO)
        proc.wait(timeout=60)
        after = fsck(store)
        ok = not errors and not problems and after["clean"] and after["returncode"] == 0 and proc.returncode == 0
        failures += not ok
        rows.append((rnd, f"{delay:.2f}", checked, len(errors), len(problems), "clean" if after["clean"] else "NOT CLEAN",
                     "ok" if ok else "FAIL"))
        print(f"round {rnd}: killed after {delay:.2f}s, {checked} fsync'd files verified, "
              f"{len(errors)} fsck errors before remount, {len(problems)} bad files, fsck after: "
              f"{'clean' if after['clean'] else after['findings']}", flush=True)
        for p in problems[:10]:
            print("   ", p)
        for e in errors[:10]:
            print("   ", e)
    print()
    print(f"{'round':>5} {'kill@s':>7} {'files':>6} {'errs':>5} {'bad':>4} {'fsck':>9} {'result':>6}")
    for row in rows:
        print(f"{row[0]:>5} {row[1]:>7} {row[2]:>6} {row[3]:>5} {row[4]:>4} {row[5]:>9} {row[6]:>6}")
    print(f"\n{rounds - failures}/{rounds} rounds passed")
    return 1 if failures else 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "writer":
        writer(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--workdir", type=Path, help="keep the store here (default: a temporary directory)")
    ap.add_argument("--max-delay", type=float, default=3.0, help="latest kill, seconds after mounting")
    args = ap.parse_args()
    print(f"seed {args.seed}")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args.rounds, args.workdir, args.seed, args.max_delay)
    tmp = Path(tempfile.mkdtemp(prefix="simfs-crash-"))
    try:
        return run(args.rounds, tmp, args.seed, args.max_delay)
    finally:
        mnt = tmp / "mnt"
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
