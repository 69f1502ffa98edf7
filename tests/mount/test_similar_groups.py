"""`simfs similar --groups`: every group of similar images on a real mount, as text, JSON, HTML and a sheet."""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import DEVSET, Mount, needs_devset, needs_fuse, run_simfs
from PIL import Image

from simfs.errors import ExitCode
from simfs.groups_render import THUMB, sheet_size

UKB = DEVSET / "edit-ukbench"


class Page(HTMLParser):
    """Groups of the HTML page: per section, its member rows (paths, sizes) and thumbnails."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[dict] = []
        self._cls: list[str] = []
        self._cells: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self._cls.append(a.get("class", ""))
        if tag == "section":
            self.groups.append({"paths": [], "rows": [], "thumbs": []})
        elif tag == "tr" and a.get("class") == "member":
            self._cells = []
            self.groups[-1]["rows"].append(self._cells)
        elif tag == "td" and self._cells is not None:
            self._cells.append("")
        elif tag == "img":
            self.groups[-1]["thumbs"].append(a["src"])

    def handle_endtag(self, tag: str) -> None:
        self._cls.pop()
        if tag == "tr":
            self._cells = None

    def handle_data(self, data: str) -> None:
        if self._cls and self._cls[-1] == "path":
            self.groups[-1]["paths"].append(data)
        if self._cells:
            self._cells[-1] += data


def wait_described(mnt: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        doc = json.loads(run_simfs("status", str(mnt), "--json").stdout)
        if doc["backlog"]["total"] == 0:
            return
        assert time.monotonic() < deadline, doc
        time.sleep(0.5)


@needs_fuse
@needs_devset
@pytest.mark.timeout(600)
def test_groups_html_and_sheet_list_every_group(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["noencode", "workers=1"]) as m:
        mnt = m.mountpoint
        (mnt / "u").mkdir()
        names = ["ukbench00120.png", "ukbench00120_gray.png", "ukbench00120_resize.png", "ukbench09380.png",
                 "ukbench09380_webp.png"]
        for name in names:
            shutil.copyfile(UKB / name, mnt / "u" / name)
        shutil.copyfile(UKB / "ukbench00120.png", mnt / "dup.png")  # a byte-identical copy
        shutil.copyfile(DEVSET / "homog-boat" / "img1.png", mnt / "alone.png")  # similar to nothing stored
        wait_described(mnt)
        html_out, sheet_out = tmp_path / "groups.html", tmp_path / "groups.png"
        out = run_simfs("similar", "--groups", "--html", str(html_out), "--sheet", str(sheet_out), str(mnt))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("2 groups of similar images") and "(same content)" in out.stdout
        doc = json.loads(run_simfs("similar", "--groups", "--json", str(mnt)).stdout)
        expected = [
            sorted(str(p) for p in (mnt / "dup.png", *(mnt / "u" / n for n in names[:3]))),
            sorted(str(mnt / "u" / n) for n in names[3:]),
        ]
        assert [sorted(p for mem in g["members"] for p in mem["paths"]) for g in doc["groups"]] == expected
        assert "identical" in doc["groups"][0]["relations"] and doc["groups"][0]["files"] == 4
        assert len(doc["groups"][0]["members"]) == 3  # dup.png and the original are one object
        for g in doc["groups"]:
            for mem in g["members"]:
                assert mem["kind"] == "verbatim" and mem["size"] == (UKB / Path(mem["paths"][-1]).name).stat().st_size
                assert mem["stored"] > mem["size"]  # verbatim: content plus the object header
            assert g["stored_bytes"] == sum(mem["stored"] for mem in g["members"])
        page = Page()
        page.feed(html_out.read_text())
        assert [sorted(g["paths"]) for g in page.groups] == expected  # every group, nothing else
        for g, want in zip(page.groups, doc["groups"], strict=True):
            assert [int(r[3]) for r in g["rows"]] == [mem["size"] for mem in want["members"]]
            assert [int(r[4]) for r in g["rows"]] == [mem["stored"] for mem in want["members"]]
            for src in g["thumbs"]:
                img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
                assert img.format == "PNG" and max(img.size) == THUMB
            assert len(g["thumbs"]) == len(want["members"])
        assert str(mnt / "alone.png") not in html_out.read_text()
        with Image.open(sheet_out) as sheet:
            assert sheet.format == "PNG" and sheet.size == sheet_size(2)
            sheet.load()


def test_groups_usage_errors(tmp_path: Path) -> None:
    out = run_simfs("similar", "--html", str(tmp_path / "x.html"), str(tmp_path))
    assert out.returncode == ExitCode.USAGE and "--html and --sheet go with --groups" in out.stderr
    out = run_simfs("similar", "--groups", "--sheet", str(tmp_path / "no" / "x.png"), str(tmp_path))
    assert out.returncode == ExitCode.USAGE and "cannot write there" in out.stderr and "Traceback" not in out.stderr
    out = run_simfs("similar", "--groups", str(tmp_path))
    assert out.returncode == ExitCode.NOT_MOUNTED and "not on a mounted simfs" in out.stderr


@needs_fuse
@needs_devset
@pytest.mark.timeout(600)
def test_groups_follow_reference_chains_and_show_pinned_bases(tmp_path: Path) -> None:
    with Mount(tmp_path / "store", tmp_path / "mnt", options=["workers=1"]) as m:
        mnt = m.mountpoint
        for name in ("ukbench09380.png", "ukbench09380_webp.png"):
            shutil.copyfile(UKB / name, mnt / name)
        wait_described(mnt)
        (mnt / "ukbench09380.png").unlink()  # the re-saved copy is coded against it: it stays, pinned
        doc = json.loads(run_simfs("similar", "--groups", "--json", str(mnt)).stdout)
        assert len(doc["groups"]) == 1, doc
        g = doc["groups"][0]
        kinds = {mem["kind"]: mem for mem in g["members"]}
        assert set(kinds) == {"inter", "pinned"} and kinds["pinned"]["paths"] == []
        assert kinds["inter"]["base"] == kinds["pinned"]["object"]
        assert g["files"] == 1 and g["logical_bytes"] == (UKB / "ukbench09380_webp.png").stat().st_size
        assert g["stored_bytes"] == kinds["inter"]["stored"] + kinds["pinned"]["stored"]
        assert kinds["inter"]["stored"] < 0.05 * kinds["inter"]["size"]  # a near-free copy
        html_out = tmp_path / "g.html"
        assert run_simfs("similar", "--groups", "--html", str(html_out), str(mnt)).returncode == 0
        text = html_out.read_text()
        assert "(no file: kept as a base" in text and "inter against pinned" in text
