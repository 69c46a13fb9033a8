"""Smoke test of the benchmark (the full run is `python -m models.bench`, on demand)."""

import json

import pytest

from models import bench as benchmark
from models import zoo as _zoo_module


def _zoo():
    return _zoo_module


def test_quick_benchmark_on_the_bundled_model(tmp_path, library):
    zoo = _zoo()
    config = benchmark.BenchConfig(steps=(0.3,), anchors=("fp16", "int8-dynamic", "int4-matmulnbits", "brotli-file"),
                                   repeat=1, runs=2, limit=200, memory=False, calib_samples=32, max_allocations=1,
                                   stated=False)
    result = benchmark.benchmark_model(zoo.get("fmnist"), config, tmp_path / "work", log=lambda m: None)
    kinds = [(r.kind, r.loader) for r in result.rows]
    assert kinds[0] == ("original", "ort")
    assert ("udc", "udc-fast") in kinds and ("udc", "udc-custom-op") in kinds
    assert "int4-matmulnbits" in result.skipped  # a conv net has no MatMul weights
    by_name = {(r.variant, r.loader): r for r in result.rows}
    original = by_name[("original fp32", "ort")]
    assert original.fidelity["top1_agreement"] == 1.0 and original.ratio == 1.0
    udc = by_name[("onnx-udc s=0.3", "udc-fast")]
    assert udc.ratio > 6 and udc.bits_per_compressed_weight < 5 and udc.fidelity["accuracy"] > 0.85
    assert by_name[("brotli of the file", "brotli")].fidelity["logit_sqnr_db"] == float("inf")
    alloc = [r for r in result.rows if r.kind == "alloc"]
    assert len(alloc) == 1 and alloc[0].loader == "udc-fast" and alloc[0].fidelity["accuracy"] > 0.85
    info = result.allocations[alloc[0].variant]
    assert info["target"]["kind"] == "agreement" and info["smoothed_metric"] >= info["target"]["value"]
    default = [r for r in result.rows if r.kind == "default"]
    assert len(default) == 1 and default[0].ratio > 3 and default[0].fidelity["top1_agreement"] >= 0.97
    assert result.defaults["onnx-udc default"]["verification"]["passed"]
    report = benchmark.write_report([result], tmp_path / "docs", "pytest", config)
    text = report.read_text()
    assert "| onnx-udc s=0.3 | udc-fast |" in text and "not applicable" in text
    assert "Rate allocation vs one global step" in text and "The default command" in text
    assert json.loads((tmp_path / "docs" / "bench_fmnist.json").read_text())["model"] == "fmnist"


def test_missing_optional_dependency_is_a_clear_error(monkeypatch):
    zoo = _zoo()
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(zoo.ZooUnavailable, match="pip install"):
        zoo.require("torch")
