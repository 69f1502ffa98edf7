"""First-use mistakes get one clear line and a distinct exit code, never a traceback or a stray store."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import DEVSET, Mount, needs_devset, needs_fuse, run_simfs

from simfs.errors import ExitCode


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


def test_version() -> None:
    out = run_simfs("--version")
    assert out.returncode == 0 and out.stdout.startswith("simfs ")


def test_store_equal_to_or_inside_the_mountpoint_is_refused(tmp_path: Path) -> None:
    same = tmp_path / "same"
    same.mkdir()
    out = run_simfs("mount", str(same), str(same))
    assert out.returncode == ExitCode.BAD_MOUNTPOINT and one_line(out.stderr), out.stderr
    assert list(same.iterdir()) == []  # no store was created in it
    out = run_simfs("mount", str(same / "store"), str(same))
    assert out.returncode == ExitCode.BAD_MOUNTPOINT and "hidden" in out.stderr
    (tmp_path / "st").mkdir()
    out = run_simfs("mount", str(tmp_path / "st"), str(tmp_path / "st" / "m"))
    assert out.returncode == ExitCode.BAD_MOUNTPOINT and "inside the store" in out.stderr


def test_mistyped_store_path_does_not_create_parents(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    out = run_simfs("mount", str(tmp_path / "phtoos" / "store"), str(tmp_path / "mnt"))
    assert out.returncode == ExitCode.BAD_STORE and "does not exist" in out.stderr and one_line(out.stderr)
    assert not (tmp_path / "phtoos").exists()


def test_fsck_of_a_file_or_a_missing_directory(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    out = run_simfs("fsck", str(f))
    assert out.returncode == ExitCode.BAD_STORE and one_line(out.stderr) and "is a file" in out.stderr
    out = run_simfs("fsck", str(tmp_path / "missing"))
    assert out.returncode == ExitCode.BAD_STORE and "no such directory" in out.stderr


def test_similar_k_must_be_positive(tmp_path: Path) -> None:
    for k in ("0", "-3", "many"):
        out = run_simfs("similar", str(tmp_path / "x.png"), "-k", k)
        assert out.returncode == ExitCode.USAGE, (k, out.stderr)


@needs_fuse
@needs_devset
def test_similar_lists_byte_identical_copies_first_with_absolute_paths(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt") as m:
        src = DEVSET / "edit-ukbench" / "ukbench00120.png"
        shutil.copyfile(src, m.mountpoint / "a.png")
        shutil.copyfile(src, m.mountpoint / "dup.png")
        out = run_simfs("similar", str(m.mountpoint / "dup.png"), "--json")
        assert out.returncode == 0, out.stderr
        import json

        report = json.loads(out.stdout)
        first = report["similar"][0]
        assert first["relation"] == "identical" and first["paths"] == [str(m.mountpoint / "a.png")]
        assert report["worth_trying_inter"]
        out = run_simfs("similar", str(m.mountpoint / "nothere.png"))
        assert out.returncode == ExitCode.USAGE and "no such file" in out.stderr
