"""tools/nncodec_compare.py: the weight-SQNR comparison with NNCodec's measured curves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import nncodec_compare as nc  # noqa: E402

from onnx_udc.codec import symbol_entropy  # noqa: E402
from onnx_udc.format.dither import dither  # noqa: E402
from onnx_udc.format.symbols import zigzag  # noqa: E402


def test_rdoq_codes_pick_floor_or_ceil_and_lower_the_entropy():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal(20000) * 0.1).astype(np.float32)
    d = dither(7, w.size)
    step = 0.05
    t = w.astype(np.float64) / step + d.astype(np.float64)
    plain = nc.rdoq_codes(w, step, d, 0.0)
    assert np.array_equal(plain, np.rint(t).astype(np.int64))
    rd = nc.rdoq_codes(w, step, d, 0.3)
    assert np.all((rd == np.floor(t)) | (rd == np.floor(t) + 1))
    assert symbol_entropy(zigzag(rd)) < symbol_entropy(zigzag(plain))
    err_plain = np.mean((t - plain) ** 2)
    err_rd = np.mean((t - rd) ** 2)
    assert err_plain < err_rd < 0.25  # it buys rate with distortion, never beyond a whole step


def test_bits_at_interpolates_and_says_when_outside():
    pts = [{"sqnr_db": 18.0, "bpw": 3.0}, {"sqnr_db": 24.0, "bpw": 4.0}]
    assert nc.bits_at(pts, 21.0) == pytest.approx(3.5)
    assert nc.bits_at(pts, 30.0) is None


def test_bundled_model_matches_the_curve_files_tensors_and_decodes_exactly(monkeypatch):
    """The bundled ResNet-20: the selection is NNCodec's (19 tensors, 269,312 weights), and
    a short sweep gives SQNRs rising with bits."""
    nnc = nc.load_curves(nc.CURVES)["resnet20_fmnist"]
    monkeypatch.setattr(nc, "NOMINAL_DB", (18.0, 27.0))
    r = nc.compare_model("resnet20_fmnist", nnc, ["scalar-abs", "scalar-abs-rdoq-lam0.1"], "rans", log=lambda s: None)
    assert (r["n_tensors"], r["n_weights"]) == (19, 269312)
    for pts in r["curves"].values():
        assert pts[0]["sqnr_db"] < pts[1]["sqnr_db"] and pts[0]["bpw"] < pts[1]["bpw"]
        # a dithered scalar's pooled SQNR is close to the high-rate prediction (+-1.5 dB)
    assert abs(r["curves"]["scalar-abs"][1]["sqnr_db"] - 27.0) < 1.5


def test_a_different_selection_is_refused(monkeypatch):
    nnc = dict(nc.load_curves(nc.CURVES)["resnet20_fmnist"], n_tensors=20)
    with pytest.raises(nc.CompareError, match="not the same tensors"):
        nc.compare_model("resnet20_fmnist", nnc, ["scalar-abs"], "rans")


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "c.json"
    bad.write_text("{}")
    assert nc.main(["--curves", str(bad)]) == 2
    assert nc.main(["--models", "nope"]) == 2
    assert nc.main(["--from-json", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_the_committed_report_rebuilds_from_its_json(tmp_path):
    """docs/results/nncodec.md is what --from-json makes of docs/results/nncodec.json."""
    out = tmp_path / "n.md"
    assert nc.main(["--from-json", str(ROOT / "docs/results/nncodec.json"), "--out", str(out)]) == 0
    assert out.read_text() == (ROOT / "docs/results/nncodec.md").read_text()
