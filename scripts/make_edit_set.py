#!/usr/bin/env python3
"""Generate an edit set: copies of real photos edited by programs other than Pillow and OpenCV.

The codec replays Pillow/OpenCV operations exactly; this set measures what inter coding does on
edits it cannot replay: colour edits, rescales, JPEG round trips and palette (quantised) copies made
by ImageMagick (convert), libvips (pyvips), libjpeg-turbo's cjpeg/djpeg and pngquant. It writes
OUT/<kind>/<source>__<edit>.png (each PNG written by ImageMagick, or by pngquant for its copies:
libvips' PNGs are not reproducible), a copy of each source as OUT/src/<source>.png,
and OUT/pairs.tsv (target, reference, group = kind, edit) for `bench_codec.py --pairs`.

Needs: apt imagemagick libjpeg-turbo-progs pngquant; pip pyvips-binary pyvips (`pip install -e .[bench]`).
Example: python scripts/make_edit_set.py /tmp/editset --sources ../shared/data/devset
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

# One colour photo (or grey) per scene of the dev set: distinct content, no edited copies.
DEFAULT_SOURCES = (
    "burst-dinosaur/viff.000.png", "burst-vtest/f00000.png", "edit-sacre-coeur/02928139_3448003521.png",
    "edit-ukbench/ukbench00120.png", "homog-graf/img1.png", "homog-boat/img1.png",
    "opencv-pairs/aero1.png", "opencv-pairs/leuvenA.png", "opencv-pairs/rubberwhale1.png",
    "scene-vlfeat/river1.png", "scene-vlfeat/roofs1.png", "scene-weir/weir_1.png",
    "stereo-motorcycle/motorcycle_left.png",
)


def _convert() -> str:
    # /usr/local/bin/convert may be a stand-in; ImageMagick's own binary lives in /usr/bin
    for c in ("/usr/bin/convert", "magick", "convert"):
        p = shutil.which(c)
        if p:
            return p
    raise SystemExit("ImageMagick not found: apt-get install imagemagick")


def im(args: list[str]) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        subprocess.run([_convert(), str(src), *args, str(dst)], check=True)
    return run


def im_jpeg(quality: int, sampling: str) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        with tempfile.TemporaryDirectory() as td:
            j = Path(td) / "x.jpg"
            subprocess.run([_convert(), str(src), "-quality", str(quality), "-sampling-factor", sampling, str(j)],
                           check=True)
            subprocess.run([_convert(), str(j), str(dst)], check=True)
    return run


def cjpeg(args: list[str], dargs: list[str]) -> Callable[[Path, Path], None]:
    """libjpeg-turbo's command-line encoder/decoder (other DCT, sampling and decoder settings than
    Pillow's defaults); the decoded PPM is written as PNG by ImageMagick."""
    def run(src: Path, dst: Path) -> None:
        with tempfile.TemporaryDirectory() as td:
            ppm, j, out = Path(td) / "in.ppm", Path(td) / "x.jpg", Path(td) / "out.ppm"
            subprocess.run([_convert(), str(src), str(ppm)], check=True)
            subprocess.run(["cjpeg", *args, "-outfile", str(j), str(ppm)], check=True)
            subprocess.run(["djpeg", *dargs, "-outfile", str(out), str(j)], check=True)
            subprocess.run([_convert(), str(out), str(dst)], check=True)
    return run


def pngquant(args: list[str]) -> Callable[[Path, Path], None]:
    """pngquant (libimagequant): a photo reduced to a palette of its best colours, as web optimisers
    do; its own PNG writer, kept as it wrote the file."""
    def run(src: Path, dst: Path) -> None:
        subprocess.run(["pngquant", *args, "--force", "--output", str(dst), "--", str(src)], check=True)
    return run


def vips_palette(quality: int, dither: float) -> Callable[[Path, Path], None]:
    """libvips' palette PNG (libimagequant through libvips), re-written by ImageMagick as a palette PNG
    (libvips' own PNG writer is not reproducible)."""
    def run(src: Path, dst: Path) -> None:
        import pyvips

        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td) / "x.png"
            pyvips.Image.new_from_file(str(src)).pngsave(str(tmp), palette=True, Q=quality, dither=dither)
            subprocess.run([_convert(), str(tmp), f"PNG8:{dst}"], check=True)
    return run


def vips(fn: Callable) -> Callable[[Path, Path], None]:
    def run(src: Path, dst: Path) -> None:
        import pyvips

        img = pyvips.Image.new_from_file(str(src), access="sequential")
        # libvips' own PNG writer (libspng + its zlib) is not reproducible, so simfs would store it
        # verbatim and the inter coder would never see it: libvips makes the pixels, ImageMagick
        # writes the PNG.
        with tempfile.TemporaryDirectory() as td:
            tif = Path(td) / "x.tif"
            fn(img, pyvips).write_to_file(str(tif))
            subprocess.run([_convert(), str(tif), str(dst)], check=True)
    return run


def _vips_jpeg(q: int, **kw) -> Callable:
    def f(img, pv):
        buf = img.jpegsave_buffer(Q=q, **kw)
        return pv.Image.new_from_buffer(buf, "")
    return f


def _vips_lch(dl: float, sc: float, dh: float) -> Callable:
    def f(img, pv):
        if img.bands < 3:
            img = img.colourspace("srgb")
        lch = img.colourspace("lch")
        out = lch * [1, sc, 1] + [dl, 0, dh]
        return out.colourspace("srgb").cast("uchar")
    return f


EDITS: dict[str, dict[str, Callable[[Path, Path], None]]] = {
    "colour": {
        "im_modulate": im(["-modulate", "108,125,100"]),            # brightness + saturation
        "im_hue": im(["-modulate", "100,100,94"]),                  # hue rotation
        "im_whitebalance": im(["-channel", "R", "-evaluate", "multiply", "1.07", "-channel", "B",
                               "-evaluate", "multiply", "0.92", "+channel"]),
        "im_sigmoid": im(["-sigmoidal-contrast", "4x45%"]),         # a contrast curve
        "im_colormatrix": im(["-color-matrix", "0.9 0.1 0.0  0.05 0.9 0.05  0.0 0.1 0.85"]),
        "vips_saturation": vips(_vips_lch(0, 1.3, 0)),
        "vips_grade": vips(_vips_lch(3, 0.85, 8)),                   # lighter, less saturated, warmer hue
    },
    "rescale": {
        "im_resize50": im(["-resize", "50%"]),                       # ImageMagick default (Lanczos)
        "im_mitchell70": im(["-filter", "Mitchell", "-resize", "70%"]),
        "im_resize_crop": im(["-resize", "60%", "-gravity", "center", "-crop", "85%x85%+0+0", "+repage"]),
        "vips_resize50": vips(lambda img, pv: img.resize(0.5)),      # libvips lanczos3
        "vips_thumb400": vips(lambda img, pv: img.thumbnail_image(400)),
        "vips_resize33": vips(lambda img, pv: img.resize(1 / 3, kernel="cubic")),
    },
    "jpeg": {
        "cjpeg_q85": cjpeg(["-quality", "85"], []),
        "cjpeg_float_q80_444": cjpeg(["-quality", "80", "-dct", "float", "-sample", "1x1"], ["-dct", "float"]),
        "cjpeg_q92_fast": cjpeg(["-quality", "92", "-dct", "fast"], ["-dct", "fast", "-nosmooth"]),
        "im_jpeg_q90_422": im_jpeg(90, "2x1"),
        "vips_jpeg_q75": vips(_vips_jpeg(75)),
        "vips_jpeg_q85_trellis": vips(_vips_jpeg(85, trellis_quant=True, overshoot_deringing=True,
                                                 optimize_scans=True)),
    },
    "quantised": {  # palette copies: the inter coder predicts their indices (codec/palette.py)
        "pngquant256": pngquant(["256"]),                              # default Floyd-Steinberg dithering
        "pngquant64_nofs": pngquant(["64", "--nofs"]),
        "im_colors256": im(["-colors", "256", "-define", "png:format=png8"]),  # ImageMagick's quantiser
        "im_colors128_fs": im(["-dither", "FloydSteinberg", "-colors", "128", "-define", "png:format=png8"]),
        "vips_palette_q70": vips_palette(70, 0.5),
    },
}


def generate(out: Path, sources: Path, edits: dict[str, dict[str, Callable[[Path, Path], None]]],
             kinds: list[str], names: tuple[str, ...] = DEFAULT_SOURCES) -> list[dict]:
    """Write OUT/src/<source>.png, OUT/<kind>/<source>__<edit>.png and OUT/pairs.tsv; return the rows."""
    (out / "src").mkdir(parents=True, exist_ok=True)
    rows = []
    for rel in names:
        src = sources / rel
        if not src.exists():
            print(f"  missing source {src}", file=sys.stderr)
            continue
        name = rel.replace("/", "_").removesuffix(".png")
        ref = out / "src" / f"{name}.png"
        shutil.copyfile(src, ref)
        for kind in kinds:
            (out / kind).mkdir(exist_ok=True)
            for edit, fn in edits[kind].items():
                dst = out / kind / f"{name}__{edit}.png"
                try:
                    fn(ref, dst)
                except Exception as e:  # a missing tool skips that edit, not the set
                    print(f"  {edit} failed on {name}: {e}", file=sys.stderr)
                    continue
                rows.append({"target": str(dst.relative_to(out)), "reference": str(ref.relative_to(out)),
                             "group": kind, "edit": edit})
        print(f"  {name}: done", file=sys.stderr, flush=True)
    with open(out / "pairs.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, ["target", "reference", "group", "edit"], delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} edited copies of {len(names)} photos in {out}; pairs in {out / 'pairs.tsv'}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--sources", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/devset")
    ap.add_argument("--only", default="", help="comma-separated kinds to generate (default all)")
    args = ap.parse_args()
    generate(args.out, args.sources, EDITS, [k for k in args.only.split(",") if k] or list(EDITS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
