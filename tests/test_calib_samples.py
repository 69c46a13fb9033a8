"""The default calibration: its sample counts come from the model and the data, never from
timing, and a held-out set too small to confirm an agreement target is handled by policy."""

from __future__ import annotations

import importlib
import time

import numpy as np
import pytest

from onnx_udc.errors import ConfigError
from onnx_udc.fit.allocate import Target
from onnx_udc.fit.calib import CalibrationSet, split_holdout
from onnx_udc.fit.cost import macs_per_sample
from onnx_udc.pipeline import CompressSpec, compress
from tests import modelzoo

pipeline = importlib.import_module("onnx_udc.pipeline.compress")  # the module (the package exports the function)


def _images(n: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    x = np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32)
    return [{"input": x[i : i + 32]} for i in range(0, n, 32)]


def test_macs_are_counted_from_the_graph():
    # conv1 28x28x16 outputs x 9, conv2 14x14x32 x 16*9, fc 10 x 32 (hand count)
    assert macs_per_sample(modelzoo.cnn(), {"input": np.zeros((4, 1, 28, 28), np.float32)}) == 1_016_384
    assert macs_per_sample(modelzoo.mlp(), {"x": np.zeros((3, 64), np.float32)}) == 2 * 64 * 64
    assert pipeline.default_samples(1e6) == 256 and pipeline.default_samples(1e9) == 64
    assert pipeline.default_samples(pipeline.PASS_MACS / 100) == 100


def test_the_default_count_is_the_same_on_a_slow_machine(monkeypatch):
    model = modelzoo.cnn()

    def run():
        said: list[str] = []
        res = compress(model, CompressSpec(target=Target("output_sqnr", 25.0), calib=_images(600)), log=said.append)
        return res.calibration.samples, res.verification.samples, [m for m in said if "calibration samples" in m]

    normal = run()
    clock = [0.0]

    def slow() -> float:  # every reading of the clock: 1000 s later (a machine 10^5 times slower)
        clock[0] += 1000.0
        return clock[0]

    monkeypatch.setattr(time, "perf_counter", slow)
    monkeypatch.setattr(time, "time", slow)
    assert run() == normal
    assert normal[:2] == (192, 64)  # a cheap model, a target without a count: 256, a quarter held out


def _npz(path, n: int):
    np.savez(path, input=np.concatenate([b["input"] for b in _images(n)]))
    return path


def test_an_agreement_target_holds_out_the_samples_that_can_confirm_it(monkeypatch, tmp_path):
    model = modelzoo.cnn()
    spec = CompressSpec(target=Target("agreement", 0.99), calib=_npz(tmp_path / "c.npz", 1000))
    calib, held = pipeline.default_calibration(model, spec, lambda m: None)
    assert calib.samples == 192 + 299 and held == 299
    fit, holdout = split_holdout(calib, model=model, held=held)
    assert (fit.samples, holdout.samples) == (192, 299)
    rows = np.concatenate([b["input"] for b in fit.batches + holdout.batches]).reshape(491, -1)
    assert len(np.unique(rows[:, :4], axis=0)) == 491  # disjoint parts
    # a costly model fits on fewer samples, and its held-out part is bounded by CHECK_MACS
    monkeypatch.setattr(pipeline, "PASS_MACS", 64 * 1_016_384.0)
    monkeypatch.setattr(pipeline, "CHECK_MACS", 100 * 1_016_384.0)
    calib, held = pipeline.default_calibration(model, spec, lambda m: None)
    assert (calib.samples, held) == (48 + 100, 100)
    monkeypatch.undo()
    # fewer samples than 192 + 64: a quarter held out, as with --calib-samples
    calib, held = pipeline.default_calibration(model, CompressSpec(target=Target("agreement", 0.99),
                                                                   calib=_npz(tmp_path / "s.npz", 100)),
                                               lambda m: None)
    assert calib.samples == 100 and held is None


def test_a_held_out_set_too_small_to_confirm_the_target():
    model = modelzoo.cnn()
    target = Target("agreement", 0.95)  # 59 held-out samples confirm it
    with pytest.raises(ConfigError, match=r"^16 held-out samples cannot confirm agreement >= 0.9500 .* 59 are needed"):
        compress(model, CompressSpec(target=target, calib=_images(64), small_holdout="error"))
    said: list[str] = []
    res = compress(model, CompressSpec(target=target, calib=_images(64)), log=said.append)  # default: margin
    assert res.verification.internal_target == pytest.approx(0.975)
    assert any("safety margin" in w for w in res.warnings)
    res = compress(model, CompressSpec(target=target, calib=_images(64), small_holdout="accept"))
    assert res.verification.internal_target == pytest.approx(0.95)
    assert not any("safety margin" in w for w in res.warnings)
    # enough held-out samples: no margin
    res = compress(model, CompressSpec(target=target, calib=_images(300), calib_samples=240))
    assert res.verification.samples >= 59 and res.verification.internal_target == pytest.approx(0.95)
    with pytest.raises(ConfigError, match="small_holdout"):
        CompressSpec(small_holdout="maybe")


def test_split_holdout_by_count_of_whole_feeds():
    calib = CalibrationSet([{"x": np.full((4, 2), i, np.float32)} for i in range(10)], False, "test", True)
    fit, held = split_holdout(calib, held=12)
    assert len(held.batches) == 3 and len(fit.batches) == 7
    assert sorted(int(b["x"][0, 0]) for b in fit.batches + held.batches) == list(range(10))
