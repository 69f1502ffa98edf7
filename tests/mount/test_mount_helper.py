"""`mount -t fuse.simfs`, `mount -t fuse mount.simfs#STORE` and fstab lines, through the real mount(8)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, assert_fsck_clean, is_mounted, needs_fuse, smooth_png

from simfs.mount_helper import filter_options, simfs_argv
from simfs.storage import StoreLock

SBIN = Path("/usr/sbin") if Path("/usr/sbin").is_dir() else Path("/sbin")
HELPERS = ("mount.fuse.simfs", "mount.simfs")


def test_helper_arguments_drop_fstab_only_options() -> None:
    assert filter_options("defaults,noauto,nofail,_netdev,x-systemd.automount,X-mount.mkdir,comment=x,"
                          "rw,ro,workers=2,allow_other") == ["ro", "workers=2", "allow_other"]
    args, fake, verbose = simfs_argv(["/s", "/m", "-n", "-o", "rw,noencode", "-t", "fuse.simfs"])
    assert args == ["mount", "/s", "/m", "-o", "noencode"] and not fake and not verbose
    assert simfs_argv(["/s", "/m", "-fv"])[1:] == (True, True)
    assert simfs_argv(["mount.simfs#/s", "/m"])[0] == ["mount", "/s", "/m"]
    assert simfs_argv(["/s"])[0] is None and simfs_argv(["/s", "/m", "-N", "1"])[0] is None


def test_helper_usage_error_is_one_line_not_a_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "simfs.mount_helper", "/only-one"], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 2 and "usage: mount.fuse.simfs" in out.stderr and "Traceback" not in out.stderr


@pytest.fixture
def helpers() -> Iterator[None]:
    """The console scripts linked where mount(8) and mount.fuse3 look; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("installing a mount helper into /usr/sbin needs root")
    made = []
    for name in HELPERS:
        script = Path(sys.executable).parent / name
        if not script.exists():
            pytest.skip(f"{script} missing: run pip install -e . (scripts/setup.sh)")
        target = SBIN / name
        if target.is_symlink() or target.exists():
            if os.path.realpath(target) != os.path.realpath(script):
                pytest.skip(f"{target} belongs to another simfs installation")
            continue
        target.symlink_to(script)
        made.append(target)
    try:
        yield
    finally:
        for target in made:
            target.unlink()


def mount8(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=120)


def umount8(mnt: Path, store: Path) -> None:
    out = subprocess.run(["umount", str(mnt)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 60
    while StoreLock.holder(store) is not None:  # the daemon flushes and exits once the kernel lets go
        assert time.monotonic() < deadline, "daemon did not release the store"
        time.sleep(0.05)
    assert not is_mounted(mnt)


def fstype(mnt: Path) -> tuple[str, list[str]]:
    with open("/proc/mounts") as fh:
        for line in fh:
            parts = line.split()
            if parts[1] == str(mnt):
                return parts[2], parts[3].split(",")
    raise AssertionError(f"{mnt} not mounted")


@needs_fuse
def test_mount_t_fuse_simfs_and_umount(tmp_path: Path, helpers: None) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    out = mount8("-t", "fuse.simfs", "-o", "workers=1,noencode,nofail", str(store), str(mnt))
    assert out.returncode == 0, out.stderr
    try:
        kind, opts = fstype(mnt)
        assert kind == "fuse.simfs" and "default_permissions" in opts
        (mnt / "a.png").write_bytes(smooth_png(1))
        assert (mnt / "a.png").read_bytes() == smooth_png(1)
    finally:
        umount8(mnt, store)
    # the TYPE#SOURCE form, dispatched by fuse3's mount.fuse3
    out = mount8("-t", "fuse", "-o", "workers=1,ro", f"mount.simfs#{store}", str(mnt))
    assert out.returncode == 0, out.stderr
    try:
        assert (mnt / "a.png").read_bytes() == smooth_png(1)
        assert "ro" in fstype(mnt)[1]
    finally:
        umount8(mnt, store)
    assert_fsck_clean(store)


@needs_fuse
def test_fstab_line_mounts_with_fstab_only_options_dropped(tmp_path: Path, helpers: None) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    fstab = tmp_path / "fstab"  # mount --fstab: the real /etc/fstab is never touched
    fstab.write_text(f"# simfs test\n{store} {mnt} fuse.simfs "
                     "defaults,noauto,nofail,_netdev,x-systemd.automount,workers=1,maxdepth=2 0 0\n")
    out = mount8("--fstab", str(fstab), str(mnt))
    assert out.returncode == 0, out.stderr
    try:
        assert fstype(mnt)[0] == "fuse.simfs"
        (mnt / "b.png").write_bytes(smooth_png(2))
    finally:
        umount8(mnt, store)
    bad = tmp_path / "fstab.bad"
    bad.write_text(f"{store} {mnt} fuse.simfs defaults,bogus_option 0 0\n")
    out = mount8("--fstab", str(bad), str(mnt))
    assert out.returncode == 2 and "-o bogus_option: unknown mount option" in out.stderr, out.stderr
    assert not is_mounted(mnt) and shutil.which("mount")
