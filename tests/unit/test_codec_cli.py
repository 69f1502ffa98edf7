"""The inspection CLI: encode, info (--json), decode, wrong reference."""

from __future__ import annotations

import io
import json

import numpy as np

from codec.cli import main


def _png(px):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "PNG")
    return buf.getvalue()


def test_cli_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref = (rng.integers(0, 256, (64, 80, 3)) // 16 * 16).astype(np.uint8)
    (tmp_path / "ref.png").write_bytes(_png(ref))
    (tmp_path / "t.png").write_bytes(_png(np.ascontiguousarray(ref[:, ::-1])))
    assert main(["encode", str(tmp_path / "t.png"), "--reference", str(tmp_path / "ref.png"),
                 "-o", str(tmp_path / "t.simc"), "--effort", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "inter" and out["blob_size"] < out["sizes"]["intra"]
    assert main(["info", str(tmp_path / "t.simc"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["mode"] == "inter" and info["inter"]["geom"]["type"] == "dihedral"
    assert main(["info", str(tmp_path / "t.simc")]) == 0
    assert "mode inter" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "t.simc"), "--time", "--reference", str(tmp_path / "ref.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["timings"]["decode_s"] > 0
    assert main(["decode", str(tmp_path / "t.simc"), "--reference", str(tmp_path / "ref.png"),
                 "-o", str(tmp_path / "back.png")]) == 0
    assert (tmp_path / "back.png").read_bytes() == (tmp_path / "t.png").read_bytes()
    # without the reference: a clear error, exit code 1
    assert main(["decode", str(tmp_path / "t.simc"), "-o", str(tmp_path / "x.png")]) == 1
    assert "ReferenceMismatch" in capsys.readouterr().err


def test_cli_verbatim_and_corrupt(tmp_path, capsys):
    (tmp_path / "a.txt").write_bytes(b"not an image")
    assert main(["encode", str(tmp_path / "a.txt"), "-o", str(tmp_path / "a.simc")]) == 2
    assert "not a PNG" in capsys.readouterr().out
    (tmp_path / "bad.simc").write_bytes(b"SIMC" + bytes(60))
    assert main(["info", str(tmp_path / "bad.simc")]) == 1
