#!/usr/bin/env python3
"""Write the golden store for the current format version: tests/golden/v<N>/store.tar.gz + manifest.json.

`--encoded` writes tests/golden/v<N>-encoded/ instead: the same tree plus a PNG stored encoded
(feature `encoded-objects`). `--chains` writes tests/golden/v<N>-chains/: the encoded tree plus a
reference chain of depth 2 (a flipped copy coded against the PNG, a re-saved copy of that coded
against the flip) and a pinned base (its file deleted, its dependent kept) (feature `reference-chains`).
`--chunked` writes tests/golden/v<N>-chunked/: the plain tree plus chunked files (feature
`chunked-files`): a 64 MiB sparse disk image with three data extents, one of them edited in place,
and a 9 MiB file whose nine identical chunks share one object.
`--jpeg` writes tests/golden/v<N>-jpeg/: the encoded tree plus a decoded JPEG stored as its JPEG
coefficients and a flipped, brightened copy saved as a JPEG, coded as coefficient differences against
it (feature `jpeg-coefficients`). `--jpeg-decoders` writes tests/golden/v<N>-jpeg-decoders/: the same
two JPEG pictures decoded with libjpeg's fast integer IDCT and plain chroma up-sampling (through
jpeglib, a test extra), whose descriptions name that decoder (feature `jpeg-decoders`). `--palette` writes
tests/golden/v<N>-palette/: the encoded tree plus a photo-like PNG and a posterised palette copy of it,
coded against it in the palette's colours (feature `palette-colours`). `--palette-ranks` writes
tests/golden/v<N>-palette-ranks/: the same photo and a dithered palette copy of it (a pngquant-like
quantisation), coded as each index's rank by distance to the photo's colour (feature `palette-ranks`).
`--subpixel` writes tests/golden/v<N>-subpixel/: the encoded tree plus a photo-like PNG and a copy
cropped and rescaled at a fractional box (Pillow's ``resize(box=...)``), coded as a fitted resampling
whose geometry is in 1/64 pixel (feature `subpixel-resampling`).

Run once per released format version, commit the result, never regenerate an old one: the test
`tests/golden/test_golden_stores.py` proves today's code still mounts, reads and fscks every one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simfs.format import FORMAT_VERSION_WRITTEN  # noqa: E402
from simfs.storage import OpenStore  # noqa: E402
from simfs.vfs import Vfs  # noqa: E402

FILES = {
    "/photos/2026/beach.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,
    "/photos/2026/beach-copy.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40,  # dedup
    "/docs/readme.txt": b"golden store\n",
    "/empty": b"",
    "/" + b"caf\xe9.bin".decode("utf-8", "surrogateescape"): b"latin-1 name",
    "/sparse": b"start" + bytes(70_000) + b"end",
}


def sample_png(seed: int = 7) -> bytes:
    """A deterministic photo-like PNG (smooth random field + sensor-like noise) the codec stores smaller."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.normal(0, 1, (96, 128, 3)).astype(np.float32), (0, 0), 4)
    field = (field - field.min()) / (field.max() - field.min()) * 200 + 20
    img = (field + rng.normal(0, 2, field.shape)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def variant(data: bytes, how: str) -> bytes:
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(data))
    buf = io.BytesIO()
    if how == "vflip":
        img.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(buf, format="PNG")
    elif how == "hflip":
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(buf, format="PNG")
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def add_chains(store: OpenStore, vfs: Vfs) -> None:
    """Code chosen files against chosen bases (the real encoder, with its candidate list fixed)."""
    from simfs.catalog import keys
    from simfs.catalog.records import ObjectRecord
    from simfs.ingest import EncodeProcessor, Ingestor
    from simfs.ingest.encode import Candidate

    a = sample_png()
    files = {"/photos/2026/gradient-flip.png": variant(a, "vflip")}
    files["/photos/2026/gradient-flip-resaved.png"] = variant(files["/photos/2026/gradient-flip.png"], "resave")
    pinned = sample_png(seed=11)
    files["/photos/pinned-base.png"] = pinned
    files["/photos/pinned-dependent.png"] = variant(pinned, "hflip")
    bases = {"/photos/2026/gradient-flip.png": a,
             "/photos/2026/gradient-flip-resaved.png": files["/photos/2026/gradient-flip.png"],
             "/photos/pinned-dependent.png": pinned}
    proc = EncodeProcessor(store.objects, chains=vfs.chains, record_of=vfs.object_record,
                           require_feature=store.require_feature)
    ingest = Ingestor(vfs, [proc])
    for path, data in files.items():
        fh = vfs.create(path, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
        base = bases.get(path)
        oid = hashlib.sha256(data).digest()
        if base is not None:
            boid = hashlib.sha256(base).digest()
            brec = vfs.object_record(boid)
            assert brec is not None
            proc.candidates = (lambda b, d, dup: lambda *_a: [Candidate(b, d, dup)])(
                boid, brec.depth + 1, path.endswith("resaved.png"))
        else:
            proc.candidates = lambda *_a: []
        ingest.process(oid)
        rec = vfs.object_record(oid)
        assert rec is not None and rec.codec == 1 and (base is None or rec.has_base), (path, rec)
    vfs.unlink("/photos/pinned-base.png")
    vfs.collect_all_garbage()
    recs = [ObjectRecord.unpack(v) for _, v in vfs.catalog.scan(keys.OBJECT)]
    assert max(r.depth for r in recs) == 2 and any(r.pinned for r in recs)


def decoded_jpeg_pngs(fast_decoder: bool = False) -> tuple[bytes, bytes]:
    """A photo-like PNG decoded from a JPEG, and a flipped, brightened copy of it saved as a JPEG
    (``fast_decoder``: decoded with libjpeg's fast IDCT and plain up-sampling, else as Pillow does)."""
    import io

    from PIL import Image

    def png_of_jpeg(img: Image.Image) -> bytes:
        j = io.BytesIO()
        img.save(j, format="JPEG", quality=80)
        p = io.BytesIO()
        if fast_decoder:
            import jpeglib

            with tempfile.TemporaryDirectory() as td:
                f = Path(td) / "x.jpg"
                f.write_bytes(j.getvalue())
                px = jpeglib.read_spatial(str(f), dct_method=jpeglib.JDCT_IFAST,
                                          flags=["-DO_FANCY_UPSAMPLING"]).spatial
            Image.fromarray(px).save(p, format="PNG")
        else:
            Image.open(io.BytesIO(j.getvalue())).convert("RGB").save(p, format="PNG")
        return p.getvalue()

    src = Image.open(io.BytesIO(sample_png(seed=23))).resize((256, 192), Image.Resampling.BICUBIC)
    photo = png_of_jpeg(src)
    copy = png_of_jpeg(Image.open(io.BytesIO(photo)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                       .point(lambda v: min(255, v + 9)))
    return photo, copy


def add_jpeg(store: OpenStore, vfs: Vfs, fast_decoder: bool = False) -> None:
    """The JPEG-coefficient codings, through the real encoder with its candidate list fixed."""
    import codec
    from simfs.ingest import EncodeProcessor, Ingestor
    from simfs.ingest.encode import Candidate
    from simfs.store.envelope import HEADER_SIZE

    photo, copy = decoded_jpeg_pngs(fast_decoder)
    proc = EncodeProcessor(store.objects, chains=vfs.chains, record_of=vfs.object_record,
                           require_feature=store.require_feature)
    ingest = Ingestor(vfs, [proc])
    for path, data, base in (("/photos/jpeg-photo.png", photo, None), ("/photos/jpeg-copy.png", copy, photo)):
        fh = vfs.create(path, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
        if base is not None:
            boid = hashlib.sha256(base).digest()
            proc.candidates = lambda *_a, b=boid: [Candidate(b, 1, False)]
        else:
            proc.candidates = lambda *_a: []
        oid = hashlib.sha256(data).digest()
        ingest.process(oid)
        rec = vfs.object_record(oid)
        assert rec is not None and rec.codec == 1 and (base is None or rec.has_base), (path, rec)
        blob = store.objects.path_of(oid, rec.gen).read_bytes()[HEADER_SIZE:]
        assert "jpeg-coefficients" in codec.blob_features(blob), path
        if fast_decoder:
            assert "jpeg-decoders" in codec.blob_features(blob), path
    assert "jpeg-coefficients" in store.format.features, store.format.features
    if fast_decoder:
        assert "jpeg-decoders" in store.format.features, store.format.features


def palette_pngs(dithered: bool = False) -> tuple[bytes, bytes]:
    """A photo-like RGB PNG and a copy posterised to a shuffled palette (Pillow, deterministic);
    ``dithered``: noise added before the posterisation, as a dithering quantiser does."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:96, 0:128].astype(np.float64)
    img = np.stack([120 + 80 * np.sin(x / 13.0) * np.cos(y / 17.0), 60 + 0.7 * x % 150, 200 - 0.9 * y], axis=2)
    rgb = np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)
    src = rgb
    if dithered:
        noise = np.random.default_rng(12).integers(-20, 21, rgb.shape)
        src = np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    q = (src // 64) * 64 + 32
    colours, inv = np.unique(q.reshape(-1, 3), axis=0, return_inverse=True)
    perm = rng.permutation(len(colours))
    pal = np.empty_like(colours)
    pal[perm] = colours
    im = Image.fromarray(perm[inv.reshape(-1)].reshape(96, 128).astype(np.uint8), "P")
    im.putpalette(pal.reshape(-1).tolist())
    out = []
    for picture in (Image.fromarray(rgb), im):
        b = io.BytesIO()
        picture.save(b, "PNG")
        out.append(b.getvalue())
    return out[0], out[1]


def add_palette(store: OpenStore, vfs: Vfs, ranks: bool = False) -> None:
    """A palette copy coded against its photo in colours (``ranks``: a dithered copy, by its indices'
    ranks by distance to the photo's colours), through the real encoder."""
    add_pair(store, vfs, ("/photos/palette-photo.png", "/photos/palette-copy.png"), palette_pngs(dithered=ranks),
             ("palette-colours", "palette-ranks") if ranks else ("palette-colours",))


def subpixel_pngs() -> tuple[bytes, bytes]:
    """A photo-like PNG (smooth field, discs, noise) and a copy cropped to a fractional box and
    rescaled by 0.6 (Pillow bilinear, deterministic)."""
    import io

    import cv2
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(5)
    h, w = 160, 200
    f = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 6)
    f = (f - f.min()) / (f.max() - f.min()) * 160 + 40
    for _ in range(40):
        y, x = rng.integers(0, h), rng.integers(0, w)
        r = int(rng.integers(3, 20))
        cv2.circle(f, (int(x), int(y)), r, tuple(float(v) for v in rng.uniform(20, 235, 3)), -1)
    f = cv2.GaussianBlur(f, (0, 0), 1.0)
    photo = Image.fromarray((f + rng.normal(0, 1.5, f.shape)).clip(0, 255).astype(np.uint8))
    copy = photo.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.BILINEAR, box=(7.3, 5.6, w - 4.1, h - 3.3))
    out = []
    for picture in (photo, copy):
        b = io.BytesIO()
        picture.save(b, "PNG")
        out.append(b.getvalue())
    return out[0], out[1]


def add_pair(store: OpenStore, vfs: Vfs, names: tuple[str, str], pngs: tuple[bytes, bytes],
             features: tuple[str, ...]) -> None:
    """Write a base PNG and its copy and code the copy against the base (the real encoder, with its
    candidate list fixed); the copy's blob must need ``features``."""
    import codec
    from simfs.ingest import EncodeProcessor, Ingestor
    from simfs.ingest.encode import Candidate
    from simfs.store.envelope import HEADER_SIZE

    proc = EncodeProcessor(store.objects, chains=vfs.chains, record_of=vfs.object_record,
                           require_feature=store.require_feature)
    ingest = Ingestor(vfs, [proc])
    for path, data, base in ((names[0], pngs[0], None), (names[1], pngs[1], pngs[0])):
        fh = vfs.create(path, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
        if base is not None:
            boid = hashlib.sha256(base).digest()
            proc.candidates = lambda *_a, b=boid: [Candidate(b, 1, False)]
        else:
            proc.candidates = lambda *_a: []
        oid = hashlib.sha256(data).digest()
        ingest.process(oid)
        rec = vfs.object_record(oid)
        assert rec is not None and rec.codec == 1 and (base is None or rec.has_base), (path, rec)
        if base is not None:
            blob = store.objects.path_of(oid, rec.gen).read_bytes()[HEADER_SIZE:]
            assert set(features) <= codec.blob_features(blob), (path, codec.blob_features(blob))
    assert set(features) <= set(store.format.features), store.format.features


def add_chunked(vfs: Vfs) -> None:
    vfs.mkdir("/vm", 0o755)
    fh = vfs.create("/vm/disk.img", 0o644, os.O_RDWR | os.O_CREAT)
    vfs.truncate(None, 64 << 20, fh)
    vfs.write(fh, b"boot sector " * 400, 0)
    vfs.write(fh, bytes(range(256)) * 12, 20 << 20)
    vfs.write(fh, b"end", (64 << 20) - 3)
    vfs.release(fh)
    fh = vfs.open("/vm/disk.img", os.O_RDWR)  # an edit in place: one chunk replaced
    vfs.write(fh, b"EDITED", (20 << 20) + 100)
    vfs.release(fh)
    fh = vfs.create("/vm/dup.bin", 0o644, os.O_WRONLY | os.O_CREAT)
    vfs.write(fh, (b"0123456789abcdef" * 65536) * 9, 0)
    vfs.release(fh)
    assert vfs.load_inode(vfs.resolve("/vm/disk.img")).chunked


def build(store_dir: Path, *, encoded: bool = False, chains: bool = False, chunked: bool = False,
          jpeg: bool = False, jpeg_decoders: bool = False, palette: bool = False,
          palette_ranks: bool = False, subpixel: bool = False) -> dict:
    store = OpenStore(store_dir, create=True)
    processors = []
    if encoded or chains or jpeg or jpeg_decoders or palette or palette_ranks or subpixel:
        from simfs.ingest import EncodeProcessor

        store.require_feature("encoded-objects")
        processors = [EncodeProcessor(store.objects)]
        FILES["/photos/2026/gradient.png"] = sample_png()
    vfs = Vfs(store, processors=processors)
    for d in ("/photos", "/photos/2026", "/docs", "/emptydir"):
        vfs.mkdir(d, 0o755)
    for path, data in FILES.items():
        fh = vfs.create(path, 0o644, os.O_WRONLY | os.O_CREAT)
        vfs.write(fh, data, 0)
        vfs.release(fh)
    vfs.link("/docs/readme-link.txt", "/docs/readme.txt")
    vfs.symlink("/latest", "photos/2026/beach.png")
    vfs.setxattr("/photos/2026/beach.png", "user.album", b"summer")
    vfs.chmod("/docs/readme.txt", 0o600)
    vfs.utimens("/docs/readme.txt", ((1_700_000_000, 1), (1_700_000_000, 2)))
    if encoded or chains or jpeg or jpeg_decoders or palette or palette_ranks or subpixel:
        from simfs.catalog import keys
        from simfs.catalog.records import ObjectRecord
        from simfs.ingest import Ingestor

        ingest = Ingestor(vfs, processors)
        for key, _ in list(vfs.catalog.scan(keys.OBJECT)):
            ingest.process(bytes(key[1:]))
        vfs.collect_garbage(force_sync=True)
        codecs = [ObjectRecord.unpack(v).codec for _, v in vfs.catalog.scan(keys.OBJECT)]
        assert 1 in codecs, "the golden store must hold at least one encoded object"
    if chains:
        add_chains(store, vfs)
    if chunked:
        add_chunked(vfs)
    if jpeg or jpeg_decoders:
        add_jpeg(store, vfs, fast_decoder=jpeg_decoders)
    if palette or palette_ranks:
        add_palette(store, vfs, ranks=palette_ranks)
    if subpixel:
        add_pair(store, vfs, ("/photos/subpixel-photo.png", "/photos/subpixel-crop.png"), subpixel_pngs(),
                 ("fitted-predictions", "subpixel-resampling"))
    manifest = {}
    for raw_path, _ino in sorted(vfs.iter_paths()):
        path = raw_path.decode("utf-8", "surrogateescape")
        st = vfs.getattr(path)
        entry = {"mode": st["st_mode"], "nlink": st["st_nlink"], "size": st["st_size"]}
        if stat.S_ISREG(st["st_mode"]):
            fh = vfs.open(path, os.O_RDONLY)
            entry["sha256"] = hashlib.sha256(vfs.read(fh, st["st_size"], 0)).hexdigest()
            vfs.release(fh)
            entry["xattrs"] = {n: vfs.getxattr(path, n).decode() for n in vfs.listxattr(path)}
        elif stat.S_ISLNK(st["st_mode"]):
            entry["target"] = vfs.readlink(path)
        manifest[raw_path.hex()] = entry
    manifest[b"/docs/readme.txt".hex()]["mtime_ns"] = 1_700_000_000_000_000_002
    vfs.shutdown()
    store.close()
    return manifest


def main() -> int:
    encoded = "--encoded" in sys.argv
    chains = "--chains" in sys.argv
    chunked = "--chunked" in sys.argv
    jpeg = "--jpeg" in sys.argv
    jpeg_decoders = "--jpeg-decoders" in sys.argv
    palette = "--palette" in sys.argv
    palette_ranks = "--palette-ranks" in sys.argv
    subpixel = "--subpixel" in sys.argv
    suffix = ("-chains" if chains else "-encoded" if encoded else "-chunked" if chunked else "-jpeg" if jpeg
              else "-jpeg-decoders" if jpeg_decoders else "-palette" if palette
              else "-palette-ranks" if palette_ranks else "-subpixel" if subpixel else "")
    out = REPO / "tests" / "golden" / f"v{FORMAT_VERSION_WRITTEN}{suffix}"
    if out.exists():
        print(f"{out} exists; golden stores are never regenerated", file=sys.stderr)
        return 1
    out.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp) / "store"
        manifest = build(store_dir, encoded=encoded, chains=chains, chunked=chunked, jpeg=jpeg,
                         jpeg_decoders=jpeg_decoders, palette=palette,
                         palette_ranks=palette_ranks, subpixel=subpixel)
        for leftover in ("simfs.log", "mount.lock"):
            (store_dir / leftover).unlink(missing_ok=True)
        with tarfile.open(out / "store.tar.gz", "w:gz") as tar:
            tar.add(store_dir, arcname="store")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
