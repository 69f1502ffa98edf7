#!/usr/bin/env python3
"""Generate a held-out edit set: copies edited by programs the codec was never developed against.

`make_edit_set.py` is the set the inter models were built and tuned on (ImageMagick, libvips,
cjpeg, pngquant). This one uses other programs — ffmpeg's filters and its swscale resizer,
GraphicsMagick, netpbm — on six dev-set photos that set does not use, and every copy is written by
the program's own PNG writer (ffmpeg's encoder, GraphicsMagick's libpng, pnmtopng), as a user's
file would be. Nothing in the codec knows these programs; `bench_codec.py --pairs` on this set
measures whether the fitted models generalise. Same layout as make_edit_set.py.

Needs: apt ffmpeg graphicsmagick netpbm.
Example: python scripts/make_heldout_set.py /tmp/heldout --sources ../shared/data/devset
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_edit_set import generate  # noqa: E402

# Dev-set scenes that make_edit_set's measured subset does not use.
HELDOUT_SOURCES = (
    "opencv-pairs/leuvenA.png", "opencv-pairs/rubberwhale1.png", "scene-vlfeat/river1.png",
    "scene-vlfeat/roofs1.png", "scene-weir/weir_1.png", "stereo-motorcycle/motorcycle_left.png",
)


def ff(vf: str) -> Callable[[Path, Path], None]:
    """An ffmpeg filter chain (RGB input; filters that work in YUV get ffmpeg's own conversions)."""
    def run(src: Path, dst: Path) -> None:
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-vf", vf, "-pix_fmt", "rgb24",
                        str(dst)], check=True)
    return run


def ff_mjpeg(q: int, pix_fmt: str) -> Callable[[Path, Path], None]:
    """ffmpeg's own JPEG encoder and decoder (not libjpeg), decoded back to RGB by swscale."""
    def run(src: Path, dst: Path) -> None:
        with tempfile.TemporaryDirectory() as td:
            j = Path(td) / "x.jpg"
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-c:v", "mjpeg", "-q:v", str(q),
                            "-pix_fmt", pix_fmt, str(j)], check=True)
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(j), "-pix_fmt", "rgb24", str(dst)],
                           check=True)
    return run


def gm(args: list[str]) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        subprocess.run(["gm", "convert", str(src), *args, str(dst)], check=True, stderr=subprocess.DEVNULL)
    return run


def gm_jpeg(quality: int) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        with tempfile.TemporaryDirectory() as td:
            j = Path(td) / "x.jpg"
            subprocess.run(["gm", "convert", str(src), "-quality", str(quality), str(j)], check=True,
                           stderr=subprocess.DEVNULL)
            subprocess.run(["gm", "convert", str(j), str(dst)], check=True)
    return run


def _pipe(cmds: list[list[str]]) -> bytes:
    """Run a shell-free pipeline and return the last command's output."""
    procs: list[subprocess.Popen] = []
    prev = None
    for c in cmds:
        p = subprocess.Popen(c, stdin=prev, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if prev is not None:
            prev.close()
        prev = p.stdout
        procs.append(p)
    assert prev is not None
    data = prev.read()
    if any(p.wait() for p in procs):
        raise RuntimeError(f"pipeline failed: {cmds}")
    return data


def netpbm(chain: list[list[str]]) -> Callable[[Path, Path], None]:
    """A netpbm pipeline: pngtopam | <chain> | pnmtopng."""
    def run(src: Path, dst: Path) -> None:
        dst.write_bytes(_pipe([["pngtopam", str(src)], *chain, ["pnmtopng"]]))
    return run


def netpbm_jpeg(args: list[str]) -> Callable[[Path, Path], None]:
    """netpbm's pnmtojpeg / jpegtopnm (libjpeg through netpbm's own options)."""
    def run(src: Path, dst: Path) -> None:
        with tempfile.TemporaryDirectory() as td:
            j = Path(td) / "x.jpg"
            j.write_bytes(_pipe([["pngtopam", str(src)], ["pnmtojpeg", *args]]))
            dst.write_bytes(_pipe([["jpegtopnm", str(j)], ["pnmtopng"]]))
    return run


HELDOUT_EDITS: dict[str, dict[str, Callable[[Path, Path], None]]] = {
    "colour": {
        "ff_eq": ff("eq=brightness=0.04:saturation=1.25"),               # in YUV, ffmpeg's conversions
        "ff_hue": ff("hue=h=10"),
        "ff_colorbalance": ff("colorbalance=rm=0.08:bm=-0.06"),
        "ff_curves_vintage": ff("curves=preset=vintage"),
        "ff_colortemperature": ff("colortemperature=temperature=5200"),
        "ff_channelmixer": ff("colorchannelmixer=rr=0.9:rg=0.1:gg=0.95:gb=0.05:bb=0.9:br=0.1"),
        "ff_vibrance": ff("vibrance=intensity=0.3"),
        "gm_modulate": gm(["-modulate", "105,125,97"]),
        "gm_gamma": gm(["-gamma", "1.25"]),
        "np_gamma": netpbm([["pnmgamma", "0.8"]]),
    },
    "rescale": {
        "ff_bicubic50": ff("scale=iw/2:ih/2:flags=bicubic"),
        "ff_lanczos60": ff("scale=trunc(iw*0.6):trunc(ih*0.6):flags=lanczos"),
        "ff_area33": ff("scale=trunc(iw/3):trunc(ih/3):flags=area"),
        "ff_crop_bilinear": ff("crop=trunc(iw*0.8):trunc(ih*0.8),scale=trunc(iw*0.7):trunc(ih*0.7):flags=bilinear"),
        "gm_resize50": gm(["-resize", "50%"]),
        "gm_box60": gm(["-filter", "Box", "-resize", "60%"]),
        "np_pamscale50": netpbm([["pamscale", "0.5"]]),
        "np_catrom45": netpbm([["pamscale", "-filter=catrom", "0.45"]]),
    },
    "jpeg": {
        "ff_mjpeg_q3_420": ff_mjpeg(3, "yuvj420p"),
        "ff_mjpeg_q2_444": ff_mjpeg(2, "yuvj444p"),
        "gm_jpeg_q88": gm_jpeg(88),
        "np_jpeg_q80": netpbm_jpeg(["-quality=80"]),
        "np_jpeg_float_444": netpbm_jpeg(["-quality=90", "-dct=float", "-sample=1x1,1x1,1x1"]),
        "np_jpeg_smooth": netpbm_jpeg(["-quality=85", "-smooth=15"]),
    },
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--sources", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/devset")
    ap.add_argument("--only", default="", help="comma-separated kinds to generate (default all)")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k] or list(HELDOUT_EDITS)
    generate(args.out, args.sources, HELDOUT_EDITS, kinds, HELDOUT_SOURCES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
