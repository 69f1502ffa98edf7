"""Every dev-set file (PngSuite, malformed PNGs, photos) copied through a real mount reads back identical."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from conftest import DEVSET, Mount, assert_fsck_clean, needs_devset, needs_fuse


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@needs_fuse
@needs_devset
def test_devset_round_trips_through_mount_and_remount(tmp_path: Path) -> None:
    expected = tree_digest(DEVSET)
    assert len(expected) > 250
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    with Mount(store, mnt):
        subprocess.run(["cp", "-r", str(DEVSET), str(mnt / "devset")], check=True)
        assert tree_digest(mnt / "devset") == expected
        # rsync -c compares checksums: must see nothing to transfer
        out = subprocess.run(["rsync", "-rcn", "--itemize-changes", f"{DEVSET}/", f"{mnt / 'devset'}/"],
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == ""
    assert_fsck_clean(store)
    with Mount(store, mnt):
        assert tree_digest(mnt / "devset") == expected
    assert_fsck_clean(store)
