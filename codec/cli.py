"""Inspection CLI: python -m codec encode|decode|info (the only part of codec that touches files)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from . import api, bitstream


def _load_reference(path: str | None, ref_id: str | None) -> api.Reference | None:
    if not path:
        return None
    data = Path(path).read_bytes()
    rid = bytes.fromhex(ref_id) if ref_id else hashlib.sha256(data).digest()[:16]
    if data[:4] == bitstream.MAGIC:
        # a blob as reference: only intra blobs can be decoded without their own reference
        return api.Reference(api.decode_pixels(data), rid)
    a = api.analyze(data)
    if not a.ok:
        raise SystemExit(f"reference {path}: cannot use as reference ({a.reason})")
    assert a.pixels is not None
    return api.Reference(a.pixels, rid)


def _cmd_encode(args) -> int:
    data = Path(args.input).read_bytes()
    ref = _load_reference(args.reference, args.ref_id)
    r = api.encode(data, ref, effort=args.effort)
    out = {"input": args.input, "input_size": len(data), "mode": r.mode, "chosen": r.chosen,
           "reason": r.reason, "sizes": r.sizes, "timings": {k: round(v, 4) for k, v in r.timings.items()}}
    if r.blob is not None:
        Path(args.output).write_bytes(r.blob)
        out["blob_size"] = len(r.blob)
        out["ratio"] = round(len(r.blob) / max(1, len(data)), 4)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.input}: {r.mode} ({r.chosen or r.reason})  {len(data)} -> {out.get('blob_size', '-')} bytes")
        for k, v in r.sizes.items():
            print(f"  candidate {k:40s} {v:>10d}")
        if r.reason:
            print(f"  note: {r.reason}")
    return 0 if r.blob is not None else 2


def _cmd_decode(args) -> int:
    blob = Path(args.input).read_bytes()
    ref = _load_reference(args.reference, args.ref_id)
    t = time.perf_counter()
    try:
        data = api.decode(blob, ref)
    except (bitstream.CorruptBlob, api.ReferenceMismatch) as e:
        print(f"{args.input}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    Path(args.output).write_bytes(data)
    print(f"{args.input}: decoded {len(data)} bytes in {time.perf_counter() - t:.3f} s (hash verified)")
    return 0


def _cmd_info(args) -> int:
    blob = Path(args.input).read_bytes()
    try:
        info = api.blob_info(blob)
    except bitstream.CorruptBlob as e:
        print(f"{args.input}: CorruptBlob: {e}", file=sys.stderr)
        return 1
    if args.time:
        # decode timings are measured here, not stored: they depend on the machine reading the blob
        ref = _load_reference(args.reference, args.ref_id)
        try:
            t = time.perf_counter()
            api.decode_pixels(blob, ref)
            t_px = time.perf_counter() - t
            t = time.perf_counter()
            api.decode(blob, ref)
            info["timings"] = {"decode_pixels_s": round(t_px, 4), "decode_s": round(time.perf_counter() - t, 4)}
        except (bitstream.CorruptBlob, api.ReferenceMismatch) as e:
            info["timings"] = {"error": f"{type(e).__name__}: {e}"}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    px = info["pixels"] or {}
    print(f"{args.input}: simfs codec blob v{info['format_version']}, mode {info['mode']}")
    print(f"  blob {info['blob_size']} bytes (payload {info['payload_size']}, metadata {info['meta_size']})")
    print(f"  file {info['file_size']} bytes, sha256 {info['file_sha256']}")
    print(f"  pixels {px.get('shape')} {px.get('dtype')}, JPEG XL effort {info['effort']}")
    rec = info["recipe"] or {}
    print(f"  recipe: {rec.get('method')} {rec.get('params')}, {len(rec.get('idat_sizes', []))} IDAT, "
          f"deflater {info['deflater']}")
    if info["mode"] == "inter":
        print(f"  reference {info['ref_id']} {info['reference']}")
        print(f"  prediction {json.dumps(info['inter'])}")
    print(f"  sections {info['sections']}")
    if "timings" in info:
        print(f"  timings {info['timings']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m codec", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode", help="encode a file (PNG) into a blob")
    e.add_argument("input")
    e.add_argument("-o", "--output", required=True)
    e.add_argument("--reference", help="reference image (PNG or intra blob)")
    e.add_argument("--ref-id", help="reference id in hex (default: first 16 bytes of its SHA-256)")
    e.add_argument("--effort", type=int, default=7)
    e.add_argument("--json", action="store_true")
    d = sub.add_parser("decode", help="rebuild the original file from a blob")
    d.add_argument("input")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("--reference")
    d.add_argument("--ref-id")
    i = sub.add_parser("info", help="describe a blob")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.add_argument("--time", action="store_true", help="also decode and report decode timings")
    i.add_argument("--reference", help="reference image, for --time on inter blobs")
    i.add_argument("--ref-id")
    args = ap.parse_args(argv)
    return {"encode": _cmd_encode, "decode": _cmd_decode, "info": _cmd_info}[args.cmd](args)
