"""Thumbnails of the groups page: any PNG Pillow reads becomes an RGB picture that saves as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from simfs.groups import Member
from simfs.groups_render import THUMB, thumbnail


@pytest.mark.parametrize("mode, transparency", [("I;16", 65535), ("L", 0), ("P", 3), ("RGB", (1, 2, 3)),
                                                ("RGBA", None)])
def test_thumbnail_of_a_png_with_transparency_saves(tmp_path: Path, mode: str, transparency: object) -> None:
    path = tmp_path / f"t-{mode}.png"
    img = Image.new(mode, (300, 200))
    extra = {} if transparency is None else {"transparency": transparency}
    img.save(path, format="PNG", **extra)
    thumb = thumbnail(Member(b"x" * 32, [str(path)], "verbatim", path.stat().st_size, path.stat().st_size))
    assert thumb.mode == "RGB" and max(thumb.size) <= THUMB
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")  # the groups page embeds it: this raised for 16-bit grey with tRNS
    assert Image.open(io.BytesIO(buf.getvalue())).size == thumb.size


def test_thumbnail_of_a_palette_png_with_transparency_bytes_warns_nothing(tmp_path: Path) -> None:
    """A palette PNG whose tRNS gives several alpha bytes (PngSuite tbbn3p08) makes Pillow warn
    "should be converted to RGBA" on the demo's console unless it goes through RGBA first."""
    import warnings

    path = tmp_path / "p.png"
    img = Image.new("P", (300, 200))
    img.putpalette([i % 256 for i in range(768)])
    img.save(path, format="PNG", transparency=bytes([0, 128, 255]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        thumb = thumbnail(Member(b"x" * 32, [str(path)], "verbatim", 1, 1))
    assert thumb.mode == "RGB" and max(thumb.size) <= THUMB
